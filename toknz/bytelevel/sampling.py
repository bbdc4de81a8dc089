"""Drawing bytes from a next-byte distribution: the sampling loop shared by every byte-level model.

Also the one :func:`logsumexp` the byte-level modules use over log-probabilities.

A model here is anything with ``next_byte_logprobs(prefix: bytes)``
returning 257 natural-log probabilities: entries 0..255 are byte values,
entry 256 (:data:`EOT`) is the end of the text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from toknz.errors import UsageError

#: Index of the end-of-text entry in a next-byte distribution.
EOT = 256


def logsumexp(v: np.ndarray) -> float:
    """``log(sum(exp(v)))`` of a 1-D array, computed stably; ``-inf`` when ``v`` is empty or all ``-inf``."""
    if v.size == 0:
        return -np.inf
    top = float(np.max(v))
    if top == -np.inf:
        return -np.inf
    return top + float(np.log(np.sum(np.exp(v - top))))


def as_bytes(b: Any, what: str) -> bytes:
    """``b`` as ``bytes``; UsageError naming ``what`` for anything that is not bytes-like."""
    if isinstance(b, bytes | bytearray | memoryview):
        return bytes(b)
    raise UsageError(f"{what} must be bytes, got {type(b).__name__} (encode text as UTF-8 first)")


def pick(
    lp: np.ndarray,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    rng: np.random.Generator,
) -> int:
    """One outcome drawn from log-probabilities ``lp`` (argmax when ``temperature`` is 0).

    ``top_k`` keeps exactly the k most likely outcomes (ties go to lower
    indices); ``top_p`` the smallest set whose probability reaches p.
    """
    if temperature == 0.0:
        return int(np.argmax(lp))
    scores = lp / temperature
    if top_k is not None and top_k < scores.size:
        keep_k = np.argsort(-scores, kind="stable")[:top_k]
        kept = np.full_like(scores, -np.inf)
        kept[keep_k] = scores[keep_k]
        scores = kept
    probs = np.exp(scores - np.max(scores))
    probs /= probs.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cum = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cum, top_p)) + 1]
        mask = np.zeros_like(probs, dtype=bool)
        mask[keep] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(probs.size, p=probs))


def check_sampling(
    max_bytes: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None = None,
) -> None:
    """UsageError for a ``max_bytes`` that is not an int >= 0, a negative, NaN or infinite
    ``temperature``, ``top_k < 1``, ``top_p`` outside (0, 1] or a negative ``seed``.

    The one validation of sampling options: :func:`sample_bytes`, :func:`stream_sample` and the
    FIM samplers all call it.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise UsageError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
    if not temperature >= 0:
        raise UsageError(f"temperature must be a non-negative number, got {temperature!r}")
    if temperature == float("inf"):
        raise UsageError("temperature must be finite, got inf")
    if top_k is not None and top_k < 1:
        raise UsageError(f"top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise UsageError(f"top_p must be in (0, 1], got {top_p}")
    if seed is not None and seed < 0:
        raise UsageError(f"seed must be a non-negative int, got {seed}")


def sample_bytes(
    model: Any,
    prompt_bytes: bytes = b"",
    max_bytes: int = 256,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: Sequence[bytes] = (),
) -> bytes:
    """Sample up to ``max_bytes`` bytes after ``prompt_bytes`` from ``model``; returns the new bytes only.

    Stops at end of text, after ``max_bytes`` bytes, or once the output ends
    with one of the ``stop`` byte strings (kept in the output).
    ``temperature`` 0 is greedy (argmax at every step); ``top_k``/``top_p``
    as in :func:`pick`; ``seed`` fixes the random generator. Raises
    UsageError for bad options (:func:`check_sampling`) or a non-bytes
    prompt or stop string. ``bytes(stream_sample(...))`` with the same arguments.
    """
    return bytes(
        stream_sample(model, prompt_bytes, max_bytes, temperature, top_k, top_p, seed, stop)
    )


def stream_sample(
    model: Any,
    prompt_bytes: bytes = b"",
    max_bytes: int = 256,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: Sequence[bytes] = (),
) -> Iterator[int]:
    """Yield sampled bytes (ints 0..255) after ``prompt_bytes``, one at a time.

    ``model``: anything with ``next_byte_logprobs(prefix)`` (a
    :class:`~toknz.bytelevel.ByteLM`, a :class:`~toknz.bytelevel.ByteEnsemble`).
    Same options, draws and stopping rule as :func:`sample_bytes` (which
    :meth:`ByteLM.sample <toknz.bytelevel.ByteLM.sample>` runs):
    ``bytes(stream_sample(m, p, ...))`` equals ``m.sample(p, ...)`` for the
    same ``seed``. Raises UsageError for a non-bytes prompt or stop string, a
    negative ``max_bytes``, a negative, NaN or infinite ``temperature``,
    ``top_k < 1``, ``top_p`` outside (0, 1], or a negative ``seed`` (before
    anything is yielded: this is not a generator function), and passes on
    the model's errors.
    """
    prompt = as_bytes(prompt_bytes, "prompt_bytes")
    check_sampling(max_bytes, temperature, top_k, top_p, seed)
    stops = [s for s in (as_bytes(s, "stop") for s in stop) if s]
    rng = np.random.default_rng(seed)
    return stream_checked(model, prompt, max_bytes, temperature, top_k, top_p, rng, stops)


def stream_checked(
    model: Any,
    prompt: bytes,
    max_bytes: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    rng: np.random.Generator,
    stops: Sequence[bytes],
) -> Iterator[int]:
    """The sampling loop of :func:`stream_sample`, yielding each byte as it is drawn.

    Arguments are taken as already checked (``stops`` non-empty bytes):
    callers validate first so that errors come before the first byte.
    """
    out = bytearray()
    while len(out) < max_bytes:
        lp = model.next_byte_logprobs(prompt + bytes(out))
        choice = pick(np.asarray(lp, dtype=np.float64), temperature, top_k, top_p, rng)
        if choice == EOT:
            return
        out.append(choice)
        yield choice
        if any(out.endswith(s) for s in stops):
            return
