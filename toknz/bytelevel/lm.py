"""Token language models: the small protocol ByteLM needs, and adapters.

A token LM is any object with ``next_token_logprobs(prefixes)``: given a list
of token-id prefixes, it returns a float64 array ``[len(prefixes), n_vocab]``
of natural-log probabilities of the next token after each prefix. An
end-of-text token, if the tokenizer has one, is part of the vocabulary.

Adapters (each counts its model evaluations in ``n_evals``):

- :class:`CallableLM`: a Python function of one prefix (logits or
  log-probabilities); results are cached by prefix.
- :class:`TorchLM`: a torch module mapping ``input_ids [B, T]`` to logits
  ``[B, T, V]``; prefixes of equal length share one forward pass.
- :class:`HFCausalLM`: a ``transformers`` causal LM with a KV cache kept per
  token prefix in a trie, so extending a prefix by one token runs the model
  on that token only: scoring or generating n bytes costs O(n) evaluations.
  The prefixes of one call share forward passes (one pass for a ByteLM
  frontier whose nodes each add one token to a cached prefix).

torch and transformers are imported only when a torch adapter is used (the
``bytelm`` extra installs them).
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from toknz.errors import UsageError


@runtime_checkable
class TokenLM(Protocol):
    """Anything that scores next tokens: see the module doc."""

    def next_token_logprobs(self, prefixes: list[list[int]]) -> np.ndarray: ...


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Natural-log softmax over the last axis, in float64."""
    x = np.asarray(x, dtype=np.float64)
    top = np.max(x, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    z = np.exp(x - top).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.asarray(x - top - np.log(z))


def check_logprobs(out: Any, n_prefixes: int, n_vocab: int | None, who: str) -> np.ndarray:
    """``out`` as a float64 ``[n_prefixes, V]`` array; UsageError on a wrong shape."""
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n_prefixes or (n_vocab and arr.shape[1] < n_vocab):
        raise UsageError(
            f"{who}: next_token_logprobs must return [{n_prefixes}, n_vocab"
            f"{'=' + str(n_vocab) if n_vocab else ''}] log-probabilities, got shape {arr.shape}"
        )
    return arr


class CallableLM:
    """A token LM from ``fn(prefix: list[int]) -> array [n_vocab]``.

    ``logits=True`` (default) applies a log-softmax to ``fn``'s output;
    pass ``logits=False`` when ``fn`` already returns natural-log
    probabilities. Results are cached per prefix; ``n_evals`` counts calls
    of ``fn``.
    """

    def __init__(self, fn: Callable[[list[int]], Any], *, logits: bool = True) -> None:
        self.fn = fn
        self.logits = logits
        self.n_evals = 0
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def next_token_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        rows = []
        for p in prefixes:
            key = tuple(int(i) for i in p)
            row = self._cache.get(key)
            if row is None:
                self.n_evals += 1
                out = np.asarray(self.fn(list(key)), dtype=np.float64)
                if out.ndim != 1:
                    raise UsageError(f"CallableLM: fn must return a 1-D array, got {out.shape}")
                row = log_softmax(out) if self.logits else out
                self._cache[key] = row
            rows.append(row)
        if not rows:
            return np.empty((0, 0))
        return np.stack(rows)


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError("this adapter needs torch: pip install 'toknz[bytelm]'") from exc
    return torch


class TorchLM:
    """A torch module ``input_ids [B, T] -> logits [B, T, V]`` (or an output with ``.logits``).

    Prefixes of one length go through one forward pass; an empty prefix needs
    ``bos_id`` (prepended to every prefix when given). ``n_evals`` counts
    token positions run through the module, ``n_calls`` forward passes.
    Inputs are built on the module's device (its first parameter's).
    Without a KV cache each prefix is evaluated whole: prefer
    :class:`HFCausalLM` for long texts.
    """

    def __init__(self, module: Any, *, bos_id: int | None = None) -> None:
        self.module = module
        self.bos_id = bos_id
        self.n_evals = 0
        self.n_calls = 0
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def next_token_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        torch = _torch()
        keys = [tuple(int(i) for i in p) for p in prefixes]
        todo: dict[int, list[tuple[int, ...]]] = {}
        for k in dict.fromkeys(keys):
            if k not in self._cache:
                full = ((self.bos_id,) if self.bos_id is not None else ()) + k
                if not full:
                    raise UsageError("TorchLM: an empty prefix needs bos_id")
                todo.setdefault(len(full), []).append(k)
        for length, group in todo.items():
            bos = (self.bos_id,) if self.bos_id is not None else ()
            ids = torch.tensor(
                [bos + k for k in group], dtype=torch.long, device=_model_device(self.module)
            )
            with torch.no_grad():
                out = self.module(ids)
            logits = getattr(out, "logits", out)[:, -1, :]
            lp = torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
            self.n_calls += 1
            self.n_evals += length * len(group)
            for k, row in zip(group, lp, strict=True):
                self._cache[k] = row
        return np.stack([self._cache[k] for k in keys]) if keys else np.empty((0, 0))


class _TrieNode:
    __slots__ = ("children", "lp", "cache")

    def __init__(self) -> None:
        self.children: dict[int, _TrieNode] = {}
        self.lp: np.ndarray | None = None
        self.cache: Any = None


# ----------------------------------------------------------------- KV caches
#
# A stored state is the model's own cache object for one row (batch size 1).
# To batch rows we read each state's per-layer key/value tensors
# ``[1, heads, positions, head_dim]``, stack them along the batch axis into a
# new cache object of the same structure, and after the forward pass slice the
# output back into one cache per row. Two structures are understood: legacy
# tuples ``((keys, values), ...)`` and ``transformers`` ``Cache`` objects whose
# layers are ``DynamicLayer`` or ``DynamicSlidingWindowLayer`` (stacked but
# never padded) or ``DummyLayer``. Both only ever replace their tensors
# (``torch.cat``), never write into them, so a state can be handed to the model
# with its tensors shared. Any other cache is evaluated row by row from a deep copy.


def _layer_kinds() -> tuple[type, type | None, type | None] | None:
    """The cache layer classes of the installed ``transformers`` (some versions lack the last two)."""
    try:
        from transformers import cache_utils
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    full = getattr(cache_utils, "DynamicLayer", None)
    if full is None:  # pragma: no cover - transformers before per-layer caches
        return None
    return (
        full,
        getattr(cache_utils, "DynamicSlidingWindowLayer", None),
        getattr(cache_utils, "DummyLayer", None),
    )


def _kv_of(cache: Any) -> tuple[list[tuple[Any, Any]], bool] | None:
    """``(per-layer (keys, values), has a sliding-window layer)``, or None for a cache we cannot split."""
    if isinstance(cache, (tuple, list)):
        kvs = []
        for layer in cache:
            if not (isinstance(layer, (tuple, list)) and len(layer) == 2):
                return None
            kvs.append((layer[0], layer[1]))
        return kvs, False
    layers = getattr(cache, "layers", None)
    kinds = _layer_kinds()
    if not isinstance(layers, list) or kinds is None or getattr(cache, "offloading", False):
        return None
    full, sliding, dummy = kinds
    kvs, any_sliding = [], False
    for layer in layers:
        kind = type(layer)
        if kind not in (full, sliding, dummy):
            return None
        if kind is dummy or not getattr(layer, "is_initialized", True) or layer.keys is None:
            kvs.append((None, None))
        else:
            kvs.append((layer.keys, layer.values))
            any_sliding = any_sliding or kind is sliding
    return kvs, any_sliding


def _with_kv(template: Any, kvs: list[tuple[Any, Any]]) -> Any:
    """A new cache shaped like ``template`` holding ``kvs`` (tensors shared, not copied)."""
    if isinstance(template, (tuple, list)):
        return tuple((k, v) for k, v in kvs)
    new = copy.copy(template)
    new.layers = []
    for layer, (k, v) in zip(template.layers, kvs, strict=True):
        layer = copy.copy(layer)
        if k is not None:
            layer.keys, layer.values = k, v
        new.layers.append(layer)
    return new


def _fork(cache: Any) -> Any:
    """A cache the model may extend without changing ``cache``."""
    kv = _kv_of(cache)
    return copy.deepcopy(cache) if kv is None else _with_kv(cache, kv[0])


def _model_device(model: Any) -> Any:
    torch = _torch()
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return None


def _accepts_padding(model: Any) -> bool:
    """Whether ``model.forward`` takes ``attention_mask`` and ``position_ids``."""
    try:
        params = inspect.signature(model.forward).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    return "attention_mask" in params and "position_ids" in params


class _Row:
    """One query of a batched evaluation: run ``full[depth:]`` after the state ``past``."""

    __slots__ = ("full", "depth", "past", "kv", "also")

    def __init__(self, full: tuple[int, ...], depth: int, past: Any, kv: Any) -> None:
        self.full, self.depth, self.past, self.kv = full, depth, past, kv
        self.also: list[int] = []  # lengths of queried prefixes of ``full`` this run answers


class HFCausalLM:
    """A ``transformers`` causal LM with a KV cache keyed by token prefix.

    Past states live in a trie over token prefixes. A query runs the model
    only on the tokens past its longest cached ancestor (a proper prefix
    whose KV cache is kept), starting from that ancestor's cache; the
    log-probabilities at every position it runs are kept, so walking a text
    token by token costs one evaluation per token. ``bos_id`` is prepended
    to every prefix (needed for an empty prefix).

    Batching (``batch=True``, the default): one call of
    :meth:`next_token_logprobs` resolves every distinct prefix to (cached
    ancestor, tokens past it); a prefix that another query of the call runs
    through anyway is answered by that run, its KV cache cut from the run's
    (not for sliding-window caches). Queries with the same number k of
    new tokens share a forward pass of ``input_ids [rows, k]``, at most
    ``max_batch`` rows per pass: the ancestors' keys and values are stacked
    along the batch axis (one ancestor shared by many rows is broadcast, not
    copied). Rows whose ancestors hold different numbers of positions are
    left-padded to the longest with masked zeros, and their ``position_ids``
    given, when ``pad=True`` and the model's forward takes ``attention_mask``
    and ``position_ids`` (and its cache has no sliding-window layer);
    otherwise only rows with equal ancestor lengths share a pass, and the
    model numbers positions from the cache length itself. So the frontier of
    a :class:`~toknz.bytelevel.ByteLM` step (children of cached parents, one
    new token each) costs one forward pass. Results equal those of
    ``batch=False`` up to floating-point summation order. ``batch=False``
    evaluates the distinct prefixes one after another, one pass each.

    Memory: a pass over B rows builds keys and values for B x (L + k)
    positions per layer (L: the longest ancestor in the pass, k: new tokens),
    and then copies each row's unpadded part into a cache of its own, so a
    kept state never pins its batch: transiently about 2-3x the keys and
    values of B rows, plus the ``[B, k, n_vocab]`` logits. ``max_batch``
    bounds B. At most ``max_states`` KV caches are kept (least recently used
    dropped; the ones a call needs stay alive until it returns). The float64
    log-probabilities of the positions run are kept up to ``max_row_bytes``
    in all (1 GiB by default: about 2,700 rows of a 49k vocabulary, 880 of
    a 152k one; least recently used dropped, recomputed if asked again).

    Counters: ``n_calls`` counts forward passes; ``n_evals`` counts token
    positions run through the model (a pass of B rows of k new tokens adds
    B x k; cached or padded past positions are not counted). Inputs are
    built on the model's device (``model.device``, else its first
    parameter's). Raises UsageError for an empty prefix without ``bos_id``
    and for ``max_batch < 1``.
    """

    def __init__(
        self,
        model: Any,
        *,
        bos_id: int | None = None,
        max_states: int = 4096,
        batch: bool = True,
        max_batch: int = 64,
        pad: bool = True,
        max_row_bytes: int = 1 << 30,
    ) -> None:
        _torch()
        if int(max_batch) < 1:
            raise UsageError(f"HFCausalLM: max_batch must be at least 1, got {max_batch}")
        self.model = model.eval()
        self.bos_id = bos_id
        self.max_states = max_states
        self.batch = bool(batch)
        self.max_batch = int(max_batch)
        self.pad = bool(pad) and _accepts_padding(self.model)
        self.n_evals = 0
        self.n_calls = 0
        self._root = _TrieNode()
        self._with_state: OrderedDict[int, _TrieNode] = OrderedDict()
        self.max_row_bytes = int(max_row_bytes)
        self._max_rows: int | None = None  # rows of log-probabilities kept (set from the first)
        self._with_row: OrderedDict[int, _TrieNode] = OrderedDict()
        self._split_ok = True  # False once the model returned a cache we cannot split by row

    def _full(self, prefix: Sequence[int]) -> tuple[int, ...]:
        full = ((self.bos_id,) if self.bos_id is not None else ()) + tuple(int(i) for i in prefix)
        if not full:
            raise UsageError("HFCausalLM: an empty prefix needs bos_id")
        return full

    def next_token_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        if not prefixes:
            return np.empty((0, 0))
        fulls = [self._full(p) for p in prefixes]
        distinct = list(dict.fromkeys(fulls))
        if self.batch and self._split_ok:
            self._evaluate(distinct)
        # After a batched evaluation this only looks up (or runs what could not be batched).
        rows = {f: self._one(f) for f in distinct}
        return np.stack([rows[f] for f in fulls])

    # ----------------------------------------------------------------- trie

    def _path(self, full: tuple[int, ...]) -> list[_TrieNode]:
        """The trie nodes along ``full`` from the root, as far as they exist."""
        path = [self._root]
        node = self._root
        for t in full:
            nxt = node.children.get(t)
            if nxt is None:
                break
            node = nxt
            path.append(node)
        return path

    def _ancestor(self, full: tuple[int, ...], path: list[_TrieNode]) -> tuple[int, Any]:
        """``(depth, cache)`` of the longest proper prefix holding a cache, or ``(0, None)``."""
        for depth in range(min(len(path) - 1, len(full) - 1), 0, -1):
            node = path[depth]
            if node.cache is not None:
                self._with_state.move_to_end(id(node), last=True)
                return depth, node.cache
        return 0, None

    def _record(self, full: tuple[int, ...], start: int, lp: np.ndarray, state: Any) -> _TrieNode:
        """Store ``lp[j]`` for the prefix ``full[: start + j + 1]`` and ``state`` at ``full``."""
        node = self._root
        for t in full[:start]:
            node = node.children[t]
        for j, t in enumerate(full[start:]):
            nxt = node.children.get(t)
            if nxt is None:
                nxt = _TrieNode()
                node.children[t] = nxt
            node = nxt
            if node.lp is None:
                self._keep_row(node, lp[j] if len(lp) == 1 else lp[j].copy())
        if state is not None:
            self._store(node, state)
        return node

    def _keep_row(self, node: _TrieNode, row: np.ndarray) -> None:
        """Keep ``row`` as ``node``'s log-probabilities, dropping the least recently used beyond the limit."""
        node.lp = row
        self._with_row[id(node)] = node
        if self._max_rows is None:
            self._max_rows = max(2 * self.max_batch, self.max_row_bytes // max(1, row.nbytes))
        while len(self._with_row) > self._max_rows:
            _, old = self._with_row.popitem(last=False)
            old.lp = None

    def _store(self, node: _TrieNode, state: Any) -> None:
        """Keep ``state`` as ``node``'s KV cache, dropping the least recently used beyond ``max_states``."""
        node.cache = state
        self._with_state[id(node)] = node
        self._with_state.move_to_end(id(node), last=True)
        while len(self._with_state) > self.max_states:
            _, old = self._with_state.popitem(last=False)
            old.cache = None

    # ----------------------------------------------------------------- sequential

    def _one(self, full: tuple[int, ...]) -> np.ndarray:
        torch = _torch()
        path = self._path(full)
        if len(path) == len(full) + 1 and path[-1].lp is not None:
            self._with_row.move_to_end(id(path[-1]), last=True)
            return path[-1].lp
        start, past = self._ancestor(full, path)
        if past is not None:
            past = _fork(past)
        ids = torch.tensor([full[start:]], dtype=torch.long, device=_model_device(self.model))
        with torch.no_grad():
            out = self.model(input_ids=ids, past_key_values=past, use_cache=True)
        self.n_calls += 1
        self.n_evals += len(full) - start
        lp = torch.log_softmax(out.logits[0].double(), dim=-1).cpu().numpy()
        node = self._record(full, start, lp, out.past_key_values)
        assert node.lp is not None
        return node.lp

    # ----------------------------------------------------------------- batched

    def _evaluate(self, fulls: list[tuple[int, ...]]) -> None:
        """Evaluate the distinct prefixes ``fulls`` in as few forward passes as it can.

        Leaves in the trie what it could not batch (an ancestor cache of an
        unknown kind): :meth:`_one` evaluates those.
        """
        pending: list[_Row] = []
        for full in fulls:
            path = self._path(full)
            if len(path) == len(full) + 1 and path[-1].lp is not None:
                continue
            depth, past = self._ancestor(full, path)
            kv = None
            if past is not None:
                kv = _kv_of(past)
                if kv is None:
                    continue
            pending.append(_Row(full, depth, past, kv))
        if not pending:
            return
        # A prefix that another query runs through is answered by that run (which
        # also stores its state, cut from the run's cache).
        keys = {r.full for r in pending}
        lengths = sorted({len(r.full) for r in pending})
        covered: set[tuple[int, ...]] = set()
        for r in pending:
            for n in lengths:
                if r.depth < n < len(r.full) and r.full[:n] in keys:
                    covered.add(r.full[:n])
        running = [r for r in pending if r.full not in covered]
        claimed: set[tuple[int, ...]] = set()
        for r in running:
            for n in lengths:
                if r.depth < n < len(r.full) and r.full[:n] in covered - claimed:
                    claimed.add(r.full[:n])
                    r.also.append(n)
        groups: dict[tuple[int, int], list[_Row]] = {}
        for r in running:
            sliding = r.kv is not None and r.kv[1]
            padded = self.pad and not sliding
            key = (len(r.full) - r.depth, -1 if padded else r.depth)
            groups.setdefault(key, []).append(r)
        for group in groups.values():
            group.sort(key=lambda r: (-r.depth, id(r.past)))
            for i in range(0, len(group), self.max_batch):
                self._run(group[i : i + self.max_batch])

    def _run(self, rows: list[_Row]) -> None:
        """One forward pass over ``rows`` (equal numbers of new tokens), then store per-row states."""
        torch = _torch()
        dev = _model_device(self.model)
        n_rows = len(rows)
        k = len(rows[0].full) - rows[0].depth
        longest = max(r.depth for r in rows)
        ids = torch.tensor([r.full[r.depth :] for r in rows], dtype=torch.long, device=dev)
        kwargs: dict[str, Any] = {}
        past = None
        if longest:
            ref = next(r for r in rows if r.depth == longest)
            layers = []
            for li, (ref_k, ref_v) in enumerate(ref.kv[0]):
                if ref_k is None:
                    layers.append((None, None))
                    continue
                layers.append(
                    tuple(
                        self._stack(rows, li, which, ref_t, longest)
                        for which, ref_t in ((0, ref_k), (1, ref_v))
                    )
                )
            past = _with_kv(ref.past, layers)
            if any(r.depth < longest for r in rows):
                pads = torch.tensor([longest - r.depth for r in rows], device=dev)
                kwargs["attention_mask"] = (
                    torch.arange(longest + k, device=dev)[None, :] >= pads[:, None]
                ).long()
                kwargs["position_ids"] = torch.tensor(
                    [[r.depth + j for j in range(k)] for r in rows], dtype=torch.long, device=dev
                )
        with torch.no_grad():
            out = self.model(input_ids=ids, past_key_values=past, use_cache=True, **kwargs)
        self.n_calls += 1
        self.n_evals += n_rows * k
        lp = torch.log_softmax(out.logits.double(), dim=-1).cpu().numpy()
        new = out.past_key_values
        kv = _kv_of(new)
        if kv is None:
            self._split_ok = False
        for i, r in enumerate(rows):
            pad = longest - r.depth
            node = self._record(r.full, r.depth, lp[i], None)
            if kv is None:
                if n_rows == 1 and not pad:
                    self._store(node, new)
                continue
            if not kv[1]:  # the states of queried prefixes on the way (not when windows cut)
                for n in r.also:
                    self._store(self._path(r.full[:n])[-1], _cut(new, kv[0], i, pad, pad + n))
            self._store(node, _cut(new, kv[0], i, pad, None if n_rows > 1 or pad else -1))

    @staticmethod
    def _stack(rows: list[_Row], li: int, which: int, ref: Any, longest: int) -> Any:
        """Layer ``li``'s keys (``which=0``) or values of ``rows`` as one ``[B, ...]`` tensor.

        Consecutive rows with one ancestor share a broadcast view; rows with a
        shorter (or no) ancestor get zeros on the left up to ``longest`` positions.
        """
        torch = _torch()
        pieces = []
        i = 0
        while i < len(rows):
            j = i
            while j < len(rows) and rows[j].past is rows[i].past:
                j += 1
            n, r = j - i, rows[i]
            if r.kv is None:
                x = ref.new_zeros((n, ref.shape[1], longest, ref.shape[3]))
            else:
                t = r.kv[0][li][which]
                x = t.expand(n, *t.shape[1:])
                if r.depth < longest:
                    zeros = ref.new_zeros((n, ref.shape[1], longest - r.depth, ref.shape[3]))
                    x = torch.cat([zeros, x], dim=2)
            pieces.append(x)
            i = j
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=0)


def _cut(cache: Any, kvs: list[tuple[Any, Any]], i: int, lo: int, hi: int | None) -> Any:
    """Row ``i``, positions ``lo:hi``, of a batched cache, as a cache in its own memory.

    ``hi=-1``: the whole (single-row, unpadded) cache, its tensors shared.
    """
    if hi == -1:
        return _with_kv(cache, kvs)
    return _with_kv(
        cache,
        [
            (None, None)
            if k is None
            else (k[i : i + 1, :, lo:hi, :].clone(), v[i : i + 1, :, lo:hi, :].clone())
            for k, v in kvs
        ],
    )
