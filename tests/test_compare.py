"""``toknz compare``: metrics against slow obvious twins, mixed tokenizer kinds, outputs, errors."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest
import regex
from click.testing import CliRunner
from conftest import require_file

import toknz
import toknz.analysis.compare as compare_module
from toknz.analysis.compare import (
    CompareReport,
    compare_tokenizers,
    format_compare,
    read_documents,
    read_terms,
    write_plot,
)
from toknz.cli import main
from toknz.cli.compare import _spread_greedy
from toknz.errors import InputError, UsageError
from toknz.plotting import check_plot_path, pyplot
from toknz.train import train

REPO = Path(__file__).resolve().parents[1]
EMMA = REPO / "corpora/en/austen_emma.txt"
CODE = REPO / "corpora/code/python_stdlib.txt"
MULTI = REPO / "corpora/multi"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small toknz-trained tokenizer.json (trained on part of Emma)."""
    folder = tmp_path_factory.mktemp("compare")
    src = folder / "emma.txt"
    src.write_text(EMMA.read_text(encoding="utf-8")[:40_000], encoding="utf-8")
    out = folder / "trained.json"
    train([src], vocab_size=400, threads=1).save(out)
    return out


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "mix.txt"
    path.write_text(
        EMMA.read_text(encoding="utf-8")[:3000]
        + "\n"
        + CODE.read_text(encoding="utf-8")[:2000]
        + "\nnaïve café — Ünïcödé  spaces\u00a0and\ttabs 東京タワー\n\nlast line, no newline",
        encoding="utf-8",
    )
    return path


# ------------------------------------------------------------------ slow twins


def slow_words(doc: str) -> list[tuple[int, int, str]]:
    """(byte start, byte end, word) of each whitespace-delimited run holding a letter."""
    out = []
    for m in regex.finditer(r"\S+", doc):
        if regex.search(r"\p{L}", m.group()):
            start = len(doc[: m.start()].encode("utf-8"))
            out.append((start, start + len(m.group().encode("utf-8")), m.group()))
    return out


def slow_alone(tok: toknz.Tokenizer, word: str) -> int:
    ids = tok.encode(" " + word, disallowed_special=())
    return sum(1 for piece in tok.decode_tokens_bytes(ids) if piece.strip())


def slow_pieces(
    tok: toknz.Tokenizer, doc: str, words: list[tuple[int, int, str]] | None = None
) -> list[int]:
    """Tokens overlapping each word of ``doc`` (default: :func:`slow_words`), in plain Python."""
    data = doc.encode("utf-8")
    pieces = tok.decode_tokens_bytes(tok.encode(doc, disallowed_special=()))
    spelled = b"".join(pieces)
    shift = len(spelled) - len(data)
    words = slow_words(doc) if words is None else words
    if shift < 0 or spelled[shift:] != data or spelled[:shift].strip(b" "):
        return [slow_alone(tok, w) for _, _, w in words]
    spans = []
    pos = -shift
    for piece in pieces:
        spans.append((max(pos, 0), max(pos + len(piece), 0)))
        pos += len(piece)
    return [sum(1 for s, e in spans if s < we and e > ws) for ws, we, _ in words]


def check_against_twin(report: CompareReport, tok: toknz.Tokenizer, label: str, docs: list[str]):
    row = report.row(label, report.corpora[0].name)
    assert row.documents == len(docs)
    assert row.tokens == sum(len(tok.encode(d, disallowed_special=())) for d in docs)
    assert row.bytes == sum(len(d.encode("utf-8")) for d in docs)
    assert row.chars == sum(len(d) for d in docs)
    pieces = [n for d in docs for n in slow_pieces(tok, d)]
    assert row.words == len(pieces)
    assert row.words_split == sum(1 for n in pieces if n >= 3)


# ------------------------------------------------------------------ metrics


def test_hand_computed_tiny_case() -> None:
    tok = toknz.Tokenizer.from_file(require_file("gpt2"), name="gpt2")
    # "42" holds no letter, so it is no word; "!!" neither.
    docs = ["Hello, naïve antidisestablishmentarianism 42\n", "x2 !!\n"]
    assert [tok.decode_tokens_bytes(tok.encode(d)) for d in docs] == [
        [b"Hello", b",", b" na\xc3\xafve", b" ant", b"idis", b"establishment", b"arian", b"ism"]
        + [b" 42", b"\n"],
        [b"x", b"2", b" !!", b"\n"],
    ]
    report = compare_tokenizers([tok], {"tiny": docs})
    row = report.rows[0]
    assert (row.documents, row.tokens, row.bytes, row.chars) == (2, 14, 52, 51)
    # Words: "Hello," (2 tokens), "naïve" (1), "antidisestablishmentarianism" (5), "x2" (2).
    assert (row.words, row.words_split, row.share_split) == (4, 1, 0.25)
    assert row.tokens_per_document == 7.0
    assert row.bytes_per_token == pytest.approx(52 / 14)
    assert row.chars_per_token == pytest.approx(51 / 14)
    assert row.tokens_per_char == pytest.approx(14 / 51)
    assert row.fewer_than_baseline == 0.0


def test_trained_tokenizer_matches_slow_twin(trained: Path, corpus: Path) -> None:
    tok = toknz.load(trained)
    for unit in ("document", "line"):
        docs, files = read_documents(corpus, unit=unit)
        assert files == [str(corpus)]
        report = compare_tokenizers([str(trained)], [corpus], unit=unit)
        check_against_twin(report, tok, str(trained), docs)
        assert report.rows[0].words_measured_alone == 0
    lines = corpus.read_text(encoding="utf-8").split("\n")
    assert len(docs) == sum(1 for line in lines if line)


@pytest.mark.parametrize("name", ["cl100k_base", "llama2", "claude", "qwen3"])
def test_real_tokenizers_match_slow_twin(name: str, corpus: Path) -> None:
    """Byte-level, SentencePiece-style (prefix space) and NFKC (words measured alone)."""
    require_file(name)
    tok = toknz.load(name)
    docs, _ = read_documents(corpus, unit="line")
    report = compare_tokenizers([tok], [corpus], unit="line")
    check_against_twin(report, tok, name, docs)
    alone = report.rows[0].words_measured_alone
    assert (alone > 0) == (name == "claude")  # NFKC changes "\u00a0" and the katakana


def test_folders_are_one_corpus_and_baseline(trained: Path) -> None:
    require_file("gpt2")
    report = compare_tokenizers(["gpt2", str(trained)], [MULTI], baseline=str(trained))
    info = report.corpora[0]
    assert len(info.files) == len(list(MULTI.glob("*.txt")))
    assert info.documents == len(info.files)
    base = report.row(str(trained), str(MULTI))
    other = report.row("gpt2", str(MULTI))
    assert other.baseline_tokens == base.tokens
    assert other.fewer_than_baseline == pytest.approx(1 - other.tokens / base.tokens)
    assert base.fewer_than_baseline == 0.0


def test_terms_as_in_running_text(trained: Path, tmp_path: Path) -> None:
    hf = require_file("llama3")  # a Hugging Face tokenizer.json path
    terms_file = tmp_path / "terms.txt"
    terms_file.write_text("angiogenesis\n\n  tachycardia  \nmachine learning\nangiogenesis\n")
    terms = read_terms(terms_file)
    assert terms == ["angiogenesis", "tachycardia", "machine learning"]
    labels = ["gpt2", str(trained), str(hf), "llama2"]
    report = compare_tokenizers(labels, {"en": ["Some text.\n"]}, terms)
    for label, result in zip(labels, report.term_results, strict=True):
        tok = toknz.load(label)
        want = [slow_pieces(tok, " " + t, [(1, 1 + len(t.encode()), t)])[0] for t in terms]
        assert (result.tokenizer, result.tokens) == (label, want)
        assert result.mean == pytest.approx(sum(want) / 3)
    # llama2 encodes " angiogenesis" as "▁" + "▁ang"...: the prefix "▁" is not the term's.
    llama2 = toknz.load("llama2")
    ids = llama2.encode(" angiogenesis")
    assert report.term_results[3].tokens[0] == len(ids) - 1
    detail = report.to_json()["terms"]["by_tokenizer"][0]
    assert detail["tokens"] == dict(zip(terms, report.term_results[0].tokens, strict=True))


# ------------------------------------------------------------------ errors


def test_invalid_utf8_names_file_and_offset(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbroken \xff here\n")
    with pytest.raises(InputError, match=r"bad\.txt, byte offset 17: invalid UTF-8"):
        compare_tokenizers(["gpt2"], [bad])
    result = CliRunner().invoke(main, ["compare", "gpt2", "--corpus", str(bad)])
    assert result.exit_code == 1
    assert "bad.txt, byte offset 17: invalid UTF-8" in result.output
    # --skip-invalid drops the line instead.
    report = compare_tokenizers(["gpt2"], [bad], skip_invalid=True)
    assert report.rows[0].documents == 1 and report.corpora[0].bytes == len(b"fine line\n")


def test_usage_errors(tmp_path: Path) -> None:
    require_file("gpt2")
    text = tmp_path / "t.txt"
    text.write_text("hello\n")
    with pytest.raises(UsageError, match="not one of the tokenizers"):
        compare_tokenizers(["gpt2"], [text], baseline="cl100k_base")
    with pytest.raises(UsageError, match="given twice"):
        compare_tokenizers(["gpt2", "gpt2"], [text])
    with pytest.raises(UsageError, match="neither a known tokenizer"):
        compare_tokenizers(["no-such-tokenizer"], [text])
    with pytest.raises(UsageError, match="unknown unit"):
        compare_tokenizers(["gpt2"], [text], unit="word")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(InputError, match="holds no text"):
        compare_tokenizers(["gpt2"], [empty], unit="line")
    runner = CliRunner()
    result = runner.invoke(main, ["compare", "gpt2", "--corpus", str(text), "--plot", "x.gif"])
    assert result.exit_code == 2 and ".png, .svg or .pdf" in result.output
    result = runner.invoke(main, ["compare", "gpt2", "--corpus", str(text), "--baseline", "x"])
    assert result.exit_code == 2


def test_plot_needs_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    with pytest.raises(UsageError, match=r"pip install 'toknz\[plot\]'"):
        check_plot_path(tmp_path / "x.png")
    with pytest.raises(UsageError, match=r"pip install 'toknz\[plot\]'"):
        pyplot(tmp_path / "x.png")


# ------------------------------------------------------------------ CLI and outputs


def test_spread_greedy() -> None:
    names = ("--corpus",)
    assert _spread_greedy(["a", "b", "--corpus", "x", "y", "--json", "o"], names) == [
        "a",
        "b",
        "--corpus",
        "x",
        "--corpus",
        "y",
        "--json",
        "o",
    ]
    assert _spread_greedy(["--corpus=x", "y", "-", "-q", "z"], names) == [
        "--corpus=x",
        "--corpus",
        "y",
        "--corpus",
        "-",
        "-q",
        "z",
    ]
    assert _spread_greedy(["--corpus", "x", "--", "y"], names) == ["--corpus", "x", "--", "y"]


def test_cli_table_json_and_plot(trained: Path, corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    require_file("gpt2")
    terms = tmp_path / "terms.txt"
    terms.write_text("angiogenesis\nnaïve\n", encoding="utf-8")
    out_json = tmp_path / "out" / "cmp.json"
    out_png = tmp_path / "cmp.png"
    args = ["compare", "gpt2", str(trained), "--corpus", str(corpus), str(CODE)]
    args += ["--terms", str(terms), "--json", str(out_json), "--plot", str(out_png)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["tokenizer", "corpus"]
    assert "fewer than gpt2" in lines[0]
    table = lines[1:5]
    assert [line.split()[:2] for line in table] == [
        ["gpt2", str(corpus)],
        ["gpt2", str(CODE)],
        [str(trained), str(corpus)],
        [str(trained), str(CODE)],
    ]
    assert len({len(line) for line in lines[:5]}) <= 2  # aligned (baseline rows end earlier)
    assert "tokens/term" in result.stdout
    data = json.loads(out_json.read_text(encoding="utf-8"))
    report = compare_tokenizers(["gpt2", str(trained)], [corpus, CODE], read_terms(terms))
    assert data["rows"] == json.loads(json.dumps(report.to_json()))["rows"]
    assert data["baseline"] == "gpt2" and data["unit"] == "document"
    assert set(data["terms"]["by_tokenizer"][1]["tokens"]) == {"angiogenesis", "naïve"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out_json}" in result.stderr
    # The other plot metric, written straight from the library (SVG).
    svg = tmp_path / "cmp.svg"
    write_plot(report, svg, metric="vs_baseline")
    assert b"<svg" in svg.read_bytes()[:500]
    assert format_compare(report).splitlines()[0] == lines[0]


def test_cli_unit_line_and_quiet(corpus: Path) -> None:
    require_file("gpt2")
    result = CliRunner().invoke(
        main, ["compare", "gpt2", "--unit", "line", "--corpus", str(corpus), "-q"]
    )
    assert result.exit_code == 0, result.output
    docs, _ = read_documents(corpus, unit="line")
    assert f"{len(docs):,}" in result.stdout.splitlines()[1].split()
    assert result.stderr == ""


def test_docstring_examples() -> None:
    require_file("gpt2")
    require_file("cl100k_base")
    assert doctest.testmod(compare_module).failed == 0
