"""Replay kernel and LP scan kernels against slow pure-Python twins; brute-force recounts on real tokenizers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toknz.analysis.lp import build_inputs
from toknz.analysis.replay import PairCounts, replay_arrays

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- twins


def pair_counts_of(words: list[list[int]], counts: list[int]) -> Counter[tuple[int, int]]:
    out: Counter[tuple[int, int]] = Counter()
    for w, c in zip(words, counts, strict=True):
        for x, y in zip(w, w[1:], strict=False):
            out[(x, y)] += c
    return out


def merge_word(word: list[int], a: int, b: int, z: int) -> list[int]:
    out: list[int] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(z)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def replay_reference(
    words: list[list[int]], counts: list[int], merges: list[tuple[int, int, int]]
) -> tuple[dict[tuple[int, int], int], list[int], list[dict[tuple[int, int], int]]]:
    """The obvious replay: recount every pair from scratch after every merge."""
    words = [list(w) for w in words]
    current = pair_counts_of(words, counts)
    initial = dict(current)
    merge_counts: list[int] = []
    deltas: list[dict[tuple[int, int], int]] = []
    for a, b, z in merges:
        merge_counts.append(current.get((a, b), 0))
        words = [merge_word(w, a, b, z) for w in words]
        after = pair_counts_of(words, counts)
        deltas.append(
            {
                k: after.get(k, 0) - current.get(k, 0)
                for k in set(current) | set(after)
                if after.get(k, 0) != current.get(k, 0)
            }
        )
        current = after
    return initial, merge_counts, deltas


def unkey(k: int) -> tuple[int, int]:
    return (k >> 32, k & 0xFFFFFFFF)


def as_reference(pc: PairCounts) -> tuple[dict, list[int], list[dict]]:
    initial = {
        unkey(k): c for k, c in zip(pc.init_keys.tolist(), pc.init_counts.tolist(), strict=True)
    }
    deltas = []
    off = pc.delta_offsets.tolist()
    keys = pc.delta_keys.tolist()
    vals = pc.delta_values.tolist()
    for t in range(pc.steps):
        step = {
            unkey(k): v
            for k, v in zip(keys[off[t] : off[t + 1]], vals[off[t] : off[t + 1]], strict=True)
        }
        assert len(step) == off[t + 1] - off[t], "a pair listed twice in one step"
        deltas.append(step)
    return initial, pc.merge_counts.tolist(), deltas


class _Merges:
    """The three arrays :func:`replay_arrays` reads from a MergeList."""

    def __init__(self, merges: list[tuple[int, int, int]]) -> None:
        self.left = np.array([m[0] for m in merges], dtype=np.int32)
        self.right = np.array([m[1] for m in merges], dtype=np.int32)
        self.new = np.array([m[2] for m in merges], dtype=np.int32)


def run_kernel(words: list[list[int]], counts: list[int], merges: list[tuple[int, int, int]]):
    symbols = np.array([s for w in words for s in w], dtype=np.int32)
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in words], out=offsets[1:])
    return replay_arrays(symbols, offsets, np.array(counts, dtype=np.int64), _Merges(merges))  # type: ignore[arg-type]


# ----------------------------------------------------------------- strategies

ALPHABET = 5


@st.composite
def replay_cases(draw: st.DrawFn):
    words = draw(
        st.lists(
            st.lists(st.integers(0, ALPHABET - 1), min_size=0, max_size=14),
            min_size=0,
            max_size=12,
        )
    )
    counts = draw(
        st.lists(
            st.one_of(st.integers(1, 9), st.integers(2**33, 2**40)),
            min_size=len(words),
            max_size=len(words),
        )
    )
    n_merges = draw(st.integers(0, 12))
    merges: list[tuple[int, int, int]] = []
    next_id = ALPHABET
    for _ in range(n_merges):
        known = next_id
        a = draw(st.integers(0, known - 1))
        b = draw(st.integers(0, known - 1))
        # Mostly a new token; sometimes an id that exists already (a re-made token).
        if draw(st.integers(0, 5)) == 0:
            z = draw(st.integers(0, known - 1))
        else:
            z = next_id
            next_id += 1
        merges.append((a, b, z))
    return words, counts, merges


@settings(max_examples=300, deadline=None)
@given(replay_cases())
def test_replay_kernel_equals_reference_twin(case) -> None:
    words, counts, merges = case
    got = as_reference(run_kernel(words, counts, merges))
    want = replay_reference(words, counts, merges)
    assert got[0] == want[0], "initial pair counts"
    assert got[1] == want[1], "merge counts"
    for t, (g, w) in enumerate(zip(got[2], want[2], strict=True)):
        assert g == w, f"deltas of step {t}"


def test_absent_merge_gets_zero_count_and_no_deltas() -> None:
    words = [[0, 1, 0, 1], [2, 2, 2]]
    pc = run_kernel(words, [3, 5], [(3, 4, 9), (0, 1, 10), (2, 2, 11), (7, 7, 12)])
    assert pc.merge_counts.tolist() == [0, 6, 10, 0]
    assert pc.delta_offsets[1] == 0  # step 0: nothing
    assert pc.delta_offsets[4] == pc.delta_offsets[3]  # step 3: nothing
    # Overlapping pairs: "2 2 2" holds (2, 2) twice, merges once, leaving (11, 2).
    _, _, deltas = as_reference(pc)
    assert deltas[2] == {(2, 2): -10, (11, 2): 5}


def test_counts_at_matches_recount() -> None:
    words = [[0, 1, 2, 0, 1], [1, 2, 1, 2]]
    merges = [(0, 1, 5), (1, 2, 6), (5, 6, 7)]
    pc = run_kernel(words, [2, 7], merges)
    state = [list(w) for w in words]
    for t, (a, b, z) in enumerate(merges):
        want = {((x << 32) | y): c for (x, y), c in pair_counts_of(state, [2, 7]).items()}
        assert pc.counts_at(t) == want
        state = [merge_word(w, a, b, z) for w in state]


# ----------------------------------------------------------------- real tokenizers


@pytest.mark.parametrize("name", ["cl100k_base", "llama2"])
def test_replay_equals_brute_force_recount_on_real_tokenizer(name: str, toknz_tok) -> None:
    """Byte-level (cl100k) and SentencePiece-style (llama2): kernel counts = recount at sampled steps."""
    from toknz.analysis.merges import merge_list
    from toknz.analysis.samples import Text, load_sample

    tok = toknz_tok(name)
    text = (REPO / "corpora/en/austen_emma.txt").read_text(encoding="utf-8")[:20_000]
    text += (REPO / "corpora/code/python_stdlib.txt").read_text(encoding="utf-8")[:10_000]
    sample = load_sample(tok, "mixed", Text(text), threads=1)
    merges = merge_list(tok, 400)
    pc = replay_arrays(sample.symbols, sample.offsets, sample.counts, merges)
    words = [
        sample.symbols[sample.offsets[i] : sample.offsets[i + 1]].tolist()
        for i in range(len(sample.counts))
    ]
    counts = sample.counts.tolist()
    sampled = {0, 1, 7, 50, 199, 400}
    for t in range(len(merges) + 1):
        if t in sampled:
            want = {((x << 32) | y): c for (x, y), c in pair_counts_of(words, counts).items()}
            assert pc.counts_at(t) == want, f"{name}: step {t}"
            if t < len(merges):
                a, b = int(merges.left[t]), int(merges.right[t])
                assert pc.merge_counts[t] == want.get((a << 32) | b, 0)
        if t < len(merges):
            a, b, z = int(merges.left[t]), int(merges.right[t]), int(merges.new[t])
            words = [merge_word(w, a, b, z) for w in words]
    assert pc.merge_counts[:20].min() > 0, "the first merges of a real tokenizer occur in English"


# ----------------------------------------------------------------- LP scan kernels


def mixed_counts_by_step(pcs: list[PairCounts], weights: list[float]) -> list[dict[int, float]]:
    """Brute force: every pair's mixed count before each step."""
    steps = pcs[0].steps
    out = []
    for t in range(steps):
        mixed: dict[int, float] = {}
        for pc, w in zip(pcs, weights, strict=True):
            for k, c in pc.counts_at(t).items():
                mixed[k] = mixed.get(k, 0.0) + w * c
        out.append(mixed)
    return out


@settings(max_examples=60, deadline=None)
@given(replay_cases(), replay_cases(), st.floats(0.05, 0.95))
def test_scan_kernels_equal_brute_force(case_a, case_b, share) -> None:
    from toknz_core.lpscan import constraint_counts, find_violations

    words_a, counts_a, merges = case_a
    words_b, counts_b, _ = case_b
    merges = [m for m in merges if m[2] >= ALPHABET]  # ids both samples can hold
    pcs = [run_kernel(words_a, counts_a, merges), run_kernel(words_b, counts_b, merges)]
    keys = np.array([(a << 32) | b for a, b, _ in merges], dtype=np.int64)
    data = build_inputs(pcs, keys)
    weights = np.array(
        [share / max(pcs[0].total_pairs, 1), (1 - share) / max(pcs[1].total_pairs, 1)]
    )
    rng = np.random.default_rng(len(merges))
    merge_slack = rng.uniform(0, 0.3, data.steps) * (rng.uniform(size=data.steps) < 0.5)
    pair_slack = rng.uniform(0, 0.3, data.n_pairs) * (rng.uniform(size=data.n_pairs) < 0.5)
    active = np.ones(data.steps, dtype=np.bool_)
    got_t, got_p, _ = find_violations(
        weights, merge_slack, pair_slack, active, data.replayed(), 1e-9, 10**6, 10**9, False
    )  # fmt: skip
    global_keys = np.unique(
        np.concatenate([keys] + [pc.init_keys for pc in pcs] + [pc.delta_keys for pc in pcs])
    )
    index = {int(k): i for i, k in enumerate(global_keys.tolist())}
    want = set()
    for t, mixed in enumerate(mixed_counts_by_step(pcs, list(weights))):
        m = int(keys[t])
        mval = sum(w * int(pc.merge_counts[t]) for pc, w in zip(pcs, weights, strict=True))
        for k, v in mixed.items():
            p = index[k]
            if k != m and v - pair_slack[p] > mval + merge_slack[t] + 1e-9:
                want.add((t, p))
    assert set(zip(got_t.tolist(), got_p.tolist(), strict=True)) == want
    # Constraint rows: merge count minus pair count, per category, at each requested step.
    req = sorted(want)
    if req:
        diff = constraint_counts(
            np.array([t for t, _ in req], dtype=np.int32), np.array([p for _, p in req], dtype=np.int32),
            data.n_pairs, data.replayed(),
        )  # fmt: skip
        for r, (t, p) in enumerate(req):
            for i, pc in enumerate(pcs):
                at = pc.counts_at(t)
                assert diff[r, i] == int(pc.merge_counts[t]) - at.get(int(global_keys[p]), 0)


def test_replay_samples_on_threads_equals_one_by_one() -> None:
    from types import SimpleNamespace

    from toknz.analysis.replay import replay_sample, replay_samples

    rng = np.random.default_rng(3)
    merges = _Merges([(0, 1, 5), (5, 2, 6), (3, 3, 7), (6, 4, 8), (1, 1, 9)])
    samples = []
    for _ in range(6):
        words = [rng.integers(0, 5, int(rng.integers(1, 9))).tolist() for _ in range(30)]
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in words], out=offsets[1:])
        samples.append(
            SimpleNamespace(
                symbols=np.array([s for w in words for s in w], dtype=np.int32),
                offsets=offsets,
                counts=rng.integers(1, 20, len(words)).astype(np.int64),
            )
        )
    one = [replay_sample(s, merges) for s in samples]  # type: ignore[arg-type]
    for threads in (1, 2, 3):
        got = replay_samples(samples, merges, threads=threads)  # type: ignore[arg-type]
        assert len(got) == len(one)
        for a, b in zip(got, one, strict=True):
            for field in ("init_keys", "init_counts", "merge_counts", "delta_offsets",
                          "delta_keys", "delta_values"):  # fmt: skip
                assert np.array_equal(getattr(a, field), getattr(b, field))
