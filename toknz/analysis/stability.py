"""Boundary stability: how many token boundaries survive noise outside the noisy places.

OCR post-correction (and any model that edits text token by token) wants a tokenizer whose
token boundaries in a noisy text are those of its correction everywhere but at the errors.
:func:`boundary_stability` measures that on pairs of a clean text and a noisy copy of it
with the :class:`~toknz.perturb.Edit` spans that made the copy
(:func:`toknz.perturb.perturb_with_edits`, e.g. ``"ocr"`` noise):

1. both texts are encoded (``encode_ordinary``); a **boundary** is an offset between two
   tokens (not the start or the end of the text), in UTF-8 bytes of the text, so a boundary
   inside a character (a byte-level token that ends mid-character) counts too. For ASCII
   text byte offsets are character offsets;
2. a boundary is **inside an edit** when it lies in the edit's span *with both edges*:
   clean offset ``b`` with ``clean_start - margin <= b <= clean_end + margin`` (characters),
   and likewise in the noisy text. With the default ``margin=0`` only the edges of the edit
   and the offsets within it are left out: whether a token ends just before a changed
   character depends on that character, so those are not counted against the tokenizer;
   a wider ``margin`` also leaves out ``margin`` characters of context on each side;
3. the noisy boundaries outside every edit are mapped to clean offsets (the texts agree
   outside the edits, so the offset moves by the length changes of the edits before it);
4. ``kept`` counts the offsets both encodings have outside the edits. **``stability``** is
   ``kept`` over all boundaries outside the edits that either encoding has (a Jaccard
   index); ``recall`` is the share of the clean boundaries that the noisy encoding keeps,
   ``precision`` the share of the noisy boundaries that the clean encoding has, ``f1`` their
   harmonic mean, ``changed_per_edit`` the boundaries only one encoding has, per edit.

The headline is two-sided on purpose. ``recall`` alone rewards coarse tokens: a tokenizer
whose tokens are whole words has almost no boundary inside a word to lose, and when an
error makes a word unknown it breaks the word into pieces, which adds boundaries around the
error that ``recall`` does not see and ``precision`` does. ``docs/domain.md`` has the
measured table (``python benchmarks/stability.py``).

Identical texts (no edits) give 1.0; so does a tokenizer with no merges, whose boundaries are
every byte. A share with nothing to count is 1.0. Everything after encoding is NumPy over
arrays of boundaries, linear in the text (plus ``log`` factors of ``searchsorted``): about a
megabyte of text takes well under a second beyond encoding.

Tokens must spell the text byte for byte (the bytes of the tokens of ``encode_ordinary(text)``
concatenate to ``text.encode()``), which holds for byte-level BPE without a normalizer that
changes the text; otherwise :func:`boundary_stability` raises ``ValueError``.

    >>> from toknz.perturb import Edit
    >>> r = compare_boundaries([3, 5, 9], [3, 4, 6, 10], [Edit(4, 5, 4, 6)], 12, 13)
    >>> (r.clean_boundaries, r.noisy_boundaries, r.kept, r.stability)
    (2, 2, 2, 1.0)
    >>> r = compare_boundaries([2, 4], [2, 3, 4], [], 6, 6)  # one boundary added
    >>> (r.recall, r.precision, r.stability, r.changed)
    (1.0, 0.6666666666666666, 0.6666666666666666, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toknz.perturb import Edit
from toknz.tokenizer import Tokenizer

__all__ = ["StabilityResult", "boundary_stability", "compare_boundaries", "token_boundaries"]

EditLike = Edit | tuple[int, int, int, int]


@dataclass(frozen=True)
class StabilityResult:
    """Counts of boundaries over all text pairs; the shares are properties (see the module doc).

    ``clean_boundaries``: boundaries of the clean encodings outside every edit (the
    denominator of :attr:`stability`); ``noisy_boundaries``: those of the noisy encodings
    outside every edit; ``kept``: offsets in both; ``clean_inside``: clean boundaries left out
    because they lie in an edit (or its margin).
    """

    texts: int = 0
    edits: int = 0
    clean_tokens: int = 0
    noisy_tokens: int = 0
    clean_boundaries: int = 0
    noisy_boundaries: int = 0
    kept: int = 0
    clean_inside: int = 0

    @property
    def recall(self) -> float:
        """Share of the clean boundaries outside the edits that the noisy encoding keeps."""
        return self.kept / self.clean_boundaries if self.clean_boundaries else 1.0

    @property
    def precision(self) -> float:
        """Share of the noisy boundaries outside the edits that the clean encoding has."""
        return self.kept / self.noisy_boundaries if self.noisy_boundaries else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of :attr:`recall` and :attr:`precision`."""
        r, p = self.recall, self.precision
        return 2 * r * p / (r + p) if r + p else 0.0

    @property
    def changed(self) -> int:
        """Boundaries outside the edits that only one of the two encodings has."""
        return self.clean_boundaries + self.noisy_boundaries - 2 * self.kept

    @property
    def stability(self) -> float:
        """Share of the boundaries outside the edits (of either encoding) that both have."""
        union = self.kept + self.changed
        return self.kept / union if union else 1.0

    @property
    def changed_per_edit(self) -> float:
        """:attr:`changed` per edit (0.0 with no edit)."""
        return self.changed / self.edits if self.edits else 0.0

    def __add__(self, other: StabilityResult) -> StabilityResult:
        return StabilityResult(
            texts=self.texts + other.texts,
            edits=self.edits + other.edits,
            clean_tokens=self.clean_tokens + other.clean_tokens,
            noisy_tokens=self.noisy_tokens + other.noisy_tokens,
            clean_boundaries=self.clean_boundaries + other.clean_boundaries,
            noisy_boundaries=self.noisy_boundaries + other.noisy_boundaries,
            kept=self.kept + other.kept,
            clean_inside=self.clean_inside + other.clean_inside,
        )


def _token_byte_lengths(tok: Tokenizer) -> np.ndarray:
    """The byte length of every id's token (0 for an id that holds none)."""
    pieces = tok.decode_tokens_bytes(range(tok.n_vocab))
    return np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))


def token_boundaries(lengths: np.ndarray, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Sorted byte offsets between the tokens ``ids`` (``lengths``: bytes per id), without
    the start and the end of the text; empty tokens add no offset."""
    ends = np.cumsum(lengths[np.asarray(ids, dtype=np.int64)])
    if len(ends) == 0:
        return ends
    inner = ends[:-1]
    inner = inner[(inner > 0) & (inner < ends[-1])]
    return np.unique(inner)


def _byte_offsets(text: str) -> np.ndarray | None:
    """``offsets[i]`` = UTF-8 bytes of ``text[:i]`` (``len(text) + 1`` entries); ``None``
    for ASCII text, where they are the character offsets."""
    if text.isascii():
        return None
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    sizes = 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)
    out = np.zeros(len(cps) + 1, dtype=np.int64)
    np.cumsum(sizes, out=out[1:])
    return out


def _edit_array(edits: Sequence[EditLike], clean_len: int, noisy_len: int) -> np.ndarray:
    """The edits as an ``(n, 4)`` int64 array, checked to be a consistent alignment."""
    arr = np.asarray(edits, dtype=np.int64).reshape(-1, 4)
    cs, ce, ns, ne = arr.T
    growth = (ne - ns) - (ce - cs)
    before = np.concatenate(([0], np.cumsum(growth)))
    ok = (
        np.all(cs <= ce)
        and np.all(ns <= ne)
        and np.all(cs[1:] >= ce[:-1])
        and np.all(ns[1:] >= ne[:-1])
        and (len(arr) == 0 or (cs[0] >= 0 and ce[-1] <= clean_len))
        and np.all(ns == cs + before[:-1])
        and before[-1] == noisy_len - clean_len
    )
    if not ok:
        raise ValueError(
            "edits are not a sorted, non-overlapping alignment of the clean text "
            f"({clean_len} characters) with the noisy text ({noisy_len} characters)"
        )
    return arr


def _inside(bounds: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which ``bounds`` lie in a closed span ``[starts[j], ends[j]]`` (both sorted)."""
    if len(starts) == 0:
        return np.zeros(len(bounds), dtype=bool)
    j = np.searchsorted(starts, bounds, side="right") - 1
    return (j >= 0) & (bounds <= ends[np.maximum(j, 0)])


def _count(
    clean_b: np.ndarray,
    noisy_b: np.ndarray,
    spans: np.ndarray,
    wide: np.ndarray,
) -> tuple[int, int, int, int]:
    """(clean outside, noisy outside, kept, clean inside) for one pair; ``spans`` the edits in
    the boundaries' unit, ``wide`` the same widened by the margin."""
    cs, ce, ns, ne = spans.T
    clean_in = _inside(clean_b, wide[:, 0], wide[:, 1])
    clean_out = clean_b[~clean_in]
    noisy_out = noisy_b[~_inside(noisy_b, wide[:, 2], wide[:, 3])]
    if len(spans):
        shift = np.concatenate(([0], np.cumsum((ne - ns) - (ce - cs))))
        j = np.searchsorted(ns, noisy_out, side="right")
        noisy_out = noisy_out - shift[j]
    kept = len(np.intersect1d(clean_out, noisy_out, assume_unique=True))
    return len(clean_out), len(noisy_out), kept, int(clean_in.sum())


def _widen(arr: np.ndarray, margin: int, clean_len: int, noisy_len: int) -> np.ndarray:
    if margin == 0:
        return arr
    lo = np.array([0, 0, 0, 0])
    hi = np.array([clean_len, clean_len, noisy_len, noisy_len])
    return np.clip(arr + np.array([-margin, margin, -margin, margin]), lo, hi)


def compare_boundaries(
    clean_boundaries: Sequence[int] | np.ndarray,
    noisy_boundaries: Sequence[int] | np.ndarray,
    edits: Sequence[EditLike],
    clean_len: int,
    noisy_len: int,
    *,
    margin: int = 0,
) -> StabilityResult:
    """The counts of :func:`boundary_stability` for one pair of boundary sets, all offsets in
    one unit (characters here; :func:`boundary_stability` uses bytes). Token counts are the
    boundary counts plus one."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, not {margin}")
    arr = _edit_array(edits, clean_len, noisy_len)
    clean_b = np.unique(np.asarray(clean_boundaries, dtype=np.int64))
    noisy_b = np.unique(np.asarray(noisy_boundaries, dtype=np.int64))
    c_out, n_out, kept, c_in = _count(
        clean_b, noisy_b, arr, _widen(arr, margin, clean_len, noisy_len)
    )
    return StabilityResult(
        1, len(arr), len(clean_b) + 1, len(noisy_b) + 1, c_out, n_out, kept, c_in
    )


def _check_spelled(tok: Tokenizer, text: str, bounds_total: int) -> None:
    n = len(text.encode("utf-8", "surrogatepass"))
    if bounds_total != n:
        raise ValueError(
            f"{tok.name}: the tokens of a text spell {bounds_total} bytes, the text has {n}; "
            "boundary offsets need a tokenizer whose tokens spell the text (no normalizer "
            "that changes it, no SentencePiece-style decoder)"
        )


def boundary_stability(
    tok: Tokenizer,
    clean_texts: Sequence[str],
    noisy_texts_with_edits: Sequence[tuple[str, Sequence[EditLike]]],
    *,
    margin: int = 0,
    num_threads: int | None = None,
) -> StabilityResult:
    """Token-boundary stability of ``tok`` between each clean text and its noisy copy.

    ``noisy_texts_with_edits[i]`` is ``(noisy_text, edits)`` for ``clean_texts[i]``, as
    :func:`toknz.perturb.perturb_with_edits` returns it. ``margin`` (characters, default 0)
    widens every edit's span on each side; see the module doc for what is counted. Raises
    ``ValueError`` when the edits do not align the two texts or the tokens do not spell the
    text.
    """
    if len(clean_texts) != len(noisy_texts_with_edits):
        raise ValueError(
            f"{len(clean_texts)} clean texts but {len(noisy_texts_with_edits)} noisy ones"
        )
    if margin < 0:
        raise ValueError(f"margin must be >= 0, not {margin}")
    noisy_texts = [n for n, _ in noisy_texts_with_edits]
    encoded = tok.encode_ordinary_batch([*clean_texts, *noisy_texts], num_threads=num_threads)
    lengths = _token_byte_lengths(tok)
    total = StabilityResult()
    for i, (clean, (noisy, edits)) in enumerate(
        zip(clean_texts, noisy_texts_with_edits, strict=True)
    ):
        clean_ids, noisy_ids = encoded[i], encoded[len(clean_texts) + i]
        arr = _edit_array(edits, len(clean), len(noisy))
        for text, ids in ((clean, clean_ids), (noisy, noisy_ids)):
            _check_spelled(tok, text, int(lengths[np.asarray(ids, dtype=np.int64)].sum()))
        wide = _widen(arr, margin, len(clean), len(noisy))
        clean_off, noisy_off = _byte_offsets(clean), _byte_offsets(noisy)
        if clean_off is not None or noisy_off is not None:
            c = clean_off if clean_off is not None else np.arange(len(clean) + 1)
            n = noisy_off if noisy_off is not None else np.arange(len(noisy) + 1)
            arr = np.stack([c[arr[:, 0]], c[arr[:, 1]], n[arr[:, 2]], n[arr[:, 3]]], axis=1)
            wide = np.stack([c[wide[:, 0]], c[wide[:, 1]], n[wide[:, 2]], n[wide[:, 3]]], axis=1)
        c_out, n_out, kept, c_in = _count(
            token_boundaries(lengths, clean_ids), token_boundaries(lengths, noisy_ids), arr, wide
        )
        total = total + StabilityResult(
            1, len(edits), len(clean_ids), len(noisy_ids), c_out, n_out, kept, c_in
        )
    return total
