"""The word splitter kernels against a plain-Python twin, causality and the byte cap."""

from __future__ import annotations

from pathlib import Path

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from toknz.errors import UsageError
from toknz.words import split_words, split_words_batch, word_boundaries, word_boundaries_batch

CORPORA = Path(__file__).resolve().parents[1] / "corpora"
_WS = regex.compile(r"\s")


def twin_whitespace(text: str, cap: int | None = None) -> list[str]:
    """The whitespace rule written plainly: a word is the whitespace before a run of
    non-whitespace plus that run; leading whitespace is a word of its own. Then each word is cut
    greedily into pieces of at most ``cap`` UTF-8 bytes between characters."""
    words = regex.findall(r"\A\s+|\s*\S+|\s+\Z", text)
    if cap is None:
        return words
    pieces: list[str] = []
    for word in words:
        piece = ""
        for ch in word:
            if piece and len((piece + ch).encode("utf-8", "surrogatepass")) > cap:
                pieces.append(piece)
                piece = ""
            piece += ch
        pieces.append(piece)
    return pieces


texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003\u3000\u0085ab.é中🙂"),
        st.characters(codec="utf-8"),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(texts, st.one_of(st.none(), st.integers(4, 12)))
def test_kernel_equals_twin(text: str, cap: int | None) -> None:
    assert split_words(text, max_word_bytes=cap) == twin_whitespace(text, cap)


@settings(max_examples=200, deadline=None)
@given(texts, st.one_of(st.none(), st.integers(4, 9)))
def test_cap_keeps_every_byte_and_character(text: str, cap: int | None) -> None:
    words = split_words(text, max_word_bytes=cap)
    assert "".join(words) == text
    if cap is not None:
        assert all(len(w.encode("utf-8", "surrogatepass")) <= cap for w in words)


@settings(max_examples=200, deadline=None)
@given(texts, st.one_of(st.none(), st.integers(4, 9)))
def test_causal_on_every_prefix(text: str, cap: int | None) -> None:
    full = split_words(text, max_word_bytes=cap)
    for n in range(1, len(text) + 1):
        part = split_words(text[:n], max_word_bytes=cap)
        assert part[:-1] == full[: len(part) - 1]
        assert full[len(part) - 1].startswith(part[-1])


def test_long_multibyte_word_at_a_cap_loses_nothing() -> None:
    word = "д" * 48  # 96 bytes
    pieces = split_words(word, max_word_bytes=64)
    assert [len(p.encode()) for p in pieces] == [64, 32]
    assert "".join(pieces) == word


def test_invalid_utf8_keeps_every_byte() -> None:
    data = b"ab \xff\xfe cd\xc3"
    bounds = word_boundaries(data, max_word_bytes=4)
    assert bounds[0] == 0 and bounds[-1] == len(data)
    assert list(bounds) == sorted(set(bounds.tolist()))


def test_batch_equals_single_on_corpora() -> None:
    files = sorted(CORPORA.glob("*/*.txt"))
    assert files
    texts = [f.read_text(encoding="utf-8")[:20_000] for f in files] + ["", " ", "x"]
    batch = word_boundaries_batch(texts, max_word_bytes=32)
    for text, bounds in zip(texts, batch, strict=True):
        assert bounds.tolist() == word_boundaries(text, max_word_bytes=32).tolist()
    assert split_words_batch(texts[:3]) == [split_words(t) for t in texts[:3]]


def test_corpus_slices_equal_twin() -> None:
    for f in sorted(CORPORA.glob("*/*.txt")):
        text = f.read_text(encoding="utf-8")[5_000:8_000]
        assert split_words(text, max_word_bytes=16) == twin_whitespace(text, 16), f.name


@pytest.mark.parametrize("bad", [0, 3, -1, True, 2.5])
def test_bad_caps_are_refused(bad: object) -> None:
    with pytest.raises(UsageError, match="max_word_bytes"):
        split_words("abc", max_word_bytes=bad)  # type: ignore[arg-type]


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown word-splitting rule"):
        split_words("abc", rule="nope")
