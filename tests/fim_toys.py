"""Toy FIM tokenizer and token LMs with exactly known middle distributions, and brute-force sums.

:class:`FimDocLM` is a FIM model defined from a weight on whole documents:
after ``[pre] P [suf] S [mid]`` it picks a complete middle ``m`` (a text over
a small alphabet) with probability proportional to ``w(p + m + s)``, where
``p``/``s`` are the bytes of ``P``/``S`` and ``w`` a fixed random weight of
the document, emits the canonical encoding of ``m`` and then the end token.
``penalty`` multiplies the weight when the first middle token and the last
prefix token could not stand side by side in a canonical encoding: the
token-boundary bias of real models, which rarely see such junctions.
``decay`` multiplies it once per character of the middle (below 1: short
middles are likelier, as real middles end when the gap is filled).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence

import numpy as np
from bytelm_toys import TOY_COUNTS, FiniteTokenLM

from toknz.bytelevel import is_valid_pair
from toknz.bytelevel.fim import FimTokens
from toknz.train import train_from_counts

FIM_SPECIALS = ("<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")


def fim_tokenizer(specials: Sequence[str] = FIM_SPECIALS):
    """A byte-level BPE (cl100k split) with the Qwen-style FIM sentinels as special tokens."""
    return train_from_counts(
        TOY_COUNTS, vocab_size=256 + 14 + len(specials), special_tokens=specials
    )


def texts(alphabet: Sequence[str], max_len: int) -> list[str]:
    out = [""]
    for n in range(1, max_len + 1):
        out.extend("".join(p) for p in itertools.product(alphabet, repeat=n))
    return out


class FimDocLM:
    """See the module doc. ``max_chars`` bounds the characters of ``p + m`` (``p`` decoded)."""

    def __init__(
        self,
        tok,
        tokens: FimTokens,
        *,
        alphabet: Sequence[str] = ("a", "s", " ", "é", "1"),
        max_chars: int = 6,
        penalty: float = 1.0,
        decay: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.tok = tok
        self.tokens = tokens
        self.alphabet = tuple(alphabet)
        self.max_chars = max_chars
        self.penalty = penalty
        self.decay = decay
        self.seed = seed
        self.n_vocab = tok.n_vocab
        self._lms: dict[tuple[int, ...], FiniteTokenLM] = {}
        self._encodings: dict[str, tuple[int, ...]] = {}
        self.n_evals = 0

    def weight(self, doc: bytes) -> float:
        """A fixed positive weight of the document: exp of a uniform in (-2, 2) drawn from a hash."""
        h = hashlib.blake2b(doc, digest_size=8, key=self.seed.to_bytes(8, "little")).digest()
        return math.exp(4.0 * (int.from_bytes(h, "little") / 2.0**64 - 0.5))

    def _encoded(self, budget: int) -> list[tuple[str, tuple[int, ...]]]:
        for m in texts(self.alphabet, budget):
            if m not in self._encodings:
                self._encodings[m] = tuple(self.tok.encode_ordinary(m))
        return [(m, self._encodings[m]) for m in texts(self.alphabet, budget)]

    def lm_for(self, context: Sequence[int]) -> FiniteTokenLM:
        """The distribution over complete middles after ``context`` (ending with the middle sentinel)."""
        key = tuple(int(i) for i in context)
        lm = self._lms.get(key)
        if lm is not None:
            return lm
        t = self.tokens
        assert key[0] == t.prefix and key[-1] == t.middle and key.count(t.suffix) == 1, key
        cut = key.index(t.suffix)
        p_ids, s_ids = key[1:cut], key[cut + 1 : -1]
        p = self.tok.decode_bytes(p_ids)
        s = self.tok.decode_bytes(s_ids)
        budget = max(0, self.max_chars - len(p.decode("utf-8", "surrogateescape")))
        probs: dict[tuple[int, ...], float] = {}
        for m, ids in self._encoded(budget):
            w = self.weight(p + m.encode() + s) * self.decay ** len(m)
            if p_ids and ids and not is_valid_pair(p_ids[-1], ids[0], self.tok):
                w *= self.penalty
            probs[ids] = w
        lm = FiniteTokenLM(probs, self.n_vocab, t.end[0])
        self._lms[key] = lm
        return lm

    def next_token_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        rows = []
        for prefix in prefixes:
            self.n_evals += 1
            k = list(prefix).index(self.tokens.middle)
            lm = self.lm_for(prefix[: k + 1])
            rows.append(lm.next_token_logprobs([list(prefix[k + 1 :])])[0])
        return np.stack(rows)


def support(tok, stop_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """``(members, stops)``: the tokens a middle is made of (not special, non-empty bytes) and its end tokens."""
    specials = set(tok.special_tokens.values())
    members = [
        i
        for i in range(tok.n_vocab)
        if i not in specials and i not in stop_ids and tok.decode_single_token_bytes(i)
    ]
    return members, list(stop_ids)


def cover_brute_force(
    lm, tok, context: Sequence[int], stop_ids: Sequence[int], x: bytes
) -> np.ndarray:
    """257 next-byte log-probabilities of the text after ``context`` once it starts with ``x``.

    Walks every token sequence whose bytes are a prefix of ``x`` (no
    canonicality pruning: exact for any LM) and sums the probability of each
    one-token extension by the byte it puts after ``x``; entry 256 sums the
    stop tokens after sequences spelling exactly ``x``.
    """
    members, stops = support(tok, stop_ids)
    tb = [tok.decode_single_token_bytes(i) for i in range(tok.n_vocab)]
    scores = np.zeros(257)

    def walk(seq: list[int], pos: int, logp: float) -> None:
        lp = lm.next_token_logprobs([list(context) + seq])[0]
        rest = x[pos:]
        if not rest:
            scores[256] += sum(math.exp(logp + lp[s]) for s in stops)
        for t in members:
            if lp[t] == -np.inf:
                continue
            b = tb[t]
            if len(b) > len(rest):
                if b.startswith(rest):
                    scores[b[len(rest)]] += math.exp(logp + lp[t])
            elif rest.startswith(b):
                walk(seq + [t], pos + len(b), logp + float(lp[t]))

    walk([], 0, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(scores / scores.sum())


def support_brute_force(
    lm: FiniteTokenLM, tok, x: bytes, first_starts: bytes | None = None
) -> np.ndarray:
    """257 next-byte log-probabilities after ``x`` by enumerating the support of a finite LM.

    ``first_starts``: keep only sequences whose first token's bytes start
    with it (token healing's constraint), renormalizing.
    """
    nxt = np.zeros(257)
    for seq, p in lm.probs.items():
        if first_starts is not None and not (
            seq and tok.decode_single_token_bytes(seq[0]).startswith(first_starts)
        ):
            continue
        data = b"".join(tok.decode_single_token_bytes(i) for i in seq)
        if data.startswith(x):
            nxt[256 if len(data) == len(x) else data[len(x)]] += p
    with np.errstate(divide="ignore"):
        return np.log(nxt / nxt.sum())


def total_variation(lp1: np.ndarray, lp2: np.ndarray) -> float:
    return 0.5 * float(np.abs(np.exp(lp1) - np.exp(lp2)).sum())
