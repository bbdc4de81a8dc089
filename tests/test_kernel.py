"""The merge engine (`toknz_core.encode`) against its pure-Python twin.

The twin is ``toknz/pipeline/bpe_reference.py``: given a pair table
``{(a, b): (rank, new_id)}``, repeatedly merge the pair of lowest rank, the
leftmost one among equal ranks, until no pair of neighbours is in the table.
Words longer than ``HEAP_THRESHOLD`` take the kernel's heap path, shorter ones
its scanning path; both must agree with the twin. Tables are random (small
alphabets and few ranks, so that merges chain and ranks tie; one id per rank,
as in every BPE model) or derived from random tiktoken-style vocabularies,
where many pairs map to the same rank (every split of a token into two tokens).
"""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toknz_core import encode as kernels

from toknz.pipeline.bpe_reference import bpe_merge, concat_pair, table_pair

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_RANK = int(kernels.NO_RANK)
THRESHOLD = kernels.HEAP_THRESHOLD

Table = dict[tuple[int, int], tuple[int, int]]


# ------------------------------------------------------------------ the twin


def twin_merge(word: list[int], table: Table, limit: int | None = None) -> list[int]:
    """The reference merge of ``word`` with ``table`` (only ranks below ``limit``)."""
    return bpe_merge(word, table_pair(table), below=limit)


def twin_tiktoken(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """tiktoken's rule on bytes: merge the neighbours whose concatenation has the lowest rank."""
    return [
        ranks[p]
        for p in bpe_merge([piece[i : i + 1] for i in range(len(piece))], concat_pair(ranks))
    ]


# ------------------------------------------------------------------ building tables


def build(entries: list[tuple[int, int, int, int]]) -> tuple[tuple[np.ndarray, ...], Table]:
    """The kernel table ``(pairs, rank_ids)`` and the dict of ``(left, right, rank, new_id)``
    entries (later ones win)."""
    arr = np.array(entries, dtype=np.int64).reshape(-1, 4)
    cols = [np.ascontiguousarray(arr[:, k], dtype=np.int32) for k in range(4)]
    pairs, rank_ids, ok = kernels.build_pair_table(*cols)
    assert ok
    return (pairs, rank_ids), {(a, b): (r, n) for a, b, r, n in entries}


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


@st.composite
def entries_st(draw: st.DrawFn, max_size: int = 40) -> list[tuple[int, int, int, int]]:
    """Random pairs over a small alphabet, few ranks (many ties), one id per rank."""
    rank_to_id = draw(st.lists(st.integers(0, ALPHABET + 3), min_size=13, max_size=13))
    pairs = draw(
        st.lists(
            st.tuples(symbols_st, symbols_st, st.integers(0, 12)),
            max_size=max_size,
        )
    )
    return [(a, b, r, rank_to_id[r]) for a, b, r in pairs]


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
@given(entries_st(), words_st)
def test_merge_word_matches_twin(entries: list[tuple[int, int, int, int]], word: list[int]) -> None:
    table, twin = build(entries)
    assert run_merge_word(word, table) == twin_merge(word, twin)


@SETTINGS
@given(entries_st(), st.lists(words_st, max_size=8))
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
@given(entries_st(), st.integers(THRESHOLD - 3, THRESHOLD + 3), st.data())
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
@given(entries_st(), st.lists(st.tuples(words_st, st.integers(0, 14)), max_size=8))
def test_merge_words_below_matches_twin(
    entries: list[tuple[int, int, int, int]], items: list[tuple[list[int], int]]
) -> None:
    table, twin = build(entries)
    words = [w for w, _ in items]
    limits = np.array([lim for _, lim in items], dtype=np.int32)
    symbols, offsets = csr(words)
    out, out_offsets = kernels.merge_words_below(symbols, offsets, limits, *table)
    assert split_csr(out, out_offsets) == [twin_merge(w, twin, limit=lim) for w, lim in items]


ID = st.integers(0, kernels.MAX_ID)


@SETTINGS
@given(
    st.lists(
        st.tuples(ID, ID, st.integers(0, kernels.MAX_RANK)), max_size=60, unique_by=lambda e: e[2]
    ),
    st.lists(
        st.tuples(st.integers(-1, kernels.MAX_ID + 5), st.integers(-1, kernels.MAX_ID + 5)),
        max_size=20,
    ),
    st.data(),
)
def test_pair_lookup_matches_dict(
    drawn: list[tuple[int, int, int]], probes: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Ids and ranks over their whole range; each rank makes one id (distinct ranks here)."""
    entries = [(a, b, r, (a * 7 + r) % (kernels.MAX_ID + 1)) for a, b, r in drawn]
    # duplicate some pairs with a new, unused rank: the later entry must win
    if entries:
        dups = data.draw(st.lists(st.sampled_from(entries), max_size=10, unique=True))
        used = {r for _, _, r, _ in entries}
        fresh = islice((r for r in range(kernels.MAX_RANK, 0, -1) if r not in used), len(dups))
        top = kernels.MAX_ID + 1
        entries += [(a, b, r2, (n + 1) % top) for (a, b, _, n), r2 in zip(dups, fresh, strict=True)]
    table, twin = build(entries)
    pairs, rank_ids = table
    slots = int(kernels.table_slots(pairs))
    assert slots & (slots - 1) == 0 and slots >= 2 * len(twin) and len(pairs) == slots * 17 // 16
    assert sorted(zip(*[x.tolist() for x in kernels.pair_entries(pairs)], strict=True)) == sorted(
        (a, b, r) for (a, b), (r, _) in twin.items()
    )
    for (a, b), (r, n) in twin.items():
        assert tuple(int(x) for x in kernels.pair_lookup(pairs, rank_ids, a, b)) == (r, n)
    for a, b in probes:
        want = twin.get((a, b), (NO_RANK, -1))
        assert tuple(int(x) for x in kernels.pair_lookup(pairs, rank_ids, a, b)) == want


@pytest.mark.parametrize(
    "entries",
    [
        [(1, 2, 0, 300), (3, 4, 0, 301)],  # one rank, two ids
        [(2**20 - 1, 1, 0, 300)],  # an id too large for the table
        [(1, 2, 0, 2**20 - 1)],  # a new id too large
        [(1, 2, 2**24 - 1, 300)],  # a rank too large
        [(1, -2, 0, 300)],  # a negative id
    ],
)
def test_table_refuses_what_it_cannot_hold(entries: list[tuple[int, int, int, int]]) -> None:
    cols = [np.array([e[k] for e in entries], dtype=np.int32) for k in range(4)]
    assert not kernels.build_pair_table(*cols)[2]


@pytest.mark.parametrize("bad", [[-2], [2**20 - 1], [2**20 + 3]])
def test_merge_words_refuses_ids_out_of_range(bad: list[int]) -> None:
    table, _ = build([(1, 2, 0, 3)])
    with pytest.raises(ValueError, match="symbol ids"):
        kernels.merge_words(*csr([[1, 2], bad]), *table)


@SETTINGS
@given(
    entries_st(), st.lists(st.lists(st.one_of(symbols_st, st.just(-1)), max_size=80), max_size=6)
)
def test_no_symbol_never_merges(
    entries: list[tuple[int, int, int, int]], words: list[list[int]]
) -> None:
    """-1 (a byte with no token, analysis inputs) stays as it is, and cuts the word there."""
    table, twin = build(entries)
    out, out_offsets = kernels.merge_words(*csr(words), *table)
    assert split_csr(out, out_offsets) == [twin_merge(w, twin) for w in words]


def test_duplicate_pair_last_wins() -> None:
    table, _ = build([(1, 2, 5, 10), (3, 4, 1, 11), (1, 2, 7, 12)])
    assert int(table[1][5]) == -1  # the overwritten entry's rank makes nothing
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
