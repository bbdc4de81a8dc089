"""Exact byte-level probabilities from tokenized language models.

- :mod:`toknz.bytelevel.canonical`: is a token sequence the tokenizer's own
  encoding of its bytes (:func:`is_canonical`, :func:`is_valid_pair`)?
- :mod:`toknz.bytelevel.trie`, :mod:`toknz.bytelevel.covers`: the vocabulary
  as a byte trie and the streaming cover sets of a byte prefix.
- :mod:`toknz.bytelevel.lm`: the token-LM protocol and adapters (a callable,
  a torch module, a ``transformers`` causal LM with a prefix-keyed KV cache).
- :mod:`toknz.bytelevel.bytelm`: :class:`ByteLM`, next-byte distributions,
  prefix and text log-probabilities, sampling.
"""

from __future__ import annotations

from toknz.bytelevel.bytelm import EOT, ByteLM
from toknz.bytelevel.canonical import Canonicality, canonicality, is_canonical, is_valid_pair
from toknz.bytelevel.covers import CoverSet
from toknz.bytelevel.lm import CallableLM, HFCausalLM, TokenLM, TorchLM
from toknz.bytelevel.trie import TokenTrie

__all__ = [
    "EOT",
    "ByteLM",
    "CallableLM",
    "Canonicality",
    "CoverSet",
    "HFCausalLM",
    "TokenLM",
    "TokenTrie",
    "TorchLM",
    "canonicality",
    "is_canonical",
    "is_valid_pair",
]
