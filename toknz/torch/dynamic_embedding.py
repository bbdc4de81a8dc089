"""Embeddings for the merged tokens of dynamic tokenization (:mod:`toknz.dynamic`).

:func:`toknz.dynamic.merge_batch` gives a batch new token ids (``>=`` the base vocabulary),
each defined by the base ids it spans. A model has no row for them; :class:`DynamicEmbedding`
wraps the model's input embedding and computes one vector per new id from its definition:

- ``mode="mean"``: the mean of the constituents' embeddings (Fast Vocabulary Transfer; the
  paper's baseline);
- ``mode="hypernet"``: a small :class:`MergedTokenHypernet` (ZeTT's idea at toknz's size): a
  bidirectional :class:`~toknz.torch.layers.Transformer` over the constituents' embeddings,
  mean-pooled, projected back to the embedding size and added to the mean. The output
  projection starts at zero, so an untrained hypernetwork gives exactly the mean embedding
  (ZeTT warms its hypernetwork up to reproduce the source embeddings for the same reason);
  train it with :func:`toknz.torch.dynamic_training.train_hypernet`.

Base ids go through the wrapped embedding untouched, so a batch without new ids gives exactly
the wrapped embedding's output. The wrapped embedding is frozen (``freeze=True``) and the
constituents are read from a detached table: :meth:`DynamicEmbedding.trainable_parameters` is
the hypernetwork alone. Under ``torch.no_grad()`` computed vectors are kept in a bounded LRU
cache keyed by the constituent tuple (:meth:`DynamicEmbedding.cache_info`).

:func:`dynamic_logits` is the output side: logits over the base vocabulary plus the batch's
new ids, for decoding with (or scoring) a dynamic vocabulary. :func:`lm_inputs` and
:func:`run_dynamic_lm` feed a dynamic batch to a ``transformers`` causal LM through
``inputs_embeds``.

    >>> import torch
    >>> from toknz.dynamic import merge_batch
    >>> table = torch.nn.Embedding(10, 8)
    >>> batch = merge_batch([[1, 2, 3, 1, 2]], first_new_id=10)
    >>> batch.definitions
    {10: (1, 2)}
    >>> emb = DynamicEmbedding(table, mode="mean")
    >>> out = emb(torch.tensor(batch.ids[0])[None], batch)
    >>> out.shape, torch.allclose(out[0, 0], table.weight[[1, 2]].mean(0))
    (torch.Size([1, 3, 8]), True)
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from toknz.dynamic import DynamicBatch
from toknz.errors import UsageError
from toknz.torch.hierarchical import hf_base_model
from toknz.torch.layers import Transformer, TransformerConfig
from toknz.torch.saving import PretrainedModule

MODES = ("mean", "hypernet")
POSITIONS = ("compact", "original")

#: What a forward call accepts as the batch's definitions.
Definitions = Mapping[int, Sequence[int]] | DynamicBatch


def _trunk_default() -> TransformerConfig:
    return TransformerConfig(dim=256, depth=2, heads=4, causal=False)


@dataclass
class HypernetConfig:
    """Sizes of a :class:`MergedTokenHypernet`.

    ``embed_dim``: the wrapped model's embedding size; ``transformer``: the trunk (made
    bidirectional); ``embed_scale``: the typical size (RMS) of one embedding entry, the unit of
    the learned correction; ``output_head``: also predict output (unembedding) vectors for
    :func:`dynamic_logits`, with a second zero-initialised projection.
    """

    embed_dim: int = 576
    transformer: TransformerConfig = field(default_factory=_trunk_default)
    embed_scale: float = 1.0
    output_head: bool = False

    def __post_init__(self) -> None:
        if self.embed_dim <= 0:
            raise UsageError(f"embed_dim must be positive, not {self.embed_dim}")
        if not math.isfinite(self.embed_scale) or self.embed_scale <= 0:
            raise UsageError(f"embed_scale must be a positive number, not {self.embed_scale}")
        self.transformer = dataclasses.replace(
            self.transformer, causal=False, cross_attention=False
        )


class MergedTokenHypernet(PretrainedModule):
    """Constituent embeddings to one vector: ``embeds [N, L, D]``, ``mask [N, L]`` → ``[N, D]``.

    ``mask`` is True on real constituents (each row has at least one). The result is
    ``mean + embed_scale · out(pool(trunk(in(embeds))))`` with the mean over the real
    constituents; ``out`` starts at zero, so an untrained hypernetwork returns the mean.
    :meth:`output_vectors` does the same with the output projection of ``output_head``.

    >>> import torch
    >>> net = MergedTokenHypernet(HypernetConfig(embed_dim=8,
    ...     transformer=TransformerConfig(dim=16, depth=1, heads=2)))
    >>> x, mask = torch.randn(3, 4, 8), torch.tensor([[True] * 4, [True, True, False, False],
    ...                                                 [True, False, False, False]])
    >>> torch.allclose(net(x, mask)[1], x[1, :2].mean(0))
    True
    """

    config_class = HypernetConfig

    def __init__(self, config: HypernetConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.transformer.dim
        self.inp = nn.Linear(config.embed_dim, dim, bias=False)
        self.trunk = Transformer(config.transformer)
        self.out = nn.Linear(dim, config.embed_dim, bias=False)
        nn.init.zeros_(self.out.weight)
        self.out_head: nn.Linear | None = None
        if config.output_head:
            self.out_head = nn.Linear(dim, config.embed_dim, bias=False)
            nn.init.zeros_(self.out_head.weight)

    def _pooled(self, embeds: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if embeds.dim() != 3 or mask.shape != embeds.shape[:2]:
            raise UsageError(
                f"embeds must be [N, L, D] with mask [N, L], got {tuple(embeds.shape)} and "
                f"{tuple(mask.shape)}"
            )
        weights = mask.to(embeds.dtype).unsqueeze(-1)
        count = weights.sum(1).clamp(min=1.0)
        mean = (embeds * weights).sum(1) / count
        h = self.trunk(self.inp(embeds / self.config.embed_scale), key_mask=mask)
        pooled = (h * weights).sum(1) / count
        return mean, pooled

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mean, pooled = self._pooled(embeds, mask)
        return mean + self.config.embed_scale * self.out(pooled)

    def output_vectors(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Output vectors from the constituents' output embeddings (needs ``output_head``)."""
        if self.out_head is None:
            raise UsageError("this hypernetwork has no output head (HypernetConfig.output_head)")
        mean, pooled = self._pooled(embeds, mask)
        return mean + self.config.embed_scale * self.out_head(pooled)


class CacheInfo(NamedTuple):
    """LRU cache counters of a :class:`DynamicEmbedding`."""

    hits: int
    misses: int
    evictions: int
    size: int
    capacity: int


def _definition_rows(wanted: Sequence[int], definitions: Definitions) -> list[tuple[int, ...]]:
    """The constituent tuple of each id in ``wanted`` (a :class:`UsageError` when one is missing)."""
    out: list[tuple[int, ...]] = []
    if isinstance(definitions, DynamicBatch):
        first, off, flat = definitions.first_new_id, definitions.def_off, definitions.def_ids
        n = definitions.n_new
        for i in wanted:
            k = i - first
            if not 0 <= k < n:
                raise UsageError(f"id {i} is not a new id of this DynamicBatch")
            out.append(tuple(flat[off[k] : off[k + 1]].tolist()))
        return out
    for i in wanted:
        d = definitions.get(i)
        if d is None:
            raise UsageError(f"id {i} is past the base vocabulary and has no definition")
        if len(d) == 0:
            raise UsageError(f"id {i} has an empty definition")
        out.append(tuple(int(t) for t in d))
    return out


def _padded(
    rows: Sequence[tuple[int, ...]], n_base: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Constituent tuples as padded ids ``[N, L]`` (pad 0) and their mask."""
    longest = max(len(r) for r in rows)
    ids = np.zeros((len(rows), longest), dtype=np.int64)
    mask = np.zeros((len(rows), longest), dtype=bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = True
    top, low = int(ids.max()), int(ids.min())
    if top >= n_base or low < 0:
        raise UsageError(f"a definition holds id {top if top >= n_base else low}, not a base id")
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


def _constituent_vectors(
    table: torch.Tensor,
    rows: Sequence[tuple[int, ...]],
    hypernet: MergedTokenHypernet | None,
    output: bool = False,
) -> torch.Tensor:
    """One vector per constituent tuple from ``table [V, D]`` (detached): mean or hypernet."""
    ids, mask = _padded(rows, table.shape[0], table.device)
    embeds = table.detach()[ids]
    if hypernet is None:
        weights = mask.to(embeds.dtype).unsqueeze(-1)
        return (embeds * weights).sum(1) / weights.sum(1)
    embeds = embeds.to(next(hypernet.parameters()).dtype)
    vectors = hypernet.output_vectors(embeds, mask) if output else hypernet(embeds, mask)
    return vectors.to(table.dtype)


class DynamicEmbedding(nn.Module):
    """A model's input embedding that also embeds a dynamic batch's new ids.

    ``DynamicEmbedding(embedding, mode="mean" | "hypernet", hypernet=None, freeze=True,
    cache_size=4096)``. ``embedding`` is the model's ``nn.Embedding`` (its rows are the base
    vocabulary, ``V = embedding.num_embeddings``); ``freeze`` turns its gradient off.
    ``mode="hypernet"`` without a ``hypernet`` builds a default :class:`MergedTokenHypernet`
    for the embedding's size (untrained: it gives the mean). ``cache_size`` bounds the LRU
    cache of computed vectors (0: no cache).

    ``forward(ids [B, T], definitions) -> [B, T, D]``: ids below ``V`` are looked up in
    ``embedding``; every id ``>= V`` must have a definition (``definitions``: a
    :class:`~toknz.dynamic.DynamicBatch` or a mapping id → base ids). Raises
    :class:`~toknz.errors.UsageError` for an undefined id or a definition outside ``0..V-1``.

    >>> import torch
    >>> table = torch.nn.Embedding(10, 8)
    >>> emb = DynamicEmbedding(table, mode="hypernet")
    >>> ids = torch.tensor([[1, 12, 3]])
    >>> out = emb(ids, {12: (4, 5, 6)})
    >>> out.shape, torch.equal(out[:, [0, 2]], table(ids[:, [0, 2]]))
    (torch.Size([1, 3, 8]), True)
    >>> len(emb.trainable_parameters()) == len(list(emb.hypernet.parameters()))
    True
    """

    def __init__(
        self,
        embedding: nn.Embedding,
        mode: str = "mean",
        hypernet: MergedTokenHypernet | None = None,
        *,
        freeze: bool = True,
        cache_size: int = 4096,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise UsageError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not isinstance(embedding, nn.Embedding):
            raise UsageError(f"embedding must be a torch.nn.Embedding, not {type(embedding)}")
        if cache_size < 0:
            raise UsageError(f"cache_size must be >= 0, not {cache_size}")
        if mode == "mean" and hypernet is not None:
            raise UsageError('a hypernet is used only with mode="hypernet"')
        dim = embedding.embedding_dim
        if mode == "hypernet" and hypernet is None:
            hypernet = MergedTokenHypernet(default_config(embedding.weight))
        if hypernet is not None and hypernet.config.embed_dim != dim:
            raise UsageError(
                f"the hypernet is for embeddings of size {hypernet.config.embed_dim}, not {dim}"
            )
        self.mode = mode
        self.embedding = embedding
        if freeze:
            embedding.weight.requires_grad_(False)
        self.hypernet = hypernet
        if hypernet is not None:
            hypernet.to(embedding.weight.device)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()
        self._hits = self._misses = self._evictions = 0

    @property
    def n_base(self) -> int:
        """The base vocabulary size: the wrapped embedding's rows."""
        return int(self.embedding.num_embeddings)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The hypernetwork's parameters (empty in ``"mean"`` mode); never the embedding's."""
        return [] if self.hypernet is None else list(self.hypernet.parameters())

    # ------------------------------------------------------------------ cache

    def cache_info(self) -> CacheInfo:
        """Hits, misses, evictions, current size and capacity of the LRU cache."""
        return CacheInfo(
            self._hits, self._misses, self._evictions, len(self._cache), self.cache_size
        )

    def clear_cache(self) -> None:
        """Forget every cached vector (and the counters). Needed after changing the weights
        outside :meth:`train` (which clears it)."""
        self._cache.clear()
        self._hits = self._misses = self._evictions = 0

    def train(self, mode: bool = True) -> DynamicEmbedding:
        """``nn.Module.train``, clearing the cache (the weights are about to change)."""
        self.clear_cache()
        return super().train(mode)

    def vectors(self, rows: Sequence[tuple[int, ...]]) -> torch.Tensor:
        """Embeddings ``[N, D]`` of constituent tuples (base ids), through the cache when no
        gradient is recorded.

        >>> import torch
        >>> emb = DynamicEmbedding(torch.nn.Embedding(5, 4))
        >>> with torch.no_grad():
        ...     _ = emb.vectors([(1, 2), (3, 4)]); _ = emb.vectors([(1, 2)])
        >>> emb.cache_info().hits, emb.cache_info().misses
        (1, 2)
        """
        if not rows:
            return self.embedding.weight.new_zeros(0, self.embedding.embedding_dim)
        cached = self.cache_size > 0 and not torch.is_grad_enabled()
        if not cached:
            return _constituent_vectors(self.embedding.weight, rows, self.hypernet)
        found: dict[int, torch.Tensor] = {}
        missing: list[int] = []
        for i, key in enumerate(rows):
            got = self._cache.get(key)
            if got is None:
                missing.append(i)
            else:
                self._cache.move_to_end(key)
                found[i] = got
        self._hits += len(found)
        self._misses += len(missing)
        if missing:
            fresh = _constituent_vectors(
                self.embedding.weight, [rows[i] for i in missing], self.hypernet
            )
            for i, vec in zip(missing, fresh, strict=True):
                found[i] = vec
                self._cache[rows[i]] = vec
                self._cache.move_to_end(rows[i])
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                    self._evictions += 1
        return torch.stack([found[i] for i in range(len(rows))])

    # ------------------------------------------------------------------ forward

    def forward(self, ids: torch.Tensor, definitions: Definitions) -> torch.Tensor:
        n_base = self.n_base
        is_new = ids >= n_base
        if not bool(is_new.any()):
            return self.embedding(ids)  # type: ignore[no-any-return]
        out = self.embedding(ids.masked_fill(is_new, 0))
        uniq, inverse = torch.unique(ids[is_new], return_inverse=True)
        rows = _definition_rows(uniq.tolist(), definitions)
        vecs = self.vectors(rows).to(out.dtype)
        out = out.masked_scatter(is_new.unsqueeze(-1), vecs[inverse])
        return out

    # ------------------------------------------------------------------ saving

    def save_pretrained(self, folder: Any) -> None:
        """Save the hypernetwork (``MergedTokenHypernet.save_pretrained``); mean mode has none."""
        if self.hypernet is None:
            raise UsageError('mode="mean" has nothing to save (no hypernetwork)')
        self.hypernet.save_pretrained(folder)

    @classmethod
    def from_pretrained(
        cls, embedding: nn.Embedding, folder: Any, **kwargs: Any
    ) -> DynamicEmbedding:
        """A ``mode="hypernet"`` wrapper of ``embedding`` with the hypernetwork saved in
        ``folder``; ``kwargs`` go to the constructor (``freeze``, ``cache_size``)."""
        net = MergedTokenHypernet.from_pretrained(folder, map_location=embedding.weight.device)
        return cls(embedding, mode="hypernet", hypernet=net, **kwargs)


def default_config(weight: torch.Tensor, **changes: Any) -> HypernetConfig:
    """A :class:`HypernetConfig` for an embedding table ``weight [V, D]``: its size, its RMS
    as ``embed_scale``, and the default trunk (``changes`` override fields)."""
    rms = float(weight.detach().float().pow(2).mean().sqrt())
    values: dict[str, Any] = {"embed_dim": int(weight.shape[1]), "embed_scale": rms or 1.0}
    values.update(changes)
    return HypernetConfig(**values)


# ---------------------------------------------------------------------- output side


def dynamic_logits(
    hidden: torch.Tensor,
    output_embedding: torch.Tensor | nn.Module,
    definitions: Definitions,
    *,
    hypernet: MergedTokenHypernet | None = None,
) -> tuple[torch.Tensor, list[int]]:
    """Logits over the base vocabulary plus the batch's new ids, and those ids.

    What it is for: decoding (or scoring) with a dynamic vocabulary. A merged token is one
    step of the model; to emit it, or to score a dynamic sequence as the model's own
    sequence, the output layer needs a row for it. Its output vector is the mean of its
    constituents' output vectors (``hypernet=None``) or the hypernetwork's output head
    (:meth:`MergedTokenHypernet.output_vectors`, a hypernet built with ``output_head=True``).

    In: ``hidden [..., D]`` (the model's last hidden states, after its final norm),
    ``output_embedding`` (the unembedding ``[V, D]``, or an ``nn.Linear``/``nn.Embedding``
    holding it, e.g. ``model.get_output_embeddings()``; a bias is not supported) and the
    definitions. Out: ``logits [..., V + N]`` and the ``N`` new ids in column order (sorted):
    column ``V + k`` is ``new_ids[k]``. The first ``V`` columns are ``hidden @ W.T``, the
    model's own logits. Tied or untied embeddings alike (only the output table is read).

    >>> import torch
    >>> head = torch.nn.Linear(8, 10, bias=False)
    >>> h = torch.randn(2, 3, 8)
    >>> logits, new = dynamic_logits(h, head, {10: (1, 2), 11: (3, 4, 5)})
    >>> logits.shape, new, torch.allclose(logits[..., :10], head(h))
    (torch.Size([2, 3, 12]), [10, 11], True)
    """
    weight = output_embedding
    if isinstance(weight, nn.Module):
        if getattr(weight, "bias", None) is not None:
            raise UsageError("an output layer with a bias is not supported")
        weight = weight.weight
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise UsageError("output_embedding must be a [V, D] tensor or a layer holding one")
    if isinstance(definitions, DynamicBatch):
        new_ids = list(
            range(definitions.first_new_id, definitions.first_new_id + definitions.n_new)
        )
    else:
        new_ids = sorted(int(i) for i in definitions)
    base = hidden @ weight.T
    if not new_ids:
        return base, []
    rows = _definition_rows(new_ids, definitions)
    vecs = _constituent_vectors(weight, rows, hypernet, output=hypernet is not None)
    extra = hidden @ vecs.to(hidden.dtype).T
    return torch.cat((base, extra), dim=-1), new_ids


# ---------------------------------------------------------------------- transformers


@dataclass
class LMInputs:
    """A padded batch for a causal LM: ``input_ids``, ``attention_mask`` (1 on real tokens;
    right padding) and ``position_ids``, all ``[B, T]`` int64; ``lengths`` per row."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    lengths: list[int]

    def to(self, device: torch.device | str) -> LMInputs:
        return LMInputs(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.position_ids.to(device),
            self.lengths,
        )


def lm_inputs(
    rows: Sequence[Sequence[int]] | Sequence[np.ndarray] | DynamicBatch,
    *,
    prefix: Sequence[int] = (),
    pad_id: int = 0,
    positions: str = "compact",
) -> LMInputs:
    """Pad sequences (or a :class:`~toknz.dynamic.DynamicBatch`'s ``ids``) for a causal LM.

    ``prefix``: ids put before every row (a document separator or BOS; never merged);
    ``positions``: ``"compact"`` numbers the tokens ``0, 1, 2, ...`` (the model sees a shorter
    sequence, as in the paper), ``"original"`` gives each merged token the position of its last
    base token, so distances stay those of the unmerged text (needs a ``DynamicBatch``).

    >>> from toknz.dynamic import merge_batch
    >>> b = merge_batch([[5, 6, 5, 6, 7], [7]])
    >>> x = lm_inputs(b, prefix=[0], positions="original")
    >>> x.input_ids.tolist(), x.position_ids.tolist(), x.attention_mask.tolist()
    ([[0, 8, 8, 7], [0, 7, 0, 0]], [[0, 2, 4, 5], [0, 1, 1, 1]], [[1, 1, 1, 1], [1, 1, 0, 0]])
    """
    if positions not in POSITIONS:
        raise UsageError(f"positions must be one of {', '.join(POSITIONS)}, not {positions!r}")
    spans: list[np.ndarray] | None = None
    if isinstance(rows, DynamicBatch):
        spans = rows.spans
        seqs = [np.asarray(r, dtype=np.int64) for r in rows.ids]
    else:
        seqs = [np.asarray(r, dtype=np.int64).reshape(-1) for r in rows]
        if positions == "original":
            raise UsageError('positions="original" needs a DynamicBatch (its spans)')
    p = len(prefix)
    lengths = [p + len(s) for s in seqs]
    width = max(lengths, default=0)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    pos = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        n = lengths[i]
        ids[i, :p] = prefix
        ids[i, p:n] = s
        mask[i, :n] = 1
        if positions == "original" and spans is not None:
            pos[i, :p] = np.arange(p)
            pos[i, p:n] = p + spans[i][:, 1] - 1
        else:
            pos[i, :n] = np.arange(n)
        pos[i, n:] = pos[i, n - 1] if n else 0
    return LMInputs(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(pos), lengths)


def hidden_states(
    model: nn.Module,
    embeds: torch.Tensor,
    inputs: LMInputs,
    *,
    layers: Sequence[int] = (),
    **kwargs: Any,
) -> torch.Tensor:
    """The last hidden states ``[B, T, D]`` (after the final norm) of a ``transformers``
    causal LM's base model fed ``embeds [B, T, D]`` with ``inputs``' mask and positions.

    With ``layers`` (indices into the model's ``hidden_states``: 0 the embeddings, ``k`` the
    output of block ``k``), those layers' states follow the last ones: ``[B, T, 1 + K, D]``.
    """
    base = hf_base_model(model)
    out = base(
        inputs_embeds=embeds,
        attention_mask=inputs.attention_mask.to(embeds.device),
        position_ids=inputs.position_ids.to(embeds.device),
        use_cache=False,
        output_hidden_states=bool(layers) or None,
        **kwargs,
    )
    if not layers:
        return out.last_hidden_state  # type: ignore[no-any-return]
    n = len(out.hidden_states)
    for k in layers:
        if not -n <= k < n:
            raise UsageError(f"layer {k} out of range: the model has {n} hidden states")
    return torch.stack([out.last_hidden_state, *(out.hidden_states[k] for k in layers)], dim=2)


def hidden_at(
    model: nn.Module,
    embed: Callable[[torch.Tensor], torch.Tensor],
    inputs: LMInputs,
    rows: torch.Tensor,
    positions: torch.Tensor,
    *,
    tokens_per_call: int = 4096,
    layers: Sequence[int] = (),
) -> torch.Tensor:
    """The last hidden states ``[P, D]`` at ``(rows[k], positions[k])`` of a padded batch
    (``[P, 1 + K, D]`` with ``layers``: as :func:`hidden_states`).

    Runs the model on groups of rows of similar length (sorted, each group cut to its
    longest row and holding at most ``tokens_per_call`` padded positions, one row at least)
    rather than on the whole batch padded to its longest row: the same states, far less
    padding for batches of uneven documents. ``embed`` maps ids ``[b, t]`` to embeddings
    (a :class:`DynamicEmbedding` with its definitions bound, or the model's own table).
    """
    lengths = np.asarray(inputs.lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    groups: list[list[int]] = []
    for r in order.tolist():
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= tokens_per_call:
            groups[-1].append(r)
        else:
            groups.append([r])
    device = inputs.input_ids.device
    out: torch.Tensor | None = None
    for group in groups:
        width = int(lengths[group[0]])
        sel = torch.tensor(group, device=device)
        sub = LMInputs(
            inputs.input_ids[sel, :width],
            inputs.attention_mask[sel, :width],
            inputs.position_ids[sel, :width],
            [int(lengths[g]) for g in group],
        )
        where = torch.isin(rows, sel.to(rows.device)).nonzero()[:, 0]
        if where.numel() == 0:
            continue
        local = torch.searchsorted(sel.sort().values.to(rows.device), rows[where])
        local = sel.sort().indices.to(rows.device)[local]
        hidden = hidden_states(model, embed(sub.input_ids), sub, layers=layers)
        picked = hidden[local.to(hidden.device), positions[where].to(hidden.device)]
        if out is None:
            out = picked.new_zeros(rows.shape[0], *picked.shape[1:])
        out = out.index_copy(0, where.to(out.device), picked)
    if out is None:
        raise UsageError("no positions to gather")
    return out


def run_dynamic_lm(
    model: nn.Module,
    embedding: DynamicEmbedding,
    inputs: LMInputs,
    definitions: Definitions,
    **kwargs: Any,
) -> Any:
    """Run a ``transformers`` causal LM on a dynamic batch; returns the model's own output.

    ``inputs`` from :func:`lm_inputs`; the ids are embedded by ``embedding`` (its wrapped
    table should be ``model.get_input_embeddings()``) and passed as ``inputs_embeds`` with the
    attention mask and position ids. ``kwargs`` go to the model (e.g. ``labels``). The
    logits cover the base vocabulary; see :func:`dynamic_logits` for the new ids.
    """
    device = embedding.embedding.weight.device
    embeds = embedding(inputs.input_ids.to(device), definitions)
    return model(
        inputs_embeds=embeds,
        attention_mask=inputs.attention_mask.to(device),
        position_ids=inputs.position_ids.to(device),
        use_cache=False,
        **kwargs,
    )
