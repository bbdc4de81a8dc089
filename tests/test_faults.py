"""Bad files and faults (issue 23): one test per numbered bug, and the weaker ones after them.

Each test failed on the code before the fix: the file loaded (and encoded wrongly),
a traceback came out instead of one line, or a failed write exited 0.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import require_file
from test_bad_input import BASE, all_bytes_ranks, starts_with_path, variant, write_json

import toknz
from toknz import FormatError, InputError, ToknzError
from toknz.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, stdout: Any = subprocess.PIPE, timeout: float = 120) -> Any:
    """``python -m toknz ARGS`` in a fresh process running this checkout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "toknz", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(stderr: bytes, *parts: str) -> None:
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("toknz: error: "), text
    for part in parts:
        assert part in lines[0], text


# ------------------------------------------------------------------ 1. silent byte loss


def test_1_rank_file_missing_a_byte_is_refused(tmp_path: Path) -> None:
    """A .tiktoken file without the line of `!` loaded and encoded `Hi!` as `Hi`."""
    import base64

    lines = require_file("cl100k_base").read_bytes().splitlines()
    bang = base64.b64encode(b"!")
    kept = [ln for ln in lines if ln.split()[0] != bang]
    assert len(kept) == len(lines) - 1
    path = tmp_path / "cut.tiktoken"
    path.write_bytes(b"\n".join(kept) + b"\n")
    with pytest.raises(
        FormatError,
        match=starts_with_path(path) + r": 1 of the 256 single-byte tokens missing \(0x21\)",
    ):
        toknz.Tokenizer.from_file(path, pattern="cl100k")
    text = tmp_path / "hi.txt"
    text.write_text("Hi!", encoding="utf-8")
    result = run_cli("encode", "-t", str(path), "--pattern", "cl100k", str(text))
    assert result.returncode == 1 and result.stdout == b""
    assert_one_line_error(result.stderr, str(path), "0x21")


def test_1b_byte_level_json_missing_a_byte_fails_loudly_at_the_byte(tmp_path: Path) -> None:
    """A byte-level tokenizer.json without the token of byte 0x18 (KL3M's defect) still loads,
    as in `tokenizers`, but encoding that byte is refused, on every path, instead of dropping
    it ("ctrl\\x18char" decoded as "ctrlchar")."""
    from toknz.pipeline.byte_alphabet import byte_to_char

    obj = json.loads(require_file("qwen3").read_text(encoding="utf-8"))
    lost = byte_to_char()[0x18]
    del obj["model"]["vocab"][lost]
    obj["model"]["merges"] = [
        m for m in obj["model"]["merges"] if lost not in (m if isinstance(m, str) else "".join(m))
    ]
    path = write_json(tmp_path / "tokenizer.json", obj)
    tok = toknz.Tokenizer.from_file(path)
    assert tok.decode(tok.encode("plain text")) == "plain text"
    big = "ok " * 5000 + "ctrl\x18char"
    for text in ("ctrl\x18char", big):
        with pytest.raises(InputError, match=r"byte 0x18 at byte offset \d+ of .*would be lost"):
            tok.encode(text)
    with pytest.raises(InputError, match="byte 0x18"):
        tok.encode_batch(["fine", big])
    # Once the kernels are loaded, short texts take the short kernel, which hands a text
    # holding the byte back to the checked path.
    tok.encode("warm " * 1000)
    assert tok._short("plain text", frozenset(), True) == tok.encode("plain text")
    assert tok._short("ctrl\x18char", frozenset(), True) is None
    with pytest.raises(InputError, match=r"byte 0x18 at byte offset 4 "):
        tok.encode("ctrl\x18char")


# ------------------------------------------------------------------ 2. colliding ids


def test_2_added_token_on_a_vocabulary_id_is_refused(tmp_path: Path) -> None:
    """Llama 3's <|begin_of_text|> given id 279 (' the') silently replaced ' the'."""
    obj = json.loads(require_file("llama3").read_text(encoding="utf-8"))
    for t in obj["added_tokens"]:
        if t["content"] == "<|begin_of_text|>":
            t["id"] = 279
    path = write_json(tmp_path / "tokenizer.json", obj)
    with pytest.raises(
        FormatError,
        match=starts_with_path(path)
        + r": added token '<\|begin_of_text\|>': id 279 is the id of the vocabulary token 'Ġthe'",
    ):
        toknz.Tokenizer.from_file(path)


def test_2_two_added_tokens_on_one_id_are_refused(tmp_path: Path) -> None:
    path = variant(
        tmp_path, lambda o: o["added_tokens"].append(dict(o["added_tokens"][0], content="<x>"))
    )
    with pytest.raises(FormatError, match=r"id 4 is also the id of the added token '<\|end\|>'"):
        toknz.Tokenizer.from_file(path)


def test_2_same_content_twice_takes_the_first_id(tmp_path: Path) -> None:
    """tokenizers keeps the first id of a repeated added token; toknz took the last."""
    import tokenizers

    path = variant(tmp_path, lambda o: o["added_tokens"].append(dict(o["added_tokens"][0], id=9)))
    tok = toknz.Tokenizer.from_file(path)
    ref = tokenizers.Tokenizer.from_file(str(path))
    assert tok.token_to_id("<|end|>") == ref.token_to_id("<|end|>") == 4
    assert tok.encode("ab<|end|>", allowed_special="all") == ref.encode("ab<|end|>").ids


# ------------------------------------------------------------------ 3. ids that are not u32


def _set_added_id(value: Any) -> Any:
    return lambda o: o["added_tokens"][0].update(id=value)


def _set_vocab_id(value: Any) -> Any:
    return lambda o: o["model"]["vocab"].update(c=value)


@pytest.mark.parametrize(
    "change, message",
    [
        (_set_added_id(-1), r"added_tokens\[0\]\.id: id -1 is negative"),
        (_set_added_id(True), r"added_tokens\[0\]\.id: id True is a boolean"),
        (_set_added_id(10**12), r"added_tokens\[0\]\.id: id 1000000000000 is 2\*\*32 or more"),
        (_set_added_id(4.0), r"added_tokens\[0\]\.id: id 4\.0 is a number"),
        (_set_added_id("4"), r"added_tokens\[0\]\.id: id '4' is a string"),
        (_set_vocab_id(True), r"model\.vocab\['c'\] is a boolean"),
        (_set_vocab_id(-3), r"model\.vocab\['c'\]: id -3 is negative"),
        (_set_vocab_id(3.5), r"model\.vocab\['c'\] is a number"),
        (_set_vocab_id(10**10), r"model\.vocab\['c'\]: id 10000000000 is 2\*\*32 or more"),
        (_set_vocab_id(3 * 10**8), r"model\.vocab: id 300,000,000 is absurdly large .* 1,048,616"),
        (_set_added_id(3 * 10**8), r"added_tokens: id 300,000,000 is absurdly large"),
    ],
    ids=[
        "added-negative",
        "added-bool",
        "added-1e12",
        "added-float",
        "added-string",
        "vocab-bool",
        "vocab-negative",
        "vocab-float",
        "vocab-1e10",
        "vocab-3e8",
        "added-3e8",
    ],
)
def test_3_ids_must_be_u32_and_bounded(change: Any, message: str, tmp_path: Path) -> None:
    """Such ids loaded (printed as `true`, OverflowError in -o x.npy, MemoryError for 1e10)."""
    path = variant(tmp_path, change)
    start = time.perf_counter()
    with pytest.raises(FormatError, match=starts_with_path(path) + ": (.*: )?" + message):
        toknz.Tokenizer.from_file(path)
    assert time.perf_counter() - start < 5


def test_3_rank_file_with_an_absurd_rank_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.tiktoken"
    path.write_text(all_bytes_ranks() + "YWI= 10000000000\n", encoding="ascii")
    with pytest.raises(
        FormatError, match=starts_with_path(path) + ".*10000000000 is 2\\*\\*32 or more"
    ):
        toknz.Tokenizer.from_file(path, pattern="cl100k")
    path.write_text(all_bytes_ranks() + "YWI= 300000000\n", encoding="ascii")
    with pytest.raises(FormatError, match="id 300,000,000 is absurdly large"):
        toknz.Tokenizer.from_file(path, pattern="cl100k")


# ------------------------------------------------------------------ 4. string booleans


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda o: o["model"].update(byte_fallback="false"), "model.byte_fallback"),
        (lambda o: o["model"].update(ignore_merges="false"), "model.ignore_merges"),
        (lambda o: o["model"].update(fuse_unk="false"), "model.fuse_unk"),
        (lambda o: o["added_tokens"][0].update(special="false"), r"added_tokens\[0\]\.special"),
        (lambda o: o["added_tokens"][0].update(lstrip="false"), r"added_tokens\[0\]\.lstrip"),
        (lambda o: o["added_tokens"][0].update(rstrip=0), r"added_tokens\[0\]\.rstrip"),
        (lambda o: o["added_tokens"][0].update(normalized=None), r"added_tokens\[0\]\.normalized"),
        (
            lambda o: o["added_tokens"][0].update(single_word="true"),
            r"added_tokens\[0\]\.single_word",
        ),
    ],
    ids=[
        "byte_fallback",
        "ignore_merges",
        "fuse_unk",
        "special",
        "lstrip",
        "rstrip",
        "normalized",
        "single_word",
    ],
)
def test_4_booleans_must_be_json_booleans(change: Any, field: str, tmp_path: Path) -> None:
    """`"byte_fallback": "false"` was read as true."""
    path = variant(tmp_path, change)
    with pytest.raises(
        FormatError, match=starts_with_path(path) + ": " + field + ": expected true or false"
    ):
        toknz.Tokenizer.from_file(path)


def test_4_null_model_booleans_load_as_in_tokenizers(tmp_path: Path) -> None:
    import tokenizers

    path = variant(tmp_path, lambda o: o["model"].update(byte_fallback=None, fuse_unk=None))
    assert (
        toknz.Tokenizer.from_file(path).encode("abc")
        == tokenizers.Tokenizer.from_file(str(path)).encode("abc").ids
    )


# ------------------------------------------------------------------ 5. lone surrogates


def test_5_lone_surrogates_same_answer_before_and_after_the_kernels() -> None:
    """A UnicodeEncodeError before the kernels were loaded, tiktoken's answer after."""
    require_file("cl100k_base")
    code = """
import json, toknz
from toknz.pipeline.bpe import kernels_loaded
tok = toknz.load("cl100k_base")
texts = ["a\\ud800b", "\\ud83d\\ude00x", "x\\udfff", "hello \\ud800 world"]
before = [tok.encode(t) for t in texts]
assert not kernels_loaded()
tok.encode("x" * 5000)
assert kernels_loaded()
after = [tok.encode(t) for t in texts]
batch = tok.encode_batch(texts)
print(json.dumps([before, after, batch]))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=env, check=True, timeout=300
    )
    before, after, batch = json.loads(out.stdout)
    # tiktoken replaces lone surrogates by U+FFFD and joins a surrogate pair.
    expected = [[64, 5809, 65], [76460, 222, 87], [87, 5809], [15339, 30433, 1917]]
    assert before == after == batch == expected


# ------------------------------------------------------------------ 6. tracebacks instead of one line


@pytest.mark.parametrize(
    "data, message",
    [
        (
            json.dumps(dict(BASE, model=dict(BASE["model"], merges=5))),
            r"model\.merges: expected a list of merges",
        ),
        ("[" * 100_000 + "]" * 100_000, r"nested too deeply"),
        ('{"model": ' * 100_000 + "{}" + "}" * 100_000, r"nested too deeply"),
        ("\ufeff" + json.dumps(BASE), r"starts with a UTF-8 byte-order mark"),
        ("[]", r"top level must be a JSON object"),
        ("{}", r"no 'model' field"),
        ('"x"', r"top level must be a JSON object"),
        ("null", r"top level must be a JSON object"),
        ("{" + '"a": ' + "1" * 5000 + "}", r"malformed JSON"),
    ],
    ids=[
        "merges-5",
        "deep-list",
        "deep-object",
        "bom",
        "empty-list",
        "empty-object",
        "string",
        "null",
        "long-int",
    ],
)
def test_6_bad_json_is_one_line(data: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(data, encoding="utf-8")
    with pytest.raises(FormatError, match=starts_with_path(path) + ".*" + message):
        toknz.Tokenizer.from_file(path)
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_6_output_to_dev_full_is_one_line() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this machine")
    require_file("cl100k_base")
    with open("/dev/full", "wb") as full:
        result = run_cli("inspect", "cl100k_base", stdout=full)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "standard output", "No space left on device")


def test_6_output_under_a_file_is_one_line(tmp_path: Path) -> None:
    """`-o` below a path that is a file (NotADirectoryError traceback before)."""
    require_file("cl100k_base")
    (tmp_path / "doc.txt").write_text("Hi!", encoding="utf-8")
    (tmp_path / "afile").write_text("", encoding="utf-8")
    for out in ("afile/ids.jsonl", "afile/sub/ids.npy"):
        result = run_cli(
            "encode", "-t", "cl100k_base", str(tmp_path / "doc.txt"), "-o", str(tmp_path / out)
        )
        assert result.returncode == 1
        assert_one_line_error(result.stderr, str(tmp_path / out), f"{tmp_path / 'afile'} is a file")


def test_6_read_only_folder_is_one_line(tmp_path: Path) -> None:
    """As root every folder is writable: then the test says so and skips."""
    from toknz.formats._io import atomic_write

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable (covered by /dev/full)")
        with pytest.raises(toknz.errors.OutputError, match=r"ro/x\.json: cannot write"):
            atomic_write(folder / "x.json", b"{}")
    finally:
        folder.chmod(0o700)


# ------------------------------------------------------------------ 7. truncated output, exit 0


def test_7_encode_to_a_full_disk_fails(tmp_path: Path) -> None:
    """`toknz encode ... > /dev/full` exited 0 (nothing flushed and checked stdout)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this machine")
    require_file("cl100k_base")
    for size in (3, 200_000):  # a few bytes (only the last flush fails) and megabytes
        doc = tmp_path / f"doc{size}.txt"
        doc.write_text("hello world\n" * size, encoding="utf-8")
        for command in (["encode", "--lines"], ["encode"]):
            with open("/dev/full", "wb") as full:
                result = run_cli(*command, "-t", "cl100k_base", str(doc), stdout=full)
            assert result.returncode == 1, result.stderr
            assert_one_line_error(result.stderr, "No space left on device")


def test_7_output_files_follow_the_umask(tmp_path: Path) -> None:
    """Output files were always 0600, even when replacing a 0644 file."""
    from toknz.formats._io import atomic_write

    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.json", b"{}")
        assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
        kept = tmp_path / "kept.json"
        kept.write_bytes(b"old")
        kept.chmod(0o664)
        atomic_write(kept, b"new")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o664 and kept.read_bytes() == b"new"
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------ 8. train --special ''


def test_8_train_with_an_empty_special_token(tmp_path: Path) -> None:
    """`train --special ''` wrote a tokenizer that toknz then refused to load."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world, the cat sat on the mat.\n" * 50, encoding="utf-8")
    out = tmp_path / "tok.json"
    result = CliRunner().invoke(
        main, ["train", str(corpus), "-o", str(out), "--vocab-size", "300", "--special", "", "-q"]
    )
    # Refused before any counting, with nothing written.
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit)
    assert "may not be empty" in result.output
    assert not out.exists()


# ------------------------------------------------------------------ 9. a split regex that hangs


def test_9_catastrophic_split_pattern_is_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    """`(a|aa)+$|\\s+|.` on 'a' * 40 + '!' ran for minutes; now a one-line error naming it."""
    obj = copy.deepcopy(BASE)
    obj["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {
                "type": "Split",
                "pattern": {"Regex": r"(a|aa)+$|\s+|."},
                "behavior": "Isolated",
                "invert": False,
            },
            {
                "type": "ByteLevel",
                "add_prefix_space": False,
                "trim_offsets": True,
                "use_regex": False,
            },
        ],
    }
    import tokenizers

    path = write_json(tmp_path / "tokenizer.json", obj)
    tok = toknz.Tokenizer.from_file(path)
    ref = tokenizers.Tokenizer.from_file(str(path))
    # (This vocabulary has no space: toknz refuses to drop it, see test_1b.)
    assert tok.encode("abcab") == ref.encode("abcab").ids == [0, 1, 3, 0, 1]
    monkeypatch.setenv("TOKNZ_REGEX_TIMEOUT", "0.2")
    start = time.perf_counter()
    with pytest.raises(
        InputError,
        match=r"the split pattern '\(a\|aa\)\+\$\|\\\\s\+\|\.' took more than 0\.2 s on a piece of 41 characters",
    ):
        tok.encode("a" * 40 + "!")
    assert time.perf_counter() - start < 5
    monkeypatch.setenv("TOKNZ_REGEX_TIMEOUT", "soon")
    with pytest.raises(toknz.UsageError, match="TOKNZ_REGEX_TIMEOUT"):
        tok.encode("abc")


def test_9b_catastrophic_replace_normalizer_is_bounded(monkeypatch: Any) -> None:
    """A regex Replace normalizer from a file is user input too: bounded like split patterns."""
    from toknz.pipeline.normalizers import Replace

    norm = Replace(r"(a|aa)+$", "x", is_regex=True)
    assert norm.normalize("aab") == "aab" and norm.normalize("baa") == "bx"
    monkeypatch.setenv("TOKNZ_REGEX_TIMEOUT", "0.2")
    start = time.perf_counter()
    with pytest.raises(
        InputError, match=r"the Replace normalizer's pattern .* took more than 0\.2 s"
    ):
        norm.normalize("a" * 40 + "!")
    assert time.perf_counter() - start < 5


# ------------------------------------------------------------------ the weaker ones


def test_decode_refuses_holes_and_booleans() -> None:
    """A hole id decoded to '' (tiktoken raises); decode([True]) was accepted."""
    require_file("cl100k_base")
    tok = toknz.load("cl100k_base")
    with pytest.raises(InputError, match="token id 100256 at position 1 is unused"):
        tok.decode([15339, 100256])
    with pytest.raises(InputError, match="token id 100256 at position 0 is unused"):
        tok.decode_bytes([100256])
    with pytest.raises(InputError, match="token id True at position 0 is a bool"):
        tok.decode([True])
    with pytest.raises(InputError, match="is a float"):
        tok.decode([1.0])  # type: ignore[list-item]
    assert tok.decode([15339, 1917]) == "hello world"
    # the per-token tables (what the byte-level code reads) keep holes empty
    assert tok.decode_tokens_bytes([100256]) == [b""]
    assert tok.decode_single_token_bytes(100256) == b""
    # A tokenizer.json follows tokenizers, which decodes an unused id to nothing.
    require_file("gpt35turbo")
    hf = toknz.load("gpt35turbo")
    assert hf.decode([15339, 100256]) == "hello"
    with pytest.raises(InputError, match="is a bool"):
        hf.decode([True])


def test_every_refusal_is_a_toknz_error(tmp_path: Path) -> None:
    """A catch-all: odd shapes of known fields are one-line FormatErrors too."""
    odd: list[Any] = [
        lambda o: o.update(added_tokens={"a": 1}),
        lambda o: o.update(added_tokens=[5]),
        lambda o: o["model"].update(vocab=[1, 2]),
        lambda o: o["model"].update(unk_token=5),
        lambda o: o["model"].update(continuing_subword_prefix=[]),
        lambda o: o.update(pre_tokenizer=5),
        lambda o: o.update(decoder=[1]),
        lambda o: o.update(normalizer="NFC"),
        lambda o: o.update(post_processor=3),
        lambda o: o.update(model=[]),
    ]
    for i, change in enumerate(odd):
        path = variant(tmp_path, change, f"t{i}.json")
        with pytest.raises(ToknzError, match=starts_with_path(path)):
            toknz.Tokenizer.from_file(path)


def test_empty_pattern_is_refused(tmp_path: Path) -> None:
    """`--pattern ''` encoded every text to [] with exit 0."""
    path = tmp_path / "mine.tiktoken"
    path.write_text(all_bytes_ranks(b"ab"), encoding="ascii")
    with pytest.raises(toknz.UsageError, match="empty split pattern"):
        toknz.Tokenizer.from_file(path, pattern="")
    (tmp_path / "doc.txt").write_text("abab", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["encode", "-t", str(path), "--pattern", "", str(tmp_path / "doc.txt")]
    )
    assert result.exit_code == 2 and "empty split pattern" in result.output


# ------------------------------------------------------------------ kills and interrupts


def test_ctrl_c_exits_130_and_keeps_the_old_tokenizer(tmp_path: Path) -> None:
    """SIGINT printed click's "Aborted!" with exit 1; now one line and 128 + SIGINT."""
    import signal

    out = tmp_path / "tok.json"
    out.write_text("old", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "toknz", "train", "-", "-o", str(out), "--vocab-size", "300"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        # A job started in the background inherits SIGINT ignored; a user's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdin is not None and proc.stderr is not None
    # More than a pipe holds: once the write returns, toknz is reading its input. The pipe
    # stays open, so the run waits for more text until the signal comes.
    proc.stdin.write(b"some text that never ends\n" * 100_000)
    proc.stdin.flush()
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    err = proc.stderr.read()
    proc.stdin.close()
    assert code == 130, err
    assert b"toknz: interrupted" in err and b"Traceback" not in err
    assert out.read_text(encoding="utf-8") == "old"


def test_a_kill_never_leaves_a_new_tokenizer_beside_an_old_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old report is removed first: a run killed while writing the tokenizer leaves the
    old tokenizer and no report, not a report that describes another tokenizer."""
    from toknz.train import TrainReport, save_trained, train

    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat\n" * 40, encoding="utf-8")
    out = tmp_path / "tok.json"
    report = TrainReport()
    tok = train([corpus], vocab_size=270, threads=1, report=report)
    save_trained(tok, out, report=report)
    before = out.read_bytes()

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(type(tok), "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_trained(tok, out, report=TrainReport())
    assert out.read_bytes() == before
    assert not (tmp_path / "tok.json.report.json").exists()


def test_stale_temporary_files_are_cleaned_up(tmp_path: Path) -> None:
    """A SIGKILL between creating the temporary file and renaming it left a hidden .tmp."""
    from toknz.formats._io import STALE_TEMPORARY_SECONDS, atomic_write

    stale = tmp_path / ".t.json.abc123.tmp"
    young = tmp_path / ".t.json.def456.tmp"
    other = tmp_path / ".u.json.abc123.tmp"
    for p in (stale, young, other):
        p.write_bytes(b"partial")
    old = time.time() - STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write(tmp_path / "t.json", b"new")
    assert not stale.exists() and young.exists() and other.exists()
    assert (tmp_path / "t.json").read_bytes() == b"new"


def test_a_tampered_cached_file_is_named_by_its_hash(tmp_path: Path, monkeypatch: Any) -> None:
    """A cached cl100k_base with one rank changed was refused as a malformed file (or, worse,
    loaded); now the cache check names the hash and the command that fetches it again."""
    from toknz import fetch

    src = require_file("cl100k_base")
    dest = tmp_path / fetch.KNOWN_FILES["cl100k_base"].dest
    dest.parent.mkdir(parents=True)
    lines = src.read_bytes().splitlines()
    lines[100], lines[101] = lines[101], lines[100]  # two ranks swapped: still a valid file
    dest.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setenv("TOKNZ_CACHE", str(tmp_path))
    with pytest.raises(toknz.FetchError, match="not the pinned .*toknz fetch cl100k_base --force"):
        toknz.load("cl100k_base")


# ------------------------------------------------------------------ bounded memory for huge pieces

MEMORY_PROBE = """
import resource, sys
import numpy as np
import toknz
enc = toknz.load(sys.argv[1])
enc.encode_to_numpy("warm up the kernels " * 200)
n = int(sys.argv[2])
rng = np.random.default_rng(0)
text = bytes(rng.integers(97, 123, n, dtype=np.uint8)).decode()  # one piece: no split point
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
ids = enc.encode_to_numpy(text)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert enc.decode(ids.tolist()) == text
print((after - before) / n)
"""


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_memory_of_a_huge_single_piece_is_linear_and_small(name: str) -> None:
    """A 3 MB piece with no split point costs at most 32 bytes of peak memory per byte.

    The heap merge keeps int32 links and a heap of at most 2n entries (measured: ~21
    bytes per byte with the NumPy output); a quadratic or per-pair-object path would
    be far above the bound.
    """
    require_file(name)
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, name, str(3_000_000)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=300,
        check=True,
    )
    per_byte = float(done.stdout.strip())
    assert per_byte < 32, per_byte
