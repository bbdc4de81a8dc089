"""What every toknz language model returns, and bits per byte.

Every architecture (hierarchical, BPE, bytes) reports its loss on the same scale: the summed
negative log-likelihood in nats of the text it was asked to predict, and the number of UTF-8
bytes of that text. Their ratio, divided by ``ln 2``, is bits per byte, comparable across
vocabularies: whatever a model must predict to reproduce the bytes (end-of-word symbols,
end-of-text) is part of its cost.

    >>> import torch
    >>> out = LMOutput(loss=torch.tensor(1.0), nll_sum=torch.tensor(693.147), n_bytes=1000)
    >>> round(out.bits_per_byte(), 3)
    1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class LMOutput:
    """A model's loss on one batch.

    ``loss`` is what training minimises (mean nats per predicted symbol, plus any auxiliary
    term); ``nll_sum`` the summed nats of every predicted symbol; ``n_bytes`` the UTF-8 bytes
    of the predicted text; ``logits`` optional, for inspection; ``aux`` named extra scalars
    (e.g. a delete gate's deletion rate).
    """

    loss: torch.Tensor
    nll_sum: torch.Tensor
    n_bytes: int
    logits: torch.Tensor | None = None
    aux: dict[str, float] | None = None

    def bits_per_byte(self) -> float:
        """``nll_sum / (n_bytes · ln 2)``; ``nan`` for an empty batch."""
        if self.n_bytes == 0:
            return math.nan
        return float(self.nll_sum) / (self.n_bytes * math.log(2))
