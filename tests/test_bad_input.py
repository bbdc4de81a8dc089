"""Bad files and bad arguments raise a ``toknz.ToknzError`` that names the file and the place.

Every case checks the exception type (a ``ToknzError`` subclass) and the
message: the file's path, and the line / byte offset / JSON path where the
problem is, as the error convention in docs/architecture.md asks.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

import toknz
from toknz import FormatError, InputError, SpecialTokenError, UnsupportedFeatureError, UsageError

# A small, valid byte-level BPE tokenizer.json (tokenizers loads it).
BASE: dict[str, Any] = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [
        {
            "id": 4,
            "content": "<|end|>",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
    ],
    "normalizer": None,
    "pre_tokenizer": {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": True,
        "use_regex": True,
    },
    "post_processor": None,
    "decoder": {
        "type": "ByteLevel",
        "add_prefix_space": True,
        "trim_offsets": True,
        "use_regex": True,
    },
    "model": {
        "type": "BPE",
        "dropout": None,
        "unk_token": None,
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": False,
        "byte_fallback": False,
        "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3},
        "merges": ["a b"],
    },
}


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return path


def variant(tmp_path: Path, change: Any, name: str = "tokenizer.json") -> Path:
    obj = copy.deepcopy(BASE)
    change(obj)
    return write_json(tmp_path / name, obj)


def starts_with_path(path: Path) -> str:
    return "^" + re.escape(str(path))


def test_base_file_is_valid(tmp_path: Path) -> None:
    """The variants below differ from a file that both toknz and tokenizers load."""
    import tokenizers

    path = write_json(tmp_path / "tokenizer.json", BASE)
    tok = toknz.Tokenizer.from_file(path)
    ref = tokenizers.Tokenizer.from_file(str(path))
    assert (
        tok.encode("abcab<|end|>", allowed_special="all")
        == ref.encode("abcab<|end|>").ids
        == [2, 3, 2, 4]
    )


# ------------------------------------------------------------------ broken JSON


@pytest.mark.parametrize("fraction", [0.5, 0.001, 0.999])
def test_truncated_tokenizer_json(fraction: float, tmp_path: Path) -> None:
    from conftest import require_file

    data = require_file("llama2").read_bytes()
    cut = data[: int(len(data) * fraction)]
    cut = cut[: len(cut.decode("utf-8", errors="ignore").encode("utf-8"))]  # whole characters only
    path = tmp_path / "tokenizer.json"
    path.write_bytes(cut)
    with pytest.raises(FormatError) as err:
        toknz.Tokenizer.from_file(path)
    msg = str(err.value)
    m = re.match(
        re.escape(str(path))
        + r", line (\d+), column (\d+) \(character offset (\d+)\): truncated JSON",
        msg,
    )
    assert m, msg
    line, column, offset = (int(g) for g in m.groups())
    text = cut.decode("utf-8")
    assert offset <= len(text)
    assert line == text.count("\n", 0, offset) + 1
    assert column == offset - (text.rfind("\n", 0, offset) + 1) + 1


def test_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text('{"model": {"type": "BPE",\n  "vocab": {"a": 0,, "b": 1}}}', encoding="utf-8")
    with pytest.raises(
        FormatError,
        match=starts_with_path(path)
        + r", line 2, column 20 \(character offset 45\): malformed JSON",
    ):
        toknz.Tokenizer.from_file(path)


def test_json_that_is_not_a_tokenizer(tmp_path: Path) -> None:
    path = write_json(tmp_path / "tokenizer.json", ["not", "an", "object"])
    with pytest.raises(toknz.ToknzError, match=starts_with_path(path)):
        toknz.Tokenizer.from_file(path)


# ------------------------------------------------------------------ features toknz does not implement


def _wordpiece(o: dict[str, Any]) -> None:
    o["model"] = {
        "type": "WordPiece",
        "unk_token": "a",
        "continuing_subword_prefix": "##",
        "max_input_chars_per_word": 100,
        "vocab": {"a": 0, "b": 1},
    }
    o["pre_tokenizer"] = {"type": "Whitespace"}
    o["decoder"] = None
    o["added_tokens"] = []


def _unigram(o: dict[str, Any]) -> None:
    o["model"] = {
        "type": "Unigram",
        "unk_id": 0,
        "vocab": [["a", 0.0], ["b", -1.0]],
        "byte_fallback": False,
    }
    o["pre_tokenizer"] = {"type": "Whitespace"}
    o["decoder"] = None
    o["added_tokens"] = []


BERT = {
    "type": "BertNormalizer",
    "clean_text": True,
    "handle_chinese_chars": True,
    "strip_accents": None,
    "lowercase": True,
}
PRECOMPILED = {"type": "Precompiled", "precompiled_charsmap": None}


@pytest.mark.parametrize(
    "change, place",
    [
        (_wordpiece, r"model type 'WordPiece' is not supported"),
        (_unigram, r"model type 'Unigram' is not supported"),
        (
            lambda o: o.update(normalizer=BERT),
            r"normalizer: the 'BertNormalizer' normalizer is not supported",
        ),
        (
            lambda o: o.update(normalizer=PRECOMPILED),
            r"normalizer: the 'Precompiled' normalizer is not supported",
        ),
        (
            lambda o: o.update(
                normalizer={"type": "Sequence", "normalizers": [{"type": "NFC"}, PRECOMPILED]}
            ),
            r"normalizer\.normalizers\[1\]: the 'Precompiled' normalizer",
        ),
        (
            lambda o: o.update(pre_tokenizer={"type": "UnicodeScripts"}),
            r"pre_tokenizer: the 'UnicodeScripts' pre-tokenizer is not supported",
        ),
        (
            lambda o: o.update(
                pre_tokenizer={
                    "type": "Sequence",
                    "pretokenizers": [{"type": "UnicodeScripts"}, BASE["pre_tokenizer"]],
                }
            ),
            r"pre_tokenizer\.pretokenizers\[0\]: the 'UnicodeScripts' pre-tokenizer",
        ),
        (lambda o: o["model"].update(dropout=0.1), r"model\.dropout is 0\.1: BPE dropout"),
        (
            lambda o: o.update(
                truncation={
                    "direction": "Right",
                    "max_length": 8,
                    "strategy": "LongestFirst",
                    "stride": 0,
                }
            ),
            r"'truncation' is set",
        ),
    ],
    ids=[
        "WordPiece",
        "Unigram",
        "BertNormalizer",
        "Precompiled",
        "Precompiled-in-Sequence",
        "UnicodeScripts",
        "UnicodeScripts-in-Sequence",
        "dropout",
        "truncation",
    ],
)
def test_unsupported_feature(change: Any, place: str, tmp_path: Path) -> None:
    path = variant(tmp_path, change)
    with pytest.raises(UnsupportedFeatureError, match=starts_with_path(path) + ": " + place):
        toknz.Tokenizer.from_file(path)


def test_unsupported_features_are_real_tokenizers_features(tmp_path: Path) -> None:
    """The refused files are files ``tokenizers`` accepts: refusing is toknz's choice, not a bad file."""
    import tokenizers

    for i, change in enumerate(
        [
            _wordpiece,
            _unigram,
            lambda o: o.update(normalizer=BERT),
            lambda o: o.update(pre_tokenizer={"type": "UnicodeScripts"}),
            lambda o: o["model"].update(dropout=0.1),
        ]
    ):
        path = variant(tmp_path, change, f"t{i}.json")
        assert tokenizers.Tokenizer.from_file(str(path)).encode("ab ab").ids


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda o: o["model"].update(merges=["a b", "c d"]),
            r"model\.merges\[1\]: merge 'c' \+ 'd' uses or makes 'd'",
        ),
        (
            lambda o: o["model"].update(merges=["a b", "b a"]),
            r"model\.merges\[1\]: merge 'b' \+ 'a' uses or makes 'ba'",
        ),
        (
            lambda o: o["model"].update(merges=["a b", "a b c"]),
            r"model\.merges\[1\]: merge 'a b c' must be two tokens",
        ),
        (
            lambda o: o["model"].update(vocab={"a": 0, "b": "one"}),
            r"model\.vocab must be an object of token -> integer id",
        ),
        (
            lambda o: o["model"].update(unk_token="<unk>"),
            r"model\.unk_token '<unk>' is not in the vocabulary",
        ),
        (
            lambda o: o["added_tokens"].append({"id": 9, "content": ""}),
            r"added_tokens\[1\]: an added token may not be empty",
        ),
        (
            lambda o: o.update(
                pre_tokenizer={
                    "type": "Split",
                    "pattern": {"Regex": "(a"},
                    "behavior": "Isolated",
                    "invert": False,
                }
            ),
            r"pre_tokenizer\.pattern: invalid regex",
        ),
        (
            lambda o: o.update(
                pre_tokenizer={
                    "type": "Split",
                    "pattern": {"Regex": "a"},
                    "behavior": "Sideways",
                    "invert": False,
                }
            ),
            r"pre_tokenizer: unknown split behavior 'Sideways'",
        ),
        (
            lambda o: o.update(
                post_processor={
                    "type": "TemplateProcessing",
                    "single": [
                        {"SpecialToken": {"id": "<s>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}},
                    ],
                    "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
                    "special_tokens": {},
                }
            ),
            r"post_processor: template uses special token '<s>' missing from special_tokens",
        ),
    ],
    ids=[
        "merge-missing-token",
        "merge-missing-result",
        "merge-three-parts",
        "vocab-type",
        "unk",
        "empty-added",
        "bad-regex",
        "behavior",
        "template",
    ],
)
def test_inconsistent_file(change: Any, message: str, tmp_path: Path) -> None:
    path = variant(tmp_path, change)
    with pytest.raises(FormatError, match=starts_with_path(path) + ": " + message):
        toknz.Tokenizer.from_file(path)


# ------------------------------------------------------------------ rank files


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            ["YQ== 0", "Yg== 1", "!!notbase64 2"],
            r"line 3: '!!notbase64' is not valid base64|line 3: b'!!notbase64' is not valid base64",
        ),
        (["YQ== 0", "Yg==", "YWI= 2"], r"line 2: expected '<base64 token> <rank>'"),
        (["YQ== 0", "Yg== 1", "YWI= 1"], r"line 3: rank 1 appears twice"),
        (["YQ== 0", "Yg== 1", "YQ== 2"], r"line 3: token b'a' appears twice \(ranks 0 and 2\)"),
        (["YQ== 0", "Yg== -1"], r"line 2: negative rank -1"),
        (
            ["YQ== 0", "Yg== one"],
            r"line 2: rank 'one' is not an integer|line 2: rank b'one' is not an integer",
        ),
        (["YQ== 0", "", "Yg== 1 2"], r"line 3: expected '<base64 token> <rank>'"),
    ],
    ids=[
        "bad-base64",
        "missing-rank",
        "duplicate-rank",
        "duplicate-token",
        "negative-rank",
        "rank-not-int",
        "three-fields",
    ],
)
def test_bad_rank_file_line(lines: list[str], message: str, tmp_path: Path) -> None:
    path = tmp_path / "x.tiktoken"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    with pytest.raises(FormatError, match=starts_with_path(path) + ", " + f"(?:{message})"):
        toknz.Tokenizer.from_file(path, pattern="cl100k")


def test_real_rank_file_with_one_bad_line(tmp_path: Path) -> None:
    from conftest import require_file

    lines = require_file("r50k_base").read_bytes().split(b"\n")
    lines[1233] = b"%%%% 1233"  # line 1234
    path = tmp_path / "r50k_base.tiktoken"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(
        FormatError, match=starts_with_path(path) + r", line 1234: .*not valid base64"
    ):
        toknz.Tokenizer.from_file(path, pattern="r50k")


def all_bytes_ranks(*extra: bytes) -> str:
    """A rank file's text: the 256 single bytes (rank = byte value), then ``extra`` tokens."""
    import base64

    tokens = [bytes([b]) for b in range(256)] + list(extra)
    return "".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(tokens))


def test_rank_file_without_pattern(tmp_path: Path) -> None:
    path = tmp_path / "mine.tiktoken"
    path.write_text(all_bytes_ranks(b"ab"), encoding="ascii")
    with pytest.raises(
        UsageError,
        match=starts_with_path(path)
        + r": a \.tiktoken rank file holds no split pattern; pass pattern=",
    ):
        toknz.Tokenizer.from_file(path)
    tok = toknz.Tokenizer.from_file(path, pattern="cl100k")
    assert tok.encode("abab") == [256, 256]
    with pytest.raises(
        UsageError, match=r"special token '<\|x\|>' has id 98, which a rank already uses"
    ):
        toknz.Tokenizer.from_file(path, pattern="cl100k", special_tokens={"<|x|>": 98})


# ------------------------------------------------------------------ empty files, folders, missing files


@pytest.mark.parametrize(
    "name, content", [("tokenizer.json", b""), ("x.tiktoken", b""), ("blank.json", b"  \n\n\t ")]
)
def test_empty_file(name: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FormatError, match=starts_with_path(path) + ": empty file"):
        toknz.Tokenizer.from_file(path)


def test_folder_without_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("no tokenizer here", encoding="utf-8")
    with pytest.raises(
        InputError, match=starts_with_path(tmp_path) + ": folder holds no tokenizer.json"
    ):
        toknz.Tokenizer.from_file(tmp_path)
    with pytest.raises(InputError, match=starts_with_path(tmp_path)):
        toknz.load(tmp_path)
    # two rank files are ambiguous too
    (tmp_path / "a.tiktoken").write_text("YQ== 0\n", encoding="ascii")
    (tmp_path / "b.tiktoken").write_text("YQ== 0\n", encoding="ascii")
    with pytest.raises(InputError, match=starts_with_path(tmp_path)):
        toknz.Tokenizer.from_file(tmp_path)


def test_folder_with_tokenizer_json_loads(tmp_path: Path) -> None:
    write_json(tmp_path / "tokenizer.json", BASE)
    assert toknz.Tokenizer.from_file(tmp_path).encode("ab") == [2]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(InputError, match=starts_with_path(path) + ": no such file"):
        toknz.Tokenizer.from_file(path)
    with pytest.raises(
        UsageError, match=re.escape(repr(str(path))) + " is neither a known tokenizer name"
    ):
        toknz.load(str(path))


def test_encoder_json_without_vocab_bpe(tmp_path: Path) -> None:
    path = write_json(tmp_path / "encoder.json", {"a": 0, "b": 1})
    with pytest.raises(
        InputError,
        match=starts_with_path(path) + r": looks like a GPT-2 encoder\.json but .*vocab\.bpe",
    ):
        toknz.Tokenizer.from_file(path)


def test_bad_vocab_bpe_line(tmp_path: Path) -> None:
    write_json(tmp_path / "encoder.json", {"a": 0, "b": 1, "ab": 2})
    bpe = tmp_path / "vocab.bpe"
    bpe.write_text("#version: 0.2\na b\nab\n", encoding="utf-8")
    with pytest.raises(FormatError, match=starts_with_path(bpe) + ", line 3: expected two tokens"):
        toknz.Tokenizer.from_file(tmp_path / "encoder.json")


# ------------------------------------------------------------------ invalid UTF-8


def test_invalid_utf8_in_tokenizer_json(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    data = json.dumps(BASE, indent=2).encode("utf-8")
    at = data.index(b'"ab"') + 1  # inside the token "ab", on some line of the file
    bad = data[:at] + b"\xff" + data[at + 1 :]
    path.write_bytes(bad)
    line = bad.count(b"\n", 0, at) + 1
    with pytest.raises(
        InputError,
        match=starts_with_path(path) + rf", line {line}, byte offset {at}: invalid UTF-8",
    ):
        toknz.Tokenizer.from_file(path)


def test_invalid_utf8_in_vocab_bpe(tmp_path: Path) -> None:
    write_json(tmp_path / "encoder.json", {"a": 0, "b": 1, "ab": 2})
    bpe = tmp_path / "vocab.bpe"
    bpe.write_bytes(b"#version: 0.2\na b\n\xc3( b\n")
    with pytest.raises(
        InputError, match=starts_with_path(bpe) + ", line 3, byte offset 18: invalid UTF-8"
    ):
        toknz.Tokenizer.from_file(tmp_path / "encoder.json")


def test_encode_refuses_bytes(tmp_path: Path) -> None:
    tok = toknz.Tokenizer.from_file(write_json(tmp_path / "tokenizer.json", BASE))
    with pytest.raises(UsageError, match="expects str, got bytes"):
        tok.encode(b"ab")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="expects str, got bytes"):
        tok.encode_ordinary(b"ab")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="expects str items, got bytes"):
        tok.encode_batch(["ab", b"\xff"], num_threads=1)  # type: ignore[list-item]


# ------------------------------------------------------------------ special-token arguments


def test_unknown_special_tokens_in_arguments(tmp_path: Path) -> None:
    tok = toknz.Tokenizer.from_file(write_json(tmp_path / "tokenizer.json", BASE))
    with pytest.raises(
        UsageError, match=r"unknown special tokens in allowed_special: \['<\|nope\|>'\]"
    ):
        tok.encode("ab", allowed_special={"<|nope|>", "<|end|>"})
    with pytest.raises(
        UsageError, match=r"unknown special tokens in disallowed_special: \['<\|nope\|>'\]"
    ):
        tok.encode("ab", disallowed_special={"<|nope|>"})
    with pytest.raises(UsageError, match=r"allowed_special: \['<\|nope\|>'\]"):
        tok.encode_batch(["ab"], allowed_special={"<|nope|>"})
    with pytest.raises(SpecialTokenError, match=r"'<\|end\|>' at character offset 2"):
        tok.encode("ab<|end|>")
    assert isinstance(SpecialTokenError("x"), toknz.ToknzError)


# ------------------------------------------------------------------ the test suite's own loader


@pytest.mark.parametrize("ci", ["true", ""])
def test_missing_real_file_skips_or_fails_under_ci(
    ci: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import require_file

    monkeypatch.setenv("TOKNZ_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    with pytest.raises(outcome, match=r"run `toknz fetch --all`"):
        require_file("cl100k_base")
