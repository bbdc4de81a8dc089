"""Per-code-point character classes for the compiled pre-tokenizers, and UTF-8 decoding.

The class table is a flat ``uint16`` array indexed by code point over
U+0000..U+10FFFF (``TABLE_SIZE`` entries, 2.2 MB). Each entry holds:

- bits 0..7: class flags (``L``, ``N``, ``WS``, ``UPPERISH``, ``LOWERISH``; see below);
- bits 8..15 (``FOLD_SHIFT``): the ASCII lowercase letter that the code point matches
  case-insensitively, when that letter is one of the contraction letters
  ``s d m t l v r e`` (0 otherwise). E.g. ``S`` and U+017F LATIN SMALL LETTER LONG S
  both hold ``ord("s")``.

This module does not know where the classes come from: ``toknz.pipeline.unicode_tables``
builds the table by running the ``regex`` package over every code point (the
same Unicode data that ``regex.findall`` uses) and caches it on disk. The
kernels here take the table as an argument.

Imports numpy and numba only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Bump when the meaning of a bit or the shape of the table changes (it keys the disk cache).
LAYOUT_VERSION = 1

#: Number of code points covered: U+0000..U+10FFFF.
TABLE_SIZE = 0x110000

#: ``\p{L}``: letters.
L = np.uint16(1)
#: ``\p{N}``: numbers (Nd, Nl, No).
N = np.uint16(2)
#: ``\s`` as the ``regex`` package matches it in a str pattern.
WS = np.uint16(4)
#: o200k's upper-ish class ``[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]``.
UPPERISH = np.uint16(8)
#: o200k's lower-ish class ``[\p{Ll}\p{Lm}\p{Lo}\p{M}]``.
LOWERISH = np.uint16(16)
#: Bit position of the case-insensitive contraction letter.
FOLD_SHIFT = 8
#: Mask of the class flag bits.
FLAG_MASK = np.uint16(0xFF)

#: The letters of the contractions (``'s 't 're 've 'm 'll 'd``).
CONTRACTION_LETTERS = "sdmtlvre"


@njit(cache=True, nogil=True, forceinline=True)
def decode(data: np.ndarray, i: int, stop: int) -> tuple[int, int]:
    """Decode the UTF-8 character starting at byte ``i``: ``(code point, next byte offset)``.

    Valid UTF-8 is assumed; on invalid input the result is some code point in
    range and a next offset in ``(i, stop]`` (never an out-of-bounds read).
    Surrogates encoded as 3-byte sequences (``surrogatepass``) decode to
    U+D800..U+DFFF.
    """
    b0 = np.int64(data[i])
    if b0 < 0x80:
        return b0, i + 1
    if b0 < 0xE0:
        if b0 >= 0xC0 and i + 1 < stop:
            return ((b0 & 0x1F) << 6) | (np.int64(data[i + 1]) & 0x3F), i + 2
        return np.int64(0xFFFD), i + 1
    if b0 < 0xF0:
        if i + 2 < stop:
            cp = (
                ((b0 & 0x0F) << 12)
                | ((np.int64(data[i + 1]) & 0x3F) << 6)
                | (np.int64(data[i + 2]) & 0x3F)
            )
            return cp, i + 3
        return np.int64(0xFFFD), i + 1
    if i + 3 < stop:
        cp = (
            ((b0 & 0x07) << 18)
            | ((np.int64(data[i + 1]) & 0x3F) << 12)
            | ((np.int64(data[i + 2]) & 0x3F) << 6)
            | (np.int64(data[i + 3]) & 0x3F)
        )
        if cp > 0x10FFFF:
            cp = np.int64(0xFFFD)
        return cp, i + 4
    return np.int64(0xFFFD), i + 1


@njit(cache=True, nogil=True)
def utf8_error_offset(data: np.ndarray) -> int:
    """Byte offset of the first invalid UTF-8 sequence in ``data``, or -1 if it is all valid.

    Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF, no
    truncated sequence at the end.
    """
    n = np.int64(data.shape[0])
    i = np.int64(0)
    while i < n:
        b0 = data[i]
        if b0 < 0x80:
            i += 1
            continue
        if b0 < 0xC2:
            return i
        if b0 < 0xE0:
            if i + 1 >= n or (data[i + 1] & 0xC0) != 0x80:
                return i
            i += 2
            continue
        if b0 < 0xF0:
            if i + 2 >= n:
                return i
            b1 = data[i + 1]
            if (b1 & 0xC0) != 0x80 or (data[i + 2] & 0xC0) != 0x80:
                return i
            if b0 == 0xE0 and b1 < 0xA0:
                return i
            if b0 == 0xED and b1 >= 0xA0:
                return i
            i += 3
            continue
        if b0 < 0xF5:
            if i + 3 >= n:
                return i
            b1 = data[i + 1]
            if (b1 & 0xC0) != 0x80 or (data[i + 2] & 0xC0) != 0x80 or (data[i + 3] & 0xC0) != 0x80:
                return i
            if b0 == 0xF0 and b1 < 0x90:
                return i
            if b0 == 0xF4 and b1 >= 0x90:
                return i
            i += 4
            continue
        return i
    return np.int64(-1)


def pack_table(
    letter: np.ndarray,
    number: np.ndarray,
    space: np.ndarray,
    upperish: np.ndarray,
    lowerish: np.ndarray,
    fold: np.ndarray,
) -> np.ndarray:
    """Pack boolean class masks and the fold letters (uint8, 0 = none) into one table.

    Every argument has ``TABLE_SIZE`` entries; the result is a read-only
    C-contiguous ``uint16`` array, the form the kernels expect.
    """
    for a in (letter, number, space, upperish, lowerish, fold):
        if a.shape != (TABLE_SIZE,):
            raise ValueError(f"class arrays must have {TABLE_SIZE} entries, got {a.shape}")
    table = np.zeros(TABLE_SIZE, dtype=np.uint16)
    table |= letter.astype(np.uint16) * L
    table |= number.astype(np.uint16) * N
    table |= space.astype(np.uint16) * WS
    table |= upperish.astype(np.uint16) * UPPERISH
    table |= lowerish.astype(np.uint16) * LOWERISH
    table |= fold.astype(np.uint16) << np.uint16(FOLD_SHIFT)
    return as_table(table)


def as_table(table: np.ndarray) -> np.ndarray:
    """Check a class table's shape and dtype; return it read-only and C-contiguous."""
    if table.dtype != np.uint16 or table.shape != (TABLE_SIZE,):
        raise ValueError(
            f"a class table is a uint16 array of {TABLE_SIZE} entries, "
            f"got {table.dtype} {table.shape}"
        )
    view = np.ascontiguousarray(table).view()
    view.flags.writeable = False
    return view
