"""Exact byte-level probabilities from tokenized language models.

- :mod:`toknz.bytelevel.canonical`: is a token sequence the tokenizer's own
  encoding of its bytes (:func:`is_canonical`, :func:`is_valid_pair`)?
- :mod:`toknz.bytelevel.trie`, :mod:`toknz.bytelevel.covers`: the vocabulary
  as a byte trie and the streaming cover sets of a byte prefix.
- :mod:`toknz.bytelevel.lm`: the token-LM protocol and adapters (a callable,
  a torch module, a ``transformers`` causal LM with a prefix-keyed KV cache).
- :mod:`toknz.bytelevel.bytelm`: :class:`ByteLM`, next-byte distributions,
  prefix and text log-probabilities, sampling.
- :mod:`toknz.bytelevel.ensemble`: :class:`ByteEnsemble` (mixtures and
  products of models with different vocabularies), :class:`ProxyTuned`,
  :func:`bits_per_byte`, :func:`sample_bytes`.
- :mod:`toknz.bytelevel.fim`: fill-in-the-middle with exact byte-level
  probabilities (:func:`fim`) and two token-level baselines
  (:func:`fim_token_prompting`, :func:`fim_token_healing`).
- :mod:`toknz.bytelevel.loading`: :func:`load_model` for a ``transformers``
  folder, a GGUF file or a converted model's short name (``toknz sample``).
"""

from __future__ import annotations

from toknz.bytelevel.bytelm import EOT, ByteLM
from toknz.bytelevel.canonical import Canonicality, canonicality, is_canonical, is_valid_pair
from toknz.bytelevel.covers import CoverSet
from toknz.bytelevel.ensemble import (
    ByteEnsemble,
    NextByteModel,
    ProxyTuned,
    bits_per_byte,
    chain_logprob,
    chain_prefix_logprob,
)
from toknz.bytelevel.fim import (
    FimModel,
    FimTokens,
    JoinedMiddle,
    fim,
    fim_context,
    fim_next_byte_logprobs,
    fim_source,
    fim_token_healing,
    fim_token_prompting,
    fim_tokens,
    split_prefix,
    split_suffix,
)
from toknz.bytelevel.lm import CallableLM, HFCausalLM, TokenLM, TorchLM
from toknz.bytelevel.loading import LoadedModel, load_model
from toknz.bytelevel.sampling import sample_bytes, stream_sample
from toknz.bytelevel.trie import TokenTrie

__all__ = [
    "EOT",
    "ByteEnsemble",
    "ByteLM",
    "CallableLM",
    "Canonicality",
    "CoverSet",
    "FimModel",
    "FimTokens",
    "HFCausalLM",
    "JoinedMiddle",
    "LoadedModel",
    "NextByteModel",
    "ProxyTuned",
    "TokenLM",
    "TokenTrie",
    "TorchLM",
    "bits_per_byte",
    "canonicality",
    "chain_logprob",
    "chain_prefix_logprob",
    "fim",
    "fim_context",
    "fim_next_byte_logprobs",
    "fim_source",
    "fim_token_healing",
    "fim_token_prompting",
    "fim_tokens",
    "is_canonical",
    "is_valid_pair",
    "load_model",
    "sample_bytes",
    "split_prefix",
    "split_suffix",
    "stream_sample",
]
