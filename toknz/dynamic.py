"""Dynamic tokenization: BPE over a batch's own token sequences (Feher et al., ACL 2025).

:func:`merge_batch` repeatedly merges the most frequent adjacent pair of ids
across a batch, never across a segment boundary, and returns the shorter
sequences, each new token's definition (the base ids it spans) and, per new
position, the span of original positions. :func:`unmerge` undoes it exactly.
:func:`boundaries_for` gives the segment starts the base tokenizer allows;
``Tokenizer.encode_batch(texts, dynamic=...)`` does both in one call.

The merging is one kernel call (:func:`toknz_core.dynamic.merge_batch`) over
the batch's distinct segments with their counts: exact incremental 64-bit
pair counts, and ties broken deterministically (larger count, then smaller
``(left, right)`` id pair; new ids are larger than every base id, in order of
creation). A pair's count is the number of its adjacent occurrences in all
segments (overlapping ones included for a pair ``(a, a)``, as in the paper's
``Counter``); every occurrence is merged, left to right. The result keeps flat
arrays; the per-sequence lists, the merge tuples and the definitions dict of
:class:`DynamicBatch` are built on first use.

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
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

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


@dataclass(frozen=True)
class FlatIds:
    """A batch of id sequences back to back: sequence ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.

    What :meth:`toknz.Tokenizer.encode_batch_to_numpy` returns; :func:`merge_batch`,
    :func:`boundaries_for` and :func:`encode_dynamic` take it instead of a list of
    sequences and then skip flattening one.
    """

    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1


class DynamicBatch:
    """A dynamically merged batch.

    ``ids``: the new sequences (int64 arrays); ``definitions``: each new id ->
    the base ids it spans; ``spans``: per sequence an ``(n, 2)`` int64 array,
    the original positions ``[start, stop)`` of each new position;
    ``merges``: ``(left, right, new)`` in order, with ``merge_counts`` (the pair
    count when chosen); ``n_before``/``n_after``: total tokens. The definitions
    are also kept flat: new id ``first_new_id + k`` spans
    ``def_ids[def_off[k]:def_off[k + 1]]``; so are the sequences
    (``flat_ids``, ``offsets``, ``flat_spans``). :func:`merge_batch` fills the
    flat arrays; the lists, tuples and the dict are built on first use.
    """

    def __init__(
        self,
        ids: list[np.ndarray] | None = None,
        spans: list[np.ndarray] | None = None,
        def_ids: np.ndarray | None = None,
        def_off: np.ndarray | None = None,
        merges: list[tuple[int, int, int]] | None = None,
        merge_counts: list[int] | None = None,
        first_new_id: int = 0,
        n_before: int = 0,
        *,
        flat: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        merge_array: np.ndarray | None = None,
        count_array: np.ndarray | None = None,
    ) -> None:
        if flat is None and (ids is None or spans is None):
            raise UsageError("DynamicBatch needs ids and spans, or flat arrays")
        self.def_ids = np.empty(0, dtype=np.int64) if def_ids is None else def_ids
        self.def_off = np.zeros(1, dtype=np.int64) if def_off is None else def_off
        self.first_new_id = first_new_id
        self.n_before = n_before
        self._flat = flat
        self._merge_array = merge_array
        self._count_array = count_array
        if ids is not None:
            self.__dict__["ids"] = ids
        if spans is not None:
            self.__dict__["spans"] = spans
        if merges is not None or merge_array is None:
            self.__dict__["merges"] = [] if merges is None else merges
        if merge_counts is not None or count_array is None:
            self.__dict__["merge_counts"] = [] if merge_counts is None else merge_counts

    def __repr__(self) -> str:
        return (
            f"DynamicBatch({len(self.offsets) - 1} sequences, {self.n_before} -> "
            f"{self.n_after} tokens, {self.n_new} new ids from {self.first_new_id})"
        )

    def _flat_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._flat is None:
            ids, spans = self.__dict__["ids"], self.__dict__["spans"]
            offsets = np.zeros(len(ids) + 1, dtype=np.int64)
            np.cumsum([len(s) for s in ids], out=offsets[1:])
            flat = np.concatenate(ids).astype(np.int64) if ids else np.empty(0, np.int64)
            fs = np.concatenate(spans) if spans else np.empty((0, 2), np.int64)
            self._flat = (flat, offsets, fs.reshape(-1, 2).astype(np.int64))
        return self._flat

    @property
    def flat_ids(self) -> np.ndarray:
        """All new sequences back to back (int64); sequence ``i`` is ``flat_ids[offsets[i]:offsets[i + 1]]``."""
        return self._flat_arrays()[0]

    @property
    def offsets(self) -> np.ndarray:
        """The int64 offsets of the sequences in :attr:`flat_ids` (one more than sequences)."""
        return self._flat_arrays()[1]

    @property
    def flat_spans(self) -> np.ndarray:
        """The ``(n, 2)`` spans of :attr:`flat_ids`, each counted from its sequence's start."""
        return self._flat_arrays()[2]

    @cached_property
    def ids(self) -> list[np.ndarray]:
        """The new sequences (int64 arrays, views of :attr:`flat_ids`)."""
        flat, offsets, _ = self._flat_arrays()
        cuts = offsets.tolist()
        return [flat[cuts[i] : cuts[i + 1]] for i in range(len(cuts) - 1)]

    @cached_property
    def spans(self) -> list[np.ndarray]:
        """Per sequence, the ``(n, 2)`` original ``[start, stop)`` of each new position."""
        _, offsets, spans = self._flat_arrays()
        cuts = offsets.tolist()
        return [spans[cuts[i] : cuts[i + 1]] for i in range(len(cuts) - 1)]

    @cached_property
    def merges(self) -> list[tuple[int, int, int]]:
        """``(left, right, new)`` of every merge, in order."""
        assert self._merge_array is not None
        return [(a, b, z) for a, b, z in self._merge_array.tolist()]

    @cached_property
    def merge_counts(self) -> list[int]:
        """The pair count of each merge when it was chosen."""
        assert self._count_array is not None
        return list(self._count_array.tolist())

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
        return int(self.flat_ids.shape[0])

    @property
    def reduction(self) -> float:
        """``1 - n_after / n_before`` (0.0 for an empty batch)."""
        return 1.0 - self.n_after / self.n_before if self.n_before else 0.0


# --------------------------------------------------------------------------- merging


Ids = Sequence[Sequence[int]] | Sequence[np.ndarray] | FlatIds


def _flatten(rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ints (lists or arrays) as one flat int64 array and their int64 lengths."""
    if rows and all(isinstance(r, np.ndarray) for r in rows):
        lens = np.fromiter((r.size for r in rows), dtype=np.int64, count=len(rows))
        flat = np.concatenate([r.reshape(-1) for r in rows]).astype(np.int64, copy=False)
        return flat, lens
    lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lens.sum()))
    return flat, lens


def _flat_ids(ids: Ids) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` as flat int64 ids and int64 sequence offsets."""
    if isinstance(ids, FlatIds):
        return ids.ids.astype(np.int64, copy=False), ids.offsets.astype(np.int64, copy=False)
    flat, lens = _flatten(ids)
    seq_off = np.zeros(lens.shape[0] + 1, dtype=np.int64)
    np.cumsum(lens, out=seq_off[1:])
    return flat, seq_off


def _layout(
    ids: Ids, boundaries: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat int64 ids, sequence offsets and the uint8 segment-start flags."""
    flat, seq_off = _flat_ids(ids)
    lens = np.diff(seq_off)
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


def _check_options(budget: int | None, min_count: int) -> None:
    if budget is not None and budget < 0:
        raise UsageError(f"budget must be >= 0 or None, got {budget}")
    if min_count < 1:
        raise UsageError(f"min_count must be >= 1, got {min_count}")


def _batch(
    got: tuple[int, int, Any], first_new_id: int | None, n_before: int
) -> tuple[DynamicBatch, np.ndarray]:
    """A kernel's ``(status, top, Merged)`` as a batch and the positions each merge removed."""
    from toknz_core import dynamic as kernels

    status, top, m = got
    if status == kernels.BAD_ID:
        raise UsageError("token ids must be in 0..2**31 - 2")
    if status == kernels.BAD_FIRST:
        raise UsageError(
            f"first_new_id {first_new_id} must be larger than every id (largest: {top})"
        )
    batch = DynamicBatch(
        def_ids=m.def_ids,
        def_off=m.def_off,
        first_new_id=top + 1 if first_new_id is None else int(first_new_id),
        n_before=n_before,
        flat=(m.new_ids, m.new_off, m.spans),
        merge_array=m.merges,
        count_array=m.counts,
    )
    return batch, m.removed


def _merge_flat(
    flat: np.ndarray,
    seq_off: np.ndarray,
    cut: np.ndarray,
    budget: int | None,
    min_count: int,
    first_new_id: int | None,
) -> tuple[DynamicBatch, np.ndarray]:
    """Merge laid-out ids (:func:`_layout`): the batch, and the positions each merge removed."""
    _check_options(budget, min_count)
    from toknz_core.dynamic import merge_batch as merge_kernel

    first = -1 if first_new_id is None else int(first_new_id)
    got = merge_kernel(flat, seq_off, cut, first, -1 if budget is None else budget, min_count)
    return _batch(got, first_new_id, int(flat.shape[0]))


def merge_batch(
    ids: Ids,
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
    flat, seq_off, cut = _layout(ids, boundaries)
    return _merge_flat(flat, seq_off, cut, budget, min_count, first_new_id)[0]


def length_curve(
    ids: Ids,
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
    flat, seq_off, cut = _layout(ids, boundaries)
    batch, removed = _merge_flat(flat, seq_off, cut, budget, min_count, None)
    total = batch.n_before
    return np.concatenate([[total], total - np.cumsum(removed)]).astype(np.int64)


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


class _Tables(NamedTuple):
    """Per token id: ``props`` (int32, its byte length ``<< 8`` or the flag bits the validity
    rule looks at) and its bytes (``arena[off[t]:off[t + 1]]``)."""

    props: np.ndarray
    arena: np.ndarray
    off: np.ndarray


_TABLES: weakref.WeakKeyDictionary[Tokenizer, _Tables] = weakref.WeakKeyDictionary()


def _token_tables(tokenizer: Tokenizer) -> _Tables:
    """The :class:`_Tables` of ``tokenizer``, built on first use."""
    got = _TABLES.get(tokenizer)
    if got is not None:
        return got
    from toknz_core import dynamic as kernels

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
    bits = [
        (kernels.HAS_WS, n_ws > 0),
        (kernels.ALL_WS, nonempty & (n_ws == lens)),
        (kernels.WS_INSIDE, (n_ws - first_ws) > 0),  # whitespace after the first byte
        (kernels.PUNCT, (per_token(PUNCTUATION) > 0) & (per_token(b"0123456789") == 0)),
        (kernels.HYPHEN, hyphen),
        (kernels.ADDED, added),
    ]
    props = lens.astype(np.int32) << 8
    for bit, where in bits:
        props[where] |= np.int32(bit)
    got = _Tables(props, arena, off)
    _TABLES[tokenizer] = got
    return got


def _joined_texts(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts normalized, as UTF-8 back to back (uint8), and their int64 offsets in characters."""
    from toknz.tokenizer import _utf8

    norm = [tokenizer.normalizer.normalize(t) for t in texts] if tokenizer.normalizer else texts
    char_off = np.zeros(len(norm) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, norm), dtype=np.int64, count=len(norm)), out=char_off[1:])
    return np.frombuffer(_utf8("".join(norm)), dtype=np.uint8), char_off


def _pretoken_ends(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pre-token ends by the tokenizer's pre-tokenizer (no compiled scanner), and each text's byte offsets.

    The ends are offsets into the texts (normalized, UTF-8, back to back), sorted.
    """
    from toknz.pipeline.pretokenize import pre_tokenize
    from toknz.tokenizer import _utf8

    norm = [tokenizer.normalizer.normalize(t) for t in texts] if tokenizer.normalizer else texts
    doc_off = np.zeros(len(norm) + 1, dtype=np.int64)
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
        doc_off[i + 1] = doc_off[i] + int(sizes.sum())
    ends = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return ends, doc_off


def _cuts(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    rule: str,
    flat: np.ndarray,
    seq_off: np.ndarray,
    *,
    spelled: bool = False,
) -> np.ndarray:
    """The uint8 segment-start flags of ``flat`` (``tokenizer``'s ids of ``texts``) under ``rule``.

    With the pre-token rule and a compiled scanner the kernel splits and rules
    in one call: the bytes the ids spell (``spelled``: the texts are not read),
    or the texts, as one UTF-8 array (their ids must spell them, else a
    :class:`~toknz.errors.UsageError`).
    """
    from toknz_core import dynamic as kernels

    if rule not in RULES:
        raise UsageError(f"unknown boundary rule {rule!r}; use one of {', '.join(RULES)}")
    if seq_off.shape[0] - 1 != len(texts):
        raise UsageError(f"{seq_off.shape[0] - 1} id sequences for {len(texts)} texts")
    props, arena, arena_off = _token_tables(tokenizer)
    kind = tokenizer._compiled_kind()
    if rule == "pretoken" and kind is not None and spelled:
        from toknz.pipeline.unicode_tables import load_table

        got = kernels.spelled_cuts(kind, arena, arena_off, load_table(), flat, seq_off, props)
    elif rule == "pretoken" and kind is not None:
        from toknz.pipeline.unicode_tables import load_table

        data, char_off = _joined_texts(tokenizer, texts)
        got = kernels.pretoken_cuts(kind, data, char_off, load_table(), flat, seq_off, props)
    elif rule == "pretoken":
        ends, doc_off = _pretoken_ends(tokenizer, texts)
        got = kernels.boundary_cuts(flat, seq_off, props, ends, doc_off, kernels.RULE_PRETOKEN)
    else:
        none = np.zeros(1, dtype=np.int64)
        code = kernels.RULE_WORD if rule == "word" else kernels.RULE_WORD_HYPHEN
        got = kernels.boundary_cuts(flat, seq_off, props, none, none, code)
    cut, bad_id, bad_text = got
    if bad_id >= 0:
        raise UsageError(f"an id is outside the vocabulary of {tokenizer.name}")
    if bad_text >= 0:
        raise UsageError(
            f"text {max(0, bad_text - 1)}: its ids do not spell its (normalized) bytes; "
            "boundaries need the ids of exactly these texts, without added tokens"
        )
    return cut


def boundaries_for(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    rule: str = "pretoken",
    *,
    ids: Ids | None = None,
) -> list[np.ndarray]:
    """Segment starts (int64 positions, per text) of ``ids`` = ``tokenizer``'s ids of ``texts``.

    ``rule`` is ``"pretoken"``, ``"word"`` or ``"word+hyphen"`` (see
    :mod:`toknz.dynamic`); ``ids`` (lists, arrays or :class:`FlatIds`)
    defaults to ``tokenizer.encode_ordinary_batch(texts)``. Raises
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
    flat, seq_off = _flat_ids(ids)
    at = np.flatnonzero(_cuts(tokenizer, texts, rule, flat, seq_off))
    cuts = np.searchsorted(at, seq_off).tolist()
    starts = seq_off.tolist()
    return [at[cuts[i] : cuts[i + 1]] - starts[i] for i in range(len(texts))]


def encode_dynamic(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    ids: Ids,
    options: DynamicOptions | Mapping[str, Any],
    *,
    starts: np.ndarray | None = None,
) -> DynamicBatch:
    """Merge ``ids`` (``tokenizer``'s ids of ``texts``) per ``options``: ``encode_batch(dynamic=...)``.

    ``ids``: lists, arrays or :class:`FlatIds` (``encode_batch_to_numpy``'s
    output, the fastest). The boundaries go straight from the validity rule
    to the merge kernel as flags, never as per-text lists. The pre-tokens
    are, in order of preference: ``starts`` (uint8 per id, non-zero at the
    first id of each pre-token, as the encoder reports them:
    ``Tokenizer.encode_batch(dynamic=...)`` passes them), or with a compiled
    scanner those of the bytes the ids spell (the normalized texts, for the
    tokenizer's own ids): the texts are not read again, only counted, and
    ids that spell other bytes are not an error here (:func:`boundaries_for`
    checks them against the texts).

    >>> import toknz
    >>> tok = toknz.load("o200k_base")
    >>> texts = ["abcabc abcabc", "abcabc"]
    >>> b = encode_dynamic(tok, texts, FlatIds(*tok.encode_batch_to_numpy(texts)), {})
    >>> b.n_before, b.n_after, unmerge(b) == tok.encode_batch(texts)
    (6, 4, True)
    """
    opts = DynamicOptions.of(options)
    flat, seq_off = _flat_ids(ids)
    tables = _token_tables(tokenizer)
    first = tokenizer.n_vocab if opts.first_new_id is None else opts.first_new_id
    kind = tokenizer._compiled_kind()
    if opts.boundary != "pretoken" or (kind is None and starts is None):
        cut = _cuts(tokenizer, texts, opts.boundary, flat, seq_off)
        return _merge_flat(flat, seq_off, cut, opts.budget, opts.min_count, first)[0]
    # One kernel call: the pre-tokens (reported, or split from the bytes the ids spell),
    # the rule, the merge.
    from toknz_core import dynamic as kernels

    from toknz.pipeline.unicode_tables import load_table

    _check_options(opts.budget, opts.min_count)
    if seq_off.shape[0] - 1 != len(texts):
        raise UsageError(f"{seq_off.shape[0] - 1} id sequences for {len(texts)} texts")
    props, arena, arena_off = tables
    budget = -1 if opts.budget is None else opts.budget
    if starts is not None:
        starts = np.ascontiguousarray(starts, dtype=np.uint8)
        if starts.shape != flat.shape:
            raise UsageError(f"{starts.shape[0]} pre-token flags for {flat.shape[0]} ids")
        bad_id, *got = kernels.merge_marked(
            props, flat, seq_off, starts, first, budget, opts.min_count
        )
    else:
        assert kind is not None
        bad_id, *got = kernels.merge_spelled(
            kind,
            arena,
            arena_off,
            load_table(),
            props,
            flat,
            seq_off,
            first,
            budget,
            opts.min_count,
        )
    if bad_id >= 0:
        raise UsageError(f"an id is outside the vocabulary of {tokenizer.name}")
    return _batch(tuple(got), first, int(flat.shape[0]))[0]  # type: ignore[arg-type]
