"""PyTorch adapters: hierarchical byte/word models, word pooling, learned deletion.

This package is the only part of toknz that imports torch at import time; install it with
``pip install torch==2.13.0 && pip install 'toknz[torch]'``. The word splitting that feeds
these modules (:func:`toknz.split_words`) needs no torch.

Modules:

- :mod:`toknz.torch.layers`: the one causal/bidirectional transformer every model here is
  built from (RMSNorm, rotary attention through ``scaled_dot_product_attention``, SwiGLU).
- :mod:`toknz.torch.saving`: ``save_pretrained`` / ``from_pretrained`` with a JSON config.
- :mod:`toknz.torch.batching`: texts to padded word/byte tensors (``WordBatcher``) or byte
  tensors (``ByteBatcher``) that give back every byte; special tokens on bytes UTF-8 never uses.
- :mod:`toknz.torch.hierarchical`: ``HierarchicalLM`` (HAT): byte encoder per word, a word
  backbone (toknz's transformer or any ``transformers`` causal LM), byte decoder.
- :mod:`toknz.torch.byte_lm`: ``ByteLevelLM``, a byte transformer with an optional MrT5 delete
  gate (:mod:`toknz.torch.deletion`: ``DeleteGate``, ``DeletionController``).
- :mod:`toknz.torch.token_lm`: ``TokenLevelLM``, the BPE baseline over a toknz tokenizer.
- :mod:`toknz.torch.pooling`: ``WordPooling``, byte states to word states and back.
- :mod:`toknz.torch.lm_training`: ``train_lm`` (``toknz train-lm``): equal-size models,
  held-out bits per byte, checkpoints and resume.
- :mod:`toknz.torch.dynamic_embedding`: ``DynamicEmbedding`` (vectors for the tokens
  :mod:`toknz.dynamic` merges: the mean of their constituents or a small hypernetwork) and
  :mod:`toknz.torch.dynamic_training` (``train_hypernet``).
- :mod:`toknz.torch.outputs` (``LMOutput``) and :mod:`toknz.torch.generation` (sampling).
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    from toknz.errors import UsageError

    raise UsageError(
        "toknz.torch needs PyTorch: pip install torch==2.13.0 && pip install 'toknz[torch]'"
    ) from exc

from toknz.torch.batching import ByteBatch, ByteBatcher, WordBatch, WordBatcher
from toknz.torch.byte_lm import ByteLevelLM, ByteLMConfig
from toknz.torch.deletion import DeleteGate, DeletionController
from toknz.torch.dynamic_embedding import (
    DynamicEmbedding,
    HypernetConfig,
    MergedTokenHypernet,
    dynamic_logits,
    lm_inputs,
    run_dynamic_lm,
)
from toknz.torch.dynamic_training import HypernetTrainOptions, train_hypernet
from toknz.torch.hierarchical import HierarchicalConfig, HierarchicalLM
from toknz.torch.layers import Attention, Block, RMSNorm, Transformer, TransformerConfig
from toknz.torch.lm_training import (
    TrainLMOptions,
    TrainLMResult,
    evaluate_bpb,
    load_corpus,
    size_for,
    train_lm,
)
from toknz.torch.outputs import LMOutput
from toknz.torch.pooling import WordPooling
from toknz.torch.saving import PretrainedModule
from toknz.torch.token_lm import TokenBatch, TokenBatcher, TokenLevelLM, TokenLMConfig

__all__ = [
    "Attention",
    "Block",
    "ByteBatch",
    "ByteBatcher",
    "ByteLMConfig",
    "ByteLevelLM",
    "DeleteGate",
    "DeletionController",
    "DynamicEmbedding",
    "HypernetConfig",
    "HypernetTrainOptions",
    "MergedTokenHypernet",
    "HierarchicalConfig",
    "HierarchicalLM",
    "LMOutput",
    "PretrainedModule",
    "RMSNorm",
    "TokenBatch",
    "TokenBatcher",
    "TokenLMConfig",
    "TokenLevelLM",
    "TrainLMOptions",
    "TrainLMResult",
    "Transformer",
    "TransformerConfig",
    "WordBatch",
    "WordBatcher",
    "WordPooling",
    "dynamic_logits",
    "evaluate_bpb",
    "lm_inputs",
    "load_corpus",
    "run_dynamic_lm",
    "size_for",
    "train_hypernet",
    "train_lm",
]
