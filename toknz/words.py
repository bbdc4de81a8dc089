"""Splitting text into words for hierarchical byte/word models (needs no torch).

    >>> from toknz.words import split_words, word_boundaries
    >>> split_words("  Hello, world!\\n\\tBye", rule="whitespace")
    ['  ', 'Hello,', ' world!', '\\n\\tBye']
    >>> word_boundaries("ab cd").tolist()
    [0, 2, 5]
    >>> split_words("éééé", max_word_bytes=4)
    ['éé', 'éé']

    >>> split_words("Hello, world! howAreYou", rule="hat")
    ['Hello,', ' world!', ' how', 'Are', 'You']
    >>> split_words("hi  there", rule="space")
    ['hi ', ' there']

Rules (:mod:`toknz_core.wordsplit` has the exact definitions):

- ``"whitespace"`` (Learn Your Tokens): a word is a run of non-whitespace characters with the
  whitespace before it attached; leading whitespace is a word of its own.
- ``"hat"`` (the HAT paper; the same words as Aleph Alpha's ``hat-splitter`` 0.1.10): UAX #29
  word segments, every punctuation character split off, camelCase split, then a word piece
  joins a single space before it and punctuation joins the space, word or punctuation before
  it: ``"how_are_you"`` → ``"how_"``, ``"are_"``, ``"you"``. It is causal except after a
  digit and U+2044 FRACTION SLASH, the only Mid character of UAX #29 that is not punctuation:
  a prefix ending there has one more (last) word start than the full text (``"3⁄"`` →
  ``"3"``, ``"⁄"``; ``"3⁄4"`` is one word).
- ``"space"`` (SpaceByte; BLT's space patching): a patch ends after a "spacelike" byte (not
  an ASCII letter or digit, not a UTF-8 continuation byte) whose previous byte is not
  spacelike; a patch start inside a character is moved to that character's end.

The character classes come from the ``regex`` package (Unicode 17.0 with regex 2026.5.9; see
:func:`toknz.pipeline.unicode_tables.unicode_version`). ``hat-splitter`` 0.1.10 uses Unicode 16.0
(``unicode-segmentation`` 1.12.0, Rust ``regex`` 1.11 / ``regex-syntax`` 0.8.5). Splitting
every code point in a few contexts with both finds 924 code points that differ: U+00B8
CEDILLA (ALetter in 17.0, Other before), 651 older symbols that hat-splitter's data marks
Extended_Pictographic and regex's 17.0 data does not (e.g. U+2605 ★, U+1F000..U+1F0F5 mahjong
and playing cards; it matters after a ZWJ), and 272 characters assigned after Unicode 14.0.

:func:`entropy_boundaries` gives BLT's entropy patch starts from per-byte entropies.

``max_word_bytes`` cuts longer words into pieces of at most that many UTF-8 bytes, only
between characters: the pieces always concatenate back to the text, and no piece holds half a
character. Each word is cut greedily (as long a piece as fits, then the next), which for
``hat`` is exactly ``hat-splitter``'s ``split_with_limit`` whenever the cap is at least 4;
``split_with_limit`` also takes caps of 1..3, where it must split characters, and toknz
refuses them. (The older Python reference in ``hat-splitter``'s tests,
``UnicodePunctuationCamelSymbolSplitter``, drops the bytes of a long word beyond its first
chunk; neither ``split_with_limit`` nor toknz does.) The kernels are compiled on first use
(cached on disk afterwards).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from toknz.errors import InputError, UsageError

#: The rules :func:`split_words` knows.
RULES = ("whitespace", "hat", "space")

#: The entropy patching modes of :func:`entropy_boundaries`.
ENTROPY_MODES = ("global", "monotonic")


def _kernel_args(rule: str) -> tuple[int, np.ndarray, np.ndarray]:
    """The kernel's rule code and the two tables (a rule's unused table is a dummy)."""
    from toknz_core import wordsplit

    from toknz.pipeline.unicode_tables import load_table, load_word_break_table

    if rule == "whitespace":
        return wordsplit.RULE_WHITESPACE, load_table(), _DUMMY
    if rule == "hat":
        return wordsplit.RULE_HAT, _DUMMY, load_word_break_table()
    return wordsplit.RULE_SPACE, _DUMMY, _DUMMY


_DUMMY = np.zeros(1, dtype=np.uint16)


def _check(rule: str, max_word_bytes: int | None) -> int:
    """Validate the options; return the cap for the kernel (0 = none)."""
    if rule not in RULES:
        raise UsageError(f"unknown word-splitting rule {rule!r}; known: {', '.join(RULES)}")
    if max_word_bytes is None:
        return 0
    if isinstance(max_word_bytes, bool) or not isinstance(max_word_bytes, int):
        raise UsageError(f"max_word_bytes must be an integer, not {max_word_bytes!r}")
    if max_word_bytes < 4:
        raise UsageError(
            f"max_word_bytes must be at least 4 (one UTF-8 character can take 4 bytes), "
            f"not {max_word_bytes}"
        )
    return max_word_bytes


def _as_bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8", "surrogatepass")
    raise UsageError(f"expected str or bytes, not {type(text).__name__}")


def word_boundaries(
    text: str | bytes, rule: str = "whitespace", max_word_bytes: int | None = None
) -> np.ndarray:
    """Byte offsets where the words of ``text`` start, then its UTF-8 length (``int64``).

    ``text`` may be bytes (invalid UTF-8 is split without losing a byte: each invalid byte
    counts as a non-whitespace character, for ``hat`` as U+FFFD). An empty text gives ``[0]``.

        >>> word_boundaries("Hi, you", rule="hat").tolist()
        [0, 3, 7]

    Raises :class:`~toknz.errors.UsageError` for an unknown rule or a cap below 4 bytes.
    """
    cap = _check(rule, max_word_bytes)
    from toknz_core.wordsplit import rule_starts

    code, table, wbt = _kernel_args(rule)
    data = np.frombuffer(_as_bytes(text), dtype=np.uint8)
    return rule_starts(data, code, table, wbt, cap)


def word_boundaries_batch(
    texts: Sequence[str | bytes], rule: str = "whitespace", max_word_bytes: int | None = None
) -> list[np.ndarray]:
    """:func:`word_boundaries` of each text, in one kernel call."""
    cap = _check(rule, max_word_bytes)
    from toknz_core.wordsplit import rule_starts_batch

    code, table, wbt = _kernel_args(rule)
    blobs = [_as_bytes(t) for t in texts]
    doc_offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blobs], out=doc_offsets[1:])
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    starts, offsets = rule_starts_batch(data, doc_offsets, code, table, wbt, cap)
    return [starts[offsets[d] : offsets[d + 1]] for d in range(len(blobs))]


def _cut(text: str, bounds: np.ndarray) -> list[str]:
    """Slice ``text`` at the byte offsets ``bounds`` (character starts, ending with its length)."""
    if len(text) == int(bounds[-1]):  # ASCII (or no text): byte offsets are character offsets
        cuts = bounds.tolist()
    else:
        data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        # Character index of each byte offset: the count of character-start bytes before it.
        lead = np.zeros(data.shape[0] + 1, dtype=np.int64)
        np.cumsum((data & 0xC0) != 0x80, out=lead[1:])
        cuts = lead[bounds].tolist()
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def split_words(
    text: str, rule: str = "whitespace", max_word_bytes: int | None = None
) -> list[str]:
    """The words of ``text`` under ``rule``; their concatenation is ``text``."""
    return _cut(text, word_boundaries(text, rule, max_word_bytes))


def split_words_batch(
    texts: Sequence[str], rule: str = "whitespace", max_word_bytes: int | None = None
) -> list[list[str]]:
    """:func:`split_words` of each text, with one kernel call for the batch."""
    bounds = word_boundaries_batch(texts, rule, max_word_bytes)
    return [_cut(t, b) for t, b in zip(texts, bounds, strict=True)]


def entropy_boundaries(
    entropies: np.ndarray,
    threshold: float,
    mode: str = "global",
    lengths: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]:
    """BLT's entropy patch starts from per-byte next-byte entropies, per sequence.

    ``entropies[i]`` (or ``entropies[b, i]``) is the entropy of the entropy model's
    prediction of byte ``i + 1``, made after reading byte ``i`` (BLT's convention: its
    ``entropies[:, i]`` scores position ``i + 1``). A patch starts at byte 0 and at byte
    ``p ≥ 1`` where:

    - ``mode="global"``: ``entropies[p-1] > threshold`` (strictly greater, as BLT's
      ``entropies > threshold``);
    - ``mode="monotonic"``: ``p ≥ 2`` and ``entropies[p-1] - entropies[p-2] > threshold``
      (BLT's ``patch_start_mask_from_entropy_with_monotonicity``).

    The entropy after the last byte (``entropies[n-1]``) scores a byte beyond the sequence and
    is never used. Differences from BLT's patcher: BLT puts BOS at position 0 so it also always
    starts a patch at its position 1, and in monotonic mode its position 2 (the first entry of
    the ``entropies[:, 1:]`` it diffs); here the input has no BOS, position 0 is the only
    forced start, and position 1 needs no predecessor-free exception (in monotonic mode it is
    never a start). BLT also flattens the batch before running the entropy model, so one
    sequence's entropies depend on the one before (its issue #123); this function only looks
    at each sequence's own entries.

    ``entropies`` is a 1-D array of one sequence (then ``lengths`` must be ``None`` and the
    result is one ``int64`` array of starts) or a 2-D ``[batch, T]`` array with optional
    per-sequence ``lengths`` (entries past a sequence's length are ignored; default ``T``),
    giving a list of ``int64`` arrays. An empty sequence has no starts. ``float32`` input is
    compared in ``float32`` (BLT casts its scores to ``float32``); other real input is
    converted to ``float64``. Raises :class:`~toknz.errors.UsageError` for a bad mode, shape,
    threshold or length, :class:`~toknz.errors.InputError` for NaN entropies.

        >>> import numpy as np
        >>> e = np.array([0.1, 2.0, 2.5, 3.0, 0.2])  # e[4] scores a 6th byte: unused
        >>> entropy_boundaries(e, 1.0).tolist()
        [0, 2, 3, 4]
        >>> entropy_boundaries(e, 2.5).tolist()  # strictly greater
        [0, 4]
        >>> entropy_boundaries(e, 1.0, "monotonic").tolist()
        [0, 2]
        >>> [b.tolist() for b in entropy_boundaries(np.ones((2, 3)) * 2, 1.0, lengths=[3, 1])]
        [[0, 1, 2], [0]]
    """
    from toknz_core.wordsplit import entropy_starts_batch

    if mode not in ENTROPY_MODES:
        raise UsageError(f"unknown entropy patching mode {mode!r}; known: global, monotonic")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise UsageError(f"threshold must be a real number, not {threshold!r}")
    if not math.isfinite(float(threshold)):
        raise UsageError(f"threshold must be finite, not {threshold!r}")
    arr = np.asarray(entropies)
    if arr.dtype.kind not in "fiu":
        raise UsageError(f"entropies must be a real array, not {arr.dtype}")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    single = arr.ndim == 1
    if single:
        if lengths is not None:
            raise UsageError("lengths is only for a 2-D [batch, T] array of entropies")
        arr = arr[None, :]
    elif arr.ndim != 2:
        raise UsageError(f"entropies must be 1-D or 2-D [batch, T], not {arr.ndim}-D")
    nb, width = arr.shape
    if lengths is None:
        lens = np.full(nb, width, dtype=np.int64)
    else:
        lens = np.asarray(lengths)
        if lens.shape != (nb,) or (lens.size and lens.dtype.kind not in "iu"):
            raise UsageError(f"lengths must be {nb} integers, one per sequence")
        lens = lens.astype(np.int64)
        if lens.size and (lens.min() < 0 or lens.max() > width):
            raise UsageError(f"each length must be between 0 and {width}")
    arr = np.ascontiguousarray(arr)
    valid = np.arange(width)[None, :] < lens[:, None]
    if np.isnan(arr[valid]).any():
        raise InputError("entropies hold NaN within the sequence lengths")
    starts, offsets = entropy_starts_batch(
        arr, lens, arr.dtype.type(threshold), mode == "monotonic"
    )
    rows = [starts[offsets[b] : offsets[b + 1]] for b in range(nb)]
    return rows[0] if single else rows
