"""Toy tokenizers and toy token LMs with exactly known byte distributions (ByteLM tests).

A :class:`FiniteTokenLM` is a distribution over finitely many complete token
sequences; its next-token log-probabilities are exact ratios of prefix
masses, so brute-force sums over its support give the true byte-level
probabilities to compare ByteLM with.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from toknz.train import train_from_counts

ALPHABET = ("a", "s", " ", "1", "é", "'")


#: Word counts the toy tokenizers are trained on (words over :data:`ALPHABET`).
TOY_COUNTS = {
    b"as": 50,
    b" as": 40,
    b"aas": 20,
    b" a": 30,
    b"sa": 12,
    b"111": 9,
    b"11": 10,
    "éé".encode(): 8,
    " é".encode(): 7,
    b"'s": 6,
    b"a'": 3,
}


def toy_tokenizer(pattern: str = "cl100k"):
    """A byte-level BPE trained on a few words over :data:`ALPHABET` (256 + 14 tokens)."""
    return train_from_counts(
        TOY_COUNTS, vocab_size=256 + 15, pattern=pattern, special_tokens=("<|endoftext|>",)
    )


def texts(alphabet: Sequence[str] = ALPHABET, max_len: int = 5) -> list[str]:
    out = [""]
    for n in range(1, max_len + 1):
        out.extend("".join(p) for p in itertools.product(alphabet, repeat=n))
    return out


class FiniteTokenLM:
    """A token LM whose support is a finite set of sequences, each followed by ``eos``."""

    def __init__(self, probs: dict[tuple[int, ...], float], n_vocab: int, eos: int) -> None:
        total = sum(probs.values())
        self.probs = {t: p / total for t, p in probs.items() if p > 0}
        self.n_vocab = n_vocab
        self.eos = eos
        self.mass: dict[tuple[int, ...], float] = defaultdict(float)
        self.children: dict[tuple[int, ...], set[int]] = defaultdict(set)
        for t, p in self.probs.items():
            for k in range(len(t) + 1):
                self.mass[t[:k]] += p
                if k < len(t):
                    self.children[t[:k]].add(t[k])
        self.n_evals = 0

    def next_token_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        out = np.full((len(prefixes), self.n_vocab), -np.inf)
        for r, p in enumerate(prefixes):
            self.n_evals += 1
            key = tuple(p)
            m = self.mass.get(key, 0.0)
            if m == 0.0:
                continue
            for v in self.children.get(key, ()):
                out[r, v] = math.log(self.mass[key + (v,)] / m)
            end = self.probs.get(key, 0.0)
            if end > 0:
                out[r, self.eos] = math.log(end / m)
        return out

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        seqs = list(self.probs)
        p = np.array([self.probs[s] for s in seqs])
        return seqs[int(rng.choice(len(seqs), p=p / p.sum()))]


def random_weights(seed: int) -> Callable[[tuple[int, ...]], float]:
    def w(t: tuple[int, ...]) -> float:
        rng = np.random.default_rng([seed, len(t), *t])
        return float(np.exp(2.0 * rng.standard_normal()))

    return w


def bigram_weights(seed: int, n_vocab: int) -> Callable[[tuple[int, ...]], float]:
    rng = np.random.default_rng(seed)
    table = np.exp(rng.standard_normal((n_vocab + 1, n_vocab + 1)))

    def w(t: tuple[int, ...]) -> float:
        prev = n_vocab
        out = 1.0
        for x in t:
            out *= table[prev, x]
            prev = x
        return float(out * table[prev, n_vocab])

    return w


def canonical_lm(
    tok, weight: Callable[[tuple[int, ...]], float], max_len: int = 5
) -> FiniteTokenLM:
    """An LM over the encodings of every text up to ``max_len`` characters: canonical only."""
    eos = tok.special_tokens["<|endoftext|>"]
    seqs = {tuple(tok.encode_ordinary(s)) for s in texts(max_len=max_len)}
    return FiniteTokenLM({t: weight(t) for t in seqs}, tok.n_vocab, eos)


def all_tokenizations_lm(
    tok, token_ids: Iterable[int], weight: Callable[[tuple[int, ...]], float], max_len: int = 3
) -> FiniteTokenLM:
    """An LM over every sequence of ``token_ids`` up to ``max_len`` tokens (non-canonical too)."""
    ids = list(token_ids)
    seqs = [t for n in range(max_len + 1) for t in itertools.product(ids, repeat=n)]
    eos = tok.special_tokens["<|endoftext|>"]
    return FiniteTokenLM({t: weight(t) for t in seqs}, tok.n_vocab, eos)


def brute_force(lm: FiniteTokenLM, tok, prefix: bytes) -> tuple[float, np.ndarray]:
    """(log P(text starts with prefix), 257 next-byte log-probabilities) by enumeration."""
    total = 0.0
    nxt = np.zeros(257)
    for t, p in lm.probs.items():
        data = b"".join(tok.decode_single_token_bytes(i) for i in t)
        if data.startswith(prefix):
            total += p
            if len(data) == len(prefix):
                nxt[256] += p
            else:
                nxt[data[len(prefix)]] += p
    with np.errstate(divide="ignore"):
        return (math.log(total) if total > 0 else -math.inf), np.log(nxt / total if total else nxt)


def text_bytes(lm: FiniteTokenLM, tok, t: tuple[int, ...]) -> bytes:
    return b"".join(tok.decode_single_token_bytes(i) for i in t)


def fallback_tokenizer():
    """A Gemma-style toy: SentencePiece-like BPE (``▁`` for spaces) with byte fallback.

    Spaces become ``▁`` in the normalizer, so the ``Split(" ")`` pre-tokenizer
    never splits; ``é`` has no symbol of its own and is spelled with the
    byte-fallback tokens ``<0xC3><0xA9>``.
    """
    from toknz.formats.tokenizer_json import tokenizer_from_json

    vocab = {"<unk>": 0}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    merges = [("a", "s"), ("▁", "a"), ("▁a", "s"), ("s", "a"), ("1", "1"), ("'", "s"), ("▁", "▁")]
    for sym in ("a", "s", "▁", "1", "'"):
        vocab[sym] = len(vocab)
    for left, right in merges:
        vocab[left + right] = len(vocab)
    obj = {
        "version": "1.0",
        "added_tokens": [
            {"id": 0, "content": "<unk>", "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True},
            {"id": len(vocab), "content": "<|endoftext|>", "single_word": False,
             "lstrip": False, "rstrip": False, "normalized": False, "special": True},
        ],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": {
            "type": "Split", "pattern": {"String": " "},
            "behavior": "MergedWithPrevious", "invert": False,
        },
        "post_processor": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        },
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>",
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges],
        },
    }  # fmt: skip
    return tokenizer_from_json(obj, "toy-fallback.json")
