"""Byte states to word states and back ("Learn Your Tokens": Thawani et al., EMNLP 2023).

:class:`WordPooling` pools the per-byte states ``[B, T, D]`` of any byte model into one
state per word ``[B, W, D]`` (``mean``, ``max``, ``first`` or ``last`` byte), given each
byte's word id (or which bytes start a word), and :meth:`WordPooling.unpool` spreads word
states back over their bytes: each byte gets its own word's state, or, with
``causal=True``, the previous word's (zeros for the first word), so a byte never sees a
summary of bytes after it. Everything is one scatter or gather: no Python loop over words.

    >>> import torch
    >>> x = torch.arange(12.0).reshape(1, 6, 2)
    >>> starts = torch.tensor([[True, False, False, True, False, True]])
    >>> ids = word_ids_from_starts(starts)
    >>> ids.tolist()
    [[0, 0, 0, 1, 1, 2]]
    >>> words, word_mask = WordPooling("mean")(x, ids)
    >>> words[0, :, 0].tolist(), word_mask.tolist()
    ([2.0, 7.0, 10.0], [[True, True, True]])
    >>> WordPooling.unpool(words, ids, causal=True)[0, :, 0].tolist()
    [0.0, 0.0, 0.0, 2.0, 2.0, 7.0]
"""

from __future__ import annotations

import torch
from torch import nn

from toknz.errors import UsageError

MODES = ("mean", "max", "first", "last")


def word_ids_from_starts(starts: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Each byte's word id ``[B, T]`` from ``starts [B, T]`` (True where a word begins).

    The first byte of a row always starts word 0 (whatever ``starts`` says there); each later
    start begins the next word; padding (``mask`` False) gets ``-1``.
    """
    if starts.dim() != 2:
        raise UsageError(f"starts must be [B, T], not {list(starts.shape)}")
    first = torch.arange(starts.shape[1], device=starts.device) == 0
    ids = torch.cumsum((starts.bool() | first).long(), dim=1) - 1
    return ids if mask is None else torch.where(mask, ids, -1)


class WordPooling(nn.Module):
    """Pool byte states into word states: ``(x [B, T, D], word_ids [B, T])`` →
    ``(words [B, W, D], word_mask [B, W])``.

    ``word_ids`` are non-decreasing or not (any byte may go to any word), ``-1`` marks
    padding bytes; ``num_words`` fixes ``W`` (else ``max id + 1``, which syncs with the
    device; pass it under ``torch.compile``). A word with no byte gets zeros and ``word_mask``
    False. ``mode``: ``mean``, ``max``, ``first`` or ``last`` (by byte position).

        >>> import torch
        >>> ids = torch.tensor([[0, 0, 1, -1]])
        >>> x = torch.tensor([[[1.0], [3.0], [5.0], [9.0]]])
        >>> [WordPooling(m)(x, ids)[0][0, :, 0].tolist() for m in MODES]
        [[2.0, 5.0], [3.0, 5.0], [1.0, 5.0], [3.0, 5.0]]
    """

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in MODES:
            raise UsageError(f"pooling mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode

    def forward(
        self,
        x: torch.Tensor,
        word_ids: torch.Tensor | None = None,
        *,
        starts: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        num_words: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if (word_ids is None) == (starts is None):
            raise UsageError("give exactly one of word_ids and starts")
        if word_ids is None:
            assert starts is not None
            word_ids = word_ids_from_starts(starts, mask)
        elif mask is not None:
            word_ids = torch.where(mask, word_ids, -1)
        if x.dim() != 3 or word_ids.shape != x.shape[:2]:
            raise UsageError(
                f"x must be [B, T, D] and word ids [B, T]: got {list(x.shape)} and "
                f"{list(word_ids.shape)}"
            )
        b, t, d = x.shape
        if num_words is None:
            num_words = int(word_ids.max()) + 1 if word_ids.numel() else 0
        w = num_words
        # Padding bytes (and ids past W) go to an extra slot W, dropped at the end.
        slot = torch.where((word_ids >= 0) & (word_ids < w), word_ids, w)
        counts = torch.zeros(b, w + 1, device=x.device, dtype=torch.long)
        counts.scatter_add_(1, slot, torch.ones_like(slot))
        word_mask = counts[:, :w] > 0
        if self.mode in ("first", "last"):
            pos = torch.arange(t, device=x.device).expand(b, t)
            fill = t if self.mode == "first" else -1
            where = torch.full((b, w + 1), fill, device=x.device, dtype=torch.long)
            reduce = "amin" if self.mode == "first" else "amax"
            where = where.scatter_reduce(1, slot, pos, reduce=reduce, include_self=True)
            where = where[:, :w].clamp(0, max(t - 1, 0))
            pooled = torch.gather(x, 1, where.unsqueeze(-1).expand(-1, -1, d))
        else:
            index = slot.unsqueeze(-1).expand(-1, -1, d)
            out = torch.zeros(b, w + 1, d, device=x.device, dtype=x.dtype)
            if self.mode == "mean":
                out = out.scatter_add(1, index, x)
                pooled = out[:, :w] / counts[:, :w].clamp(min=1).unsqueeze(-1).to(x.dtype)
            else:
                out = out.scatter_reduce(1, index, x, reduce="amax", include_self=False)
                pooled = out[:, :w]
        pooled = torch.where(word_mask.unsqueeze(-1), pooled, torch.zeros_like(pooled))
        return pooled, word_mask

    @staticmethod
    def unpool(words: torch.Tensor, word_ids: torch.Tensor, causal: bool = False) -> torch.Tensor:
        """Word states ``[B, W, D]`` back to bytes ``[B, T, D]`` by ``word_ids [B, T]``.

        Each byte gets its word's state; with ``causal`` the previous word's (zeros for word
        0). Padding bytes (id ``-1``) and ids past ``W`` get zeros.
        """
        if words.dim() != 3 or word_ids.dim() != 2 or words.shape[0] != word_ids.shape[0]:
            raise UsageError(
                f"words must be [B, W, D] and word ids [B, T]: got {list(words.shape)} and "
                f"{list(word_ids.shape)}"
            )
        b, w, d = words.shape
        ids = word_ids - 1 if causal else word_ids
        valid = (ids >= 0) & (ids < w) & (word_ids >= 0)
        padded = torch.cat((words, words.new_zeros(b, 1, d)), dim=1)
        index = torch.where(valid, ids, w)
        return torch.gather(padded, 1, index.unsqueeze(-1).expand(-1, -1, d))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
