"""A causal byte-level language model, with optional learned deletion (MrT5).

:class:`ByteLevelLM` is the ``bytes`` architecture of ``toknz train-lm``. A
:class:`~toknz.torch.batching.ByteBatch` holds each text as a row of UTF-8 bytes; the model
reads a learned start symbol and then the bytes, and predicts every byte of the text and then
:data:`END_OF_TEXT`: ``n + 1`` symbols for a text of ``n`` bytes, the first byte from the start
symbol alone. Its :meth:`~toknz.torch.outputs.LMOutput.bits_per_byte` divides by the text's
UTF-8 bytes, like :class:`~toknz.torch.hierarchical.HierarchicalLM` (which also pays for its
terminators), so the two compare on the same text.

Without a gate (``gate_layer=None``) it is one causal :class:`~toknz.torch.layers.Transformer`
over the bytes. With ``gate_layer=g`` (see :mod:`toknz.torch.deletion`):

1. the first ``g`` layers run over all bytes (causal): the *early* states;
2. a :class:`~toknz.torch.deletion.DeleteGate` gives each position a keep value ``G``;
3. the later layers run over the kept positions: in training over all of them with ``G`` as a
   soft per-key bias; at inference (``model.eval()`` or ``hard_delete=True``) over only the
   positions with ``G`` above the threshold, a really shorter sequence, keeping their
   original rotary positions;
4. a small causal *local* stack runs over every byte position from its early state and
   cross-attends to the deep states of the kept positions at or before it (by original
   position, so nothing leaks from later bytes; a learned null slot is always visible), then
   predicts the next symbol.

The regulariser ``α · mean(G)`` is part of the training loss; with ``target_deletion`` a PI
controller (:class:`~toknz.torch.deletion.DeletionController`, whose state is in the model's
``state_dict``) sets ``α`` after every training forward to hold that deletion rate. The loss's
``aux`` reports ``deletion_rate``, ``gate_loss`` and ``gate_weight``.

    >>> import torch
    >>> from toknz.torch.layers import TransformerConfig
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> config = ByteLMConfig(
    ...     transformer=TransformerConfig(dim=32, depth=2, heads=2),
    ...     local=TransformerConfig(dim=32, depth=1, heads=2),
    ...     gate_layer=1,
    ...     target_deletion=0.5,
    ... )
    >>> model = ByteLevelLM(config)
    >>> out = model(model.batcher()(["Hello world", "byte by byte"]))
    >>> out.n_bytes, 5 < out.bits_per_byte() < 15, sorted(out.aux)[:2]
    (23, True, ['deletion_rate', 'gate_loss'])
    >>> len(model.eval().generate("Hello", max_new_bytes=8)) >= len("Hello")
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from toknz.errors import UsageError
from toknz.torch.batching import ByteBatch, ByteBatcher
from toknz.torch.deletion import (
    CONTROLLER_I,
    CONTROLLER_P,
    GATE_SCALE,
    DeleteGate,
    DeletionController,
    compact,
    deletion_rate,
    gate_loss,
)
from toknz.torch.generation import check_generation, restore_specials, sample_symbol
from toknz.torch.layers import Transformer, TransformerConfig
from toknz.torch.outputs import LMOutput
from toknz.torch.saving import PretrainedModule

#: Input symbol before the first byte.
START = 256
#: Output symbol after the last byte of the text.
END_OF_TEXT = 256
#: Output size: 256 bytes and the end of text.
SYMBOLS = 257


def _transformer_default() -> TransformerConfig:
    return TransformerConfig(dim=256, depth=6, heads=4, causal=True)


def _local_default() -> TransformerConfig:
    return TransformerConfig(dim=128, depth=1, heads=4, causal=True)


@dataclass
class ByteLMConfig:
    """Sizes of a :class:`ByteLevelLM`.

    ``transformer`` is the byte model (made causal). ``gate_layer`` (None: no gate) puts a
    delete gate after that many of its layers (``1 <= gate_layer < depth``); ``local`` sizes
    the causal local stack used only with a gate (given cross-attention here). ``gate_scale``
    is MrT5's ``k`` and ``gate_threshold`` its deletion threshold (default ``k / 2``).
    ``gate_weight`` is the regulariser weight ``α`` (the controller's starting value when
    ``target_deletion``, a rate in ``[0, 1)``, is set); ``controller_p``/``controller_i`` the
    controller's gains; ``controller_symmetric`` lets ``α`` go negative so the controller can
    also pull the rate down (:class:`~toknz.torch.deletion.DeletionController`). ``special_tokens`` and ``max_bytes`` configure :meth:`ByteLevelLM.batcher`.
    """

    transformer: TransformerConfig = field(default_factory=_transformer_default)
    local: TransformerConfig = field(default_factory=_local_default)
    gate_layer: int | None = None
    target_deletion: float | None = None
    gate_scale: float = GATE_SCALE
    gate_threshold: float | None = None
    gate_weight: float = 0.0
    controller_p: float = CONTROLLER_P
    controller_i: float = CONTROLLER_I
    controller_symmetric: bool = False
    special_tokens: tuple[str, ...] = ()
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        self.transformer = dataclasses.replace(self.transformer, causal=True, cross_attention=False)
        self.local = dataclasses.replace(self.local, causal=True, cross_attention=True)
        self.special_tokens = tuple(self.special_tokens)
        depth = self.transformer.depth
        if self.gate_layer is not None and not 1 <= self.gate_layer < depth:
            raise UsageError(
                f"gate_layer must be between 1 and {depth - 1} (the transformer's depth minus "
                f"one), not {self.gate_layer}"
            )
        if self.target_deletion is not None:
            if self.gate_layer is None:
                raise UsageError("target_deletion needs a delete gate (set gate_layer)")
            if not 0.0 <= self.target_deletion < 1.0:
                raise UsageError(f"target_deletion must be in [0, 1), not {self.target_deletion}")
        if self.gate_weight < 0:
            raise UsageError(f"gate_weight must not be negative, not {self.gate_weight}")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise UsageError(f"max_bytes must be at least 1, not {self.max_bytes}")


@dataclass
class ByteStates:
    """What the gated model computes before its local stack (see :meth:`ByteLevelLM.encode`).

    ``early [B, T, dim]``: states after the first ``gate_layer`` layers; ``gate [B, T]``:
    keep values; ``deep [B, S, dim]``: the normed states of the later layers, over the kept
    positions (``S = T`` in soft mode, the most kept positions of a row in hard mode);
    ``positions [B, S]``: their original positions; ``mask [B, S]``: True on real entries;
    ``bias [B, S]``: their keep values (the soft bias their keys carry).
    """

    early: torch.Tensor
    gate: torch.Tensor
    deep: torch.Tensor
    positions: torch.Tensor
    mask: torch.Tensor
    bias: torch.Tensor


def byte_targets(batch: ByteBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, targets and what is predicted, each ``[B, T + 1]``.

    Inputs are :data:`START` then the bytes; position ``t`` predicts byte ``t``, and position
    ``length`` :data:`END_OF_TEXT` (only where the row holds its whole text).
    """
    b = batch.bytes.shape[0]
    start = torch.full((b, 1), START, dtype=batch.bytes.dtype, device=batch.bytes.device)
    inputs = torch.cat((start, batch.bytes), dim=1)
    cols = torch.arange(inputs.shape[1], device=inputs.device)
    lengths = batch.lengths.unsqueeze(-1)
    ends = cols == lengths
    targets = torch.where(ends, END_OF_TEXT, F.pad(batch.bytes, (0, 1)))
    predicted = (cols < lengths) | (ends & batch.ended.unsqueeze(-1))
    return inputs, targets, predicted


class ByteLevelLM(PretrainedModule):
    """A causal byte-level language model (see the module docstring).

    ``forward(batch, hard_delete=None)`` returns an :class:`~toknz.torch.outputs.LMOutput`
    over every byte of the batch's texts and their ends (``hard_delete`` defaults to
    ``not self.training``); :meth:`position_nll` the nats at every position;
    :meth:`generate` continues a prompt; :meth:`batcher` gives the matching
    :class:`~toknz.torch.batching.ByteBatcher`.
    """

    config_class = ByteLMConfig

    def __init__(self, config: ByteLMConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.transformer.dim
        self.embed = nn.Embedding(SYMBOLS, dim)
        self.transformer = Transformer(config.transformer)
        self.gate: DeleteGate | None = None
        self.controller: DeletionController | None = None
        self.local: Transformer | None = None
        out_dim = dim
        if config.gate_layer is not None:
            local = config.local.dim
            self.gate = DeleteGate(dim, config.gate_scale, config.gate_threshold)
            if config.target_deletion is not None:
                self.controller = DeletionController(
                    config.target_deletion,
                    config.controller_p,
                    config.controller_i,
                    config.gate_weight,
                    config.controller_symmetric,
                )
            self.local_in = nn.Linear(dim, local, bias=False)
            self.memory_in = nn.Linear(dim, local, bias=False)
            self.null_memory = nn.Parameter(torch.randn(local) * 0.02)
            self.local = Transformer(config.local)
            out_dim = local
        self.head = nn.Linear(out_dim, SYMBOLS, bias=False)

    def batcher(self, pad_to_multiple: int = 1) -> ByteBatcher:
        """The batcher this model reads (its special tokens and ``max_bytes``)."""
        return ByteBatcher(
            special_tokens=self.config.special_tokens,
            pad_to_multiple=pad_to_multiple,
            max_bytes=self.config.max_bytes,
        )

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # --- the network ------------------------------------------------------------------------

    def encode(self, x: torch.Tensor, mask: torch.Tensor, hard_delete: bool) -> ByteStates:
        """Early layers, gate and later layers of a gated model on embeddings ``x [B, T, dim]``.

        ``mask [B, T]`` is True on real positions. With ``hard_delete`` the later layers run on
        the kept positions only (a shorter sequence); else on all with the soft gate bias.
        """
        if self.gate is None or self.config.gate_layer is None:
            raise UsageError("encode() is for a model with a delete gate (gate_layer set)")
        split, depth = self.config.gate_layer, self.config.transformer.depth
        early = self.transformer.run_blocks(x, 0, split, key_mask=mask)
        gate = self.gate(early, mask)
        if hard_delete:
            kept = compact(self.gate.keep_mask(gate, mask))
            deep_in, positions, deep_mask = kept.gather(early), kept.index, kept.mask
            bias = torch.where(deep_mask, kept.gather(gate), 0.0)
        else:
            deep_in, deep_mask, bias = early, mask, gate
            positions = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        deep = self.transformer.run_blocks(
            deep_in, split, depth, key_mask=deep_mask, key_bias=bias, positions=positions
        )
        return ByteStates(
            early=early,
            gate=gate,
            deep=self.transformer.norm(deep),
            positions=positions,
            mask=deep_mask,
            bias=bias,
        )

    def decode(self, states: ByteStates, mask: torch.Tensor) -> torch.Tensor:
        """The local stack and head of a gated model: logits ``[B, T, 257]``."""
        assert self.local is not None
        b = states.deep.shape[0]
        memory = self.memory_in(states.deep)
        null = self.null_memory.to(memory.dtype).expand(b, 1, -1)
        memory = torch.cat((null, memory), dim=1)
        first = torch.full_like(states.positions[:, :1], -1)
        h = self.local(
            self.local_in(states.early),
            key_mask=mask,
            memory=memory,
            memory_mask=torch.cat((torch.ones_like(states.mask[:, :1]), states.mask), dim=1),
            memory_bias=torch.cat((torch.zeros_like(states.bias[:, :1]), states.bias), dim=1),
            memory_positions=torch.cat((first, states.positions), dim=1),
        )
        return self.head(h)

    def logits_from_embeddings(
        self, x: torch.Tensor, mask: torch.Tensor, hard_delete: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits ``[B, T, 257]`` and keep values ``[B, T]`` (None without a gate) for
        embedded inputs ``x [B, T, dim]`` (``mask [B, T]``: True on real positions)."""
        if self.gate is None:
            return self.head(self.transformer(x, key_mask=mask)), None
        hard = (not self.training) if hard_delete is None else hard_delete
        states = self.encode(x, mask, hard)
        return self.decode(states, mask), states.gate

    def _logits(
        self, batch: ByteBatch, hard_delete: bool | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs, targets, predicted = byte_targets(batch)
        mask = torch.arange(inputs.shape[1], device=inputs.device) <= batch.lengths.unsqueeze(-1)
        logits, gate = self.logits_from_embeddings(self.embed(inputs), mask, hard_delete)
        return logits, gate, mask, targets, predicted

    def position_nll(self, batch: ByteBatch, hard_delete: bool | None = None) -> torch.Tensor:
        """Nats at every position ``[B, T + 1]`` (see :func:`byte_targets`), 0 where nothing
        is predicted."""
        logits, _, _, targets, predicted = self._logits(batch, hard_delete)
        nll = F.cross_entropy(
            logits.float().reshape(-1, SYMBOLS), targets.reshape(-1), reduction="none"
        ).reshape(targets.shape)
        return torch.where(predicted, nll, 0.0)

    def forward(self, batch: ByteBatch, hard_delete: bool | None = None) -> LMOutput:
        logits, gate, mask, targets, predicted = self._logits(batch, hard_delete)
        nll = F.cross_entropy(
            logits.float().reshape(-1, SYMBOLS), targets.reshape(-1), reduction="none"
        ).reshape(targets.shape)
        nll_sum = torch.where(predicted, nll, 0.0).sum()
        count = predicted.sum()
        loss = nll_sum / count.clamp(min=1)
        aux: dict[str, float] = {"symbols": float(count)}
        if gate is not None:
            assert self.gate is not None
            weight: torch.Tensor | float = self.config.gate_weight
            if self.controller is not None:
                weight = self.controller.weight.clone()
            reg = gate_loss(gate, mask, weight)
            loss = loss + reg
            rate = deletion_rate(gate.detach(), mask, self.gate.threshold)
            if self.controller is not None and self.training:
                self.controller.update(rate)  # after the loss used the old weight, as MrT5
            aux.update(
                deletion_rate=float(rate),
                gate_loss=float(reg.detach()),
                gate_weight=float(weight),
                gate_mean=float(gate_loss(gate.detach(), mask, 1.0)),
            )
        return LMOutput(
            loss=loss, nll_sum=nll_sum.detach(), n_bytes=batch.n_bytes, logits=None, aux=aux
        )

    # --- generation -------------------------------------------------------------------------

    @torch.no_grad()
    def generate_bytes(
        self,
        prompt: str | bytes,
        max_new_bytes: int = 64,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> bytes:
        """The bytes that continue ``prompt`` (at most ``max_new_bytes``; fewer at end of text).

        ``temperature=0`` picks the most likely symbol. Each new byte re-runs the model over
        the whole context (no cache: for inspection and tests, not serving); in eval mode a
        gated model deletes hard, as at inference.
        """
        check_generation(max_new_bytes, temperature, top_k)
        data, _ = self.batcher().encode(prompt)
        device = self.embed.weight.device
        context = [START, *data]
        new = bytearray()
        while len(new) < max_new_bytes:
            ids = torch.tensor([context], device=device)
            mask = torch.ones_like(ids, dtype=torch.bool)
            logits, _ = self.logits_from_embeddings(self.embed(ids), mask)
            symbol = sample_symbol(logits[0, -1].float(), temperature, top_k, generator)
            if symbol == END_OF_TEXT:
                break
            context.append(symbol)
            new.append(symbol)
        return bytes(new)

    def generate(self, prompt: str, max_new_bytes: int = 64, **sampling: Any) -> str:
        """``prompt`` and its continuation (:meth:`generate_bytes`), special tokens restored;
        invalid UTF-8 the model produced shows as U+FFFD."""
        tail = self.generate_bytes(prompt, max_new_bytes, **sampling)
        return prompt + restore_specials(tail, self.batcher().special_bytes)
