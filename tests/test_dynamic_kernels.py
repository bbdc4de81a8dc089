"""The kernels of toknz_core.dynamic against slow, obvious pure-Python twins.

(The merge as a whole is checked against its twin in tests/test_dynamic.py; here each phase,
the boundary rule, and the inputs that path does not reach: large ids, many reuses.)
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import numpy as np
import pytest
from conftest import require_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dynamic import o200k, twin
from toknz_core import dynamic as K

from toknz.dynamic import FlatIds, boundaries_for, encode_dynamic, merge_batch, unmerge
from toknz.errors import UsageError

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- boundary rule


def twin_cuts(
    seqs: list[list[int]], props: list[int], ends: set[int], rule: int
) -> list[list[int]]:
    """The rule of boundary_cuts, position by position (0/1 per position, per sequence)."""
    out = []
    at = 0
    for seq in seqs:
        row: list[int] = []
        base: list[int] = []  # the cut before the lone-whitespace rule
        for i, t in enumerate(seq):
            f = props[t] & 0xFF
            p = props[seq[i - 1]] & 0xFF if i else 0
            c = i == 0
            c |= rule == K.RULE_PRETOKEN and at in ends
            both_ws = bool(f & K.ALL_WS and p & K.ALL_WS)
            c |= not both_ws and bool(f & K.HAS_WS or p & K.WS_INSIDE)
            c |= bool((f | p) & K.ADDED)
            c |= (
                rule == K.RULE_WORD_HYPHEN
                and bool(f & K.PUNCT)
                and not f & K.HYPHEN
                and not p & K.PUNCT
            )
            base.append(int(c))
            lone = i > 0 and bool(p & K.ALL_WS) and not f & K.HAS_WS
            row.append(int(c or (lone and bool(p & K.WS_INSIDE or not base[i - 1]))))
            at += props[t] >> 8
        out.append(row)
    return out


@st.composite
def cut_cases(draw: Any) -> tuple[list[list[int]], list[int], list[int], int]:
    n_tok = draw(st.integers(1, 8))
    flag = st.sampled_from(
        [
            0,
            K.HAS_WS,
            K.HAS_WS | K.ALL_WS,
            K.HAS_WS | K.ALL_WS | K.WS_INSIDE,
            K.HAS_WS | K.WS_INSIDE,
            K.PUNCT,
            K.PUNCT | K.HYPHEN,
            K.ADDED,
        ]
    )
    props = [(draw(st.integers(0, 3)) << 8) | draw(flag) for _ in range(n_tok)]
    seqs = [
        draw(st.lists(st.integers(0, n_tok - 1), max_size=10))
        for _ in range(draw(st.integers(0, 4)))
    ]
    total = sum(props[t] >> 8 for s in seqs for t in s)
    ends = sorted(draw(st.lists(st.integers(0, total + 1), max_size=8)))
    return (
        seqs,
        props,
        ends,
        draw(st.sampled_from([K.RULE_PRETOKEN, K.RULE_WORD, K.RULE_WORD_HYPHEN])),
    )


@SETTINGS
@given(cut_cases())
def test_boundary_cuts_equals_twin(case: Any) -> None:
    seqs, props, ends, rule = case
    flat = np.array([t for s in seqs for t in s], dtype=np.int64)
    seq_off = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int64)
    byte_len = [sum(props[t] >> 8 for t in s) for s in seqs]
    doc_off = np.cumsum([0, *byte_len]).astype(np.int64)
    cut, bad_id, bad_text = K.boundary_cuts(
        flat,
        seq_off,
        np.array(props, dtype=np.int32),
        np.array(ends, dtype=np.int64),
        doc_off,
        rule,
    )
    assert (bad_id, bad_text) == (-1, -1)
    want = twin_cuts(seqs, props, set(ends), rule)
    assert cut.tolist() == [c for row in want for c in row]


def test_boundary_cuts_reports_bad_input() -> None:
    props = np.array([1 << 8, 2 << 8], dtype=np.int32)
    ends = np.zeros(0, dtype=np.int64)
    args = (np.array([0, 5]), np.array([0, 2]), props, ends, np.array([0, 2]), K.RULE_WORD)
    assert K.boundary_cuts(*args)[1:] == (1, -1)  # id 5 is outside the table
    ids = np.array([0, 1, 0])
    _, bad_id, bad_text = K.boundary_cuts(
        ids, np.array([0, 2, 3]), props, ends, np.array([0, 2, 3]), K.RULE_PRETOKEN
    )
    assert (bad_id, bad_text) == (-1, 1)  # text 0 spells 3 bytes, not 2


# ----------------------------------------------------------------------------- merge phases


@SETTINGS
@given(st.lists(st.integers(0, 3), max_size=30), st.lists(st.booleans(), min_size=30, max_size=30))
def test_segment_words_equals_twin(ids: list[int], flags: list[bool]) -> None:
    cut = np.array([1] + [int(f) for f in flags[1 : len(ids)]], dtype=np.uint8)[: len(ids)]
    seg_start, seg_word, words, word_off, counts = K.segment_words(np.array(ids, np.int64), cut)
    starts = [i for i in range(len(ids)) if cut[i]]
    segs = [ids[a:b] for a, b in zip(starts, [*starts[1:], len(ids)], strict=False)]
    assert seg_start.tolist() == [*starts, len(ids)]
    distinct = [words[word_off[w] : word_off[w + 1]].tolist() for w in range(len(counts))]
    assert Counter({tuple(w): int(c) for w, c in zip(distinct, counts, strict=True)}) == Counter(
        tuple(s) for s in segs if len(s) > 1
    )
    for s, w in zip(segs, seg_word.tolist(), strict=True):
        assert (w == -1) if len(s) < 2 else distinct[w] == s


# Small alphabets and long segments: many merges rebuild an existing token another way.
REUSE = st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=40), min_size=1, max_size=4)


@SETTINGS
@given(REUSE, st.one_of(st.none(), st.integers(0, 30)), st.integers(1, 3))
def test_merge_with_reuse_equals_twin(seqs: list[list[int]], budget: int | None, mc: int) -> None:
    got = merge_batch(seqs, budget=budget, min_count=mc, first_new_id=50)
    want = twin(seqs, [[] for _ in seqs], budget, mc, 50)
    assert [s.tolist() for s in got.ids] == want["ids"]
    assert got.merges == want["merges"] and got.definitions == want["definitions"]
    assert unmerge(got) == seqs


@SETTINGS
@given(REUSE, st.integers(1, 3))
def test_large_ids_equal_twin(seqs: list[list[int]], mc: int) -> None:
    """Base ids near 2**31 - 2 (the largest allowed) and new ids past 2**31."""
    big = [[2**31 - 2 - t for t in s] for s in seqs]
    first = 2**31 + 5
    got = merge_batch(big, min_count=mc, first_new_id=first)
    want = twin(big, [[] for _ in big], None, mc, first)
    assert [s.tolist() for s in got.ids] == want["ids"]
    assert got.merges == want["merges"] and got.definitions == want["definitions"]


def test_definitions_and_merge_words_examples() -> None:
    # 5 = (1, 2), 6 = (5, 5) = 1 2 1 2
    ids, off = K.definitions(np.array([1, 5]), np.array([2, 5]), np.array([2, 4]), 4)
    assert ids.tolist() == [1, 2, 1, 2, 1, 2] and off.tolist() == [0, 2, 6]
    words = np.array([7, 7, 7])
    out = K.merge_words(words, np.array([0, 3]), np.array([1]), 7, -1, 2)
    assert out[0].tolist() == [2] and words[:2].tolist() == [8, 7]
    assert out[4].tolist() == [2] and out[5].tolist() == [1]  # count 2 when chosen, 1 removed


# ----------------------------------------------------------------------------- the flat path


def test_flat_ids_equal_lists() -> None:
    seqs = [[1, 2, 3, 1, 2], [], [1, 2, 1, 2]]
    bounds = [[3], [], [2]]
    a = merge_batch(seqs, bounds, first_new_id=10)
    flat = np.array([t for s in seqs for t in s], dtype=np.uint32)
    b = merge_batch(FlatIds(flat, np.array([0, 5, 5, 9])), bounds, first_new_id=10)
    assert [s.tolist() for s in a.ids] == [s.tolist() for s in b.ids] == [[10, 3, 10], [], [10, 10]]
    assert a.merges == b.merges and a.offsets.tolist() == [0, 3, 3, 5]
    assert [s.tolist() for s in a.spans] == [s.tolist() for s in b.spans]
    assert "3 sequences, 9 -> 5 tokens" in repr(a)


CODE = [
    "def f(x):\n    return x + 1  # one\n\ndef g(y):\n    return f(y) * 2\n",
    "for (int i = 0; i < n; i++) { total += a[i]; }  // C-style loop, again: i++ i++",
    "  mixed   spaces\t\ttabs\r\n\r\nand CRLF — émigré naïve café café ÇA VA?",
    "",
    "数字 12345 678901 12345 ... !!! ??? ---- well-known well-known",
    "Minixhofer, Minixhofer; Vulićević-Vulićević zzyzx zzyzx qwxyz qwxyz",
]


@pytest.mark.parametrize("rule", ["pretoken", "word", "word+hyphen"])
def test_encode_batch_dynamic_equals_list_path(rule: str) -> None:
    """encode_batch(dynamic=...) (NumPy ids, flags straight to the kernel) = lists + boundaries_for."""
    tok = o200k()
    got = tok.encode_batch(CODE, dynamic={"boundary": rule})
    base = tok.encode_batch(CODE)
    bounds = boundaries_for(tok, CODE, rule, ids=base)
    want = merge_batch(base, bounds, first_new_id=tok.n_vocab)
    assert [s.tolist() for s in got.ids] == [s.tolist() for s in want.ids]
    assert got.merges == want.merges and got.n_after < got.n_before
    assert unmerge(got) == base
    flat = FlatIds(*tok.encode_batch_to_numpy(CODE))
    assert [b.tolist() for b in boundaries_for(tok, CODE, rule, ids=flat)] == [
        b.tolist() for b in bounds
    ]
    with pytest.raises(UsageError, match="id sequences"):
        encode_dynamic(tok, CODE[:2], flat, {"boundary": rule})


TEXTS = st.lists(
    st.text(
        alphabet=st.sampled_from(list("ab 1-.\n\té日ß'") + ["\u3000", "\U0001f600"]), max_size=30
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_pretoken_cuts_equal_python_pretokenizer(texts: list[str]) -> None:
    """The kernel's split (texts joined, byte offsets from character counts) = the pre-tokenizer's."""
    import copy

    tok = o200k()
    slow = copy.copy(tok)
    slow._compiled_kind = lambda: None  # type: ignore[method-assign]
    ids = tok.encode_batch(texts)
    fast = boundaries_for(tok, texts, ids=ids)
    assert [b.tolist() for b in fast] == [b.tolist() for b in boundaries_for(slow, texts, ids=ids)]


@functools.cache
def qwen3() -> Any:
    require_file("qwen3")
    import toknz

    return toknz.load("qwen3")


NFC_TEXTS = st.lists(
    st.text(
        alphabet=st.sampled_from(list("ae 1.\n'") + ["\u0301", "\u0308", "é", "Å", "\u212b"]),
        max_size=30,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NFC_TEXTS, st.sampled_from(["o200k", "qwen3"]))
def test_spelled_cuts_equal_text_cuts(texts: list[str], name: str) -> None:
    """Splitting the bytes the ids spell (encode_dynamic) = splitting the normalized texts."""
    from toknz.dynamic import _cuts, _flat_ids

    tok = o200k() if name == "o200k" else qwen3()  # qwen3 normalizes (NFC) first
    flat, seq_off = _flat_ids(FlatIds(*tok.encode_batch_to_numpy(texts)))
    spelled = _cuts(tok, texts, "pretoken", flat, seq_off, spelled=True)
    assert spelled.tolist() == _cuts(tok, texts, "pretoken", flat, seq_off).tolist()


def test_benchmark_profile_phases_run() -> None:
    """benchmarks/dynamic.py --profile times the kernels' phases one by one: it must keep
    calling them as the library does (a changed return shape broke it once)."""
    from dynamic import encoder_starts, profile_phases  # benchmarks/dynamic.py, on the path

    import toknz
    from toknz.dynamic import FlatIds

    tok = toknz.load("o200k_base")
    _ = tok._text_encoder  # loaded: short batches no longer take the start-up path
    texts = ["abcabc abcabc", "abcabc de de"]
    flat = FlatIds(*tok.encode_batch_to_numpy(texts))
    for starts in (None, encoder_starts(tok, texts)[2]):
        phases = profile_phases(tok, texts, flat, starts, 1)
        assert {"rule", "segments", "merge loop", "expand", "total"} <= set(phases)
        assert all(v >= 0 for v in phases.values())


LONG_TEXTS = st.lists(
    st.text(alphabet=st.sampled_from(list("ab 1-.\n\té日ß'") + ["\u3000"]), max_size=30).map(
        lambda t: t.replace("a", "a" * 30)  # pieces past the word cache's 24 bytes, cut in parts
    ),
    min_size=1,
    max_size=4,
)


def _encoder_starts(tok: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert tok._text_encoder is not None  # loaded: short batches no longer take the Python path
    got = tok._compiled_batch(texts, frozenset(), frozenset(), 1, False, marked=True)
    assert got is not None, "the compiled batch path must be there"
    return got  # type: ignore[no-any-return]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(TEXTS, LONG_TEXTS))
def test_encoder_starts_equal_python_pieces(texts: list[str]) -> None:
    """encode_documents_marked flags the first id of every pre-token: the Python
    pre-tokenizer's pieces, each merged alone by the Python BPE path (the twin)."""
    from toknz.pipeline.pretokenize import pre_tokenize

    tok = o200k()
    ids, offsets, starts = _encoder_starts(tok, texts)
    want_ids: list[int] = []
    want_starts: list[int] = []
    for text in texts:
        for piece in pre_tokenize(tok.pre_tokenizer, text):
            got = tok.model._encode_bytes_pieces([piece.encode("utf-8")])
            want_ids += got
            want_starts += [1] + [0] * (len(got) - 1)
    assert ids.tolist() == want_ids
    assert starts.tolist() == want_starts
    assert offsets.tolist() == tok.encode_batch_to_numpy(texts)[1].tolist()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(NFC_TEXTS, LONG_TEXTS), st.sampled_from(["o200k", "qwen3"]))
def test_marked_cuts_equal_spelled_cuts(texts: list[str], name: str) -> None:
    """The rule on the encoder's pre-token starts = the rule on a split of the bytes the ids spell."""
    from toknz.dynamic import _cuts, _token_tables

    tok = o200k() if name == "o200k" else qwen3()
    ids, offsets, starts = _encoder_starts(tok, texts)
    flat = ids.astype(np.int64)
    cut, bad = K.marked_cuts(flat, offsets, _token_tables(tok).props, starts)
    assert bad == -1
    assert cut.tolist() == _cuts(tok, texts, "pretoken", flat, offsets, spelled=True).tolist()


def test_encode_batch_dynamic_takes_the_encoders_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """encode_batch(dynamic=...) reads the pre-tokens from the encoder, never splitting again,
    and merges exactly as the split of the spelled bytes does; bad flags are refused."""
    tok = o200k()
    _ = tok._text_encoder  # loaded: short batches no longer take the start-up path
    texts = [*CODE, "Grüße aus Köln — 東京都の天気は晴れ、東京都 " * 3]
    flat = FlatIds(*tok.encode_batch_to_numpy(texts))
    want = encode_dynamic(tok, texts, flat, {})  # the spelled split

    def no_split(*args: Any) -> None:
        raise AssertionError("split again")

    monkeypatch.setattr(K, "merge_spelled", no_split)
    got = tok.encode_batch(texts, dynamic={})
    assert got.flat_ids.tolist() == want.flat_ids.tolist()
    assert got.flat_spans.tolist() == want.flat_spans.tolist() and got.merges == want.merges
    with pytest.raises(UsageError, match="pre-token flags"):
        encode_dynamic(tok, texts, flat, {}, starts=np.ones(3, dtype=np.uint8))
