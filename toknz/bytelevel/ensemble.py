"""Byte-level ensembles of language models, whatever their vocabularies.

Token LMs with different tokenizers cannot be averaged token by token, but
:class:`~toknz.bytelevel.ByteLM` turns each into a distribution over the
same 257 outcomes (the 256 byte values and end of text, :data:`EOT`), and
those can be combined byte by byte:

- :class:`ByteEnsemble` with ``mode="mixture"``: the next-byte distribution
  is the weighted average ``sum_i w_i p_i(b | prefix)`` of the members'
  next-byte distributions.
- :class:`ByteEnsemble` with ``mode="product"``: the weighted geometric
  combination ``prod_i p_i(b | prefix) ** w_i``, renormalized over the 257
  outcomes (a product of experts; weights may be negative).
- :class:`ProxyTuned`: proxy-tuning (Liu et al., 2024) at byte level,
  ``p_base * (p_expert / p_anti_expert) ** alpha`` renormalized: a product
  with weights ``(1, alpha, -alpha)``.

An ensemble defines its distribution over texts *autoregressively*: the
probability of a text is the product of its per-step next-byte
probabilities, then the end-of-text probability. For a mixture this is a
per-step average, which is not the same distribution as the sequence-level
mixture ``sum_i w_i P_i(text)`` (that one would reweight members by how
well they predicted the prefix so far).

A member is anything with ``next_byte_logprobs(prefix: bytes)`` returning
257 natural-log probabilities (a :class:`ByteLM`, another ensemble, your own
model), so ensembles nest. Units: bytes throughout; probabilities are
natural logs in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from toknz.bytelevel.sampling import EOT, as_bytes, logsumexp, sample_bytes
from toknz.errors import UsageError

#: Tolerance on ``log(sum(p))`` of a member's next-byte distribution.
_NORM_TOL = 1e-6

_MODES = ("mixture", "product")


@runtime_checkable
class NextByteModel(Protocol):
    """Anything that gives 257 next-byte natural-log probabilities after a byte prefix.

    Entries 0..255 are byte values, entry 256 (:data:`EOT`) is the end of the
    text; they sum to 1 in probability. :class:`ByteLM`, :class:`ByteEnsemble`
    and :class:`ProxyTuned` all qualify.
    """

    def next_byte_logprobs(self, prefix: bytes) -> np.ndarray: ...


def _show(prefix: bytes) -> str:
    """A short printable form of a prefix for error messages (its last 40 bytes)."""
    return repr(prefix[-40:]) if len(prefix) <= 40 else "..." + repr(prefix[-40:])


def _outcome(b: int) -> str:
    return "end of text" if b == EOT else f"byte {b} ({bytes([b])!r})"


def _column_logsumexp(rows: np.ndarray) -> np.ndarray:
    """log(sum(exp(rows), axis=0)), exact where a whole column is -inf."""
    top = np.max(rows, axis=0)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(np.sum(np.exp(rows - safe), axis=0)) + safe)


# --------------------------------------------------------------------- generic helpers


def chain_prefix_logprob(model: NextByteModel, prefix: bytes) -> float:
    """Natural log of P(text starts with ``prefix``) under ``model``'s next-byte chain.

    The sum over the bytes of ``prefix`` (bytes, not characters) of
    ``model.next_byte_logprobs(prefix[:i])[prefix[i]]``; 0.0 for ``b""``,
    -inf as soon as one step has probability zero (later steps are not
    evaluated). Raises UsageError if ``prefix`` is not bytes, and passes on
    the model's errors.
    """
    prefix = as_bytes(prefix, "prefix")
    total = 0.0
    for i, b in enumerate(prefix):
        lp = float(model.next_byte_logprobs(prefix[:i])[b])
        if lp == -math.inf:
            return -math.inf
        total += lp
    return total


def chain_logprob(model: NextByteModel, text: bytes) -> float:
    """Natural log of P(the text is exactly ``text``) under ``model``'s next-byte chain.

    :func:`chain_prefix_logprob` of ``text`` plus the end-of-text entry
    ``model.next_byte_logprobs(text)[EOT]``; -inf if some byte of ``text``
    has probability zero.
    """
    text = as_bytes(text, "text")
    lp = chain_prefix_logprob(model, text)
    if lp == -math.inf:
        return lp
    return lp + float(model.next_byte_logprobs(text)[EOT])


def bits_per_byte(model: Any, text: bytes, *, include_eot: bool = True) -> float:
    """Bits per byte of ``text`` under ``model``: ``-log2 P / len(text)``.

    ``model`` needs ``logprob(text)`` (``include_eot=True``: the probability
    that the text is exactly ``text``, end of text included) or
    ``prefix_logprob(text)`` (``include_eot=False``: the probability that
    the text starts with ``text``); :class:`ByteLM` and the ensembles here
    have both. ``len(text)`` counts bytes (UTF-8), not characters. Returns
    ``inf`` for a text of probability zero; raises UsageError for an empty
    or non-bytes ``text``.
    """
    text = as_bytes(text, "text")
    if not text:
        raise UsageError("bits_per_byte needs a non-empty text (it divides by its length)")
    lp = model.logprob(text) if include_eot else model.prefix_logprob(text)
    return -float(lp) / (len(text) * math.log(2.0))


# --------------------------------------------------------------------- ensembles


class ByteEnsemble:
    """A byte-level ensemble of next-byte models (possibly with different tokenizers).

    ``members``: a sequence of objects with ``next_byte_logprobs(prefix)``
    (:class:`NextByteModel`: a :class:`ByteLM`, another ensemble, ...).
    ``weights``: one real number per member (default: ``1/n`` each).
    ``mode``:

    - ``"mixture"`` (default): next-byte probabilities are
      ``sum_i w_i p_i(b | prefix)``. Weights must be >= 0 and not all zero;
      they are normalized to sum to 1. A member under which ``prefix`` has
      probability zero (its ``next_byte_logprobs`` raises UsageError and its
      ``prefix_logprob`` is -inf) has no next-byte distribution there: it
      drops out at that prefix and its extensions, and the other weights are
      renormalized. If every member drops out, UsageError.
    - ``"product"``: next-byte log-probabilities are
      ``sum_i w_i log p_i(b | prefix)``, renormalized over the 257 outcomes.
      Weights are any finite reals, not all zero, used as given (not
      normalized): equal weights ``1/n`` give the normalized geometric mean.
      An outcome impossible under a member of positive weight is impossible.
      UsageError if every outcome is impossible (the members' supports are
      disjoint), if an outcome possible under the positive-weight members is
      impossible under a negative-weight one (the product is unbounded), or
      if a member cannot give a distribution at ``prefix``.

    Members of weight zero are never evaluated. Each member's output is
    checked on every call: UsageError unless it is 257 log-probabilities
    (no NaN or +inf) summing to 1 within 1e-6. Construction raises
    UsageError for an empty member list, a member without
    ``next_byte_logprobs``, a weight count that differs from the member
    count, non-finite or (mixture) negative weights, all-zero weights, or an
    unknown mode.

    The ensemble is a distribution over texts defined autoregressively (see
    the module doc): :meth:`logprob` and :meth:`prefix_logprob` are sums of
    per-step next-byte log-probabilities.
    """

    def __init__(
        self,
        members: Sequence[NextByteModel],
        weights: Sequence[float] | None = None,
        mode: str = "mixture",
    ) -> None:
        if mode not in _MODES:
            raise UsageError(f"mode must be 'mixture' or 'product', got {mode!r}")
        if isinstance(members, str | bytes | bytearray) or callable(
            getattr(members, "next_byte_logprobs", None)
        ):
            raise UsageError(
                f"members must be a sequence of models, got one {type(members).__name__}"
                " (wrap it in a list)"
            )
        try:
            members = list(members)
        except TypeError as exc:
            raise UsageError(
                f"members must be a sequence of models, got {type(members).__name__}"
            ) from exc
        if not members:
            raise UsageError("an ensemble needs at least one member, got an empty list")
        for i, m in enumerate(members):
            if not callable(getattr(m, "next_byte_logprobs", None)):
                raise UsageError(
                    f"ensemble member {i} ({type(m).__name__}) has no "
                    "next_byte_logprobs(prefix) method"
                )
        if weights is None:
            w = [1.0 / len(members)] * len(members)
        else:
            if isinstance(weights, str | bytes):
                raise UsageError(f"weights must be a sequence of numbers, got {weights!r}")
            try:
                w = [float(x) for x in weights]
            except (TypeError, ValueError) as exc:
                raise UsageError(f"weights must be a sequence of numbers, got {weights!r}") from exc
            if len(w) != len(members):
                raise UsageError(f"got {len(w)} weights for {len(members)} ensemble members")
        if not all(math.isfinite(x) for x in w):
            raise UsageError(f"ensemble weights must be finite, got {w}")
        if mode == "mixture" and any(x < 0 for x in w):
            raise UsageError(f"mixture weights must be non-negative, got {w}")
        if not any(x != 0 for x in w):
            raise UsageError(f"ensemble weights must not all be zero, got {w}")
        if mode == "mixture":
            total = sum(w)
            w = [x / total for x in w]
        self.members: list[NextByteModel] = members
        self.weights: np.ndarray = np.array(w, dtype=np.float64)
        self.mode = mode
        # Per member, a prefix known to have probability zero under it (mixture mode).
        self._dead: list[bytes | None] = [None] * len(members)

    def __repr__(self) -> str:
        names = ", ".join(type(m).__name__ for m in self.members)
        return (
            f"{type(self).__name__}([{names}], weights={self.weights.tolist()}, mode={self.mode!r})"
        )

    # ----------------------------------------------------------------- members

    def _row(self, i: int, prefix: bytes) -> np.ndarray:
        """Member ``i``'s next-byte log-probabilities after ``prefix``, checked."""
        m = self.members[i]
        name = type(m).__name__
        try:
            out = m.next_byte_logprobs(prefix)
        except UsageError as exc:
            raise UsageError(f"ensemble member {i} ({name}): {exc}") from exc
        row = np.asarray(out, dtype=np.float64)
        if row.shape != (257,):
            raise UsageError(
                f"ensemble member {i} ({name}): next_byte_logprobs must return 257 "
                f"log-probabilities (256 bytes and end of text), got shape {row.shape}"
            )
        if np.isnan(row).any() or (row == np.inf).any():
            raise UsageError(
                f"ensemble member {i} ({name}): next_byte_logprobs after {_show(prefix)} "
                "returned NaN or +inf"
            )
        total = logsumexp(row)
        if not abs(total) <= _NORM_TOL:
            raise UsageError(
                f"ensemble member {i} ({name}): next-byte probabilities after {_show(prefix)} "
                f"sum to {math.exp(total):.9g}, not 1 (pass log-probabilities, not logits)"
            )
        return row

    def _is_dead(self, i: int, prefix: bytes) -> bool:
        """Whether ``prefix`` has probability zero under member ``i`` (remembered)."""
        dead = self._dead[i]
        if dead is not None and prefix.startswith(dead):
            return True
        probe = getattr(self.members[i], "prefix_logprob", None)
        if not callable(probe):
            return False
        try:
            lp = float(probe(prefix))
        except UsageError:
            return False
        if lp == -math.inf:
            self._dead[i] = prefix
            return True
        return False

    def _mixture(self, prefix: bytes) -> np.ndarray:
        rows = []
        logw = []
        for i, w in enumerate(self.weights.tolist()):
            if w == 0.0:
                continue
            dead = self._dead[i]
            if dead is not None and prefix.startswith(dead):
                continue
            try:
                row = self._row(i, prefix)
            except UsageError:
                if self._is_dead(i, prefix):
                    continue
                raise
            rows.append(row)
            logw.append(math.log(w))
        if not rows:
            raise UsageError(
                f"the prefix {_show(prefix)} has probability zero under every ensemble member"
            )
        lw = np.array(logw)
        lw -= logsumexp(lw)  # renormalize over the members still in play
        out = _column_logsumexp(np.stack(rows) + lw[:, None])
        return np.asarray(out - logsumexp(out))

    def _product(self, prefix: bytes) -> np.ndarray:
        score = np.zeros(257)
        impossible = np.zeros(257, dtype=bool)
        unbounded = np.zeros(257, dtype=bool)
        for i, w in enumerate(self.weights.tolist()):
            if w == 0.0:
                continue
            row = self._row(i, prefix)
            finite = np.isfinite(row)
            if w > 0:
                impossible |= ~finite
            else:
                unbounded |= ~finite
            score += w * np.where(finite, row, 0.0)
        unbounded &= ~impossible
        if unbounded.any():
            b = int(np.argmax(unbounded))
            raise UsageError(
                f"after {_show(prefix)}, {_outcome(b)} is impossible under a member with a "
                "negative weight but possible under the others: the product is unbounded "
                "(smooth that member)"
            )
        score[impossible] = -np.inf
        total = logsumexp(score)
        if total == -math.inf:
            raise UsageError(
                f"no next byte is possible after {_show(prefix)}: the members with positive "
                "weight have disjoint next-byte supports there"
            )
        return np.asarray(score - total)

    # ----------------------------------------------------------------- queries

    def next_byte_logprobs(self, prefix: bytes) -> np.ndarray:
        """257 float64 natural-log probabilities of the next byte after ``prefix`` (bytes).

        Entries 0..255 are bytes, entry 256 (:data:`EOT`) is the end of the
        text; they sum to 1 in probability. The combination rule is the
        ensemble's mode (see the class doc). Raises UsageError for a
        non-bytes prefix, a prefix the ensemble cannot continue (probability
        zero under every mixture member, disjoint or unbounded product), or a
        member output that is not a 257-entry distribution.
        """
        prefix = as_bytes(prefix, "prefix")
        return self._mixture(prefix) if self.mode == "mixture" else self._product(prefix)

    def prefix_logprob(self, prefix: bytes) -> float:
        """Natural log of P(text starts with ``prefix``): the sum of per-step next-byte logs.

        0.0 for ``b""``, -inf if some byte of ``prefix`` has probability zero
        (the ensemble's distribution is autoregressive; see the module doc).
        """
        return chain_prefix_logprob(self, prefix)

    def logprob(self, text: bytes) -> float:
        """Natural log of P(the text is exactly ``text``) under the autoregressive ensemble.

        :meth:`prefix_logprob` of ``text`` plus the end-of-text entry of
        ``next_byte_logprobs(text)``; -inf if a byte of ``text`` is
        impossible. Raises UsageError where :meth:`next_byte_logprobs` does.
        """
        return chain_logprob(self, text)

    def bits_per_byte(self, text: bytes, *, include_eot: bool = True) -> float:
        """``-log2 P(text) / len(text)`` in bits per byte (see :func:`bits_per_byte`)."""
        return bits_per_byte(self, text, include_eot=include_eot)

    # ----------------------------------------------------------------- generation

    def sample(
        self,
        prompt_bytes: bytes = b"",
        max_bytes: int = 256,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[bytes] = (),
    ) -> bytes:
        """Sample up to ``max_bytes`` bytes after ``prompt_bytes``; returns the new bytes only.

        Same options and errors as :meth:`ByteLM.sample` (see
        :func:`sample_bytes`), drawing from the ensemble's next-byte
        distribution at every step.
        """
        return sample_bytes(self, prompt_bytes, max_bytes, temperature, top_k, top_p, seed, stop)

    def greedy(
        self, prompt_bytes: bytes = b"", max_bytes: int = 256, stop: Sequence[bytes] = ()
    ) -> bytes:
        """The most likely next byte, repeatedly: :meth:`sample` with temperature 0."""
        return self.sample(prompt_bytes, max_bytes, temperature=0.0, stop=stop)

    # ----------------------------------------------------------------- accounting

    def _token_lms(self) -> Iterator[Any]:
        for m in self.members:
            if isinstance(m, ByteEnsemble):
                yield from m._token_lms()
            elif hasattr(m, "token_lm"):
                yield m.token_lm
            else:
                yield m

    @property
    def n_evals(self) -> int:
        """Total ``n_evals`` of the members' token LMs (each distinct LM counted once; 0 if none count)."""
        seen: dict[int, Any] = {}
        for lm in self._token_lms():
            seen.setdefault(id(lm), lm)
        return sum(int(getattr(lm, "n_evals", 0) or 0) for lm in seen.values())


class ProxyTuned(ByteEnsemble):
    """Proxy-tuning (Liu et al., 2024) at byte level, across vocabularies.

    Next-byte log-probabilities are
    ``log p_base + alpha * (log p_expert - log p_anti_expert)`` renormalized
    over the 257 outcomes: a ``"product"`` :class:`ByteEnsemble` of
    ``(base, expert, anti_expert)`` with weights ``(1, alpha, -alpha)``.
    ``base`` is typically a large model, ``expert`` a small tuned model and
    ``anti_expert`` its untuned counterpart; the three may use different
    tokenizers. ``alpha`` is any finite real (0 gives the base model
    exactly: the expert and anti-expert are then not evaluated).

    Outcomes impossible under the base (or under the expert, for
    ``alpha > 0``) are impossible. UsageError where an outcome possible
    under the others is impossible under the model with weight ``-|alpha|``
    (the ratio is unbounded), and for a non-finite ``alpha``. Same methods
    as :class:`ByteEnsemble`.
    """

    def __init__(
        self,
        base: NextByteModel,
        expert: NextByteModel,
        anti_expert: NextByteModel,
        alpha: float = 1.0,
    ) -> None:
        try:
            a = float(alpha)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"alpha must be a number, got {alpha!r}") from exc
        if not math.isfinite(a):
            raise UsageError(f"alpha must be finite, got {alpha!r}")
        super().__init__([base, expert, anti_expert], [1.0, a, -a], mode="product")
        self.base = base
        self.expert = expert
        self.anti_expert = anti_expert
        self.alpha = a

    def __repr__(self) -> str:
        return (
            f"ProxyTuned(base={type(self.base).__name__}, expert={type(self.expert).__name__}, "
            f"anti_expert={type(self.anti_expert).__name__}, alpha={self.alpha})"
        )
