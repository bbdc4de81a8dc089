"""Sampling bytes from ByteLM gives the distribution of sampling tokens from the token LM."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from bytelm_toys import canonical_lm, random_weights, text_bytes, toy_tokenizer

from toknz.bytelevel import ByteLM
from toknz.bytelevel.loading import stream_sample as loading_stream_sample
from toknz.bytelevel.sampling import sample_bytes, stream_sample
from toknz.errors import UsageError


def _chi2_limit(df: int, z: float = 4.5) -> float:
    """Wilson-Hilferty upper quantile of chi-square(df) at about z standard deviations."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def test_byte_sampling_matches_token_sampling() -> None:
    tok = toy_tokenizer()
    lm = canonical_lm(tok, random_weights(11), max_len=3)
    blm = ByteLM(lm, tok)
    n = 1500
    rng = np.random.default_rng(12345)
    from_tokens = Counter(text_bytes(lm, tok, lm.sample(rng)) for _ in range(n))
    from_bytes = Counter(blm.sample(b"", max_bytes=64, seed=1000 + i) for i in range(n))
    # Exact probabilities of each text, for expected counts.
    exact: Counter[bytes] = Counter()
    for t, p in lm.probs.items():
        exact[text_bytes(lm, tok, t)] += p
    assert set(from_bytes) <= set(exact)
    common = [s for s, p in exact.items() if p * n >= 10]
    assert len(common) >= 5
    stat_tokens = stat_bytes = stat_two = 0.0
    rest_p = 1.0 - sum(exact[s] for s in common)
    for s in [*common, None]:
        p = exact[s] if s is not None else rest_p
        ob = from_bytes[s] if s is not None else n - sum(from_bytes[c] for c in common)
        ot = from_tokens[s] if s is not None else n - sum(from_tokens[c] for c in common)
        stat_bytes += (ob - n * p) ** 2 / (n * p)
        stat_tokens += (ot - n * p) ** 2 / (n * p)
        if ob + ot:
            stat_two += (ob - ot) ** 2 / (ob + ot)
    df = len(common)
    limit = _chi2_limit(df)
    assert stat_tokens < limit, (stat_tokens, limit)
    assert stat_bytes < limit, (stat_bytes, limit)
    assert stat_two < limit, (stat_two, limit)


class _Uniform:
    """A next-byte model: every byte and the end of text equally likely."""

    def next_byte_logprobs(self, prefix: bytes) -> np.ndarray:
        return np.full(257, -math.log(257.0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temperature": math.inf}, "temperature must be finite, got inf"),
        ({"temperature": -1.0}, "temperature must be a non-negative number"),
        ({"temperature": math.nan}, "temperature must be a non-negative number"),
        ({"seed": -1}, "seed must be a non-negative int, got -1"),
        ({"top_k": 0}, "top_k must be at least 1"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"max_bytes": -1}, "max_bytes must be a non-negative int"),
    ],
)
def test_sample_bytes_and_stream_sample_validate_alike(options: dict, message: str) -> None:
    model = _Uniform()
    with pytest.raises(UsageError, match=message):
        sample_bytes(model, b"a", **options)
    with pytest.raises(UsageError, match=message):
        stream_sample(model, b"a", **options)  # raises before anything is drawn
    with pytest.raises(UsageError, match=message):
        loading_stream_sample(model, b"a", **options)  # the CLI's import path


def test_stream_sample_draws_what_sample_bytes_draws() -> None:
    model = _Uniform()
    for seed in range(5):
        want = sample_bytes(model, b"a", max_bytes=12, seed=seed)
        assert bytes(stream_sample(model, b"a", max_bytes=12, seed=seed)) == want
