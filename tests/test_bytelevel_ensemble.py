"""Byte-level ensembles of LMs with different vocabularies equal their brute-force formulas.

Two toy tokenizers with different merges over the same byte alphabet, each
with a toy token LM (tests/bytelm_toys.py) whose byte distribution is known
by enumerating its finitely many token sequences. The references below are
computed from those enumerations (never from ByteLM), in probability space,
while the ensembles work in log space.
"""

from __future__ import annotations

import functools
import math
from collections import Counter

import numpy as np
import pytest
from bytelm_toys import (
    ALPHABET,
    FiniteTokenLM,
    bigram_weights,
    brute_force,
    canonical_lm,
    random_weights,
    texts,
    toy_tokenizer,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toknz.bytelevel import EOT, ByteLM
from toknz.bytelevel.ensemble import ByteEnsemble, ProxyTuned, bits_per_byte, sample_bytes
from toknz.errors import UsageError
from toknz.train import train_from_counts

# Prompts inside the toy LMs' support (texts of at most 4 characters). Token
# boundaries differ between the two tokenizers: b"a" is mid-token for "as" in
# tokenizer A and a whole token in B; b"ss" is mid-token for "ssa" in B; the
# UTF-8 cuts are mid-character (mid-token for both).
PROMPTS = [
    b"",
    b"a",
    b"as",
    b" a",
    b" as",
    b"s",
    b"ss",
    b"ssa",
    b"aas",
    b"a's",
    b"'",
    b"11",
    b"111",
    "é".encode()[:1],
    "é".encode(),
    " é".encode()[:2],
    "aé".encode()[:2],
    "éé".encode()[:3],
    b"  ",
    b"a1 ",
]


@functools.cache
def toys() -> dict:
    """Two tokenizers with different merges and token LMs over them (built once)."""
    tok_a = toy_tokenizer()
    tok_b = train_from_counts(
        {
            b"sa": 50,
            b"ssa": 30,
            b" s": 40,
            b" ss": 25,
            b"ss": 20,
            b"1": 5,
            "aé".encode(): 12,
            "é".encode(): 9,
            b"'a": 7,
            b"a'": 4,
        },
        vocab_size=256 + 10,
        pattern="cl100k",
        special_tokens=("<|endoftext|>",),
    )
    return {
        "tok_a": tok_a,
        "tok_b": tok_b,
        "lm_a": canonical_lm(tok_a, random_weights(3), max_len=4),
        "lm_b": canonical_lm(tok_b, bigram_weights(5, tok_b.n_vocab), max_len=4),
        "lm_b2": canonical_lm(tok_b, random_weights(8), max_len=4),
        "lm_short": canonical_lm(tok_b, random_weights(9), max_len=2),
    }


def member(name: str, tok: str) -> tuple[ByteLM, object, object]:
    """A fresh ByteLM over toy LM ``name`` with tokenizer ``tok``, and the (lm, tokenizer) pair."""
    t = toys()
    return ByteLM(t[name], t[tok]), t[name], t[tok]


def bf(name: str, tok: str, prefix: bytes) -> np.ndarray:
    """Brute-force next-byte probabilities (not logs) of toy LM ``name`` after ``prefix``."""
    return _bf(name, tok, prefix).copy()


@functools.cache
def _bf(name: str, tok: str, prefix: bytes) -> np.ndarray:
    t = toys()
    lp, nxt = brute_force(t[name], t[tok], prefix)
    return np.zeros(257) if lp == -math.inf else np.exp(nxt)


def ref_mixture(dists: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """sum_i w_i p_i over the members whose distribution exists (weights renormalized)."""
    live = [(w, p) for w, p in zip(weights, dists, strict=True) if p.sum() > 0 and w > 0]
    total = sum(w for w, _ in live)
    return sum((w / total) * p for w, p in live)


def ref_product(dists: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """prod_i p_i ** w_i, zero where a positive-weight p_i is zero, normalized."""
    q = np.ones(257)
    for w, p in zip(weights, dists, strict=True):
        if w > 0:
            q *= np.where(p > 0, p, 0.0) ** w
        elif w < 0:
            assert np.all(p[q > 0] > 0), "reference undefined: unbounded product"
            q = np.where(q > 0, q * np.where(p > 0, p, 1.0) ** w, 0.0)
    return q / q.sum()


def assert_dist(got: np.ndarray, want: np.ndarray) -> None:
    """``got`` (log-probabilities) equals ``want`` (probabilities) to 1e-9, zeros exactly."""
    assert got.shape == (257,) and got.dtype == np.float64
    assert np.array_equal(np.isfinite(got), want > 0)
    fin = want > 0
    np.testing.assert_allclose(got[fin], np.log(want[fin]), rtol=0, atol=1e-9)
    assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------- the toys differ


def test_toys_have_different_vocabularies_and_distributions() -> None:
    t = toys()
    assert t["tok_a"].encode_ordinary("as") != t["tok_b"].encode_ordinary("as")
    bytes_a = {t["tok_a"].decode_single_token_bytes(i) for i in range(t["tok_a"].n_vocab - 1)}
    bytes_b = {t["tok_b"].decode_single_token_bytes(i) for i in range(t["tok_b"].n_vocab - 1)}
    assert b"as" in bytes_a - bytes_b and b"ssa" in bytes_b - bytes_a
    # The members disagree, so a wrong weight changes the mixture visibly.
    gaps = [np.abs(bf("lm_a", "tok_a", p) - bf("lm_b", "tok_b", p)).max() for p in PROMPTS]
    assert sum(g > 1e-2 for g in gaps) >= len(PROMPTS) // 2


# --------------------------------------------------------------------- next-byte distributions


@pytest.mark.parametrize("weights", [(0.3, 0.7), (3.0, 7.0), (1.0, 0.0)])
def test_mixture_matches_brute_force(weights: tuple[float, float]) -> None:
    a, *_ = member("lm_a", "tok_a")
    b, *_ = member("lm_b", "tok_b")
    ens = ByteEnsemble([a, b], list(weights))
    for prefix in PROMPTS:
        want = ref_mixture([bf("lm_a", "tok_a", prefix), bf("lm_b", "tok_b", prefix)], [*weights])
        assert_dist(ens.next_byte_logprobs(prefix), want)


@pytest.mark.parametrize("weights", [(0.6, 0.9), (0.5, 0.5), (1.5, -0.5)])
def test_product_matches_brute_force(weights: tuple[float, float]) -> None:
    a, *_ = member("lm_a", "tok_a")
    b, *_ = member("lm_b", "tok_b")
    ens = ByteEnsemble([a, b], list(weights), mode="product")
    for prefix in PROMPTS:
        want = ref_product([bf("lm_a", "tok_a", prefix), bf("lm_b", "tok_b", prefix)], [*weights])
        assert_dist(ens.next_byte_logprobs(prefix), want)


def test_default_weights_are_equal() -> None:
    a, *_ = member("lm_a", "tok_a")
    b, *_ = member("lm_b", "tok_b")
    mix = ByteEnsemble([a, b])
    prod = ByteEnsemble([a, b], mode="product")
    for prefix in [b"", b"a", b"ss"]:
        dists = [bf("lm_a", "tok_a", prefix), bf("lm_b", "tok_b", prefix)]
        assert_dist(mix.next_byte_logprobs(prefix), ref_mixture(dists, [0.5, 0.5]))
        assert_dist(prod.next_byte_logprobs(prefix), ref_product(dists, [0.5, 0.5]))


_chars = [c.encode() for c in ALPHABET]


@st.composite
def prompts(draw: st.DrawFn) -> bytes:
    """A text of up to 4 alphabet characters, cut at any byte (maybe mid-character)."""
    text = b"".join(draw(st.lists(st.sampled_from(_chars), max_size=4)))
    return text[: draw(st.integers(0, len(text)))]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=prompts(), w=st.floats(0.05, 0.95))
def test_random_prompts_mixture_and_product(prefix: bytes, w: float) -> None:
    a, *_ = member("lm_a", "tok_a")
    b, *_ = member("lm_b2", "tok_b")
    dists = [bf("lm_a", "tok_a", prefix), bf("lm_b2", "tok_b", prefix)]
    mix = ByteEnsemble([a, b], [w, 1 - w])
    assert_dist(mix.next_byte_logprobs(prefix), ref_mixture(dists, [w, 1 - w]))
    prod = ByteEnsemble([a, b], [w, 2 * w - 0.3], mode="product")
    assert_dist(prod.next_byte_logprobs(prefix), ref_product(dists, [w, 2 * w - 0.3]))


def test_nested_ensembles() -> None:
    a, *_ = member("lm_a", "tok_a")
    b, *_ = member("lm_b", "tok_b")
    c, *_ = member("lm_b2", "tok_b")
    inner = ByteEnsemble([a, b], [0.5, 0.5])
    outer = ByteEnsemble([inner, c], [0.4, 0.6])  # = 0.2 A + 0.2 B + 0.6 C
    prod = ByteEnsemble([inner, c], [0.7, 0.6], mode="product")
    for prefix in [b"", b"a", b"ss", b" a", "é".encode()[:1]]:
        da = bf("lm_a", "tok_a", prefix)
        db = bf("lm_b", "tok_b", prefix)
        dc = bf("lm_b2", "tok_b", prefix)
        assert_dist(outer.next_byte_logprobs(prefix), ref_mixture([da, db, dc], [0.2, 0.2, 0.6]))
        mid = ref_mixture([da, db], [0.5, 0.5])
        assert_dist(prod.next_byte_logprobs(prefix), ref_product([mid, dc], [0.7, 0.6]))


def test_member_out_of_support_drops_out_of_the_mixture() -> None:
    a, *_ = member("lm_a", "tok_a")  # texts of up to 4 characters
    s, *_ = member("lm_short", "tok_b")  # texts of up to 2 characters
    ens = ByteEnsemble([a, s], [0.3, 0.7])
    for prefix in [b"a", b"as", b"asa", b"as s", b"ss1"]:
        da, ds = bf("lm_a", "tok_a", prefix), bf("lm_short", "tok_b", prefix)
        assert_dist(ens.next_byte_logprobs(prefix), ref_mixture([da, ds], [0.3, 0.7]))
    # Beyond 3 characters only A is left: the mixture is A itself.
    assert_dist(ens.next_byte_logprobs(b"asa"), bf("lm_a", "tok_a", b"asa"))
    with pytest.raises(UsageError, match="every ensemble member"):
        ens.next_byte_logprobs(b"asasa")
    assert ens.prefix_logprob(b"asasa") == -math.inf


# --------------------------------------------------------------------- text probabilities


def chain_ref(dists_of, text: bytes) -> float:
    """Sum of per-step log reference probabilities over ``text``, then end of text."""
    total = 0.0
    for i in range(len(text) + 1):
        p = dists_of(text[:i])[text[i] if i < len(text) else EOT]
        if p == 0:
            return -math.inf
        total += math.log(p)
    return total


@pytest.mark.parametrize("mode", ["mixture", "product"])
def test_logprob_is_the_sum_of_per_step_logs(mode: str) -> None:
    a, *_ = member("lm_a", "tok_a")
    b, *_ = member("lm_b", "tok_b")
    w = [0.3, 0.7] if mode == "mixture" else [0.8, 0.4]
    ens = ByteEnsemble([a, b], w, mode=mode)
    ref = ref_mixture if mode == "mixture" else ref_product

    def dists_of(prefix: bytes) -> np.ndarray:
        return ref([bf("lm_a", "tok_a", prefix), bf("lm_b", "tok_b", prefix)], w)

    for text in [b"", b"as", b" a1", "é".encode(), "aé s".encode(), b"ssa'", b"1111"]:
        want = chain_ref(dists_of, text)
        assert ens.logprob(text) == pytest.approx(want, abs=1e-9)
        want_prefix = want - math.log(dists_of(text)[EOT])
        assert ens.prefix_logprob(text) == pytest.approx(want_prefix, abs=1e-9)
    # Five characters: beyond every member's support.
    assert ens.logprob(b"as as") == -math.inf
    assert ens.prefix_logprob(b"as as") == -math.inf
    assert ens.prefix_logprob(b"") == 0.0


def test_single_member_ensemble_is_the_member() -> None:
    a, lm, tok = member("lm_a", "tok_a")
    ens = ByteEnsemble([a])
    for text in [b"as", b" a1", "éé".encode(), b"a's"]:
        lp, nxt = brute_force(lm, tok, text)
        assert ens.logprob(text) == pytest.approx(lp + nxt[EOT], abs=1e-9)
        assert ens.logprob(text) == pytest.approx(a.logprob(text), abs=1e-9)
        assert ens.prefix_logprob(text) == pytest.approx(lp, abs=1e-9)


def test_text_probabilities_sum_to_one_and_sampling_follows_them() -> None:
    t = toys()
    a = ByteLM(canonical_lm(t["tok_a"], random_weights(21), max_len=2), t["tok_a"])
    b = ByteLM(canonical_lm(t["tok_b"], random_weights(22), max_len=2), t["tok_b"])
    ens = ByteEnsemble([a, b], [0.25, 0.75])
    support = sorted({s.encode() for s in texts(max_len=2)})
    exact = {s: math.exp(ens.logprob(s)) for s in support}
    assert sum(exact.values()) == pytest.approx(1.0, abs=1e-9)
    n = 400
    got = Counter(ens.sample(b"", max_bytes=16, seed=100 + i) for i in range(n))
    assert set(got) <= set(support)
    common = [s for s, p in exact.items() if p * n >= 10]
    assert len(common) >= 5
    rest = 1.0 - sum(exact[s] for s in common)
    stat = sum((got[s] - n * exact[s]) ** 2 / (n * exact[s]) for s in common)
    stat += (n - sum(got[s] for s in common) - n * rest) ** 2 / (n * rest)
    df = len(common)
    limit = df * (1 - 2 / (9 * df) + 4.5 * math.sqrt(2 / (9 * df))) ** 3  # ~4.5 sigma
    assert stat < limit, (stat, limit)


def test_bits_per_byte() -> None:
    a, lm, tok = member("lm_a", "tok_a")
    b, *_ = member("lm_b", "tok_b")
    ens = ByteEnsemble([a, b], [0.3, 0.7])
    text = "aé s".encode()
    assert ens.bits_per_byte(text) == pytest.approx(-ens.logprob(text) / (5 * math.log(2)))
    assert ens.bits_per_byte(text, include_eot=False) == pytest.approx(
        -ens.prefix_logprob(text) / (5 * math.log(2))
    )
    lp, nxt = brute_force(lm, tok, text)
    assert bits_per_byte(a, text) == pytest.approx(-(lp + nxt[EOT]) / (5 * math.log(2)), abs=1e-9)
    assert ens.bits_per_byte(b"as as") == math.inf
    with pytest.raises(UsageError):
        ens.bits_per_byte(b"")


# --------------------------------------------------------------------- generation


def test_sampling_is_reproducible_and_greedy_takes_the_argmax() -> None:
    a, *_ = member("lm_a", "tok_a")
    b, *_ = member("lm_b", "tok_b")
    for ens in [ByteEnsemble([a, b], [0.3, 0.7]), ByteEnsemble([a, b], [1.0, 0.5], "product")]:
        first = ens.sample(b"a", max_bytes=8, seed=7)
        assert ens.sample(b"a", max_bytes=8, seed=7) == first
        assert len({ens.sample(b"", max_bytes=8, seed=s) for s in range(12)}) > 1
        out = ens.greedy(b"", max_bytes=8)
        prefix = b""
        for byte in out:
            assert int(np.argmax(ens.next_byte_logprobs(prefix))) == byte
            prefix += bytes([byte])
        if len(out) < 8:  # stopped: end of text was the most likely outcome
            assert int(np.argmax(ens.next_byte_logprobs(prefix))) == EOT
        assert ens.sample(b"", max_bytes=8, seed=3, top_k=1) == out
        assert ens.sample(b"", max_bytes=8, seed=3, temperature=0.0) == out
        assert len(ens.sample(b"", max_bytes=2, seed=4)) <= 2
        stopped = ens.sample(b"", max_bytes=20, seed=5, stop=[b"s"])
        assert b"s" not in stopped[:-1]
        # The generic loop samples any next-byte model the same way.
        assert sample_bytes(ens, b"a", max_bytes=8, seed=7) == first


# --------------------------------------------------------------------- proxy-tuning


def ref_proxy(prefix: bytes, alpha: float) -> np.ndarray:
    base = bf("lm_a", "tok_a", prefix)
    expert = bf("lm_b", "tok_b", prefix)
    anti = bf("lm_b2", "tok_b", prefix)
    assert np.array_equal(base > 0, anti > 0) and np.array_equal(base > 0, expert > 0)
    q = np.zeros(257)
    ok = base > 0
    q[ok] = base[ok] * (expert[ok] / anti[ok]) ** alpha
    return q / q.sum()


@pytest.mark.parametrize("alpha", [1.0, 0.7, -0.4])
def test_proxy_tuning_matches_brute_force(alpha: float) -> None:
    base, *_ = member("lm_a", "tok_a")
    expert, *_ = member("lm_b", "tok_b")
    anti, *_ = member("lm_b2", "tok_b")
    pt = ProxyTuned(base, expert, anti, alpha=alpha)
    same = ByteEnsemble([base, expert, anti], [1.0, alpha, -alpha], mode="product")
    for prefix in PROMPTS:
        got = pt.next_byte_logprobs(prefix)
        assert_dist(got, ref_proxy(prefix, alpha))
        np.testing.assert_allclose(got, same.next_byte_logprobs(prefix), rtol=0, atol=1e-12)
    text = b" as"
    want = chain_ref(lambda p: ref_proxy(p, alpha), text)
    assert pt.logprob(text) == pytest.approx(want, abs=1e-9)
    assert pt.greedy(b"", max_bytes=4) == same.greedy(b"", max_bytes=4)


def test_proxy_tuning_with_alpha_zero_is_the_base() -> None:
    t = toys()
    base, lm, tok = member("lm_a", "tok_a")
    expert_lm = canonical_lm(t["tok_b"], bigram_weights(5, t["tok_b"].n_vocab), max_len=4)
    expert = ByteLM(expert_lm, t["tok_b"])
    anti, *_ = member("lm_b2", "tok_b")
    pt = ProxyTuned(base, expert, anti, alpha=0.0)
    for prefix in PROMPTS[:8]:
        got = pt.next_byte_logprobs(prefix)
        assert_dist(got, bf("lm_a", "tok_a", prefix))
        np.testing.assert_allclose(got, base.next_byte_logprobs(prefix), rtol=0, atol=1e-12)
    assert pt.logprob(b"as") == pytest.approx(base.logprob(b"as"), abs=1e-12)
    assert expert_lm.n_evals == 0  # weight zero: never evaluated


def test_proxy_tuning_refuses_an_unbounded_ratio() -> None:
    base, *_ = member("lm_a", "tok_a")
    expert, *_ = member("lm_b", "tok_b")
    short, *_ = member("lm_short", "tok_b")
    pt = ProxyTuned(base, expert, short, alpha=1.0)
    pt.next_byte_logprobs(b"a")  # fine: every outcome A allows, the short LM allows too
    with pytest.raises(UsageError, match="unbounded") as info:
        pt.next_byte_logprobs(b"as")  # the short LM only allows end of text
    assert "\n" not in str(info.value)
    # With the short LM as the expert instead, its zeros simply forbid outcomes.
    ok = ProxyTuned(base, short, expert, alpha=1.0)
    got = ok.next_byte_logprobs(b"as")
    assert np.isfinite(got).sum() == 1 and got[EOT] == 0.0


def test_product_with_disjoint_supports_raises() -> None:
    tok = toys()["tok_a"]
    eos = tok.special_tokens["<|endoftext|>"]
    only_a = ByteLM(FiniteTokenLM({tuple(tok.encode_ordinary("a")): 1.0}, tok.n_vocab, eos), tok)
    only_s = ByteLM(FiniteTokenLM({tuple(tok.encode_ordinary("s")): 1.0}, tok.n_vocab, eos), tok)
    with pytest.raises(UsageError, match="disjoint"):
        ByteEnsemble([only_a, only_s], mode="product").next_byte_logprobs(b"")
    mix = ByteEnsemble([only_a, only_s], [0.25, 0.75])
    assert mix.logprob(b"a") == pytest.approx(math.log(0.25))
    assert mix.logprob(b"s") == pytest.approx(math.log(0.75))


# --------------------------------------------------------------------- accounting and errors


def test_n_evals_sums_distinct_token_lms() -> None:
    t = toys()
    lm_a = canonical_lm(t["tok_a"], random_weights(3), max_len=3)
    lm_b = canonical_lm(t["tok_b"], random_weights(4), max_len=3)
    a, b = ByteLM(lm_a, t["tok_a"]), ByteLM(lm_b, t["tok_b"])
    ens = ByteEnsemble([ByteEnsemble([a, b]), a])
    assert ens.n_evals == 0
    ens.logprob(b" as")
    assert lm_a.n_evals > 0 and lm_b.n_evals > 0
    assert ens.n_evals == lm_a.n_evals + lm_b.n_evals


class _Fixed:
    """A next-byte model returning one fixed array."""

    def __init__(self, row: np.ndarray) -> None:
        self.row = row

    def next_byte_logprobs(self, prefix: bytes) -> np.ndarray:
        return self.row


def test_bad_input() -> None:
    a, *_ = member("lm_a", "tok_a")
    b, *_ = member("lm_b", "tok_b")
    uniform = np.full(257, -math.log(257))
    cases = [
        lambda: ByteEnsemble([]),
        lambda: ByteEnsemble([a, b], [1.0]),
        lambda: ByteEnsemble([a, b], [1.0, -0.5]),
        lambda: ByteEnsemble([a, b], [0.0, 0.0]),
        lambda: ByteEnsemble([a, b], [0.0, 0.0], mode="product"),
        lambda: ByteEnsemble([a, b], [math.nan, 1.0]),
        lambda: ByteEnsemble([a, b], ["x", 1.0]),  # type: ignore[list-item]
        lambda: ByteEnsemble([a, b], mode="sum"),
        lambda: ByteEnsemble(a),  # type: ignore[arg-type]
        lambda: ByteEnsemble([a, object()]),  # type: ignore[list-item]
        lambda: ByteEnsemble([a, _Fixed(np.zeros(256))]).next_byte_logprobs(b""),
        lambda: ByteEnsemble([a, _Fixed(np.zeros(257))]).next_byte_logprobs(b""),  # not normalized
        lambda: ByteEnsemble([_Fixed(np.full(257, math.nan))]).next_byte_logprobs(b""),
        lambda: ByteEnsemble([a, b]).next_byte_logprobs("as"),  # type: ignore[arg-type]
        lambda: ByteEnsemble([a, b]).sample(b"", top_p=0.0),
        lambda: ByteEnsemble([a, b]).sample(b"", top_k=0),
        lambda: ByteEnsemble([a, b]).sample(b"", max_bytes=-1),
        lambda: ProxyTuned(a, b, b, alpha=math.inf),
        lambda: ByteEnsemble([a, _Fixed(uniform)], mode="product").next_byte_logprobs(b"as as"),
    ]
    for i, case in enumerate(cases):
        with pytest.raises(UsageError) as info:
            case()
        msg = str(info.value)
        assert msg and "\n" not in msg, (i, msg)
    # A well-formed custom member is accepted.
    ens = ByteEnsemble([a, _Fixed(uniform)], [0.5, 0.5])
    want = ref_mixture([bf("lm_a", "tok_a", b"a"), np.full(257, 1 / 257)], [0.5, 0.5])
    assert_dist(ens.next_byte_logprobs(b"a"), want)
