"""Learned deletion of byte positions (MrT5: Kallini et al., ICLR 2025).

A :class:`DeleteGate` sits after an early layer of a byte model and gives every position a
*keep value* in log space, ``G = k · sigmoid(-(w · norm(h) + b))`` in ``[k, 0]`` with ``k`` a
large negative constant (MrT5's ``sigmoid_mask_scale``, ``-30`` by default): ``0`` keeps a
position, ``k`` deletes it.

- **Training (soft deletion).** Nothing is removed: ``G`` is added to the attention logits of
  every later layer as a per-key bias (``key_bias`` of :class:`~toknz.torch.layers.Transformer`),
  so a position with ``G`` near ``k`` is all but invisible, and the gate learns by gradient.
- **Inference (hard deletion).** Positions with ``G`` at or below the threshold ``k / 2`` are
  removed (:meth:`DeleteGate.keep_mask`, :func:`compact`) and the later layers run on the
  shorter sequence.

:func:`gate_loss` is MrT5's regulariser, ``α · mean(G)`` over real positions (minimising it
pushes ``G`` toward ``k``: more deletion), and :class:`DeletionController` its PI controller,
which sets ``α`` after every step to hold a target deletion rate (MrT5's
``training/trainer.py``: ``p ← 0.9 p + 0.1 · k_p · e``, ``i ← i + k_i · e``, ``α = max(0, p + i)``
with ``e = target − rate``, ``k_p = 0.5``, ``k_i = 1e-5``).

    >>> import torch
    >>> gate = DeleteGate(dim=8)
    >>> h, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    >>> g = gate(h, mask)
    >>> g.shape, bool(((g <= 0) & (g >= -30)).all())
    (torch.Size([2, 5]), True)
    >>> kept = compact(gate.keep_mask(g, mask))
    >>> kept.gather(h).shape[1] == int(gate.keep_mask(g, mask).sum(1).max())
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from toknz.errors import UsageError
from toknz.torch.layers import RMSNorm

#: MrT5's default gate scale ``k`` (``--sigmoid_mask_scale``): the keep value of a deleted
#: position.
GATE_SCALE = -30.0
#: MrT5's proportional and integral gains of the deletion-rate controller.
CONTROLLER_P = 0.5
CONTROLLER_I = 1e-5


class DeleteGate(nn.Module):
    """Keep values ``[B, T]`` in ``[scale, 0]`` from hidden states ``[B, T, dim]``.

    ``forward(hidden, mask=None)``: ``mask [B, T]`` is True on real positions; padding gets
    ``scale`` (deleted). The values are float32 whatever the autocast dtype.
    ``threshold`` (default ``scale / 2``) separates kept from deleted positions at inference.
    As in MrT5, a linear layer on RMS-normed states gives a logit ``z`` and
    ``G = scale · sigmoid(-z)``; the bias starts at 1 (``G ≈ 0.27 · scale``: nothing deleted
    yet, every position already down-weighted a little).

        >>> import torch
        >>> gate = DeleteGate(dim=4, scale=-10.0)
        >>> gate.threshold
        -5.0
        >>> gate.keep_mask(torch.tensor([[-1.0, -6.0, -4.9]])).tolist()
        [[True, False, True]]
    """

    def __init__(self, dim: int, scale: float = GATE_SCALE, threshold: float | None = None):
        super().__init__()
        if not scale < 0:
            raise UsageError(f"the gate scale must be negative, not {scale}")
        threshold = scale / 2 if threshold is None else threshold
        if not scale < threshold < 0:
            raise UsageError(f"the threshold must lie between {scale} and 0, not {threshold}")
        self.scale = float(scale)
        self.threshold = float(threshold)
        self.norm = RMSNorm(dim)
        self.proj = nn.Linear(dim, 1)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.constant_(self.proj.bias, 1.0)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if hidden.dim() != 3:
            raise UsageError(f"the gate takes hidden states [B, T, dim], not {list(hidden.shape)}")
        logits = self.proj(self.norm(hidden)).squeeze(-1).float()
        gate = self.scale * torch.sigmoid(-logits)
        if mask is not None:
            gate = torch.where(mask, gate, torch.full_like(gate, self.scale))
        return gate

    def keep_mask(self, gate: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """True where a position survives hard deletion (``gate > threshold`` and real)."""
        keep = gate > self.threshold
        return keep if mask is None else keep & mask

    def compact(
        self, hidden: torch.Tensor, gate: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Kept]:
        """Hard deletion: the states ``[B, S, dim]`` of the kept positions, packed to the
        front of each row, and where they came from (:class:`Kept`, see :func:`compact`)."""
        kept = compact(self.keep_mask(gate, mask))
        return kept.gather(hidden), kept


@dataclass
class Kept:
    """The kept positions of a batch, packed to the front: what :func:`compact` returns.

    ``index [B, S]`` holds the original position of each kept one (in order; 0 on padding),
    ``mask [B, S]`` is True on real entries, ``S`` the most kept positions of any row (at
    least 1).
    """

    index: torch.Tensor
    mask: torch.Tensor

    def gather(self, values: torch.Tensor) -> torch.Tensor:
        """``values [B, T, ...]`` at the kept positions: ``[B, S, ...]`` (padding: position 0)."""
        index = self.index.reshape(*self.index.shape, *([1] * (values.dim() - 2)))
        return torch.gather(values, 1, index.expand(-1, -1, *values.shape[2:]))


def compact(keep: torch.Tensor) -> Kept:
    """Pack the True positions of ``keep [B, T]`` to the front of each row, in order.

    Hard deletion: the result's ``S`` depends on the values (it syncs with the device), so
    this is for inference, not a compiled training step.

        >>> kept = compact(torch.tensor([[True, False, True], [False, False, True]]))
        >>> kept.index.tolist(), kept.mask.tolist()
        ([[0, 2], [2, 0]], [[True, True], [True, False]])
    """
    if keep.dim() != 2 or keep.dtype != torch.bool:
        raise UsageError(f"keep must be a bool [B, T] tensor, not {keep.dtype} {list(keep.shape)}")
    counts = keep.sum(dim=1)
    width = max(int(counts.max()) if keep.numel() else 0, 1)
    # A stable sort on "deleted" puts the kept positions first, in their original order.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    if order.shape[1] < width:
        order = torch.nn.functional.pad(order, (0, width - order.shape[1]))
    order = order[:, :width]
    mask = torch.arange(width, device=keep.device) < counts.unsqueeze(1)
    return Kept(index=torch.where(mask, order, 0), mask=mask)


def gate_loss(gate: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """MrT5's regulariser ``weight · mean(gate)`` over the real positions (``mask``).

    The keep values are negative, so a positive ``weight`` rewards deleting.
    """
    real = mask.to(gate.dtype)
    mean = (gate * real).sum() / real.sum().clamp(min=1.0)
    return weight * mean


def deletion_rate(gate: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """The fraction of real positions (``mask``) whose keep value is at or below ``threshold``."""
    deleted = ((gate <= threshold) & mask).sum()
    return deleted.float() / mask.sum().clamp(min=1).float()


class DeletionController(nn.Module):
    """MrT5's PI controller: sets the regulariser weight ``α`` to hold a deletion rate.

    After each training step, :meth:`update` with the step's deletion rate does
    ``e = target − rate``, ``p ← 0.9 · p + 0.1 · kp · e``, ``i ← i + ki · e``,
    ``α = max(0, p + i)``. Before the first update ``α`` is ``initial``. MrT5's ``α`` never
    goes below 0, so it can push toward deletion only: when the language-model loss itself
    makes the gate delete more than the target, nothing pulls it back. With
    ``symmetric=True`` (toknz's option, not MrT5's) ``α = p + i`` may go negative, and a
    negative ``α`` rewards keeping positions, so the rate is held from both sides. The state (``p``,
    ``i``, ``α``, step count) lives in buffers, so ``state_dict()`` / ``load_state_dict()``
    (and a model's checkpoint) carry it and training resumes where it stopped.

        >>> c = DeletionController(target=0.5)
        >>> round(float(c.update(0.0)), 6)  # too little deleted: α rises
        0.025005
        >>> d = DeletionController(target=0.5)
        >>> d.load_state_dict(c.state_dict())
        <All keys matched successfully>
        >>> float(d.weight) == float(c.weight)
        True
    """

    weight: torch.Tensor
    p_acc: torch.Tensor
    i_acc: torch.Tensor
    steps: torch.Tensor

    def __init__(
        self,
        target: float,
        kp: float = CONTROLLER_P,
        ki: float = CONTROLLER_I,
        initial: float = 0.0,
        symmetric: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= target < 1.0:
            raise UsageError(f"the target deletion rate must be in [0, 1), not {target}")
        if kp < 0 or ki < 0 or initial < 0:
            raise UsageError(f"controller gains and weight must not be negative ({kp}, {ki})")
        self.target = float(target)
        self.kp = float(kp)
        self.ki = float(ki)
        self.symmetric = bool(symmetric)
        self.register_buffer("weight", torch.tensor(float(initial)))
        self.register_buffer("p_acc", torch.tensor(0.0))
        self.register_buffer("i_acc", torch.tensor(0.0))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long))

    @torch.no_grad()
    def update(self, rate: torch.Tensor | float) -> torch.Tensor:
        """Feed one step's deletion rate; returns the new weight (no device sync)."""
        rate_t = torch.as_tensor(rate, dtype=torch.float32, device=self.weight.device)
        error = self.target - rate_t
        self.p_acc.mul_(0.9).add_(0.1 * self.kp * error)
        self.i_acc.add_(self.ki * error)
        alpha = self.p_acc + self.i_acc
        self.weight.copy_(alpha if self.symmetric else alpha.clamp(min=0.0))
        self.steps.add_(1)
        return self.weight.clone()

    def extra_repr(self) -> str:
        return f"target={self.target}, kp={self.kp}, ki={self.ki}, symmetric={self.symmetric}"
