"""The Numba BPE kernels against a slow, obvious pure-Python twin.

The twin: given a pair table ``{(a, b): (rank, new_id)}``, repeatedly merge the
pair of lowest rank, the leftmost one among equal ranks, until no pair of
neighbours is in the table. Words longer than ``HEAP_THRESHOLD`` take the
kernel's heap path, shorter ones its scanning path; both must agree with the
twin. Tables are random (small alphabets and few ranks, so that merges chain
and ranks tie) or derived from random tiktoken-style vocabularies, where many
pairs map to the same rank (every split of a token into two tokens).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toknz_core import encode as kernels

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_RANK = int(kernels.NO_RANK)
THRESHOLD = kernels.HEAP_THRESHOLD

Table = dict[tuple[int, int], tuple[int, int]]


# ------------------------------------------------------------------ the twin


def twin_merge(word: list[int], table: Table, limit: int | None = None) -> list[int]:
    """Merge the lowest-rank pair (leftmost on ties) until none is left (or none below ``limit``)."""
    w = list(word)
    while len(w) > 1:
        best: tuple[int, int, int] | None = None  # (rank, position, new id)
        for i in range(len(w) - 1):
            hit = table.get((w[i], w[i + 1]))
            if hit is None or (limit is not None and hit[0] >= limit):
                continue
            if best is None or hit[0] < best[0]:
                best = (hit[0], i, hit[1])
        if best is None:
            break
        _, i, new = best
        w[i : i + 2] = [new]
    return w


def twin_tiktoken(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """tiktoken's rule on bytes: merge the neighbours whose concatenation has the lowest rank."""
    parts = [piece[i : i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best: tuple[int, int] | None = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[p] for p in parts]


# ------------------------------------------------------------------ building tables


def build(entries: list[tuple[int, int, int, int]]) -> tuple[tuple[np.ndarray, ...], Table]:
    """The kernel table and the dict of ``(left, right, rank, new_id)`` entries (later ones win)."""
    arr = np.array(entries, dtype=np.int64).reshape(-1, 4)
    cols = [np.ascontiguousarray(arr[:, k], dtype=np.int32) for k in range(4)]
    table = kernels.build_pair_table(*cols)
    return table, {(a, b): (r, n) for a, b, r, n in entries}


def run_merge_word(word: list[int], table: tuple[np.ndarray, ...]) -> list[int]:
    arr = np.array(word, dtype=np.int32)
    before = arr.copy()
    out = kernels.merge_word(arr, *table)
    assert np.array_equal(arr, before), "merge_word changed its input"
    return [int(x) for x in out]


def csr(words: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    symbols = np.array([s for w in words for s in w], dtype=np.int32)
    return symbols, offsets


def split_csr(out: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    return [[int(x) for x in out[offsets[i] : offsets[i + 1]]] for i in range(len(offsets) - 1)]


# ------------------------------------------------------------------ strategies

ALPHABET = 6  # symbols 0..5; merges make ids up to ALPHABET + 3, which merge again

symbols_st = st.integers(0, ALPHABET + 3)
entries_st = st.lists(
    st.tuples(
        st.integers(0, ALPHABET + 3),
        st.integers(0, ALPHABET + 3),
        st.integers(0, 12),  # few ranks: many ties
        st.integers(0, ALPHABET + 3),
    ),
    max_size=40,
)
short_words = st.lists(symbols_st, max_size=THRESHOLD)
long_words = st.lists(symbols_st, min_size=THRESHOLD + 1, max_size=4 * THRESHOLD)
repeated_words = st.builds(lambda s, n: [s] * n, st.integers(0, 2), st.integers(2, 3 * THRESHOLD))
periodic_words = st.builds(
    lambda unit, n: unit * n,
    st.lists(st.integers(0, 2), min_size=1, max_size=3),
    st.integers(1, 80),
)
words_st = st.one_of(short_words, long_words, repeated_words, periodic_words)


@st.composite
def tiktoken_vocab(draw: st.DrawFn) -> dict[bytes, int]:
    """Random byte tokens over a small alphabet; every single byte is a token; ids are ranks."""
    alphabet = b"abc"
    tokens = [bytes([c]) for c in alphabet]
    extra = draw(
        st.lists(
            st.binary(min_size=2, max_size=6).map(lambda b: bytes(alphabet[x % 3] for x in b)),
            max_size=40,
        )
    )
    for t in extra:
        if t not in tokens:
            tokens.append(t)
    order = draw(st.permutations(range(3, len(tokens))))
    ranked = tokens[:3] + [tokens[i] for i in order]
    return {t: r for r, t in enumerate(ranked)}


def pairs_from_ranks(ranks: dict[bytes, int]) -> list[tuple[int, int, int, int]]:
    """The pair table of a tiktoken vocabulary, as toknz.pipeline.bpe derives it (every two-token split)."""
    out = []
    for tok, r in ranks.items():
        for k in range(1, len(tok)):
            a, b = ranks.get(tok[:k]), ranks.get(tok[k:])
            if a is not None and b is not None:
                out.append((a, b, r, r))
    return out


# ------------------------------------------------------------------ tests


@SETTINGS
@given(entries_st, words_st)
def test_merge_word_matches_twin(entries: list[tuple[int, int, int, int]], word: list[int]) -> None:
    table, twin = build(entries)
    assert run_merge_word(word, table) == twin_merge(word, twin)


@SETTINGS
@given(entries_st, st.lists(words_st, max_size=8))
def test_merge_words_batch_matches_twin(
    entries: list[tuple[int, int, int, int]], words: list[list[int]]
) -> None:
    table, twin = build(entries)
    symbols, offsets = csr(words)
    out, out_offsets = kernels.merge_words(symbols, offsets, *table)
    assert out_offsets[0] == 0 and len(out_offsets) == len(words) + 1
    assert out.dtype == np.int32 and out_offsets.dtype == np.int64
    assert split_csr(out, out_offsets) == [twin_merge(w, twin) for w in words]


@SETTINGS
@given(entries_st, st.integers(THRESHOLD - 3, THRESHOLD + 3), st.data())
def test_both_paths_agree_at_the_threshold(
    entries: list[tuple[int, int, int, int]], n: int, data: st.DataObject
) -> None:
    table, twin = build(entries)
    word = data.draw(st.lists(symbols_st, min_size=n, max_size=n))
    assert run_merge_word(word, table) == twin_merge(word, twin)


@SETTINGS
@given(tiktoken_vocab(), st.lists(st.binary(min_size=1, max_size=150), max_size=6))
def test_tiktoken_rule(ranks: dict[bytes, int], raw_pieces: list[bytes]) -> None:
    """Tables derived from tiktoken ranks (several pairs per rank) follow tiktoken's byte rule."""
    pieces = [bytes(b"abc"[x % 3] for x in p) for p in raw_pieces]
    table, twin = build(pairs_from_ranks(ranks))
    words = [[ranks[p[i : i + 1]] for i in range(len(p))] for p in pieces]
    symbols, offsets = csr(words)
    out, out_offsets = kernels.merge_words(symbols, offsets, *table)
    got = split_csr(out, out_offsets)
    assert got == [twin_tiktoken(p, ranks) for p in pieces]
    assert got == [twin_merge(w, twin) for w in words]


def test_tiktoken_rule_ties_example() -> None:
    # "abc" can be made as ab+c or a+bc: two pairs with one rank. In "abcabc" the
    # leftmost of equal ranks goes first.
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"bc": 3, b"ab": 4, b"abc": 5, b"ca": 6, b"abcabc": 7}
    table, twin = build(pairs_from_ranks(ranks))
    for piece in [b"abc", b"abcabc", b"cabca", b"aaabcbc" * 10]:
        word = [ranks[piece[i : i + 1]] for i in range(len(piece))]
        want = twin_tiktoken(piece, ranks)
        assert run_merge_word(word, table) == want == twin_merge(word, twin)
    assert run_merge_word([0, 1, 2, 0, 1, 2], table) == [7]


@SETTINGS
@given(entries_st, st.lists(st.tuples(words_st, st.integers(0, 14)), max_size=8))
def test_merge_words_below_matches_twin(
    entries: list[tuple[int, int, int, int]], items: list[tuple[list[int], int]]
) -> None:
    table, twin = build(entries)
    words = [w for w, _ in items]
    limits = np.array([lim for _, lim in items], dtype=np.int32)
    symbols, offsets = csr(words)
    out, out_offsets = kernels.merge_words_below(symbols, offsets, limits, *table)
    assert split_csr(out, out_offsets) == [twin_merge(w, twin, limit=lim) for w, lim in items]


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**31 - 1),
            st.integers(0, 2**31 - 1),
            st.integers(0, 2**31 - 2),
            st.integers(0, 2**31 - 1),
        ),
        max_size=60,
    ),
    st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)), max_size=20),
    st.data(),
)
def test_pair_lookup_matches_dict(
    entries: list[tuple[int, int, int, int]], probes: list[tuple[int, int]], data: st.DataObject
) -> None:
    # duplicate some pairs with new values: the later entry must win
    if entries:
        dups = data.draw(st.lists(st.sampled_from(entries), max_size=10))
        entries = entries + [(a, b, (r + 1) % (2**31 - 1), n ^ 1) for a, b, r, n in dups]
    table, twin = build(entries)
    keys, ranks, ids = table
    assert len(keys) & (len(keys) - 1) == 0 and len(keys) >= 2 * len(twin)
    for (a, b), (r, n) in twin.items():
        assert tuple(int(x) for x in kernels.pair_lookup(keys, ranks, ids, a, b)) == (r, n)
    for a, b in probes:
        want = twin.get((a, b), (NO_RANK, -1))
        assert tuple(int(x) for x in kernels.pair_lookup(keys, ranks, ids, a, b)) == want


def test_duplicate_pair_last_wins() -> None:
    table, _ = build([(1, 2, 5, 10), (3, 4, 1, 11), (1, 2, 7, 12)])
    assert tuple(int(x) for x in kernels.pair_lookup(*table, 1, 2)) == (7, 12)
    assert tuple(int(x) for x in kernels.pair_lookup(*table, 3, 4)) == (1, 11)
    assert tuple(int(x) for x in kernels.pair_lookup(*table, 2, 1)) == (NO_RANK, -1)
    assert run_merge_word([1, 2, 3, 4], table) == [12, 11]


def test_empty_table_and_words() -> None:
    table, _ = build([])
    assert run_merge_word([], table) == []
    assert run_merge_word([3], table) == [3]
    assert run_merge_word([1, 2] * 40, table) == [1, 2] * 40
    out, offsets = kernels.merge_words(*csr([[], [1], []]), *table)
    assert split_csr(out, offsets) == [[], [1], []]


@pytest.mark.parametrize("n", [2, 3, THRESHOLD, THRESHOLD + 1, 1000, 100_000])
def test_long_runs_of_one_symbol(n: int) -> None:
    # a -> aa (rank 0) -> aaaa (rank 1): leftmost first, so a run of n ends as
    # n // 4 "aaaa", then one "aa" if n % 4 >= 2, then one "a" if n is odd.
    table, twin = build([(0, 0, 0, 1), (1, 1, 1, 2)])
    want = [2] * (n // 4) + [1] * ((n % 4) // 2) + [0] * (n % 2)
    assert run_merge_word([0] * n, table) == want
    if n <= 1000:
        assert twin_merge([0] * n, twin) == want
