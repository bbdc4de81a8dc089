"""Character-level BPE (``max_token_chars``): the cap, the classes, the byte alphabet, no dead entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_trainer import char_class, kernel_train, reference_train

import toknz
from toknz.analysis.hygiene import check_vocabulary, format_hygiene
from toknz.cli import main
from toknz.errors import UsageError
from toknz.train import train, train_from_counts
from toknz.train.chars import char_class_table, class_of
from toknz.train.trainer import learn_merges

REPO = Path(__file__).resolve().parents[1]
CORPORA = [
    REPO / "corpora/en/austen_emma.txt",
    REPO / "corpora/code/python_stdlib.txt",
    REPO / "corpora/multi/ja.txt",
    REPO / "corpora/multi/hi.txt",
    REPO / "corpora/multi/ru.txt",
]


# Letters of 1-4 bytes, a combining mark, numbers, punctuation/symbols, whitespace,
# "other" characters, and bytes that are not UTF-8 at all.
_PIECES = [
    "a", "b", "é", "日", "本", "𝔸", "\u0301", "1", "٣", ".", "§", "€", " ", "\n", "\x00",
    "\u200d",
]  # fmt: skip
_ALPHABET = [p.encode("utf-8") for p in _PIECES] + [b"\xff", b"\x80"]
words_st = st.lists(st.sampled_from(_ALPHABET), min_size=1, max_size=10).map(b"".join)
corpus_st = st.dictionaries(words_st, st.integers(1, 30), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=corpus_st,
    extra=st.integers(1, 120),
    specials=st.lists(st.sampled_from(["<s>", "a", "Ġa"]), max_size=2, unique=True),
    max_chars=st.sampled_from([1, 2, 3, 5]),
    max_len=st.sampled_from([None, 4]),
)
def test_kernel_equals_reference_twin_with_char_cap(
    corpus, extra, specials, max_chars, max_len
) -> None:
    vocab_size = 256 + len(specials) + extra
    mine = kernel_train(
        corpus,
        vocab_size,
        special_tokens=specials,
        max_token_chars=max_chars,
        max_token_length=max_len,
    )
    theirs = reference_train(
        corpus,
        vocab_size,
        special_tokens=specials,
        max_token_chars=max_chars,
        max_token_length=max_len,
    )
    assert mine[1] == theirs[1]
    assert mine[0] == theirs[0]


def test_class_table_matches_the_twin() -> None:
    table = char_class_table()
    names = {1: "letter", 2: "number", 3: "punctuation", 4: "whitespace", 5: "other"}
    for cp in [*range(0x300), *range(0x2000, 0x2100), 0x3000, 0x4E00, 0xFEFF, 0x1D538, 0xE000]:
        assert names[int(table[cp])] == char_class(chr(cp)), hex(cp)
    assert class_of("\u0301") == "letter"  # a combining mark goes with letters


@pytest.fixture(scope="module")
def char_tok(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("char")
    files = []
    for path in CORPORA:
        dst = folder / path.name
        dst.write_text(path.read_text(encoding="utf-8")[:40_000], encoding="utf-8")
        files.append(dst)
    tok = train(files, vocab_size=1500, max_token_chars=3, threads=1)
    out = folder / "char.json"
    tok.save(out)
    return tok, out, files


def _token_texts(tok) -> list[tuple[int, bytes]]:
    model = tok.model
    return [(i, model.token_bytes(i) or b"") for i in range(model.n_vocab)]


def test_no_token_longer_than_the_cap_or_across_classes(char_tok) -> None:
    tok, _, _ = char_tok
    longest = 0
    for _, raw in _token_texts(tok):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            # Part of one character: at most 3 bytes, inside a single character.
            assert len(raw) <= 3
            continue
        longest = max(longest, len(text))
        assert len(text) <= 3, text
        if len(text) > 1:
            classes = {class_of(c) for c in text}
            assert len(classes) == 1 and classes != {"other"}, text
    assert longest == 3
    # Whitespace never joins a word: no " the"-style tokens.
    assert tok.encode(" the") == tok.encode(" ") + tok.encode("the")


def test_all_256_bytes_round_trip(char_tok) -> None:
    tok, path, _ = char_tok
    reloaded = toknz.Tokenizer.from_file(path)
    for t in (tok, reloaded):
        for b in range(256):
            ids = t.model.encode_piece_bytes([bytes([b])])
            assert len(ids) == 1
            assert t.decode_bytes(ids) == bytes([b])
        text = "ctrl\x18char \x00\x7f naïve 日本語 ١٢٣ §€ \u200d\U0001f600"
        assert t.decode(t.encode(text)) == text


def test_no_dead_entries(char_tok) -> None:
    _, path, _ = char_tok
    report = check_vocabulary(toknz.Tokenizer.from_file(path))
    assert report.ok, format_hygiene(report)
    assert report.n_vocab == 1500


def test_same_ids_as_tokenizers(char_tok) -> None:
    from tokenizers import Tokenizer

    tok, path, files = char_tok
    hf = Tokenizer.from_file(str(path))
    for f in files:
        text = f.read_text(encoding="utf-8")[:5000]
        assert tok.encode(text) == hf.encode(text, add_special_tokens=False).ids


def test_cap_one_keeps_whole_characters_only() -> None:
    counts = {"日本語".encode(): 10, b"hello": 5, "é".encode(): 3}
    result = learn_merges(counts, 400, max_token_chars=1)
    for t in result.tokens[256:]:
        try:
            assert len(t.decode("utf-8")) == 1
        except UnicodeDecodeError:
            assert len(t) <= 3  # a part of one character
    assert {"日".encode(), "本".encode(), "語".encode(), "é".encode()} <= set(result.tokens)


def test_option_off_is_unchanged() -> None:
    counts = {b"hello world": 3, b" the": 7, "naïve 1999".encode(): 2}
    plain = learn_merges(counts, 320)
    assert (plain.merges, plain.tokens) == (
        learn_merges(counts, 320, max_token_chars=None).merges,
        learn_merges(counts, 320).tokens,
    )
    assert any(len(t.decode("utf-8", "replace")) > 3 for t in plain.tokens)


def test_usage_errors_and_cli(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="max_token_chars"):
        learn_merges({b"ab": 1}, 300, max_token_chars=0)
    with pytest.raises(UsageError, match="max_token_chars"):
        train_from_counts({b"ab": 1}, vocab_size=300, max_token_chars=-1)
    src = tmp_path / "c.txt"
    src.write_text("the cat sat on the mat, 12345 times.\n" * 30, encoding="utf-8")
    out = tmp_path / "t.json"
    result = CliRunner().invoke(
        main,
        ["train", str(src), "-o", str(out), "--vocab-size", "300", "--max-token-chars", "2", "-q"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "t.json.report.json").read_text())
    assert report["max_token_chars"] == 2
    tok = toknz.Tokenizer.from_file(out)
    assert max(len((tok.model.token_bytes(i) or b"").decode()) for i in range(256, 300)) == 2
