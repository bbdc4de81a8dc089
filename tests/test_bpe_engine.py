"""One merge engine: every caller of the kernel gives what the one pure-Python twin gives.

Random byte-level BPE models of both merge rules (``tokenizers``' merge list and
tiktoken's ranks) are built through :class:`toknz.pipeline.bpe.BPE`, over a small
alphabet so that ranks tie and runs of one byte repeat, with tokens longer than the
whole-document kernel's inline limits (8 and 24 bytes, ``CACHE_WORD``) and pieces past
the heap threshold. Each piece is merged by

- the twin ``toknz/pipeline/bpe_reference.py`` over token ids (the expected answer),
- ``BPE._merge_python`` (the start-up path: the twin over token spellings),
- ``toknz_core.encode.merge_words`` with the model's pair table,
- ``toknz_core.docencode.encode_pieces`` with the model's document tables, with and
  without its word cache, and the ``BPE`` piece path once the kernels are loaded;

and they must all agree. Bytes without a token (dropped by the document kernel, as the
``tokenizers`` BPE model drops them) and the merges derived from ranks
(``merge_words_below``) are checked the same way.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toknz_core import docencode
from toknz_core.encode import HEAP_THRESHOLD, MAX_ID, merge_words

from toknz.errors import UnsupportedFeatureError
from toknz.pipeline.bpe import BPE
from toknz.pipeline.bpe_reference import bpe_merge, concat_pair, table_pair
from toknz.pipeline.byte_alphabet import bytes_to_chars

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALPHABET = b"abcd"
#: Longest token the document kernel looks up inline (longer ones: the byte-string table).
INLINE = docencode.CACHE_WORD


# ------------------------------------------------------------------ random models


@st.composite
def merge_models(draw: st.DrawFn, missing: bytes = b"") -> tuple[BPE, dict]:
    """A ``tokenizers``-style model: every byte but ``missing`` a token (ids 0..255 in byte
    order), then merges of earlier tokens, some doubling the last token (long tokens).

    Returns the model and the twin's table ``{(a, b): (rank, new)}`` over ids (a later
    duplicate pair wins, as in ``tokenizers``).
    """
    present = [bytes([b]) for b in range(256) if b not in missing]
    vocab = {bytes_to_chars(t): t[0] for t in present}
    tokens = [bytes([c]) for c in ALPHABET if c not in missing]
    merges: list[tuple[str, str]] = []
    table: dict[tuple[int, int], tuple[int, int]] = {}
    n = draw(st.integers(0, 40))
    for _ in range(n):
        if draw(st.booleans()) and len(tokens[-1]) <= 2 * INLINE:
            a = b = tokens[-1]  # doubling: tokens of 2, 4, ... up to 64 bytes
        else:
            a = draw(st.sampled_from(tokens))
            b = draw(st.sampled_from(tokens))
        merged = a + b
        if bytes_to_chars(merged) not in vocab:
            vocab[bytes_to_chars(merged)] = 256 + len(vocab) - len(present)
            tokens.append(merged)
        sa, sb = bytes_to_chars(a), bytes_to_chars(b)
        table[(vocab[sa], vocab[sb])] = (len(merges), vocab[bytes_to_chars(merged)])
        merges.append((sa, sb))
    return BPE(vocab=vocab, merges=merges), table


@st.composite
def rank_models(draw: st.DrawFn) -> tuple[BPE, dict[bytes, int]]:
    """A tiktoken-style model: the 256 bytes in a random order of ranks, then random
    multi-byte tokens over the alphabet (some longer than ``INLINE``), ids are ranks."""
    order = draw(st.permutations(list(range(256))))
    ranks = {bytes([b]): r for r, b in enumerate(order)}
    word = st.binary(min_size=2, max_size=INLINE + 12).map(
        lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)
    )
    for tok in draw(st.lists(word, max_size=40)):
        ranks.setdefault(tok, len(ranks))
    return BPE.from_ranks(ranks), ranks


def pieces_st() -> st.SearchStrategy[list[bytes]]:
    piece = st.one_of(
        st.binary(min_size=1, max_size=INLINE + 8),
        st.binary(min_size=HEAP_THRESHOLD - 2, max_size=3 * HEAP_THRESHOLD),
        st.builds(lambda c, n: bytes([c]) * n, st.sampled_from(ALPHABET), st.integers(2, 120)),
    ).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b))
    return st.lists(piece, max_size=6)


# ------------------------------------------------------------------ the engine's callers


def kernel_merge(model: BPE, pieces: list[bytes]) -> list[list[int]]:
    """``merge_words`` over the pieces' byte ids with the model's pair table."""
    words = [model._byte_ids[np.frombuffer(p, dtype=np.uint8)] for p in pieces]
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in words], out=offsets[1:])
    flat = np.concatenate(words).astype(np.int32) if words else np.zeros(0, np.int32)
    out, out_offsets = merge_words(flat, offsets, *model.table)
    return [out[out_offsets[i] : out_offsets[i + 1]].tolist() for i in range(len(words))]


def document_encode(model: BPE, pieces: list[bytes]) -> list[list[int]]:
    """The whole-document kernel over the pre-split pieces, with a one-slot cache (every
    piece misses) and with a real one, twice over (the second pass from the cache)."""
    data = np.frombuffer(b"".join(pieces), dtype=np.uint8)
    ends = np.cumsum([len(p) for p in pieces]).astype(np.int64)
    runs = []
    for cache in (np.zeros((1, 8), dtype=np.uint64), docencode.new_word_cache()):
        for _ in range(2):
            runs.append(docencode.encode_pieces(data, ends, *model._fast_tables, cache).tolist())
    assert all(r == runs[0] for r in runs)
    return runs[0]


def flat(lists: list[list[int]]) -> list[int]:
    return [i for x in lists for i in x]


# ------------------------------------------------------------------ tests


@SETTINGS
@given(merge_models(), pieces_st())
def test_merge_rule_every_caller_equals_the_twin(model_table: tuple, pieces: list[bytes]) -> None:
    model, table = model_table
    want = [bpe_merge(list(p), table_pair(table)) for p in pieces]
    assert [list(model._merge_python(p)) for p in pieces] == want
    assert kernel_merge(model, pieces) == want
    assert document_encode(model, pieces) == flat(want)
    model.load_kernels()  # the piece path now merges with the kernel
    assert model.encode_piece_bytes(pieces) == flat(want)


@SETTINGS
@given(rank_models(), pieces_st())
def test_rank_rule_every_caller_equals_the_twin(model_ranks: tuple, pieces: list[bytes]) -> None:
    model, ranks = model_ranks
    merged = [
        [ranks[t] for t in bpe_merge([p[i : i + 1] for i in range(len(p))], concat_pair(ranks))]
        for p in pieces
    ]
    assert [list(model._merge_python(p)) for p in pieces] == merged
    assert kernel_merge(model, pieces) == merged
    # tiktoken's shortcut: a piece that is a token is that token, merges or not
    want = [[ranks[p]] if p in ranks else m for p, m in zip(pieces, merged, strict=True)]
    assert document_encode(model, pieces) == flat(want)
    model.load_kernels()
    assert model.encode_piece_bytes(pieces) == flat(want)


@SETTINGS
@given(
    st.sets(st.sampled_from(ALPHABET), min_size=1, max_size=2)
    .map(bytes)
    .flatmap(lambda missing: st.tuples(st.just(missing), merge_models(missing))),
    pieces_st(),
)
def test_bytes_without_a_token_are_dropped(drawn: tuple, pieces: list[bytes]) -> None:
    """The document kernel drops a byte with no token; its neighbours may then merge."""
    missing, (model, table) = drawn
    want = [bpe_merge([b for b in p if b not in missing], table_pair(table)) for p in pieces]
    assert document_encode(model, pieces) == flat(want)
    # the same engine over -1 symbols: they stay, and nothing merges across them
    cut = [bpe_merge([b if b not in missing else -1 for b in p], table_pair(table)) for p in pieces]
    assert kernel_merge(model, pieces) == cut


@SETTINGS
@given(rank_models())
def test_derived_merges_equal_the_twin_below_each_rank(model_ranks: tuple) -> None:
    """A ranks model's merge list: each token split by the merges below its own rank."""
    model, ranks = model_ranks
    by_id = {r: t for t, r in ranks.items()}
    want = []
    for r in sorted(by_id):
        tok = by_id[r]
        if len(tok) < 2:
            continue
        parts = bpe_merge([tok[i : i + 1] for i in range(len(tok))], concat_pair(ranks), below=r)
        if len(parts) == 2:
            want.append((bytes_to_chars(parts[0]), bytes_to_chars(parts[1])))
    assert model.derived_merges() == want


def test_ids_beyond_the_table_are_refused_by_name() -> None:
    """A model id above ``MAX_ID`` cannot be held by the pair table: a one-line error, and
    the start-up path (no table) still encodes."""
    vocab = {bytes_to_chars(bytes([b])): b for b in range(256)}
    vocab[bytes_to_chars(b"ab")] = MAX_ID + 1
    model = BPE(vocab=vocab, merges=[(bytes_to_chars(b"a"), bytes_to_chars(b"b"))])
    assert model._merge_python(b"abc") == (MAX_ID + 1, ord("c"))
    with pytest.raises(UnsupportedFeatureError, match=f"id {MAX_ID + 1:,} is above"):
        _ = model.table


@SETTINGS
@given(merge_models(), pieces_st())
def test_pair_table_is_held_once(model_table: tuple, pieces: list[bytes]) -> None:
    """Once the document tables are packed, the pair table is a view into the blob (one
    copy per model), and every caller still merges as the twin."""
    from toknz_core.pretok import CL100K

    from toknz.pipeline.unicode_tables import load_table

    model, table = model_table
    blob = model._packed_tables(CL100K, load_table())[0]
    assert all(np.shares_memory(blob, a) for a in model.table)
    want = [bpe_merge(list(p), table_pair(table)) for p in pieces]
    assert kernel_merge(model, pieces) == want
    assert document_encode(model, pieces) == flat(want)
