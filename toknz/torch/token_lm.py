"""A BPE-level causal language model over the ids of a toknz byte-level tokenizer.

The ``"bpe"`` architecture of ``toknz train-lm``, beside the hierarchical and byte-level ones.
Each text is encoded with the model's own tokenizer (:meth:`toknz.Tokenizer.encode_ordinary_batch`,
toknz's Numba encoder: special-token text is plain text here) into ids ``t_0 .. t_{n-1}``; a
causal :class:`~toknz.torch.layers.Transformer` reads a learned start vector and then the
ids, and predicts every id and finally :attr:`TokenLevelLM.end_id` (one id past the
tokenizer's vocabulary), so the loss covers every byte of the text plus one end-of-text symbol,
the same accounting as :data:`toknz.torch.hierarchical.END_OF_TEXT`: bits per byte compare
across architectures.

A saved model is a :class:`~toknz.torch.saving.PretrainedModule` folder plus the tokenizer as
``tokenizer.json``.

    >>> import torch
    >>> from toknz.pipeline.byte_alphabet import bytes_to_chars
    >>> from toknz.train import train_from_counts
    >>> from toknz.torch.layers import TransformerConfig
    >>> from toknz.torch.token_lm import TokenLevelLM, TokenLMConfig
    >>> tok = train_from_counts({b"hello": 5, b" world": 3}, vocab_size=260)
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> config = TokenLMConfig(vocab_size=tok.n_vocab, transformer=TransformerConfig(dim=32, depth=1, heads=2))
    >>> model = TokenLevelLM(config, tok)
    >>> out = model(model.batcher()(["hello world", "ünï"]))
    >>> out.n_bytes, 5 < out.bits_per_byte() < 40  # untrained
    (16, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from toknz.errors import UsageError
from toknz.torch.batching import TensorBatch
from toknz.torch.generation import check_generation, sample_symbol
from toknz.torch.layers import Transformer, TransformerConfig
from toknz.torch.outputs import LMOutput
from toknz.torch.saving import PretrainedModule

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

#: The tokenizer's file inside a saved model folder.
TOKENIZER_NAME = "tokenizer.json"


def _transformer_default() -> TransformerConfig:
    return TransformerConfig(dim=256, depth=4, heads=4, causal=True)


@dataclass
class TokenLMConfig:
    """Sizes of a :class:`TokenLevelLM`.

    ``vocab_size`` is the tokenizer's ``n_vocab`` (the model adds one end-of-text id after
    it); ``transformer`` must be causal; ``tie_embeddings`` shares the input embedding table
    with the output head.
    """

    vocab_size: int = 0
    transformer: TransformerConfig = field(default_factory=_transformer_default)
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.vocab_size < 1:
            raise UsageError(f"vocab_size must be positive, not {self.vocab_size}")
        if not self.transformer.causal or self.transformer.cross_attention:
            self.transformer = dataclasses.replace(
                self.transformer, causal=True, cross_attention=False
            )


@dataclass
class TokenBatch(TensorBatch):
    """Texts as padded token ids: ``ids [B, T]`` (0 after each text's end), ``mask [B, T]``
    (True on real ids), ``lengths [B]`` (ids per text), ``n_bytes`` (UTF-8 bytes of all
    texts, the denominator of bits per byte) and ``n_ids`` (ids of all texts)."""

    ids: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    n_bytes: int
    n_ids: int


class TokenBatcher:
    """Texts (``list[str]``) to a :class:`TokenBatch` with ``tokenizer`` (a ``DataLoader``
    collate function). ``pad_to_multiple`` rounds the id dimension up."""

    def __init__(self, tokenizer: Tokenizer, pad_to_multiple: int = 1) -> None:
        if pad_to_multiple < 1:
            raise UsageError(f"pad_to_multiple must be at least 1, not {pad_to_multiple}")
        self.tokenizer = tokenizer
        self.pad_to_multiple = pad_to_multiple

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        if isinstance(texts, (str, bytes)):
            raise UsageError("TokenBatcher takes a list of texts, not a single text")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise UsageError(f"text {i}: expected str, not {type(text).__name__}")
        encoded = self.tokenizer.encode_ordinary_batch(list(texts))
        longest = max((len(ids) for ids in encoded), default=0)
        width = max(1, -(-longest // self.pad_to_multiple) * self.pad_to_multiple)
        ids = torch.zeros(len(encoded), width, dtype=torch.long)
        for b, row in enumerate(encoded):
            if row:
                ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        lengths = torch.tensor([len(row) for row in encoded], dtype=torch.long)
        mask = torch.arange(width) < lengths[:, None]
        n_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
        n_ids = sum(len(row) for row in encoded)
        return TokenBatch(ids=ids, mask=mask, lengths=lengths, n_bytes=n_bytes, n_ids=n_ids)


def _check_tokenizer(tokenizer: Tokenizer, vocab_size: int) -> None:
    if not tokenizer.model.byte_level or tokenizer.normalizer is not None:
        raise UsageError(
            f"{tokenizer.name}: a TokenLevelLM needs a byte-level tokenizer without a normalizer "
            "(so every text encodes and decodes back byte for byte), e.g. one `toknz train` made"
        )
    if tokenizer.n_vocab != vocab_size:
        raise UsageError(
            f"{tokenizer.name}: the tokenizer has {tokenizer.n_vocab} ids but the model was "
            f"built for {vocab_size}"
        )


class TokenLevelLM(PretrainedModule):
    """A causal transformer over BPE ids (see the module docstring).

    ``TokenLevelLM(config, tokenizer)``; ``tokenizer`` may be ``None`` only to count or
    inspect parameters (then :meth:`batcher` and :meth:`generate` raise). ``forward(batch)``
    returns an :class:`~toknz.torch.outputs.LMOutput` whose ``nll_sum`` (nats) covers every id
    and the end-of-text id and whose ``n_bytes`` are the texts' UTF-8 bytes.
    """

    config_class = TokenLMConfig

    def __init__(self, config: TokenLMConfig, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        if tokenizer is not None:
            _check_tokenizer(tokenizer, config.vocab_size)
        self.config = config
        self.tokenizer = tokenizer
        dim = config.transformer.dim
        self.embed = nn.Embedding(config.vocab_size + 1, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.start = nn.Parameter(torch.randn(dim) * 0.02)
        self.transformer = Transformer(config.transformer)
        self.head: nn.Linear | None = None
        if not config.tie_embeddings:
            self.head = nn.Linear(dim, config.vocab_size + 1, bias=False)

    # -------------------------------------------------------------- saving hooks

    def save_extra(self, folder: Path) -> None:
        """Write the tokenizer as ``tokenizer.json`` beside the weights."""
        if self.tokenizer is not None:
            self.tokenizer.save(folder / TOKENIZER_NAME, format="json")

    @classmethod
    def init_kwargs(cls, folder: Path) -> dict[str, Any]:
        """Read ``tokenizer.json`` back from a saved folder."""
        from toknz.tokenizer import Tokenizer

        path = folder / TOKENIZER_NAME
        if not path.is_file():
            from toknz.errors import FormatError

            raise FormatError(f"{path}: no such file (a saved TokenLevelLM holds its tokenizer)")
        return {"tokenizer": Tokenizer.from_file(path)}

    # -------------------------------------------------------------- model

    @property
    def end_id(self) -> int:
        """The end-of-text id (one past the tokenizer's ids)."""
        return int(self.config.vocab_size)

    def batcher(self, pad_to_multiple: int = 1) -> TokenBatcher:
        """The :class:`TokenBatcher` of this model's tokenizer."""
        if self.tokenizer is None:
            raise UsageError("this TokenLevelLM has no tokenizer (built for counting only)")
        return TokenBatcher(self.tokenizer, pad_to_multiple)

    def num_parameters(self) -> int:
        """Number of trainable parameters (a tied table counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def logits_from_embeddings(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, T + 1, vocab_size + 1]`` from id embeddings ``x [B, T, dim]``.

        Position ``i`` predicts id ``i`` (the end-of-text id at ``i == length``) and sees the
        start vector and ids ``0..i-1`` only.
        """
        start = self.start.to(x.dtype).expand(x.shape[0], 1, -1)
        h = torch.cat((start, x), dim=1)
        key_mask = torch.cat((torch.ones_like(mask[:, :1]), mask), dim=1)
        out = self.transformer(h, key_mask=key_mask)
        if self.head is not None:
            return self.head(out)
        return F.linear(out, self.embed.weight.to(out.dtype))

    def targets(self, batch: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(targets [B, T + 1], predicted [B, T + 1])``: each text's ids then the end id;
        ``predicted`` is True on those ``length + 1`` positions."""
        targets = F.pad(batch.ids, (0, 1))
        cols = torch.arange(targets.shape[1], device=targets.device)
        lengths = batch.lengths.unsqueeze(-1)
        targets = torch.where(cols == lengths, self.end_id, targets)
        return targets, cols <= lengths

    def position_nll(self, batch: TokenBatch) -> torch.Tensor:
        """Nats of every position ``[B, T + 1]``, 0 where nothing is predicted."""
        logits = self.logits_from_embeddings(self.embed(batch.ids), batch.mask)
        targets, predicted = self.targets(batch)
        nll = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
        ).reshape(targets.shape)
        return torch.where(predicted, nll, 0.0)

    def forward(self, batch: TokenBatch) -> LMOutput:
        # Fixed shapes and no host sync (torch.compile-friendly): padding is masked, not cut.
        nll = self.position_nll(batch).sum()
        count = batch.n_ids + batch.ids.shape[0]  # every id and one end of text per text
        return LMOutput(
            loss=nll / max(count, 1),
            nll_sum=nll.detach(),
            n_bytes=batch.n_bytes,
            aux={"symbols": float(count)},
        )

    @torch.no_grad()
    def generate(
        self,
        prompt: str,
        max_new_bytes: int = 64,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> str:
        """``prompt`` and its continuation: at most ``max_new_bytes`` UTF-8 bytes (fewer when
        the end-of-text id comes), sampled token by token; invalid UTF-8 shows as U+FFFD.

        ``temperature=0`` picks the most likely id. No cache (for inspection and tests).
        """
        check_generation(max_new_bytes, temperature, top_k)
        tokenizer = self.batcher().tokenizer
        device = self.start.device
        ids = list(tokenizer.encode_ordinary_batch([prompt])[0])
        new = bytearray()
        while len(new) < max_new_bytes:
            x = self.embed(torch.tensor([ids], dtype=torch.long, device=device))
            mask = torch.ones(1, len(ids), dtype=torch.bool, device=device)
            logits = self.logits_from_embeddings(x, mask)[0, -1].float()
            nxt = sample_symbol(logits, temperature, top_k, generator)
            if nxt == self.end_id:
                break
            ids.append(nxt)
            new += tokenizer.decode_single_token_bytes(nxt)
        return prompt + bytes(new[:max_new_bytes]).decode("utf-8", "replace")
