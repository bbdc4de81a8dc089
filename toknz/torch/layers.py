"""The transformer every toknz torch model is built from.

One pre-norm block (RMSNorm, multi-head attention with rotary positions, SwiGLU MLP) and a
stack of them. Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`,
so it uses the fused kernels a device has (flash attention on CUDA in bf16/fp16) and stays
``torch.compile``-friendly: no Python control flow depends on tensor values.

Masks are passed as one additive float bias broadcastable to ``[batch, heads, queries, keys]``
(``0`` keeps a key, ``-inf`` or a large negative number removes it), built by
:func:`attention_bias` from a causal flag, a key padding mask and an optional soft per-key bias
(the delete gate's). The bias of a removed key is finite (``NEG_INF``), so a query whose keys
are all removed (a padding position) gets a finite, meaningless output, never NaN: callers
ignore padding outputs.

    >>> import torch
    >>> from toknz.torch.layers import Transformer, TransformerConfig
    >>> net = Transformer(TransformerConfig(dim=32, depth=2, heads=4, causal=True))
    >>> net(torch.randn(2, 5, 32)).shape
    torch.Size([2, 5, 32])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from toknz.errors import UsageError

#: The additive bias of a removed key. Finite, so a fully masked row stays finite in bf16.
NEG_INF = -1e9


@dataclass
class TransformerConfig:
    """Sizes of a :class:`Transformer`.

    ``dim`` must be divisible by ``heads`` and the head size must be even (rotary
    positions rotate pairs). ``mlp_ratio`` sets the SwiGLU hidden size (rounded to a
    multiple of 8). ``rope_base`` is the rotary frequency base. With ``cross_attention`` every
    block also attends to a memory (an encoder's output) after its self-attention, without
    rotary positions (the memory carries its own).
    """

    dim: int = 256
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 8 / 3
    dropout: float = 0.0
    causal: bool = True
    rope_base: float = 10_000.0
    cross_attention: bool = False

    def __post_init__(self) -> None:
        if self.dim <= 0 or self.depth < 0 or self.heads <= 0:
            raise UsageError(
                f"transformer sizes must be positive (dim={self.dim}, depth={self.depth}, "
                f"heads={self.heads})"
            )
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise UsageError(f"dim {self.dim} must split into {self.heads} heads of an even size")


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned scale (no bias)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (x.float() * scale).type_as(x) * self.weight


def rotary_tables(
    positions: torch.Tensor, head_dim: int, base: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine tables ``[..., T, head_dim/2]`` for integer ``positions [..., T]``."""
    inv = 1.0 / (
        base
        ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    )
    angles = positions.to(torch.float32).unsqueeze(-1) * inv
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of ``x [B, H, T, D]`` by the angles of ``cos``/``sin`` (``[T|B,T, D/2]``)."""
    if cos.dim() == 2:
        cos, sin = cos[None, None], sin[None, None]
    else:
        cos, sin = cos[:, None], sin[:, None]
    x1, x2 = x.float().chunk(2, dim=-1)
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.type_as(x)


def attention_bias(
    queries: int,
    keys: int,
    *,
    causal: bool,
    key_mask: torch.Tensor | None = None,
    key_bias: torch.Tensor | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    query_positions: torch.Tensor | None = None,
    key_positions: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """The additive attention bias for ``queries`` × ``keys``, or ``None`` when nothing masks.

    ``key_mask [B, keys]`` is True where a key is real (False for padding); ``key_bias
    [B, keys]`` is added to every query's logit for that key (MrT5's soft deletion). With
    ``causal`` the queries are the last ``queries`` positions of the keys. With
    ``query_positions [queries | B, queries]`` and ``key_positions [keys | B, keys]`` a query
    sees only the keys at or before its own position (causal by position, for keys that are
    not laid out one per query: a memory of kept positions). The result broadcasts to
    ``[B, heads, queries, keys]``.
    """
    bias: torch.Tensor | None = None
    if causal:
        q = torch.arange(keys - queries, keys, device=device)[:, None]
        k = torch.arange(keys, device=device)[None, :]
        bias = torch.where(k <= q, 0.0, NEG_INF).to(dtype)[None, None]
    if (query_positions is None) != (key_positions is None):
        raise UsageError("query_positions and key_positions go together")
    if query_positions is not None and key_positions is not None:
        qp = query_positions[..., :, None]
        kp = key_positions[..., None, :]
        order = torch.where(kp <= qp, 0.0, NEG_INF).to(dtype)
        order = order[:, None] if order.dim() == 3 else order[None, None]
        bias = order if bias is None else bias + order
    if key_mask is not None:
        pad = torch.where(key_mask, 0.0, NEG_INF).to(dtype)[:, None, None, :]
        bias = pad if bias is None else bias + pad
    if key_bias is not None:
        soft = key_bias.to(dtype)[:, None, None, :]
        bias = soft if bias is None else bias + soft
    return bias


class Attention(nn.Module):
    """Multi-head self-attention with rotary positions."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.head_dim = config.dim // config.heads
        self.rope_base = config.rope_base
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.dim, 3 * config.dim, bias=False)
        self.out = nn.Linear(config.dim, config.dim, bias=False)

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        cos, sin = rotary_tables(positions, self.head_dim, self.rope_base)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if bias is not None:
            bias = bias.to(q.dtype)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class CrossAttention(nn.Module):
    """Multi-head attention from queries ``x [B, T, D]`` to a memory ``[B, S, D]`` (no rotary)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.head_dim = config.dim // config.heads
        self.dropout = config.dropout
        self.q = nn.Linear(config.dim, config.dim, bias=False)
        self.kv = nn.Linear(config.dim, 2 * config.dim, bias=False)
        self.out = nn.Linear(config.dim, config.dim, bias=False)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        s = memory.shape[1]
        k, v = self.kv(memory).view(b, s, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if bias is not None:
            bias = bias.to(q.dtype)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    """SwiGLU feed-forward layer."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        hidden = 8 * math.ceil(config.dim * config.mlp_ratio / 8)
        self.gate_up = nn.Linear(config.dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, config.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    """One pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``.

    With ``config.cross_attention``, ``x + cross(norm(x), memory)`` comes between the two.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.dim)
        self.attn = Attention(config)
        self.cross_norm: RMSNorm | None = None
        self.cross: CrossAttention | None = None
        if config.cross_attention:
            self.cross_norm = RMSNorm(config.dim)
            self.cross = CrossAttention(config)
        self.mlp_norm = RMSNorm(config.dim)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        bias: torch.Tensor | None,
        memory: torch.Tensor | None = None,
        memory_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.drop(self.attn(self.attn_norm(x), positions, bias))
        if self.cross is not None and self.cross_norm is not None and memory is not None:
            x = x + self.drop(self.cross(self.cross_norm(x), memory, memory_bias))
        return x + self.drop(self.mlp(self.mlp_norm(x)))


class Transformer(nn.Module):
    """A stack of :class:`Block` with a final norm: ``[B, T, dim] -> [B, T, dim]``.

    ``forward(x, key_mask=None, key_bias=None, positions=None)``: ``key_mask [B, T]`` is True
    on real positions, ``key_bias [B, T]`` a soft additive bias per key, ``positions`` the
    rotary positions (``[T]`` or ``[B, T]``; default ``0..T-1``). The causal flag comes from
    the config. :meth:`run_blocks` runs a slice of the layers without the final norm (the
    delete gate sits between two slices). A stack built with ``cross_attention`` needs
    ``memory [B, S, dim]``, with an optional ``memory_mask [B, S]`` (True on real positions)
    and ``memory_bias [B, S]`` (a soft additive bias per memory key, like ``key_bias``); with
    ``memory_positions [B, S]`` a position sees only the memory keys at or before it (its
    rotary position from ``positions`` against theirs).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = RMSNorm(config.dim)

    def bias(
        self,
        x: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        key_bias: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """The attention bias for ``x`` under this stack's causal flag and the given masks."""
        t = x.shape[1]
        return attention_bias(
            t,
            t,
            causal=self.config.causal,
            key_mask=key_mask,
            key_bias=key_bias,
            device=x.device,
        )

    def run_blocks(
        self,
        x: torch.Tensor,
        start: int,
        stop: int,
        *,
        key_mask: torch.Tensor | None = None,
        key_bias: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        memory_bias: torch.Tensor | None = None,
        memory_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run blocks ``start..stop-1`` on ``x`` (no final norm)."""
        if (memory is None) == self.config.cross_attention:
            raise UsageError(
                "a memory is needed exactly when the transformer has cross-attention "
                f"(cross_attention={self.config.cross_attention}, memory given: "
                f"{memory is not None})"
            )
        if positions is None:
            positions = torch.arange(x.shape[1], device=x.device)
        bias = self.bias(x, key_mask, key_bias)
        cross_bias = None
        if memory is not None:
            cross_bias = attention_bias(
                x.shape[1],
                memory.shape[1],
                causal=False,
                key_mask=memory_mask,
                key_bias=memory_bias,
                device=x.device,
                query_positions=None if memory_positions is None else positions,
                key_positions=memory_positions,
            )
        for block in self.blocks[start:stop]:
            x = block(x, positions, bias, memory, cross_bias)
        return x

    def forward(
        self,
        x: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        key_bias: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        memory_bias: torch.Tensor | None = None,
        memory_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.run_blocks(
            x,
            0,
            len(self.blocks),
            key_mask=key_mask,
            key_bias=key_bias,
            positions=positions,
            memory=memory,
            memory_mask=memory_mask,
            memory_bias=memory_bias,
            memory_positions=memory_positions,
        )
        return self.norm(x)
