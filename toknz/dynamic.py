"""Dynamic tokenization: BPE over a batch's own token sequences (Feher et al., ACL 2025).

:func:`merge_batch` repeatedly merges the most frequent adjacent pair of ids
across a batch, never across a segment boundary, and returns the shorter
sequences, each new token's definition (the base ids it spans) and, per new
position, the span of original positions. :func:`unmerge` undoes it exactly.
:func:`boundaries_for` gives the segment starts the base tokenizer allows;
``Tokenizer.encode_batch(texts, dynamic=...)`` does both in one call.

The merging is the BPE trainer's kernel (:func:`toknz_core.train.train_bpe`),
run on the batch's distinct segments with their counts: incremental 64-bit
pair counts, and ties broken deterministically (larger count, then smaller
``(left, right)`` id pair; new ids are larger than every base id, in order of
creation). A pair's count is the number of its adjacent occurrences in all
segments (overlapping ones included for a pair ``(a, a)``, as in the paper's
``Counter`` and in the trainer); every occurrence is merged, left to right.

**Budget**: the number of new token ids created (the growth of the batch's
vocabulary). A merge that rebuilds an existing token by another merge order
(same base ids, hence same id) is applied and listed in ``merges`` but spends
no budget, so ``len(merges) >= len(definitions)``; they differ only then.
``budget=None`` merges until no pair occurs ``min_count`` times. No merge is
ever made with a count below ``min_count``. The merges of a run with budget
``k`` are a prefix of the merges of a run with a larger budget.

**Validity** (:func:`boundaries_for`, after the paper's ``is_valid_pair``): a
merged token never crosses a boundary of ``rule``:

- ``"pretoken"``: a pre-token of the base tokenizer (the pieces its split
  regex makes in the text); ``"word"``: whitespace only; ``"word+hyphen"``:
  whitespace, and a punctuation token may not join a preceding
  non-punctuation token unless it is ``-`` (``"well-known"`` but not ``"word."``);
- whitespace (space, tab, newline, CR, VT, FF) inside a merged token only as its
  first byte (``" word"``, as GPT-2 spells a word after a space) or when the
  whole token is whitespace; a lone whitespace token joins the word after it
  only when it starts its segment;
- added / special tokens are never merged;
- partial UTF-8 is fine: a pair whose bytes are not valid UTF-8 merges inside
  a word.

Unlike the paper (which re-pre-tokenizes the concatenated string of each
candidate pair) the pre-token rule uses the text's own pre-tokens, and the
punctuation test of ``"word+hyphen"`` looks at base tokens.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from toknz.errors import UsageError

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

Rule = Literal["pretoken", "word", "word+hyphen"]
RULES: tuple[str, ...] = ("pretoken", "word", "word+hyphen")

#: Bytes that count as whitespace for the validity rule.
WHITESPACE = b" \t\n\r\x0b\x0c"
#: Punctuation of the paper's ``word_hyphen`` rule (a token holding one and no digit).
PUNCTUATION = b""".,!?;:()-"'\\/`$%&*+<=>@[]^_{|}~"""


@dataclass(frozen=True)
class DynamicOptions:
    """Options of dynamic merging (see :mod:`toknz.dynamic` for the exact rules).

    ``budget``: new ids at most (``None``: until no pair occurs ``min_count``
    times); ``min_count`` (>= 1): the smallest pair count merged; ``boundary``:
    ``"pretoken"``, ``"word"`` or ``"word+hyphen"``; ``first_new_id``: the first
    new id (default: the tokenizer's ``n_vocab``).
    """

    budget: int | None = None
    min_count: int = 2
    boundary: str = "pretoken"
    first_new_id: int | None = None

    @classmethod
    def of(cls, value: DynamicOptions | Mapping[str, Any]) -> DynamicOptions:
        """``value`` itself, or options from a dict; unknown keys are a :class:`UsageError`."""
        if isinstance(value, DynamicOptions):
            return value
        if not isinstance(value, Mapping):
            raise UsageError(
                f"dynamic must be DynamicOptions or a dict, got {type(value).__name__}"
            )
        known = {"budget", "min_count", "boundary", "first_new_id"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise UsageError(f"unknown dynamic option(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(value))


@dataclass
class DynamicBatch:
    """A dynamically merged batch.

    ``ids``: the new sequences (int64 arrays); ``definitions``: each new id ->
    the base ids it spans; ``spans``: per sequence an ``(n, 2)`` int64 array,
    the original positions ``[start, stop)`` of each new position;
    ``merges``: ``(left, right, new)`` in order, with ``merge_counts`` (the pair
    count when chosen); ``n_before``/``n_after``: total tokens. The definitions
    are also kept flat: new id ``first_new_id + k`` spans
    ``def_ids[def_off[k]:def_off[k + 1]]``.
    """

    ids: list[np.ndarray]
    spans: list[np.ndarray]
    def_ids: np.ndarray
    def_off: np.ndarray
    merges: list[tuple[int, int, int]] = field(default_factory=list)
    merge_counts: list[int] = field(default_factory=list)
    first_new_id: int = 0
    n_before: int = 0

    @cached_property
    def definitions(self) -> dict[int, tuple[int, ...]]:
        """Each new id -> the base ids it spans (built on first use)."""
        every = self.def_ids.tolist()
        cuts = self.def_off.tolist()
        first = self.first_new_id
        return {first + k: tuple(every[cuts[k] : cuts[k + 1]]) for k in range(len(cuts) - 1)}

    @property
    def n_new(self) -> int:
        """The number of new ids."""
        return int(self.def_off.shape[0]) - 1

    @property
    def n_after(self) -> int:
        """Total tokens after merging."""
        return sum(int(s.shape[0]) for s in self.ids)

    @property
    def reduction(self) -> float:
        """``1 - n_after / n_before`` (0.0 for an empty batch)."""
        return 1.0 - self.n_after / self.n_before if self.n_before else 0.0


# --------------------------------------------------------------------------- merging


def _flatten(rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ints (lists or arrays) as one flat int64 array and their int64 lengths."""
    if rows and all(isinstance(r, np.ndarray) for r in rows):
        lens = np.fromiter((r.size for r in rows), dtype=np.int64, count=len(rows))
        flat = np.concatenate([r.reshape(-1) for r in rows]).astype(np.int64, copy=False)
        return flat, lens
    lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lens.sum()))
    return flat, lens


def _layout(
    ids: Sequence[Sequence[int]] | Sequence[np.ndarray], boundaries: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat int64 ids, sequence offsets and the uint8 segment-start flags."""
    flat, lens = _flatten(ids)
    seq_off = np.zeros(lens.shape[0] + 1, dtype=np.int64)
    np.cumsum(lens, out=seq_off[1:])
    if flat.size and (flat.min() < 0 or flat.max() >= 2**31 - 1):
        raise UsageError("token ids must be in 0..2**31 - 2")
    cut = np.zeros(flat.shape[0], dtype=np.uint8)
    cut[seq_off[:-1][lens > 0]] = 1
    if boundaries is not None:
        if len(boundaries) != len(lens):
            raise UsageError(f"boundaries has {len(boundaries)} entries for {len(lens)} sequences")
        starts, n_starts = _flatten(boundaries)
        limit = np.repeat(lens, n_starts)
        bad = np.flatnonzero((starts < 0) | (starts >= limit))
        if bad.size:
            i = int(np.searchsorted(np.cumsum(n_starts), bad[0], side="right"))
            raise UsageError(f"boundaries[{i}] holds a position outside 0..{int(lens[i]) - 1}")
        cut[np.repeat(seq_off[:-1], n_starts) + starts] = 1
    return flat, seq_off, cut


@dataclass
class _Run:
    batch: DynamicBatch
    removed: np.ndarray | None  # positions removed by each merge (length_curve only)


def _run(
    ids: Sequence[Sequence[int]] | Sequence[np.ndarray],
    boundaries: Sequence[Any] | None,
    budget: int | None,
    min_count: int,
    first_new_id: int | None,
    curve: bool,
) -> _Run:
    if budget is not None and budget < 0:
        raise UsageError(f"budget must be >= 0 or None, got {budget}")
    if min_count < 1:
        raise UsageError(f"min_count must be >= 1, got {min_count}")
    flat, seq_off, cut = _layout(ids, boundaries)
    top = int(flat.max()) if flat.size else -1
    first = top + 1 if first_new_id is None else int(first_new_id)
    if first <= top:
        raise UsageError(f"first_new_id {first} must be larger than every id (largest: {top})")

    from toknz_core.dynamic import expand, local_ids, replay_curve, segment_words
    from toknz_core.train import train_bpe

    uniq, local = local_ids(flat)
    words, word_off, counts, seg_word, seg_start, longest = segment_words(local, cut)
    n_base = uniq.shape[0]
    most = flat.shape[0] - seg_start.shape[0]  # merges can remove at most this many positions
    allowed = most if budget is None else min(budget, most)
    original = words.copy() if curve else words
    word_len = np.empty(word_off.shape[0] - 1, dtype=np.int64)
    init_bytes = uniq.astype("<i4").view(np.uint8)
    init_off = np.arange(n_base + 1, dtype=np.int64) * 4
    if allowed > 0:
        left, right, new, mcount, tok_bytes, tok_off, n_tokens = train_bpe(
            words,
            word_off,
            counts,
            init_bytes,
            init_off,
            n_base + allowed,
            min_count,
            4 * max(2, int(longest)),
            np.zeros(4, dtype=np.int64),
            word_len,
        )
    else:
        word_len[:] = np.diff(word_off)
        left = right = new = np.empty(0, dtype=np.int32)
        mcount = np.empty(0, dtype=np.int64)
        tok_bytes, tok_off, n_tokens = init_bytes, init_off, n_base
    tok_span = np.diff(tok_off) // 4
    out, new_off, start, stop = expand(
        words, word_off, word_len, seg_word, seg_start, seq_off, tok_span
    )
    lut = np.concatenate([uniq, first + np.arange(int(n_tokens) - n_base, dtype=np.int64)])
    glob = lut[out]
    at = tok_off[n_base : int(n_tokens) + 1]
    def_ids = tok_bytes[at[0] : at[-1]].view("<i4").astype(np.int64)
    bounds = new_off.tolist()
    spans_all = np.stack([start, stop], axis=1)
    batch = DynamicBatch(
        ids=[glob[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)],
        def_ids=def_ids,
        def_off=(at - at[0]) // 4,
        spans=[spans_all[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)],
        merges=list(zip(lut[left].tolist(), lut[right].tolist(), lut[new].tolist(), strict=True)),
        merge_counts=mcount.tolist(),
        first_new_id=first,
        n_before=int(flat.shape[0]),
    )
    removed = replay_curve(original, word_off, counts, left, right, new) if curve else None
    return _Run(batch, removed)


def merge_batch(
    ids: Sequence[Sequence[int]] | Sequence[np.ndarray],
    boundaries: Sequence[Any] | None = None,
    *,
    budget: int | None = None,
    min_count: int = 2,
    first_new_id: int | None = None,
) -> DynamicBatch:
    """Merge the most frequent adjacent pair across the batch ``ids``, repeatedly.

    ``boundaries``: per sequence, the positions where a segment starts (a merged
    token never spans two segments; each sequence start is one anyway);
    ``None``: whole sequences. ``budget``: new ids at most (``None``: no
    limit); ``min_count`` (>= 1): pairs occurring fewer times are never merged;
    ``first_new_id``: the first new id (default: one more than the largest id).
    Raises :class:`~toknz.errors.UsageError` for a negative budget, a
    ``min_count`` below 1, a ``first_new_id`` not above every id or a boundary
    outside its sequence.

    >>> b = merge_batch([[1, 2, 3, 1, 2], [1, 2]], first_new_id=10)
    >>> [s.tolist() for s in b.ids], b.definitions
    ([[10, 3, 10], [10]], {10: (1, 2)})
    >>> unmerge(b)
    [[1, 2, 3, 1, 2], [1, 2]]
    """
    return _run(ids, boundaries, budget, min_count, first_new_id, curve=False).batch


def length_curve(
    ids: Sequence[Sequence[int]] | Sequence[np.ndarray],
    boundaries: Sequence[Any] | None = None,
    *,
    budget: int | None = None,
    min_count: int = 2,
) -> np.ndarray:
    """Total tokens after ``0, 1, ..., len(merges)`` merges of one :func:`merge_batch` run (int64).

    Merges are a prefix property: entry ``k`` is the length after the first
    ``k`` merges, which is the result of any run whose merges are those ``k``.
    Arguments and errors are those of :func:`merge_batch`.

    >>> length_curve([[1, 2, 1, 2, 1, 2]], min_count=2).tolist()
    [6, 3, 2]
    """
    run = _run(ids, boundaries, budget, min_count, None, curve=True)
    assert run.removed is not None
    total = run.batch.n_before
    return np.concatenate([[total], total - np.cumsum(run.removed)]).astype(np.int64)


def unmerge(batch: DynamicBatch) -> list[list[int]]:
    """The original ids of ``batch``: every new id replaced by the base ids it spans.

    >>> unmerge(merge_batch([[5, 6, 5, 6]]))
    [[5, 6, 5, 6]]
    """
    defs = batch.definitions
    out: list[list[int]] = []
    for seq in batch.ids:
        row: list[int] = []
        for t in np.asarray(seq).tolist():
            d = defs.get(t) if t >= batch.first_new_id else None
            if d is None:
                row.append(t)
            else:
                row.extend(d)
        out.append(row)
    return out


# --------------------------------------------------------------------------- boundaries

_FLAGS: weakref.WeakKeyDictionary[Tokenizer, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


def _token_flags(tokenizer: Tokenizer) -> dict[str, np.ndarray]:
    """Per token id: byte length and the properties the validity rule looks at."""
    got = _FLAGS.get(tokenizer)
    if got is not None:
        return got
    pieces = tokenizer._per_token_bytes()
    n = len(pieces)
    lens = np.fromiter(map(len, pieces), dtype=np.int64, count=n)
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    arena = np.frombuffer(b"".join(pieces), dtype=np.uint8)

    def per_token(table: bytes) -> np.ndarray:
        lut = np.zeros(256, dtype=np.int64)
        lut[list(table)] = 1
        c = np.zeros(arena.shape[0] + 1, dtype=np.int64)
        np.cumsum(lut[arena], out=c[1:])
        return c[off[1:]] - c[off[:-1]]

    n_ws = per_token(WHITESPACE)
    ws_lut = np.zeros(256, dtype=bool)
    ws_lut[list(WHITESPACE)] = True
    first_ws = np.zeros(n, dtype=bool)
    nonempty = lens > 0
    first_ws[nonempty] = ws_lut[arena[off[:-1][nonempty]]]
    added = np.zeros(n, dtype=bool)
    added[[t.id for t in tokenizer.added_tokens]] = True
    hyphen = nonempty & (lens == 1)
    hyphen[hyphen] = arena[off[:-1][hyphen]] == ord("-")
    flags = {
        "len": lens,
        "has_ws": n_ws > 0,
        "all_ws": nonempty & (n_ws == lens),
        "ws_inside": (n_ws - first_ws) > 0,  # whitespace after the first byte
        "punct": (per_token(PUNCTUATION) > 0) & (per_token(b"0123456789") == 0),
        "hyphen": hyphen,
        "added": added,
    }
    _FLAGS[tokenizer] = flags
    return flags


def _pretoken_starts(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pre-token starts in the texts (normalized, UTF-8, back to back) and each text's byte offsets.

    Uses the tokenizer's compiled scanner when it has one, else its pre-tokenizer.
    """
    from toknz.tokenizer import _utf8

    norm = [tokenizer.normalizer.normalize(t) for t in texts] if tokenizer.normalizer else texts
    raw = [_utf8(t) for t in norm]
    doc_off = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, raw), dtype=np.int64, count=len(raw)), out=doc_off[1:])
    kind = tokenizer._compiled_kind()
    if kind is not None:
        from toknz_core import pretok

        from toknz.pipeline.unicode_tables import load_table

        data = np.frombuffer(b"".join(raw), dtype=np.uint8)
        ends, _ = pretok.split_batch(kind, data, doc_off, load_table())
    else:
        from toknz.pipeline.pretokenize import pre_tokenize

        parts = []
        for i, text in enumerate(norm):
            pieces = pre_tokenize(tokenizer.pre_tokenizer, text)
            if "".join(pieces) != text:
                raise UsageError(
                    f"{tokenizer.name}: its pre-tokenizer rewrites the text, so pre-token "
                    "boundaries cannot be placed; use boundary='word'"
                )
            sizes = np.fromiter((len(_utf8(p)) for p in pieces), np.int64, count=len(pieces))
            parts.append(doc_off[i] + np.cumsum(sizes))
        ends = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    starts = np.unique(np.concatenate([doc_off, ends]))
    return starts, doc_off


def boundaries_for(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    rule: str = "pretoken",
    *,
    ids: Sequence[Sequence[int]] | None = None,
) -> list[np.ndarray]:
    """Segment starts (int64 positions, per text) of ``ids`` = ``tokenizer``'s ids of ``texts``.

    ``rule`` is ``"pretoken"``, ``"word"`` or ``"word+hyphen"`` (see
    :mod:`toknz.dynamic`); ``ids`` defaults to
    ``tokenizer.encode_ordinary_batch(texts)``. Raises
    :class:`~toknz.errors.UsageError` for an unknown rule or ids whose bytes
    are not the (normalized) texts' bytes.

    >>> import toknz
    >>> tok = toknz.load("o200k_base")
    >>> ids = tok.encode_ordinary_batch(["Hello world!"])
    >>> boundaries_for(tok, ["Hello world!"], ids=ids)[0].tolist()
    [0, 1, 2]
    """
    if rule not in RULES:
        raise UsageError(f"unknown boundary rule {rule!r}; use one of {', '.join(RULES)}")
    if ids is None:
        ids = tokenizer.encode_ordinary_batch(list(texts))
    if len(ids) != len(texts):
        raise UsageError(f"{len(ids)} id sequences for {len(texts)} texts")
    flat, seq_off, cut8 = _layout(ids, None)
    f = _token_flags(tokenizer)
    if flat.size and flat.max() >= f["len"].shape[0]:
        raise UsageError(f"an id is outside the vocabulary of {tokenizer.name}")
    cut = cut8.astype(bool)
    if rule == "pretoken":
        starts, doc_off = _pretoken_starts(tokenizer, texts)
        at = np.zeros(flat.shape[0] + 1, dtype=np.int64)
        np.cumsum(f["len"][flat], out=at[1:])
        bad = np.flatnonzero(at[seq_off] != doc_off)
        if bad.size:
            i = max(0, int(bad[0]) - 1)
            raise UsageError(
                f"text {i}: its ids do not spell its (normalized) bytes; "
                "boundaries need the ids of exactly these texts, without added tokens"
            )
        cut |= np.isin(at[:-1], starts)

    def prev(a: np.ndarray) -> np.ndarray:
        p = np.zeros_like(a)
        p[1:] = a[:-1]
        return p  # the value at a sequence start does not matter: it is cut anyway

    has_ws, all_ws, ws_inside = f["has_ws"][flat], f["all_ws"][flat], f["ws_inside"][flat]
    p_all_ws = prev(all_ws)
    both_ws = all_ws & p_all_ws
    added = f["added"][flat]
    cut |= has_ws & ~both_ws
    cut |= prev(ws_inside) & ~both_ws
    cut |= added | prev(added)
    if rule == "word+hyphen":
        punct = f["punct"][flat]
        cut |= punct & ~f["hyphen"][flat] & ~prev(punct)
    # A lone whitespace token joins the word after it only when it starts its segment.
    cut |= p_all_ws & ~has_ws & (prev(ws_inside) | ~prev(cut))
    return [np.flatnonzero(cut[seq_off[i] : seq_off[i + 1]]) for i in range(len(texts))]


def encode_dynamic(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    ids: Sequence[Sequence[int]],
    options: DynamicOptions | Mapping[str, Any],
) -> DynamicBatch:
    """Merge ``ids`` (``tokenizer``'s ids of ``texts``) per ``options``: ``encode_batch(dynamic=...)``."""
    opts = DynamicOptions.of(options)
    bounds = boundaries_for(tokenizer, texts, opts.boundary, ids=ids)
    first = tokenizer.n_vocab if opts.first_new_id is None else opts.first_new_id
    return merge_batch(
        ids, bounds, budget=opts.budget, min_count=opts.min_count, first_new_id=first
    )
