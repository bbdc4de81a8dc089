"""Word splitting for hierarchical byte/word models: word-start byte offsets over UTF-8.

Rules (the library layer, :mod:`toknz.words`, names them):

- whitespace (Learn Your Tokens): a word is a maximal run of non-whitespace characters with
  the run of whitespace before it attached; whitespace at the very start of a text is a word
  of its own, and whitespace at the end (nothing after it) is the last word. Precisely, a
  word starts at byte 0, at every whitespace character whose previous character is not
  whitespace, and at the first non-whitespace character of a text that starts with
  whitespace. Whitespace is ``\\s`` as the ``regex`` package matches it (the Unicode
  White_Space property: 25 code points; U+001C..U+001F are not whitespace).
  ``"  hi there \\n"`` → ``"  "``, ``"hi"``, ``" there"``, ``" \\n"``.

A cap (``cap > 0``) cuts a word longer than ``cap`` bytes into pieces of at most ``cap``
bytes, only at UTF-8 character starts: a byte or character is never dropped or split. The cut
points depend only on the word's own bytes, so the rule stays causal: splitting a prefix of a
text gives the full text's words except that the prefix's last word may be unfinished.

Invalid UTF-8 is never an error here and never loses a byte: :func:`decode` advances past
every byte, and an invalid byte counts as a non-whitespace character.

Imports numpy and numba only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.unicode_classes import WS, decode


@njit(cache=True, nogil=True)
def _whitespace_into(
    data: np.ndarray, start: int, stop: int, table: np.ndarray, cap: int, out: np.ndarray, k: int
) -> int:
    """Append the word starts of ``data[start:stop]`` to ``out[k:]``; return the new ``k``."""
    i = start
    word = start
    prev_ws = False
    lead = True  # only whitespace so far
    out[k] = start
    k += 1
    while i < stop:
        cp, nxt = decode(data, i, stop)
        ws = (table[cp] & WS) != 0
        if i > start and ws != prev_ws and (ws or lead):
            out[k] = i
            k += 1
            word = i
        elif cap > 0 and nxt - word > cap and i > word:
            out[k] = i
            k += 1
            word = i
        prev_ws = ws
        lead = lead and ws
        i = nxt
    return k


@njit(cache=True, nogil=True)
def word_starts(data: np.ndarray, table: np.ndarray, cap: int) -> np.ndarray:
    """Byte offsets of each word's start in ``data`` (uint8), then ``len(data)``.

    An empty text gives ``[0]`` (no words). ``cap`` ≤ 0 means no cap.
    """
    out = np.empty(data.shape[0] + 2, dtype=np.int64)
    k = 0
    if data.shape[0] > 0:
        k = _whitespace_into(data, 0, data.shape[0], table, cap, out, 0)
    out[k] = data.shape[0]
    return out[: k + 1].copy()


@njit(cache=True, nogil=True)
def word_starts_batch(
    data: np.ndarray, doc_offsets: np.ndarray, table: np.ndarray, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Word starts of many texts concatenated in ``data``, text ``d`` at
    ``data[doc_offsets[d]:doc_offsets[d+1]]``.

    Returns ``(starts, word_offsets)``: the starts of text ``d`` (offsets relative to that
    text, then its length) are ``starts[word_offsets[d]:word_offsets[d+1]]``.
    """
    n = doc_offsets.shape[0] - 1
    out = np.empty(data.shape[0] + 2 * n + 1, dtype=np.int64)
    word_offsets = np.empty(n + 1, dtype=np.int64)
    k = 0
    for d in range(n):
        word_offsets[d] = k
        a = doc_offsets[d]
        b = doc_offsets[d + 1]
        first = k
        if b > a:
            k = _whitespace_into(data, a, b, table, cap, out, k)
        out[k] = b
        k += 1
        for j in range(first, k):
            out[j] -= a
    word_offsets[n] = k
    return out[:k].copy(), word_offsets
