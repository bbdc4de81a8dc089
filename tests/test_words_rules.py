"""The hat and space word rules, the byte cap on every rule, and BLT entropy patch starts.

Every kernel is compared with a slow, plain-Python twin written here; the hat rule also with
Aleph Alpha's ``hat-splitter`` (a test-only reference: ``pytest.importorskip``). The
whitespace rule's own tests are in ``test_words.py``.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
import regex
from hypothesis import example, given, settings
from hypothesis import strategies as st
from toknz_core.wordsplit import WB_MASK, _wb_segment_end

from toknz.errors import InputError, UsageError
from toknz.pipeline.unicode_tables import load_word_break_table
from toknz.words import (
    entropy_boundaries,
    split_words,
    split_words_batch,
    word_boundaries,
    word_boundaries_batch,
)

CORPORA = Path(__file__).resolve().parents[1] / "corpora"
RULES = ("whitespace", "hat", "space")

#: Code points where hat-splitter 0.1.10 (Unicode 16.0) and ``regex`` (Unicode 17.0) disagree,
#: found by splitting every code point in 14 small contexts with both: U+00B8 became ALetter,
#: many symbols lost Extended_Pictographic, and the rest are new in 17.0.
UNICODE_17_CHANGES = (
    (0xB8, 0xB8), (0x88F, 0x88F), (0xC5C, 0xC5C), (0xCDC, 0xCDC), (0x1ACF, 0x1ADD),
    (0x1AE0, 0x1AEB), (0x2388, 0x2388), (0x2605, 0x2711), (0x2765, 0x2767), (0xA7CE, 0xA7CF),
    (0xA7D2, 0xA7D2), (0xA7D4, 0xA7D4), (0xA7F1, 0xA7F1), (0x10940, 0x10959),
    (0x10EC5, 0x10EC7), (0x10ED0, 0x10ED0), (0x10EFA, 0x10EFB), (0x11B60, 0x11B67),
    (0x11DB0, 0x11DE9), (0x16EA0, 0x16ED3), (0x1E6C0, 0x1E6FF), (0x1F000, 0x1F0F5),
    (0x1F10D, 0x1F10F), (0x1F12F, 0x1F12F), (0x1F16C, 0x1F16F), (0x1F1AD, 0x1F1AD),
    (0x1F260, 0x1F265), (0x1F322, 0x1F323), (0x1F394, 0x1F39D), (0x1F3F1, 0x1F3F6),
    (0x1F4FE, 0x1F4FE), (0x1F546, 0x1F5F9), (0x1F6C6, 0x1F6CA), (0x1F6D3, 0x1F6D4),
    (0x1F6E6, 0x1F6F2), (0x1F774, 0x1F77F), (0x1F7D5, 0x1F7D9), (0x1F8B0, 0x1F8D8),
    (0x1FA00, 0x1FA6D),
)  # fmt: skip


def same_in_16_and_17(ch: str) -> bool:
    c = ord(ch)
    return not any(a <= c <= b for a, b in UNICODE_17_CHANGES)


def utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


# --- twins -----------------------------------------------------------------------------------

_P = regex.compile(r"\p{P}")
_LL = regex.compile(r"\p{Ll}")
_LU = regex.compile(r"\p{Lu}")
_WS_ONLY = regex.compile(r"\s+")


def segments(text: str) -> list[str]:
    """UAX #29 segments from the kernel's segmenter (checked against hat-splitter below)."""
    data = np.frombuffer(utf8(text), dtype=np.uint8)
    wbt = load_word_break_table()
    out, i = [], 0
    while i < len(data):
        e = _wb_segment_end(data, i, len(data), wbt)
        out.append(data[i:e].tobytes().decode("utf-8", "surrogatepass"))
        i = e
    return out


def greedy_cap(words: list[str], cap: int | None) -> list[str]:
    """Cut each word greedily into pieces of at most ``cap`` UTF-8 bytes between characters."""
    if cap is None:
        return words
    out: list[str] = []
    for word in words:
        piece = ""
        for ch in word:
            if piece and len(utf8(piece + ch)) > cap:
                out.append(piece)
                piece = ""
            piece += ch
        out.append(piece)
    return out


def twin_hat(text: str, cap: int | None = None) -> list[str]:
    """The hat rule step by step, as hat-splitter states it: segments, punctuation and camelCase
    cuts, single spaces merged, kinds, grouping; then the greedy cap."""
    pieces: list[str] = []
    for seg in segments(text):
        piece = ""
        for i, ch in enumerate(seg):
            if piece and (_P.match(seg[i - 1]) or (_LL.match(seg[i - 1]) and _LU.match(ch))):
                pieces.append(piece)
                piece = ""
            piece += ch
        pieces.append(piece)
    merged: list[str] = []
    for p in pieces:
        if p == " " and merged and set(merged[-1]) == {" "}:
            merged[-1] += p
        else:
            merged.append(p)

    def kind(p: str) -> str:
        if p == " ":
            return "space"
        if _WS_ONLY.fullmatch(p):
            return "whitespace"
        if len(p) == 1 and _P.match(p):
            return "punct"
        return "word"

    groups: list[list[str]] = []
    for p in merged:
        if groups:
            last, k = kind(groups[-1][-1]), kind(p)
            if (last == "space" and k == "word") or (
                last in ("space", "word", "punct") and k == "punct"
            ):
                groups[-1].append(p)
                continue
        groups.append([p])
    return greedy_cap(["".join(g) for g in groups], cap)


def _spacelike(b: int) -> bool:
    return not (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or 128 <= b <= 191)


def blt_space_starts(data: bytes) -> list[int]:
    """BLT's ``find_space_patch_start_ids`` on ``[BOS] + data`` (numpy, no torch), mapped back
    to offsets in ``data``: BLT's position ``i`` is byte ``i - 1``."""
    tokens = np.array([1] + [b + 4 for b in data], dtype=np.int64)  # BOS = 1, OFFSET = 4
    t = tokens - 4
    end = (
        (t < ord("0"))
        | ((ord("9") < t) & (t < ord("A")))
        | ((ord("Z") < t) & (t < ord("a")))
        | ((ord("z") < t) & (t < 0b1000_0000))
        | (0b1100_0000 <= t)
    )
    end[1:] &= ~end[:-1]
    end |= tokens < 4
    start = np.concatenate([[True, True], end[1:]])
    blt = np.flatnonzero(start[: len(tokens)]).tolist()  # positions < len(tokens)
    return [p - 1 for p in blt if p >= 1]


def twin_space(text: str, cap: int | None = None) -> list[str]:
    """BLT's byte-level space starts, each start inside a character moved to its end."""
    data = utf8(text)
    char_starts = set(np.cumsum([0] + [len(utf8(c)) for c in text]).tolist())
    starts = []
    for s in blt_space_starts(data):
        while s not in char_starts:
            s += 1
        if s < len(data) and s not in starts:
            starts.append(s)
    cuts = starts + [len(data)]
    words = [
        data[a:b].decode("utf-8", "surrogatepass") for a, b in zip(cuts, cuts[1:], strict=False)
    ]
    return greedy_cap(words if data else [], cap)


def one(got: np.ndarray | list[np.ndarray]) -> list[int]:
    """The starts of a 1-D call as a list."""
    assert isinstance(got, np.ndarray)
    return [int(x) for x in got]


def rows_of(got: np.ndarray | list[np.ndarray]) -> list[list[int]]:
    """The starts of a 2-D call as lists."""
    assert isinstance(got, list)
    return [[int(x) for x in g] for g in got]


def twin_entropy(e: np.ndarray, t: float, mode: str) -> list[int]:
    out = [0] if len(e) else []
    for p in range(1, len(e)):
        if mode == "global" and e[p - 1] > t:
            out.append(p)
        if mode == "monotonic" and p >= 2 and e[p - 1] - e[p - 2] > t:
            out.append(p)
    return out


# --- strategies ------------------------------------------------------------------------------

any_text = st.text(
    alphabet=st.characters(codec="utf-8").filter(same_in_16_and_17),
    max_size=60,
)
PIECES = [
    " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", "\u0085",
    "a", "Z", "é", "ß", "Ω", "д", "Д", "\u05d0", "\u05d1", "\u0627", "\u0915", "\u093f",
    "中", "文", "\u3042", "\u30a2", "\u30fc", "\uac00", "\u0e01", "\u1000",
    "0", "7", "\u0661", "\u0967", "½",
    ".", ",", "'", '"', ":", ";", "!", "?", "-", "_", "(", ")", "«", "»", "\u2019", "\u00b7",
    "\u2044", "\u2024", "\u05f3", "\u05f4", "\u066c", "\uff0e", "\u202f", "\u2027",
    "+", "$", "€", "=", "<", "|", "~", "^", "`", "\u00ad",
    "\u0301", "\u0308", "\u20e3", "\u200d", "\u200c", "\u2060", "\ufe0f", "\U000e0020",
    "\U0001f600", "\U0001f44d", "\U0001f3fb", "\u2764", "\U0001f1e9", "\U0001f1ea", "\u00a9",
    "hello", "World", "howAreYou", "HTTPServer", "snake_case", "x86_64", "3.14", "1,000",
    "can't", "don\u2019t", "e.g.", "U.S.A.", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
]  # fmt: skip
mixed_text = st.lists(
    st.one_of(st.sampled_from(PIECES), st.characters(codec="utf-8").filter(same_in_16_and_17)),
    max_size=25,
).map("".join)
texts = st.one_of(any_text, mixed_text)
long_words = st.tuples(
    st.sampled_from(["a", "д", "中", "\U0001f600", "é\u0301", "x_", "aB"]), st.integers(1, 40)
).map(lambda t: t[0] * t[1])
texts_with_long_words = st.lists(st.one_of(st.sampled_from(PIECES), long_words), max_size=8).map(
    "".join
)
caps = st.one_of(st.none(), st.integers(4, 70))


# --- hat -------------------------------------------------------------------------------------


def test_hat_examples() -> None:
    assert split_words("Hello, world!", rule="hat") == ["Hello,", " world!"]
    assert split_words("how_are_you", rule="hat") == ["how_", "are_", "you"]
    assert split_words("howAreYou", rule="hat") == ["how", "Are", "You"]
    assert split_words("a  b", rule="hat") == ["a", "  ", "b"]
    assert split_words("can't", rule="hat") == ["can'", "t"]
    assert split_words("3\u20444", rule="hat") == ["3\u20444"]
    assert split_words("3\u2044", rule="hat") == ["3", "\u2044"]
    assert split_words("", rule="hat") == []
    assert word_boundaries("", rule="hat").tolist() == [0]


@settings(max_examples=300, deadline=None)
@given(st.one_of(texts, texts_with_long_words), caps)
def test_hat_kernel_equals_twin(text: str, cap: int | None) -> None:
    assert split_words(text, rule="hat", max_word_bytes=cap) == twin_hat(text, cap)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_hat_equals_hat_splitter(text: str) -> None:
    hat = pytest.importorskip("hat_splitter").HATSplitter()
    assert split_words(text, rule="hat") == hat.split(text)


@settings(max_examples=200, deadline=None)
@given(texts_with_long_words, st.integers(4, 70))
def test_hat_cap_equals_split_with_limit(text: str, cap: int) -> None:
    hat = pytest.importorskip("hat_splitter").HATSplitter()
    ours = [utf8(w) for w in split_words(text, rule="hat", max_word_bytes=cap)]
    assert ours == hat.split_with_limit(text, cap)


@pytest.mark.parametrize("folder", ["en", "code", "multi"])
def test_hat_equals_hat_splitter_on_corpora(folder: str) -> None:
    hat = pytest.importorskip("hat_splitter").HATSplitter()
    files = sorted((CORPORA / folder).glob("*.txt"))
    assert files
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert split_words(text, rule="hat") == hat.split(text), f.name
        limited = [utf8(w) for w in split_words(text, rule="hat", max_word_bytes=16)]
        assert limited == hat.split_with_limit(text, 16), f.name


def _starts(text: str, rule: str, cap: int | None = None) -> list[int]:
    return word_boundaries(text, rule=rule, max_word_bytes=cap).tolist()[:-1]


_NON_P_MID = regex.compile(
    r"[\p{Word_Break=MidLetter}\p{Word_Break=MidNum}\p{Word_Break=MidNumLet}"
    r"\p{Word_Break=Single_Quote}\p{Word_Break=Double_Quote}--\p{P}]",
    flags=regex.V1,
)


def test_the_only_non_punctuation_mid_character_is_fraction_slash() -> None:
    everything = "".join(map(chr, range(0x110000)))
    assert [m.group() for m in _NON_P_MID.finditer(everything)] == ["\u2044"]


@settings(max_examples=200, deadline=None)
@given(st.one_of(mixed_text, texts_with_long_words), caps)
@example("a3\u20444 b:c", None)
@example("x\u05d0\u05f4\u05d1 3\u2044\u00ad4", 4)
def test_hat_causality(text: str, cap: int | None) -> None:
    """Every prefix's word starts are the full text's starts below the prefix length, except
    that the prefix's last start may be extra; it is extra only where the prefix has a
    non-punctuation Mid character (e.g. U+2044) right after a letter or digit, which the full
    text joins through WB6/WB12 look-ahead; and cutting there changes the cap's pieces."""
    data = utf8(text)
    full = _starts(text, "hat", cap)
    for n in range(1, len(text) + 1):
        prefix = text[:n]
        nb = len(utf8(prefix))
        part = _starts(prefix, "hat", cap)
        below = [s for s in full if s < nb]
        if part == below:
            continue
        # Only the tail may differ: up to the first extra start, everything agrees.
        first_extra = next(s for s in part if s not in full)
        assert [s for s in part if s < first_extra] == [s for s in below if s < first_extra]
        ch = data[first_extra:].decode("utf-8", "surrogatepass")[0]
        assert _NON_P_MID.match(ch), (prefix, part, below)
        if cap is None:
            assert part[:-1] == below and part[-1] == first_extra


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([c for c in PIECES if not _NON_P_MID.search(c)]), max_size=25))
def test_hat_is_causal_without_non_punctuation_mid(pieces: list[str]) -> None:
    text = "".join(pieces)
    for cap in (None, 8):
        full = _starts(text, "hat", cap)
        for n in range(1, len(text) + 1):
            nb = len(utf8(text[:n]))
            assert _starts(text[:n], "hat", cap) == [s for s in full if s < nb]


@pytest.mark.parametrize("rule", ["hat", "space"])
def test_causal_on_every_prefix_of_corpus_slices(rule: str) -> None:
    """No U+2044 in the corpora, so every prefix of these slices splits causally."""
    for f in sorted(CORPORA.glob("*/*.txt")):
        text = f.read_text(encoding="utf-8")[3_000:3_400]
        assert "\u2044" not in text
        full = _starts(text, rule, 16)
        for n in range(1, len(text) + 1):
            nb = len(utf8(text[:n]))
            assert _starts(text[:n], rule, 16) == [s for s in full if s < nb], (f.name, n)


# --- space -----------------------------------------------------------------------------------


def test_space_examples() -> None:
    assert split_words("hi  there", rule="space") == ["hi ", " there"]
    assert split_words("a.b", rule="space") == ["a.", "b"]
    assert split_words("aé b", rule="space") == ["aé", " ", "b"]
    assert split_words(" x", rule="space") == [" x"]
    assert split_words("", rule="space") == []


@settings(max_examples=300, deadline=None)
@given(st.one_of(texts, texts_with_long_words), caps)
def test_space_kernel_equals_blt_twin(text: str, cap: int | None) -> None:
    assert split_words(text, rule="space", max_word_bytes=cap) == twin_space(text, cap)


@settings(max_examples=150, deadline=None)
@given(st.one_of(texts, texts_with_long_words), caps)
def test_space_is_causal(text: str, cap: int | None) -> None:
    full = _starts(text, "space", cap)
    for n in range(1, len(text) + 1):
        nb = len(utf8(text[:n]))
        assert _starts(text[:n], "space", cap) == [s for s in full if s < nb]


def test_space_on_ascii_is_blt_exactly() -> None:
    text = (CORPORA / "code" / "python_stdlib.txt").read_text(encoding="utf-8")[:20_000]
    text = text.encode("ascii", "ignore").decode()
    assert _starts(text, "space") == blt_space_starts(text.encode())


# --- cap and batch (every rule) --------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
def test_long_multibyte_word_keeps_every_byte(rule: str) -> None:
    word = "д" * 48  # 96 bytes: hat-splitter's Python test reference keeps only 64 of them
    pieces = split_words(word, rule=rule, max_word_bytes=64)
    assert "".join(pieces) == word
    assert all(len(utf8(p)) <= 64 for p in pieces)
    if rule != "space":  # space makes every Cyrillic letter but the first a word end
        assert [len(utf8(p)) for p in pieces] == [64, 32]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(RULES), st.one_of(texts, texts_with_long_words), st.integers(4, 12))
def test_cap_never_drops_or_splits_a_character(rule: str, text: str, cap: int) -> None:
    words = split_words(text, rule=rule, max_word_bytes=cap)
    assert "".join(words) == text
    assert all(0 < len(utf8(w)) <= cap for w in words)
    uncapped = set(_starts(text, rule))
    assert uncapped <= set(_starts(text, rule, cap))  # the cap only adds cuts


@pytest.mark.parametrize("rule", ["hat", "space"])
def test_invalid_utf8_keeps_every_byte(rule: str) -> None:
    data = b"ab \xff\xfe cd\xc3 \xe4\xb8 x\x80y"
    bounds = word_boundaries(data, rule=rule, max_word_bytes=4).tolist()
    assert bounds[0] == 0 and bounds[-1] == len(data)
    assert bounds == sorted(set(bounds))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(RULES), st.lists(texts, max_size=6), caps)
def test_batch_equals_single(rule: str, batch: list[str], cap: int | None) -> None:
    got = word_boundaries_batch(batch, rule=rule, max_word_bytes=cap)
    assert [b.tolist() for b in got] == [
        word_boundaries(t, rule=rule, max_word_bytes=cap).tolist() for t in batch
    ]
    assert split_words_batch(batch, rule=rule, max_word_bytes=cap) == [
        split_words(t, rule=rule, max_word_bytes=cap) for t in batch
    ]


def test_unicode_versions_are_what_the_docs_say() -> None:
    from toknz.pipeline.unicode_tables import unicode_version

    assert unicode_version() == "17.0.0"  # regex's data; hat-splitter 0.1.10 has 16.0
    assert unicodedata.unidata_version  # (Python's own is older and unused here)
    table = load_word_break_table()
    assert table[ord("a")] & WB_MASK == 10 and table[0xB8] & WB_MASK == 10  # ALetter in 17.0


# --- entropy ---------------------------------------------------------------------------------

entropy_rows = st.lists(st.floats(0, 8, allow_nan=False, width=32), min_size=0, max_size=30).map(
    lambda v: np.array(v, dtype=np.float32)
)


@settings(max_examples=300, deadline=None)
@given(entropy_rows, st.floats(-2, 4, width=32), st.sampled_from(["global", "monotonic"]))
def test_entropy_equals_twin(e: np.ndarray, t: float, mode: str) -> None:
    assert one(entropy_boundaries(e, t, mode)) == twin_entropy(e, np.float32(t), mode)
    e64 = e.astype(np.float64)
    assert one(entropy_boundaries(e64, t, mode)) == twin_entropy(e64, t, mode)


def _blt_entropy_starts(ent: np.ndarray, t: float, mode: str) -> list[int]:
    """BLT's ``find_entropy_patch_start_ids`` (threshold given, include_next_token) for one
    row with BOS at position 0, in numpy: ``first_ids = [0, 1]``, then the mask over
    ``entropies[:, 1:]``, shifted by 2."""
    e = ent[1:]
    if mode == "monotonic":
        mask = np.zeros(len(e), dtype=bool)
        if len(e):
            mask[0] = True
            mask[1:] = (e[1:] - e[:-1]) > t
    else:
        mask = e > t
    return [0, 1] + (np.flatnonzero(mask) + 2).tolist()


@settings(max_examples=200, deadline=None)
@given(entropy_rows.filter(lambda e: len(e) >= 2), st.floats(0, 4, width=32))
def test_entropy_matches_blt_conventions(e: np.ndarray, t: float) -> None:
    """With BLT's BOS at position 0 (entropy row ``[e_bos] + e``), BLT's starts at positions
    ``≥ 2`` (global) or ``≥ 3`` (monotonic) are toknz's starts ``≥ 1`` / ``≥ 2``, shifted by 1:
    BLT's ``entropies[:, 1:] > t`` at index ``j`` starts position ``j + 2``."""
    t32 = np.float32(t)
    row = np.concatenate([np.array([5.0], dtype=np.float32), e])  # BLT row: BOS, then bytes
    # BLT also scores the position after the sequence (include_next_token): dropped here.
    n = len(e)
    blt_global = [p - 1 for p in _blt_entropy_starts(row, t32, "global") if 2 <= p <= n]
    assert one(entropy_boundaries(e, t))[1:] == blt_global
    blt_mono = [p - 1 for p in _blt_entropy_starts(row, t32, "monotonic") if 3 <= p <= n]
    assert one(entropy_boundaries(e, t, "monotonic"))[1:] == blt_mono


@settings(max_examples=100, deadline=None)
@given(
    st.lists(entropy_rows, min_size=1, max_size=5),
    st.floats(0, 4, width=32),
    st.sampled_from(["global", "monotonic"]),
)
def test_entropy_rows_are_independent(rows: list[np.ndarray], t: float, mode: str) -> None:
    """BLT issue #123: each sequence's starts (its first position included) depend on its own
    entropies only, whatever the padding and the sequence before it hold."""
    width = max(len(r) for r in rows) + 2
    batch = np.full((len(rows), width), 7.5, dtype=np.float32)
    for b, r in enumerate(rows):
        batch[b, : len(r)] = r
    lengths = [len(r) for r in rows]
    got = rows_of(entropy_boundaries(batch, t, mode, lengths=lengths))
    for r, g in zip(rows, got, strict=True):
        assert g == one(entropy_boundaries(r, t, mode))
        assert g[:1] == ([0] if len(r) else [])
    flipped = batch.copy()
    flipped[:-1] = 8.0 - flipped[:-1]  # change every sequence but the last
    last = rows_of(entropy_boundaries(flipped, t, mode, lengths=lengths))[-1]
    assert last == got[-1]


def test_entropy_refuses_bad_input() -> None:
    e = np.zeros((2, 3))
    with pytest.raises(UsageError, match="mode"):
        entropy_boundaries(e, 1.0, "nope")
    with pytest.raises(UsageError, match="lengths"):
        entropy_boundaries(e, 1.0, lengths=[1])
    with pytest.raises(UsageError, match="length"):
        entropy_boundaries(e, 1.0, lengths=[1, 4])
    with pytest.raises(UsageError, match="lengths"):
        entropy_boundaries(np.zeros(3), 1.0, lengths=[3])
    with pytest.raises(UsageError, match="threshold"):
        entropy_boundaries(e, float("nan"))
    with pytest.raises(UsageError, match="1-D or 2-D"):
        entropy_boundaries(np.zeros((1, 1, 1)), 1.0)
    with pytest.raises(InputError, match="NaN"):
        entropy_boundaries(np.array([0.0, np.nan]), 1.0)
    # NaN past a sequence's length is padding, not an error.
    padded = np.array([[0.0, 2.0, np.nan]])
    assert rows_of(entropy_boundaries(padded, 1.0, lengths=[2])) == [[0]]


def test_unknown_rule_lists_the_rules() -> None:
    with pytest.raises(UsageError, match="whitespace, hat, space"):
        split_words("abc", rule="nope")
