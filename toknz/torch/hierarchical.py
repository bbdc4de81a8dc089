"""Hierarchical byte/word language models (HAT: Neitemeier et al., ICLR 2025).

Bytes at the edges, words in the middle. A :class:`WordBatch` (from
:class:`~toknz.torch.batching.WordBatcher`) holds each text as words of bytes; then

1. :class:`ByteWordEncoder` turns each word's bytes into one vector (a small bidirectional
   byte transformer per word, pooled by a learned word token or by the mean);
2. :class:`WordBackbone` runs a causal model over the word vectors, shifted by one (a
   learned start vector first), so its output at word ``i`` has seen words ``0..i-1`` only:
   toknz's own :class:`~toknz.torch.layers.Transformer`, or any ``transformers`` causal LM fed
   through ``inputs_embeds`` (:meth:`HierarchicalLM.with_backbone`);
3. :class:`ByteWordDecoder` spells word ``i`` from that state: a small causal byte
   transformer whose first position is the word state, predicting the word's bytes and then
   a terminator, :data:`END_OF_WORD` (another word follows) or :data:`END_OF_TEXT` (the text
   ends here). Teacher-forced in training, autoregressive in :meth:`HierarchicalLM.generate`.

The loss covers every byte of every text plus one terminator per word, so bits per byte
(:meth:`~toknz.torch.outputs.LMOutput.bits_per_byte`) compares with byte- and BPE-level
models on the same text. Words are capped at ``max_word_bytes`` by the splitter, which never
splits a character, so nothing here ever sees a partial character it did not predict.

    >>> import torch
    >>> from toknz.torch.hierarchical import HierarchicalConfig, HierarchicalLM
    >>> from toknz.torch.layers import TransformerConfig
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> small = TransformerConfig(dim=32, depth=1, heads=2)
    >>> model = HierarchicalLM(HierarchicalConfig(encoder=small, backbone=small, decoder=small))
    >>> out = model(model.batcher()(["Hello world", "byte by byte"]))
    >>> out.n_bytes, 5 < out.bits_per_byte() < 15  # untrained: near log2(258) bits a symbol
    (23, True)
    >>> len(model.generate("Hello", max_new_bytes=8)) >= len("Hello")
    True
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from toknz.errors import UsageError
from toknz.torch.batching import WordBatch, WordBatcher
from toknz.torch.generation import check_generation, restore_specials, sample_symbol
from toknz.torch.layers import Transformer, TransformerConfig
from toknz.torch.outputs import LMOutput
from toknz.torch.saving import PretrainedModule

#: Decoder symbol after a word's last byte when another word follows.
END_OF_WORD = 256
#: Decoder symbol after the last byte of the text.
END_OF_TEXT = 257
#: Decoder output size: 256 bytes and the two terminators.
DECODER_SYMBOLS = 258

POOLINGS = ("token", "mean")


def _encoder_default() -> TransformerConfig:
    return TransformerConfig(dim=128, depth=2, heads=4, causal=False)


def _backbone_default() -> TransformerConfig:
    return TransformerConfig(dim=256, depth=4, heads=4, causal=True)


def _decoder_default() -> TransformerConfig:
    return TransformerConfig(dim=128, depth=2, heads=4, causal=True)


@dataclass
class HierarchicalConfig:
    """Sizes and splitting of a :class:`HierarchicalLM`.

    ``encoder`` is made bidirectional and ``decoder`` causal whatever their ``causal`` flag
    says; ``backbone`` must be causal. ``rule`` and ``max_word_bytes`` are the splitter's
    (:func:`toknz.split_words`); ``pooling`` is ``"token"`` (a learned word token, HAT) or
    ``"mean"`` (Learn Your Tokens). ``backbone_hf_config`` is set by
    :meth:`HierarchicalLM.with_backbone`: the ``transformers`` config of a pretrained
    backbone, which then replaces ``backbone``. ``word_buckets`` (``k``): the byte encoder
    and decoder run on the batch's real words only, sorted by length into ``k`` groups, each
    padded to its own longest word instead of the batch's (the same outputs, a fraction of
    the work when most words are short); ``0`` keeps the fixed ``[B, W, L]`` shapes that
    ``torch.compile(fullgraph=True)`` needs.
    """

    encoder: TransformerConfig = field(default_factory=_encoder_default)
    backbone: TransformerConfig = field(default_factory=_backbone_default)
    decoder: TransformerConfig = field(default_factory=_decoder_default)
    rule: str = "whitespace"
    max_word_bytes: int = 16
    pooling: str = "token"
    special_tokens: tuple[str, ...] = ()
    backbone_hf_config: dict[str, Any] | None = None
    word_buckets: int = 4

    def __post_init__(self) -> None:
        if self.word_buckets < 0:
            raise UsageError(f"word_buckets must not be negative, not {self.word_buckets}")
        if self.pooling not in POOLINGS:
            raise UsageError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        if self.backbone_hf_config is None and not self.backbone.causal:
            raise UsageError("the word backbone must be causal (backbone.causal=True)")
        self.encoder = dataclasses.replace(self.encoder, causal=False, cross_attention=False)
        self.decoder = dataclasses.replace(self.decoder, causal=True, cross_attention=False)
        self.special_tokens = tuple(self.special_tokens)


def length_buckets(lengths: torch.Tensor, buckets: int) -> list[tuple[torch.Tensor, int]]:
    """Groups of the positive entries of ``lengths [N]`` by length: ``(indices, width)`` pairs.

    The entries with a positive length are sorted by length and cut into at most ``buckets``
    groups of (nearly) equal count; ``width`` is the longest length in a group. Every
    positive entry is in exactly one group; zero lengths (padding) are in none.

    >>> [(i.tolist(), w) for i, w in length_buckets(torch.tensor([3, 0, 1, 5, 2]), 2)]
    [([2, 4], 2), ([0, 3], 5)]
    """
    real = torch.nonzero(lengths > 0).flatten()
    if real.numel() == 0:
        return []
    order = real[torch.argsort(lengths[real], stable=True)]
    groups = []
    for chunk in torch.tensor_split(order, min(buckets, order.numel())):
        groups.append((chunk, int(lengths[chunk].max())))
    return groups


class ByteWordEncoder(nn.Module):
    """Each word's bytes to one vector: ``bytes [B, W, L]`` → ``[B, W, out_dim]``.

    A bidirectional byte transformer runs over each word on its own (words never see each
    other here); with ``pooling="token"`` a learned word token is prepended and its output
    kept, with ``"mean"`` the outputs of the real bytes are averaged. Padding words give a
    finite vector that callers mask.
    """

    def __init__(self, config: TransformerConfig, out_dim: int, pooling: str = "token") -> None:
        super().__init__()
        self.pooling = pooling
        self.embed = nn.Embedding(256, config.dim)
        self.word_token = nn.Parameter(torch.randn(config.dim) * 0.02)
        self.transformer = Transformer(config)
        self.proj = nn.Linear(config.dim, out_dim, bias=False)

    def forward(
        self, data: torch.Tensor, byte_mask: torch.Tensor, buckets: int = 0
    ) -> torch.Tensor:
        b, w, length = data.shape
        if buckets <= 0:
            return self._pool(
                data.reshape(b * w, length), byte_mask.reshape(b * w, length)
            ).reshape(b, w, -1)
        flat, mask = data.reshape(b * w, length), byte_mask.reshape(b * w, length)
        out = torch.zeros(b * w, self.proj.out_features, dtype=self.proj.weight.dtype,
                          device=data.device)  # fmt: skip
        for index, width in length_buckets(mask.sum(-1), buckets):
            pooled = self._pool(flat[index, :width], mask[index, :width])
            out = out.index_copy(0, index, pooled.to(out.dtype))
        return out.reshape(b, w, -1)

    def _pool(self, data: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``data [N, L]`` words (``mask`` True on real bytes) to ``[N, out_dim]``."""
        x = self.embed(data)
        n = data.shape[0]
        if self.pooling == "token":
            token = self.word_token.to(x.dtype).expand(n, 1, -1)
            x = torch.cat((token, x), dim=1)
            mask = torch.cat((torch.ones_like(mask[:, :1]), mask), dim=1)
            pooled = self.transformer(x, key_mask=mask)[:, 0]
        else:
            h = self.transformer(x, key_mask=mask)
            weights = mask.to(h.dtype).unsqueeze(-1)
            pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.proj(pooled)


def hf_base_model(model: nn.Module) -> Any:
    """The base model (no LM head) of a ``transformers`` model."""
    base = getattr(model, "base_model", model)
    if not hasattr(base, "get_input_embeddings"):
        raise UsageError(f"{type(model).__name__} is not a transformers model")
    return base


class WordBackbone(nn.Module):
    """The word-level causal model: ``x [B, W, dim]``, ``mask [B, W]`` → ``[B, W, dim]``.

    Either toknz's :class:`~toknz.torch.layers.Transformer` (from ``config``) or ``hf_model``,
    any ``transformers`` causal LM or base model, fed through ``inputs_embeds``. Its token
    embedding table is replaced by a one-row stub (a hierarchical model feeds it words, not
    token ids), which drops its parameters from the count.
    """

    def __init__(
        self, config: TransformerConfig | None = None, hf_model: nn.Module | None = None
    ) -> None:
        super().__init__()
        if (config is None) == (hf_model is None):
            raise UsageError(
                "a WordBackbone needs exactly one of a config and a transformers model"
            )
        self.transformer: Transformer | None = None
        self.hf: nn.Module | None = None
        if hf_model is not None:
            base = hf_base_model(hf_model)
            self.dim = int(base.config.hidden_size)
            base.set_input_embeddings(nn.Embedding(1, self.dim))
            self.hf = base
        else:
            assert config is not None
            self.transformer = Transformer(config)
            self.dim = config.dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.transformer is not None:
            return self.transformer(x, key_mask=mask)
        assert self.hf is not None
        out = self.hf(inputs_embeds=x, attention_mask=mask.long(), use_cache=False)
        return out.last_hidden_state


class ByteWordDecoder(nn.Module):
    """Spells words from word states: ``state [B, W, in_dim]``, ``bytes [B, W, L]`` →
    logits ``[B, W, L + 1, 258]``.

    Position 0 holds the (projected) word state, position ``k + 1`` byte ``k``; the word
    state is also added to every position. Causal: the logits at position ``k`` (predicting
    byte ``k``, or the terminator when ``k`` is the word's length) see bytes ``0..k-1`` only.
    """

    def __init__(self, config: TransformerConfig, in_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(256, config.dim)
        self.proj = nn.Linear(in_dim, config.dim, bias=False)
        self.transformer = Transformer(config)
        self.head = nn.Linear(config.dim, DECODER_SYMBOLS, bias=False)

    def forward(
        self,
        state: torch.Tensor,
        data: torch.Tensor,
        lengths: torch.Tensor | None = None,
        buckets: int = 0,
    ) -> torch.Tensor:
        b, w, length = data.shape
        flat_state = state.reshape(b * w, -1)
        flat = data.reshape(b * w, length)
        if buckets <= 0 or lengths is None:
            return self._spell(flat_state, flat).reshape(b, w, length + 1, DECODER_SYMBOLS)
        out = None
        for index, width in length_buckets(lengths.reshape(-1), buckets):
            logits = self._spell(flat_state[index], flat[index, :width])
            if out is None:
                out = logits.new_zeros(b * w, length + 1, DECODER_SYMBOLS)
            out[index, : width + 1] = logits
        if out is None:
            out = self.head.weight.new_zeros(b * w, length + 1, DECODER_SYMBOLS)
        return out.reshape(b, w, length + 1, DECODER_SYMBOLS)

    def _spell(self, state: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, L + 1, 258]`` of ``N`` words ``data [N, L]`` from ``state [N, in_dim]``."""
        s = self.proj(state).unsqueeze(1)
        x = torch.cat((s, self.embed(data) + s), dim=1)
        return self.head(self.transformer(x))


def decoder_targets(batch: WordBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """What the decoder must predict at each of its ``L + 1`` positions, and where.

    Returns ``(targets [B, W, L + 1], predicted [B, W, L + 1])``: the word's bytes, then
    :data:`END_OF_WORD`, or :data:`END_OF_TEXT` after the text's last word; ``predicted`` is
    True on those positions (``lengths + 1`` of them per real word).
    """
    b, w, length = batch.bytes.shape
    targets = F.pad(batch.bytes, (0, 1))
    cols = torch.arange(length + 1, device=targets.device)
    ends = cols == batch.lengths.unsqueeze(-1)  # the terminator's position
    last = batch.word_mask & (
        torch.arange(w, device=targets.device) == (batch.word_counts - 1).unsqueeze(-1)
    )
    terminator = torch.where(last, END_OF_TEXT, END_OF_WORD).unsqueeze(-1)
    targets = torch.where(ends, terminator, targets)
    predicted = (cols <= batch.lengths.unsqueeze(-1)) & batch.word_mask.unsqueeze(-1)
    return targets, predicted


class HierarchicalLM(PretrainedModule):
    """A hierarchical byte/word language model (see the module docstring).

    ``forward(batch)`` returns an :class:`~toknz.torch.outputs.LMOutput` over every byte of
    the batch's texts; :meth:`position_nll` the nats of every decoder position;
    :meth:`generate` continues a prompt. ``batcher()`` gives the
    :class:`~toknz.torch.batching.WordBatcher` matching this model's splitting.
    """

    config_class = HierarchicalConfig

    def __init__(self, config: HierarchicalConfig, hf_backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        if config.backbone_hf_config is not None and hf_backbone is None:
            hf_backbone = _hf_from_config(config.backbone_hf_config)
        if hf_backbone is not None:
            self.backbone = WordBackbone(hf_model=hf_backbone)
        else:
            self.backbone = WordBackbone(config.backbone)
        dim = self.backbone.dim
        self.encoder = ByteWordEncoder(config.encoder, dim, config.pooling)
        self.start = nn.Parameter(torch.randn(dim) * 0.02)
        self.decoder = ByteWordDecoder(config.decoder, dim)

    @classmethod
    def with_backbone(
        cls,
        model: str | os.PathLike[str] | nn.Module,
        *,
        encoder: TransformerConfig | None = None,
        decoder: TransformerConfig | None = None,
        layers: int | None = None,
        **options: Any,
    ) -> HierarchicalLM:
        """A hierarchical model whose backbone is a pretrained ``transformers`` causal LM.

        ``model`` is a folder ``AutoModel.from_pretrained`` reads (loaded in float32) or a
        loaded model; ``layers`` keeps only its first ``layers`` blocks (a smaller, faster
        backbone that still starts from pretrained weights). The encoder and decoder are new.
        ``options`` are other :class:`HierarchicalConfig` fields (``max_word_bytes``, ...).
        """
        if isinstance(model, nn.Module):
            hf = model
        else:
            try:
                from transformers import AutoModel
            except ImportError as exc:
                raise UsageError(
                    "a pretrained backbone needs transformers: pip install transformers"
                ) from exc
            if not os.path.isdir(model):
                raise UsageError(f"{model}: not a folder holding a transformers model")
            hf = AutoModel.from_pretrained(str(model), torch_dtype=torch.float32)
        base = hf_base_model(hf)
        if layers is not None:
            _keep_layers(base, layers)
        config = HierarchicalConfig(
            encoder=encoder or _encoder_default(),
            decoder=decoder or _decoder_default(),
            backbone_hf_config=base.config.to_dict(),
            **options,
        )
        return cls(config, hf_backbone=base)

    def batcher(self, pad_to_multiple: int = 1) -> WordBatcher:
        """The batcher that splits text the way this model was built for."""
        return WordBatcher(
            rule=self.config.rule,
            max_word_bytes=self.config.max_word_bytes,
            special_tokens=self.config.special_tokens,
            pad_to_multiple=pad_to_multiple,
        )

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def word_states(self, batch: WordBatch) -> torch.Tensor:
        """The backbone's state before each word ``[B, W, dim]``: word ``i``'s sees words < i."""
        words = self.encoder(batch.bytes, batch.byte_mask, self.config.word_buckets)
        start = self.start.to(words.dtype).expand(words.shape[0], 1, -1)
        shifted = torch.cat((start, words[:, :-1]), dim=1)
        return self.backbone(shifted, batch.word_mask)

    def logits(self, batch: WordBatch) -> torch.Tensor:
        """Decoder logits ``[B, W, L + 1, 258]`` (see :func:`decoder_targets`)."""
        return self.decoder(
            self.word_states(batch), batch.bytes, batch.lengths, self.config.word_buckets
        )

    def position_nll(self, batch: WordBatch) -> torch.Tensor:
        """Nats of every decoder position ``[B, W, L + 1]``, 0 where nothing is predicted."""
        logits = self.logits(batch)
        targets, predicted = decoder_targets(batch)
        nll = F.cross_entropy(
            logits.float().reshape(-1, DECODER_SYMBOLS), targets.reshape(-1), reduction="none"
        ).reshape(targets.shape)
        return torch.where(predicted, nll, 0.0)

    def forward(self, batch: WordBatch) -> LMOutput:
        # Fixed shapes and no device sync (torch.compile-friendly): padding is masked, not cut.
        nll = self.position_nll(batch).sum()
        return LMOutput(
            loss=nll / max(batch.n_symbols, 1),
            nll_sum=nll.detach(),
            n_bytes=batch.n_bytes,
            aux={"symbols": float(batch.n_symbols)},
        )

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

        The prompt's last word may be unfinished (the splitter is causal): the decoder
        continues it. ``temperature=0`` picks the most likely symbol. Each new word re-runs the
        encoder and backbone over the whole context (no cache: meant for inspection and tests,
        not serving).
        """
        check_generation(max_new_bytes, temperature, top_k)
        batcher = self.batcher()
        device = self.start.device
        words = batcher([prompt]).word_bytes(0)
        done, current = (words[:-1], words[-1]) if words else ([], b"")
        new = bytearray()
        state = self._state_after(done, device)
        while len(new) < max_new_bytes:
            if len(current) >= self.config.max_word_bytes:
                symbol = END_OF_WORD
            else:
                symbol = self._next_symbol(state, current, temperature, top_k, generator)
            if symbol == END_OF_TEXT:
                break
            if symbol == END_OF_WORD:
                if not current:  # an empty word cannot end; take the best byte instead
                    symbol = self._next_symbol(state, current, 0.0, None, None, bytes_only=True)
                else:
                    done.append(current)
                    current = b""
                    state = self._state_after(done, device)
                    continue
            current += bytes([symbol])
            new.append(symbol)
        return bytes(new)

    def generate(self, prompt: str, max_new_bytes: int = 64, **sampling: Any) -> str:
        """``prompt`` and its continuation (:meth:`generate_bytes`), special tokens restored;
        invalid UTF-8 the model produced shows as U+FFFD."""
        tail = self.generate_bytes(prompt, max_new_bytes, **sampling)
        return prompt + restore_specials(tail, self.batcher().special_bytes)

    def _state_after(self, done: list[bytes], device: torch.device) -> torch.Tensor:
        """The backbone's state for the word after the words ``done``: ``[dim]``."""
        batch = _batch_of_words(done + [b"\0"], self.config.max_word_bytes).to(device)
        return self.word_states(batch)[0, len(done)]

    def _next_symbol(
        self,
        state: torch.Tensor,
        current: bytes,
        temperature: float,
        top_k: int | None,
        generator: torch.Generator | None,
        bytes_only: bool = False,
    ) -> int:
        data = torch.tensor([[list(current) or [0]]], device=state.device)
        logits = self.decoder(state[None, None], data)[0, 0, len(current)].float()
        if bytes_only:
            logits[256:] = -math.inf
        return sample_symbol(logits, temperature, top_k, generator)


def _batch_of_words(words: list[bytes], max_word_bytes: int) -> WordBatch:
    """A one-text :class:`WordBatch` holding exactly ``words`` (no re-splitting)."""
    width = max(max((len(w) for w in words), default=1), 1)
    data = torch.zeros(1, len(words), width, dtype=torch.long)
    lengths = torch.tensor([[len(w) for w in words]], dtype=torch.long)
    for i, word in enumerate(words):
        if word:
            data[0, i, : len(word)] = torch.tensor(list(word))
    offsets = torch.cumsum(lengths, dim=1) - lengths
    byte_mask = torch.arange(width) < lengths.unsqueeze(-1)
    return WordBatch(
        bytes=data,
        byte_mask=byte_mask,
        word_mask=lengths > 0,
        lengths=lengths,
        offsets=offsets,
        n_bytes=int(lengths.sum()),
        n_symbols=int(lengths.sum()) + len(words),
    )


def _keep_layers(base: Any, layers: int) -> None:
    """Keep the first ``layers`` decoder blocks of a ``transformers`` base model."""
    blocks = getattr(base, "layers", None)
    if not isinstance(blocks, nn.ModuleList):
        raise UsageError(f"cannot cut the layers of a {type(base).__name__} (no .layers list)")
    if not 1 <= layers <= len(blocks):
        raise UsageError(f"layers must be between 1 and {len(blocks)}, not {layers}")
    base.layers = nn.ModuleList(list(blocks)[:layers])
    base.config.num_hidden_layers = layers
    for name in ("layer_types", "sliding_window_pattern"):
        value = getattr(base.config, name, None)
        if isinstance(value, list):
            setattr(base.config, name, value[:layers])


def _hf_from_config(data: dict[str, Any]) -> nn.Module:
    """A randomly initialised ``transformers`` base model from a saved config dict."""
    try:
        from transformers import AutoConfig, AutoModel
    except ImportError as exc:
        raise UsageError(
            "this model's backbone is a transformers model: pip install transformers"
        ) from exc
    data = dict(data)
    config = AutoConfig.for_model(data.pop("model_type"), **data)
    return AutoModel.from_config(config, torch_dtype=torch.float32)
