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

torch and transformers are imported only when a torch adapter is used (the
``bytelm`` extra installs them).
"""

from __future__ import annotations

import copy
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
            ids = torch.tensor([bos + k for k in group], dtype=torch.long)
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


class HFCausalLM:
    """A ``transformers`` causal LM with a KV cache keyed by token prefix.

    Past states live in a trie over token prefixes. A query runs the model
    only on the tokens past its longest cached ancestor, starting from a copy
    of that ancestor's KV cache; the log-probabilities at every position it
    runs are kept, so walking a text token by token costs one evaluation per
    token. ``bos_id`` is prepended to every prefix (needed for an empty
    prefix). ``n_evals`` counts token positions run through the model,
    ``n_calls`` forward passes. At most ``max_states`` KV caches are kept
    (least recently used dropped). Prefixes are evaluated one after another,
    not in one padded batch.
    """

    def __init__(self, model: Any, *, bos_id: int | None = None, max_states: int = 4096) -> None:
        _torch()
        self.model = model.eval()
        self.bos_id = bos_id
        self.max_states = max_states
        self.n_evals = 0
        self.n_calls = 0
        self._root = _TrieNode()
        self._with_state: OrderedDict[int, _TrieNode] = OrderedDict()

    def _full(self, prefix: Sequence[int]) -> list[int]:
        full = ([self.bos_id] if self.bos_id is not None else []) + [int(i) for i in prefix]
        if not full:
            raise UsageError("HFCausalLM: an empty prefix needs bos_id")
        return full

    def next_token_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        return (
            np.stack([self._one(self._full(p)) for p in prefixes]) if prefixes else np.empty((0, 0))
        )

    def _one(self, full: list[int]) -> np.ndarray:
        torch = _torch()
        path = [self._root]
        node = self._root
        for t in full:
            nxt = node.children.get(t)
            if nxt is None:
                break
            node = nxt
            path.append(node)
        if len(path) == len(full) + 1 and node.lp is not None:
            return node.lp
        # Longest ancestor (a proper prefix) that holds a KV cache.
        start = 0
        past = None
        for depth in range(min(len(path) - 1, len(full) - 1), 0, -1):
            if path[depth].cache is not None:
                start, past = depth, copy.deepcopy(path[depth].cache)
                self._with_state.move_to_end(id(path[depth]), last=True)
                break
        ids = torch.tensor([full[start:]], dtype=torch.long)
        with torch.no_grad():
            out = self.model(input_ids=ids, past_key_values=past, use_cache=True)
        self.n_calls += 1
        self.n_evals += len(full) - start
        lp = torch.log_softmax(out.logits[0].double(), dim=-1).cpu().numpy()
        node = path[start] if start else self._root
        for k, t in enumerate(full[start:], start=start):
            nxt = node.children.get(t)
            if nxt is None:
                nxt = _TrieNode()
                node.children[t] = nxt
            node = nxt
            node.lp = lp[k - start]
        node.cache = out.past_key_values
        self._with_state[id(node)] = node
        while len(self._with_state) > self.max_states:
            _, old = self._with_state.popitem(last=False)
            old.cache = None
        assert node.lp is not None
        return node.lp
