"""``unit="line"``: merges and vocabulary identical to ``tokenizers``' ``Tokenizer.train(files)``.

``tokenizers`` reads each file line by line (``BufRead::read_line``: a line
ends just after ``"\\n"`` and keeps it, ``"\\r\\n"`` stays whole, a lone ``"\\r"``
does not end a line, a last line without newline is a line) and pre-tokenizes
each line on its own. ``toknz train --unit line`` must train the same.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toknz.cli import main
from toknz.errors import UsageError
from toknz.pipeline.pretokenize import PATTERNS
from toknz.pipeline.regex_dialect import python_to_onig
from toknz.train import train
from toknz.train.counting import line_offsets, split_lines

REPO = Path(__file__).resolve().parents[1]


def hf_train_files(
    files: list[Path], vocab_size: int, pattern: str, specials: tuple[str, ...] = ()
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``tokenizers`` trained on ``files`` with ``Split(pattern)`` + ``ByteLevel``, as toknz builds it.

    The pattern goes through :func:`python_to_onig`, as toknz writes it to ``tokenizer.json``
    (Oniguruma reads ``{1,3}+`` as a repeated repeat, not a possessive one).
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(python_to_onig(PATTERNS[pattern])), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(f) for f in files], trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges  # type: ignore[return-value]


def toknz_model(tok, tmp: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    out = tmp / "toknz.json"
    tok.save(out)
    model = json.loads(out.read_text(encoding="utf-8"))["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def assert_same(mine, theirs) -> None:
    first = next(
        (i for i, (a, b) in enumerate(zip(mine[1], theirs[1], strict=False)) if a != b), None
    )
    assert first is None, f"merge #{first}: toknz {mine[1][first]} vs tokenizers {theirs[1][first]}"
    assert mine[1] == theirs[1]
    assert mine[0] == theirs[0]


def test_split_lines_cuts_after_each_newline_only() -> None:
    text = "a\r\n\nb\rc\x0bd\x0ce\x85f\u2028g\n\n\nlast"
    assert split_lines(text) == ["a\r\n", "\n", "b\rc\x0bd\x0ce\x85f\u2028g\n", "\n", "\n", "last"]
    assert split_lines("") == []
    assert split_lines("x\n") == ["x\n"]
    import numpy as np

    for t in (text, "", "x\n", "\n\n", "é\nü"):
        raw = t.encode("utf-8")
        offs = line_offsets(np.frombuffer(raw, dtype=np.uint8))
        pieces = [raw[offs[i] : offs[i + 1]] for i in range(len(offs) - 1)]
        assert [p for p in pieces if p] == [s.encode("utf-8") for s in split_lines(t)]


def test_tokenizers_cuts_lines_this_way(tmp_path: Path) -> None:
    """The reading ``split_lines`` copies: found by training ``tokenizers`` with no split at all."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from toknz.pipeline.byte_alphabet import chars_to_bytes

    path = tmp_path / "f.txt"
    path.write_bytes(b"ab\r\ncd\n\n\ref\rgh\x0bij\x0ckl\xc2\x85mn\xe2\x80\xa8op\nqr")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=1000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train([str(path)], trainer)
    vocab = {chars_to_bytes(k) for k in json.loads(tok.to_str())["model"]["vocab"]}
    lines = [s.encode("utf-8") for s in split_lines(path.read_bytes().decode("utf-8"))]
    longest = [w for w in lines if len(w) > 1]
    assert all(w in vocab for w in longest)  # each line became one token...
    assert not any(len(t) > max(map(len, lines)) for t in vocab)  # ...and nothing crossed a line


@pytest.mark.parametrize("pattern", ["cl100k", "gpt2", "o200k"])
@pytest.mark.parametrize("corpus", ["en/austen_emma.txt", "code/python_stdlib.txt"])
def test_line_unit_equals_tokenizers_on_corpora(tmp_path: Path, pattern: str, corpus: str) -> None:
    src = (REPO / "corpora" / corpus).read_text(encoding="utf-8")[:80_000]
    path = tmp_path / "c.txt"
    path.write_text(src, encoding="utf-8", newline="")
    tok = train([path], vocab_size=900, pattern=pattern, unit="line", threads=1)
    assert_same(toknz_model(tok, tmp_path), hf_train_files([path], 900, pattern))


def test_line_unit_differs_from_document_unit(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("a\n\n b\n\n  c\n" * 200 + "x\n    y\n" * 100, encoding="utf-8")
    by_line = toknz_model(train([path], vocab_size=270, unit="line", threads=1), tmp_path)
    whole = toknz_model(train([path], vocab_size=270, unit="document", threads=1), tmp_path)
    assert by_line != whole
    assert by_line == hf_train_files([path], 270, "cl100k")


def _generated_text(rng: random.Random, n_lines: int) -> str:
    words = ["the", "cat", " ", "  ", "\t", "42", "1999", "é", "naïve", "日本語", "--", "...", "x"]
    ends = ["\n", "\n", "\n", "\r\n", "\n\n", "\r\n\r\n", " \n", "\r", "\n  "]
    out = []
    for _ in range(n_lines):
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 6))))
        out.append(rng.choice(ends))
    return "".join(out)


@pytest.mark.parametrize("seed", range(4))
def test_line_unit_equals_tokenizers_on_generated_text(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    files = []
    for k in range(2):
        text = _generated_text(rng, 300)
        if k == 1:
            text = text.rstrip("\n") + "last line without newline"
        path = tmp_path / f"g{k}.txt"
        path.write_bytes(text.encode("utf-8"))
        files.append(path)
    specials = ("<|endoftext|>",)
    tok = train(files, vocab_size=400, unit="line", special_tokens=specials, threads=2)
    assert_same(toknz_model(tok, tmp_path), hf_train_files(files, 400, "cl100k", specials))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab c1\n\r\t.é日")),
        min_size=1,
        max_size=300,
    )
)
def test_line_unit_equals_tokenizers_hypothesis(tmp_path: Path, text: str) -> None:
    path = tmp_path / "h.txt"
    path.write_bytes(text.encode("utf-8"))
    tok = train([path], vocab_size=300, unit="line", threads=1)
    assert_same(toknz_model(tok, tmp_path), hf_train_files([path], 300, "cl100k"))
    # The same through the regex (not compiled) path: a custom pattern.
    custom = r"\s+|\w+|[^\s\w]+"
    tok2 = train([path], vocab_size=300, pattern=custom, unit="line", threads=1)
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(python_to_onig(custom)), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    hf.train([str(path)], trainer)
    theirs = json.loads(hf.to_str())["model"]
    mine = toknz_model(tok2, tmp_path)
    assert mine[0] == theirs["vocab"]
    assert [list(m) for m in mine[1]] == [
        m if isinstance(m, list) else m.split(" ") for m in theirs["merges"]
    ]


def test_unit_usage_errors_and_cli(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("one\ntwo\n" * 20, encoding="utf-8")
    with pytest.raises(UsageError, match="unit"):
        train([path], vocab_size=260, unit="paragraph")
    out = tmp_path / "t.json"
    result = CliRunner().invoke(
        main,
        ["train", str(path), "-o", str(out), "--vocab-size", "270", "--unit", "line", "-q"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "t.json.report.json").read_text())
    assert report["unit"] == "line"
    assert toknz_model(
        train([path], vocab_size=270, unit="line", threads=1), tmp_path
    ) == hf_train_files([path], 270, "cl100k")
    bad = CliRunner().invoke(
        main, ["train", str(path), "-o", str(out), "--vocab-size", "270", "--unit", "word"]
    )
    assert bad.exit_code != 0


def test_line_unit_on_worker_processes_and_json_lines(tmp_path: Path) -> None:
    """The process-pool path (a custom regex, two workers) and JSON-lines records cut the same."""
    rng = random.Random(7)
    records = [_generated_text(rng, 20).rstrip("\n") + "\n" for _ in range(30)]
    plain = tmp_path / "p.txt"
    plain.write_bytes("".join(records).encode("utf-8"))
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps({"text": r}) + "\n" for r in records), encoding="utf-8")
    custom = r"\s+|\w+|[^\s\w]+"
    from_text = train([plain], vocab_size=350, pattern=custom, unit="line", threads=2)
    from_jsonl = train(
        [jsonl], vocab_size=350, pattern=custom, unit="line", field_name="text", threads=2
    )
    one_thread = train([plain], vocab_size=350, pattern=custom, unit="line", threads=1)
    a = toknz_model(from_text, tmp_path)
    assert a == toknz_model(from_jsonl, tmp_path) == toknz_model(one_thread, tmp_path)


@pytest.mark.parametrize("pattern", ["gpt2", "cl100k", "o200k", "llama3", "qwen"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.lists(
        st.sampled_from(
            ["x", "!", "\n", "/", " ", "//", "ab", "Ab", "1", "\r\n", "\t", "é", "?!", "'s", " a"]
        ),
        max_size=60,
    ).map("".join)
)
def test_chunk_cuts_never_change_the_words(pattern: str, text: str) -> None:
    """Wherever the chunker may cut (:func:`toknz.train.inputs._safe_cut` of any prefix), the
    two sides pre-tokenize to exactly the pieces of the whole text. (o200k's ``[\\r\\n/]*``
    takes a "/" after a line end; GPT-2's ``\\s+(?!\\S)`` splits "\\r\\n" before a word.)"""
    import regex

    from toknz.train.inputs import _safe_cut

    raw = text.encode("utf-8")
    whole = regex.findall(PATTERNS[pattern], text)
    for k in range(len(raw) + 1):
        cut = _safe_cut(raw[:k])
        if cut:
            left, right = raw[:cut].decode("utf-8"), raw[cut:].decode("utf-8")
            assert (
                regex.findall(PATTERNS[pattern], left) + regex.findall(PATTERNS[pattern], right)
                == whole
            ), (cut, left, right)
