"""Streaming cover sets: the token sequences that cover a byte prefix, kept up to date per byte.

For a byte prefix ``x`` (n bytes), a *cover* is a token sequence
``s + [t]`` where the bytes of ``s`` are ``x[:j]`` for some ``j < n`` and the
bytes of ``t`` start with ``x[j:]``. By the Byte-Token Representation Lemma
(Phan et al., 2024), P(text starts with x) is the sum of P(cover as a token
prefix) over all covers: every token sequence whose text starts with ``x``
extends exactly one cover.

:class:`CoverSet` keeps the *frontier*: one :class:`Node` per token sequence
``s`` (bytes ``x[:j]``, ``j <= n``) together with the trie range of the
tokens that start with ``x[j:]``. Pushing a byte narrows each range (a node
whose range empties is dropped), and a token that ends exactly at the new end
spawns a child node. The shared prefix of all frontier nodes is the committed
*trunk*.

Pruning (``canonical`` mode): a child ``s + [t]`` is created only when
``t`` may follow the last token of ``s`` in a canonical sequence: the merge
test of :mod:`toknz_core.canon` passes, or some continuation of the text
could put a pre-token boundary between them
(:class:`~toknz.bytelevel.boundaries.BoundaryOracle`, asked with the text
since the last *final* boundary, so the work per byte does not grow with the
text). A cover left out this way has probability zero under an LM that gives
zero probability to non-canonical tokenizations, so sums stay exact under
that assumption (and the oracle's probe completeness, tested per
pre-tokenizer). Children of probability zero are never kept.
In ``all`` mode nothing is pruned but zero-probability children: the sums are
exact for any LM, at a cost that can grow exponentially with the text.
"""

from __future__ import annotations

import weakref
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from toknz.bytelevel.canonical import Canonicality
from toknz.bytelevel.sampling import logsumexp
from toknz.bytelevel.trie import TokenTrie
from toknz.errors import UsageError

#: Full merge-test rows per vocabulary trie, by last token (least recently used dropped).
_MERGE_ROWS: weakref.WeakKeyDictionary[TokenTrie, OrderedDict[int, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
_MERGE_ROWS_KEPT = 512
#: ``Node.allowed`` values: may follow by the merge test, or only across a pre-token boundary.
_BY_MERGE = np.int8(1)
_BY_BOUNDARY = np.int8(2)
#: BoundaryOracle.group of each trie's token heads.
_HEAD_GROUPS: weakref.WeakKeyDictionary[TokenTrie, tuple[np.ndarray, list[bytes]]] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class Node:
    """One token sequence on the frontier.

    ``tokens``: the sequence; ``end``: its byte length (``x[:end]``);
    ``logp``: natural-log probability of the sequence as a token prefix;
    ``lo``/``hi``: trie range of the tokens starting with ``x[end:]``;
    ``lp``: the LM's next-token log-probabilities (None until fetched);
    ``allowed``: int8 per trie position, whether the token may follow (-1: not decided yet;
    0 no; 1 by the merge test; 2 only if a pre-token boundary falls before it);
    ``pending``: byte offsets of the junctions in ``tokens`` that rely on a pre-token
    boundary, re-checked as bytes arrive.
    """

    tokens: tuple[int, ...]
    end: int
    logp: float
    lo: int
    hi: int
    lp: np.ndarray | None = None
    allowed: np.ndarray | None = field(default=None, repr=False)
    pending: tuple[int, ...] = ()


class CoverSet:
    """The frontier of covers of a growing byte prefix (see the module doc).

    ``fetch(nodes)`` must fill ``node.lp`` of every node passed (one batched LM
    call). ``mode`` is ``"canonical"`` or ``"all"``; more than ``max_nodes``
    frontier nodes raise :class:`~toknz.errors.UsageError` (intractable).
    """

    def __init__(
        self,
        trie: TokenTrie,
        canon: Canonicality,
        fetch: Callable[[list[Node]], None],
        *,
        mode: str = "canonical",
        max_nodes: int = 100_000,
    ) -> None:
        if mode not in ("canonical", "all"):
            raise UsageError(f"mode must be 'canonical' or 'all', got {mode!r}")
        self.trie = trie
        self.canon = canon
        self.fetch = fetch
        self.mode = mode
        self.max_nodes = max_nodes
        self.data = bytearray()
        self.nodes: list[Node] = [Node((), 0, 0.0, 0, trie.size)]
        # Final pre-token boundaries of ``data`` (increasing) and the length of
        # ``data`` each was proven at: questions about junctions after a cut need
        # only the text after it (BoundaryOracle.final_cut).
        self._cuts: list[int] = [0]
        self._cut_proven: list[int] = [0]

    def cut_before(self, end: int) -> int:
        """The last final pre-token boundary proven from ``data[:end]`` (0 if none)."""
        k = bisect_right(self._cut_proven, end) - 1
        return self._cuts[k]

    def _advance_cut(self) -> None:
        if self.mode == "all" or not self.canon.has_split:
            return
        last = self._cuts[-1]
        cut = self.canon.boundaries.final_cut(bytes(self.data), last, at_start=last == 0)
        if cut > last:
            self._cuts.append(cut)
            self._cut_proven.append(len(self.data))

    # ----------------------------------------------------------------- state

    def ensure_lp(self) -> None:
        """Fetch the LM distributions of frontier nodes that lack one (one batched call)."""
        todo = [n for n in self.nodes if n.lp is None]
        if todo:
            self.fetch(todo)

    def allowed(self, node: Node, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Bool per trie position in ``[lo, hi)``: which tokens may follow ``node``.

        Decided lazily, range by range, and remembered on the node.
        """
        size = self.trie.size
        hi = size if hi is None else hi
        if self.mode == "all" or not (node.tokens or self.canon.has_fallback):
            return np.ones(hi - lo, dtype=bool)
        if node.allowed is None:
            node.allowed = np.full(size, -1, dtype=np.int8)
        known = node.allowed[lo:hi]
        todo = np.nonzero(known < 0)[0]
        if todo.size and not node.tokens:  # the first token: only the byte-fallback rule
            pos = todo + lo
            ok = self.canon.fallback_allowed((), self.trie.ids[pos])
            node.allowed[pos] = np.where(ok, _BY_MERGE, 0)
        elif todo.size:
            pos = todo + lo
            last = node.tokens[-1]
            if todo.size > 4096:
                ok = self._merge_row(last)[pos]
            else:
                ok = self.canon.pair_row(last, self.trie.ids[pos])
            if self.canon.has_fallback:
                ok &= self.canon.fallback_allowed(node.tokens, self.trie.ids[pos])
            merged = ok.copy()
            if self.canon.has_split and not ok.all():
                # Pairs BPE would merge may still meet across a pre-token boundary:
                # ask once per distinct token head, with the text since a final cut.
                bad = np.nonzero(~ok)[0]
                cut = self.cut_before(node.end)
                oracle = self.canon.boundaries
                grouping = _HEAD_GROUPS.get(self.trie)
                if grouping is None:
                    grouping = _HEAD_GROUPS[self.trie] = oracle.group(self.trie.first_chars)
                ok[bad] = oracle.possible_heads(
                    bytes(self.data[cut : node.end]),
                    self.trie.first_char_ids[pos[bad]],
                    self.trie.first_chars,
                    grouping,
                    at_start=cut == 0,
                )
            node.allowed[pos] = np.where(merged, _BY_MERGE, np.where(ok, _BY_BOUNDARY, 0))
        return node.allowed[lo:hi] > 0

    def _merge_row(self, last: int) -> np.ndarray:
        """Merge-test answers (True: may follow, or undecided) of ``last`` against every trie token.

        Rows are kept per trie for the most recently used last tokens (the
        same tokens end many covers: " the", ",").
        """
        rows = _MERGE_ROWS.setdefault(self.trie, OrderedDict())
        row = rows.get(last)
        if row is None:
            row = self.canon.pair_row(last, self.trie.ids)
            rows[last] = row
            if len(rows) > _MERGE_ROWS_KEPT:
                rows.popitem(last=False)
        else:
            rows.move_to_end(last)
        return row

    @property
    def committed(self) -> tuple[int, ...]:
        """The trunk: the longest token prefix shared by every frontier node."""
        if not self.nodes:
            return ()
        first = self.nodes[0].tokens
        k = len(first)
        for n in self.nodes[1:]:
            k = min(k, len(n.tokens))
            while k and n.tokens[:k] != first[:k]:
                k -= 1
        return first[:k]

    # ----------------------------------------------------------------- pushing

    def push(self, byte: int) -> None:
        """Extend the prefix by one byte (0..255): narrow ranges, spawn children, drop dead nodes.

        A node is dropped when no token of its range continues the bytes,
        or when a pre-token boundary that one of its junctions relied on
        (:attr:`Node.pending`) is ruled out by the bytes now known. The LM is
        asked only about nodes that survive and spawn children.
        """
        if not 0 <= byte <= 255:
            raise UsageError(f"a byte must be in 0..255, got {byte}")
        n = len(self.data)
        self.data.append(byte)
        trie = self.trie
        certain = self._certain_boundaries()
        live: list[tuple[Node, int, int, int]] = []
        for node in self.nodes:
            lo, hi = trie.narrow(node.lo, node.hi, bytes(self.data[node.end :]))
            if lo == hi or self._spans_boundary(node, certain) or not self._still_possible(node):
                continue
            self._recheck_range(node, lo, hi)
            live.append((node, lo, hi, trie.exact_end(lo, hi, n + 1 - node.end)))
        todo = [node for node, lo, _, stop in live if stop > lo and node.lp is None]
        if todo:
            self.fetch(todo)
        out: list[Node] = []
        for node, lo, hi, stop in live:
            if stop > lo:
                assert node.lp is not None
                allowed = self.allowed(node, lo, stop)
                flags = node.allowed[lo:stop] if node.allowed is not None else None
                for k in range(lo, stop):
                    if not allowed[k - lo]:
                        continue
                    tid = int(trie.ids[k])
                    lp = float(node.lp[tid])
                    if lp == -np.inf:
                        continue
                    pending = node.pending
                    if flags is not None and flags[k - lo] == _BY_BOUNDARY:
                        pending = pending + (node.end,)
                    out.append(
                        Node(
                            node.tokens + (tid,),
                            n + 1,
                            node.logp + lp,
                            0,
                            trie.size,
                            pending=pending,
                        )
                    )
            # Tokens ending exactly here stay in the range (they are covers of this
            # prefix) and are narrowed away by the next byte.
            node.lo, node.hi = lo, hi
            out.append(node)
        self.nodes = out
        self._advance_cut()
        if len(out) > self.max_nodes:
            raise UsageError(
                f"{len(out)} open token sequences after {len(self.data)} bytes: more than "
                f"max_nodes={self.max_nodes}; use mode='canonical' or raise max_nodes"
            )

    def _certain_boundaries(self) -> list[int]:
        """Offsets after the last final cut where every continuation puts a pre-token boundary."""
        if self.mode == "all" or not self.canon.has_split:
            return []
        cut = self._cuts[-1]
        found = self.canon.boundaries.certain(bytes(self.data[cut:]), at_start=cut == 0)
        return [cut + e for e in found]

    def _spans_boundary(self, node: Node, certain: list[int]) -> bool:
        """Whether a token of ``node`` (or every token of its range) spans a certain boundary.

        Tokens that end before the last final cut were checked at earlier bytes.
        """
        if not certain:
            return False
        k = bisect_right(certain, node.end)
        if k < len(certain) and certain[k] < len(self.data):
            return True  # inside the bytes every range token shares
        cut = self._cuts[-1]
        tb = self.canon.token_bytes
        end = node.end
        for t in reversed(node.tokens):
            if end <= cut:
                break
            start = end - len(tb[t])
            k = bisect_right(certain, start)
            if k < len(certain) and certain[k] < end:
                return True
            end = start
        return False

    def _last_cut_at_or_before(self, j: int) -> int:
        return self._cuts[bisect_right(self._cuts, j) - 1]

    def _still_possible(self, node: Node) -> bool:
        """Whether every boundary ``node``'s junctions rely on can still fall, given all bytes known.

        A junction before the last final cut is checked once more and then
        forgotten (the text up to a final cut is settled).
        """
        if not node.pending:
            return True
        oracle = self.canon.boundaries
        data = self.data
        last = self._cuts[-1]
        keep = []
        for j in node.pending:
            c = self._last_cut_at_or_before(j)
            if c == j:
                continue  # a final boundary itself
            if not oracle.possible(bytes(data[c:j]), bytes(data[j:]), at_start=c == 0):
                return False
            if j >= last:
                keep.append(j)
        node.pending = tuple(keep)
        return True

    def _recheck_range(self, node: Node, lo: int, hi: int) -> None:
        """Re-ask the boundary at ``node.end`` for range tokens allowed only by it, with the bytes now known."""
        if node.allowed is None or not node.tokens:
            return
        flags = node.allowed[lo:hi]
        weak = np.nonzero(flags == _BY_BOUNDARY)[0]
        if weak.size == 0:
            return
        c = self._last_cut_at_or_before(node.end)
        if c == node.end:
            return
        if not self.canon.boundaries.possible(
            bytes(self.data[c : node.end]), bytes(self.data[node.end :]), at_start=c == 0
        ):
            node.allowed[lo + weak] = 0

    # ----------------------------------------------------------------- sums

    def _node_values(self, node: Node) -> tuple[np.ndarray, int]:
        """``logp + lp`` of each token in the node's range (-inf where not allowed), and its depth."""
        assert node.lp is not None
        lo, hi = node.lo, node.hi
        vals = node.logp + node.lp[self.trie.ids[lo:hi]]
        vals = np.where(self.allowed(node, lo, hi), vals, -np.inf)
        return vals, len(self.data) - node.end

    def prefix_logprob(self) -> float:
        """log P(text starts with the current prefix)."""
        if not self.data:
            return 0.0
        self.ensure_lp()
        parts = []
        for node in self.nodes:
            if node.end < len(self.data):
                vals, _ = self._node_values(node)
                parts.append(vals)
        if not parts:
            return -np.inf
        return logsumexp(np.concatenate(parts))

    def byte_scores(self, stop_lp: Callable[[np.ndarray], float]) -> np.ndarray:
        """Unnormalized log P(prefix + b) for b in 0..255, and log P(text == prefix) at 256.

        ``stop_lp(lp)`` gives the log-probability of ending the text after a
        node whose next-token log-probabilities are ``lp``.
        """
        self.ensure_lp()
        groups: list[np.ndarray] = []
        values: list[np.ndarray] = []
        eos: list[float] = []
        for node in self.nodes:
            vals, depth = self._node_values(node)
            nxt = self.trie.next_bytes(node.lo, node.hi, depth)
            keep = nxt >= 0
            groups.append(nxt[keep])
            values.append(vals[keep])
            if depth == 0:
                assert node.lp is not None
                eos.append(node.logp + stop_lp(node.lp))
        out = np.full(257, -np.inf)
        g = np.concatenate(groups) if groups else np.empty(0, dtype=np.int64)
        v = np.concatenate(values) if values else np.empty(0)
        finite = np.isfinite(v)
        g, v = g[finite], v[finite]
        if v.size:
            top = float(v.max())
            sums = np.bincount(g, weights=np.exp(v - top), minlength=256)
            with np.errstate(divide="ignore"):
                out[:256] = np.log(sums) + top
        if eos:
            out[256] = logsumexp(np.array(eos))
        return out
