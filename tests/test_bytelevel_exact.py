"""ByteLM is exact: its byte probabilities equal brute-force sums over toy token LMs.

Toy LMs (tests/bytelm_toys.py) put their mass on finitely many token
sequences, so P(text starts with x) is a finite sum to compare with, to 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
from bytelm_toys import (
    ALPHABET,
    all_tokenizations_lm,
    bigram_weights,
    brute_force,
    canonical_lm,
    fallback_tokenizer,
    random_weights,
    toy_tokenizer,
)

from toknz.bytelevel import EOT, ByteLM
from toknz.errors import UsageError

PROMPTS = [
    b"",
    b"a",  # mid-token and on a boundary
    b"as",
    b" a",
    b" as ",
    b"a's",  # contraction
    "é".encode()[:1],  # mid-UTF-8 character
    " é".encode(),
    "aé".encode()[:2],
    "éé".encode()[:3],
    b"11",
    b"111",
    b"1111",  # digit groups of three
    b"'",
    b"as as",
    b"  ",
    b"   a",
    b"a1",
]


def _compare(blm: ByteLM, lm, tok, prefix: bytes) -> None:
    want_lp, want_next = brute_force(lm, tok, prefix)
    assert blm.prefix_logprob(prefix) == pytest.approx(want_lp, abs=1e-9)
    if want_lp == -np.inf:
        with pytest.raises(UsageError):
            blm.next_byte_logprobs(prefix)
        return
    got = blm.next_byte_logprobs(prefix)
    assert got.shape == (257,) and got.dtype == np.float64
    assert np.array_equal(np.isfinite(got), np.isfinite(want_next))
    fin = np.isfinite(want_next)
    np.testing.assert_allclose(got[fin], want_next[fin], rtol=0, atol=1e-9)
    assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-12)
    assert blm.logprob(prefix) == pytest.approx(want_lp + want_next[EOT], abs=1e-9)


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer()


@pytest.mark.parametrize("weights", ["random", "bigram"])
def test_canonical_mode_matches_brute_force(tok, weights: str) -> None:
    w = random_weights(3) if weights == "random" else bigram_weights(4, tok.n_vocab)
    lm = canonical_lm(tok, w)
    blm = ByteLM(lm, tok)
    for prefix in PROMPTS:
        _compare(blm, lm, tok, prefix)


def test_canonical_mode_with_gpt2_split_pattern() -> None:
    tok = toy_tokenizer("gpt2")
    lm = canonical_lm(tok, random_weights(5))
    blm = ByteLM(lm, tok)
    for prefix in PROMPTS:
        _compare(blm, lm, tok, prefix)


@pytest.mark.parametrize("weights", ["random", "bigram"])
def test_byte_fallback_tokenizer_matches_brute_force(weights: str) -> None:
    """Gemma-style: spaces normalized to ▁, é spelled with byte-fallback tokens."""
    tok = fallback_tokenizer()
    w = random_weights(11) if weights == "random" else bigram_weights(12, tok.n_vocab)
    lm = canonical_lm(tok, w)
    blm = ByteLM(lm, tok)
    for prefix in [*PROMPTS, "é a".encode(), "aé's".encode()[:3], b"as as", b"a  "]:
        _compare(blm, lm, tok, prefix)


def test_random_prompts_in_and_out_of_order(tok) -> None:
    lm = canonical_lm(tok, random_weights(7))
    blm = ByteLM(lm, tok)
    rng = np.random.default_rng(0)
    chars = [c.encode() for c in ALPHABET]
    for _ in range(25):
        text = b"".join(chars[i] for i in rng.integers(0, len(chars), size=rng.integers(0, 6)))
        cut = int(rng.integers(0, len(text) + 1))
        _compare(blm, lm, tok, text[:cut])


def test_all_tokenizations_mode_matches_brute_force(tok) -> None:
    ids = [
        i
        for i in range(tok.n_vocab)
        if tok.decode_single_token_bytes(i) and set(tok.decode_single_token_bytes(i)) <= set(b"as")
    ]
    assert len(ids) >= 4
    lm = all_tokenizations_lm(tok, ids, random_weights(1), max_len=3)
    blm = ByteLM(lm, tok, mode="all")
    for prefix in [b"", b"a", b"s", b"as", b"asa", b"sas", b"aasa", b"aaa", b"x"]:
        _compare(blm, lm, tok, prefix)
    # The canonical mode is not exact for an LM that puts mass on other tokenizations.
    canonical = ByteLM(lm, tok)
    assert abs(canonical.prefix_logprob(b"asa") - brute_force(lm, tok, b"asa")[0]) > 1e-3


def test_bad_input(tok) -> None:
    lm = canonical_lm(tok, random_weights(3))
    blm = ByteLM(lm, tok)
    with pytest.raises(UsageError):
        blm.prefix_logprob("text")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        ByteLM(lm, tok, mode="some")
    with pytest.raises(UsageError):
        ByteLM(object(), tok)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        blm.sample(b"", top_p=0.0)
    with pytest.raises(UsageError):
        ByteLM(lm, "not a tokenizer")


def test_greedy_and_sample_follow_the_distribution(tok) -> None:
    lm = canonical_lm(tok, random_weights(3))
    blm = ByteLM(lm, tok)
    out = blm.greedy(b"", max_bytes=8)
    # Greedy takes the argmax byte at every step.
    prefix = b""
    for b in out:
        assert int(np.argmax(blm.next_byte_logprobs(prefix))) == b
        prefix += bytes([b])
    assert blm.sample(b"", max_bytes=8, seed=1) == blm.sample(b"", max_bytes=8, seed=1)
    assert blm.sample(b"", max_bytes=8, seed=2, top_k=1) == out
    assert len(blm.sample(b"", max_bytes=2, seed=3)) <= 2
    stopped = blm.sample(b"", max_bytes=20, seed=4, stop=[b"a"])
    assert b"a" not in stopped[:-1]
