"""PyTorch adapters: hierarchical byte/word models, word pooling, learned deletion.

This package is the only part of toknz that imports torch at import time; install it with
``pip install torch==2.13.0 && pip install 'toknz[torch]'``. The word splitting that feeds
these modules (:func:`toknz.split_words`) needs no torch.

Modules:

- :mod:`toknz.torch.layers`: the one causal/bidirectional transformer every model here is
  built from (RMSNorm, rotary attention through ``scaled_dot_product_attention``, SwiGLU).
- :mod:`toknz.torch.saving`: ``save_pretrained`` / ``from_pretrained`` with a JSON config.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    from toknz.errors import UsageError

    raise UsageError(
        "toknz.torch needs PyTorch: pip install torch==2.13.0 && pip install 'toknz[torch]'"
    ) from exc

from toknz.torch.layers import Attention, Block, RMSNorm, Transformer, TransformerConfig
from toknz.torch.saving import PretrainedModule

__all__ = [
    "Attention",
    "Block",
    "PretrainedModule",
    "RMSNorm",
    "Transformer",
    "TransformerConfig",
]
