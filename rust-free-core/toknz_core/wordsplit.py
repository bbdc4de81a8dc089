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

- hat (Aleph Alpha's ``hat-splitter`` 0.1.10, the HAT paper's rule), on code points:

  1. UAX #29 word segments exactly as the Rust crate ``unicode-segmentation`` 1.12.0's
     ``split_word_bounds`` makes them: :func:`_wb_segment_end` ports its forward state
     machine rule for rule (e.g. WB3d joins two WSegSpace only when no Extend/Format/ZWJ
     came between them in the segment, and a ZWJ followed by an Extended_Pictographic keeps
     it in the segment whatever state it is in).
  2. Each segment is cut after every punctuation character (``\\p{P}``) that is not its last
     character, and between a lowercase letter (``\\p{Ll}``) and an uppercase one
     (``\\p{Lu}``): these are the pieces.
  3. A piece that is exactly one ASCII space joins the piece before it when that one is
     made of ASCII spaces only.
  4. Each piece gets a kind: *space* (exactly ``" "``), *whitespace* (only White_Space
     characters), *punctuation* (one ``\\p{P}`` character), else *word*.
  5. A word starts at every piece except a *word* piece after a *space* piece and a
     *punctuation* piece after a *space*, *word* or *punctuation* piece.

  ``"Hello, world!"`` → ``"Hello,"``, ``" world!"``; ``"how_are_you"`` → ``"how_"``,
  ``"are_"``, ``"you"``; ``"a  b"`` → ``"a"``, ``"  "``, ``"b"``.

  Causality: a prefix's word starts are the full text's word starts below the prefix
  length, except that the prefix's *last* start may be missing from the full text. That
  needs the look-ahead of WB11/WB12 or WB6/WB7 (``X Mid × Y``) with a Mid character that is
  not ``\\p{P}``; in Unicode 17.0 the only one is U+2044 FRACTION SLASH (MidNum, Sm). A
  prefix ending in a Numeric, then U+2044 (each maybe followed by Extend/Format/ZWJ) has a
  start at the U+2044 that the full text lacks when it goes on with a Numeric (or with a
  ZWJ + Extended_Pictographic, a state-machine detail): ``"3⁄"`` → ``"3"``, ``"⁄"`` but
  ``"3⁄4"`` is one word. With a ``\\p{P}`` Mid character (``.``, ``'``, ``:``, ``,`` …)
  steps 2 and 5 give the same starts either way. With a cap, the pieces after such an
  extra start differ too (the cap counts from the word start); the starts before it agree.

- space (SpaceByte, BLT's ``patching_mode="space"``), on bytes rounded up to characters: a
  byte is *spacelike* unless it is an ASCII letter or digit or a UTF-8 continuation byte
  (0x80..0xBF), so every lead byte of a multi-byte character is spacelike. A spacelike byte
  whose previous byte is not spacelike ends a patch (the first byte of the text never does:
  BLT and SpaceByte put a spacelike BOS before it), and the next patch starts after it. On
  bytes this can start a patch inside a character (after its lead byte); toknz moves such a
  start to the end of that character, so a word starts at byte 0 and after every character
  whose first byte is spacelike and whose previous character's last byte is not.
  ``"hi  there"`` → ``"hi "``, ``" there"``; ``"aé b"`` → ``"aé"``, ``" "``, ``"b"``.

A cap (``cap > 0``) cuts a word longer than ``cap`` bytes into pieces of at most ``cap``
bytes, only at UTF-8 character starts, greedily (:func:`_cap_into`, the same for every rule):
a byte or character is never dropped or split. The cut points depend only on the word's own
bytes, so a causal rule stays causal: splitting a prefix of a text gives the full text's
words except that the prefix's last word may be unfinished.

Invalid UTF-8 is never an error here and never loses a byte: :func:`decode` advances past
every byte, and an invalid byte counts as a non-whitespace character (for hat, as U+FFFD).

Entropy patching (BLT): :func:`entropy_starts_batch` takes per-byte next-byte entropies
(``e[i]`` is the entropy of the prediction of byte ``i + 1`` made after byte ``i``) and starts
a patch at position 0 and at ``p ≥ 1`` when ``e[p-1] > threshold`` (global), or at ``p ≥ 2``
when ``e[p-1] - e[p-2] > threshold`` (monotonic); each sequence on its own.

Imports numpy and numba only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.unicode_classes import WS, decode


@njit(cache=True, nogil=True)
def _whitespace_into(
    data: np.ndarray, start: int, stop: int, table: np.ndarray, out: np.ndarray, k: int
) -> int:
    """Append the whitespace-rule word starts of ``data[start:stop]`` (no cap) to ``out[k:]``;
    return the new ``k``."""
    i = start
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
        prev_ws = ws
        lead = lead and ws
        i = nxt
    return k


@njit(cache=True, nogil=True)
def word_starts(data: np.ndarray, table: np.ndarray, cap: int) -> np.ndarray:
    """Whitespace-rule byte offsets of each word's start in ``data`` (uint8), then
    ``len(data)``: :func:`rule_starts` with ``RULE_WHITESPACE``.

    An empty text gives ``[0]`` (no words). ``cap`` ≤ 0 means no cap.
    """
    return rule_starts(data, RULE_WHITESPACE, table, table, cap)


@njit(cache=True, nogil=True)
def word_starts_batch(
    data: np.ndarray, doc_offsets: np.ndarray, table: np.ndarray, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whitespace-rule word starts of many texts concatenated in ``data``, text ``d`` at
    ``data[doc_offsets[d]:doc_offsets[d+1]]``: :func:`rule_starts_batch` with
    ``RULE_WHITESPACE``.

    Returns ``(starts, word_offsets)``: the starts of text ``d`` (offsets relative to that
    text, then its length) are ``starts[word_offsets[d]:word_offsets[d+1]]``.
    """
    return rule_starts_batch(data, doc_offsets, RULE_WHITESPACE, table, table, cap)


# ---------------------------------------------------------------------------------------------
# The hat rule's per-code-point table (built by toknz.pipeline.unicode_tables.load_word_break_table).

#: Bump when a code or bit below changes meaning (it keys the table's disk cache).
WB_LAYOUT_VERSION = 1

#: Word_Break values in code order (bits 0..4 of a table entry); ``Other`` is 0.
WB_NAMES = (
    "Other",
    "CR",
    "LF",
    "Newline",
    "Extend",
    "ZWJ",
    "Regional_Indicator",
    "Format",
    "Katakana",
    "Hebrew_Letter",
    "ALetter",
    "Single_Quote",
    "Double_Quote",
    "MidNumLet",
    "MidLetter",
    "MidNum",
    "Numeric",
    "ExtendNumLet",
    "WSegSpace",
)
WB_OTHER = 0
WB_CR = 1
WB_LF = 2
WB_NEWLINE = 3
WB_EXTEND = 4
WB_ZWJ = 5
WB_RI = 6
WB_FORMAT = 7
WB_KATAKANA = 8
WB_HEBREW = 9
WB_ALETTER = 10
WB_SQ = 11
WB_DQ = 12
WB_MIDNUMLET = 13
WB_MIDLETTER = 14
WB_MIDNUM = 15
WB_NUMERIC = 16
WB_EXTENDNUMLET = 17
WB_WSEGSPACE = 18
#: Mask of the Word_Break code.
WB_MASK = np.uint16(0x1F)
#: ``\p{Extended_Pictographic}``.
WB_EXTPICT = np.uint16(0x20)
#: ``\p{P}``: punctuation (Pc Pd Ps Pe Pi Pf Po).
WB_PUNCT = np.uint16(0x40)
#: ``\p{Ll}``.
WB_LL = np.uint16(0x80)
#: ``\p{Lu}``.
WB_LU = np.uint16(0x100)
#: ``\s``: White_Space.
WB_WHITE = np.uint16(0x200)

# States of the segmenter (unicode-segmentation's UWordBoundsState, FormatExtend split out).
_S_START = 0
_S_LETTER = 1
_S_HLETTER = 2
_S_NUMERIC = 3
_S_KATAKANA = 4
_S_ENL = 5
_S_RI_HALF = 6
_S_RI_FULL = 7
_S_ZWJ = 8
_S_EMOJI = 9
_S_WSEG = 10
_S_FE_NONE = 11
_S_FE_QLETTER = 12
_S_FE_REQ_LETTER = 13
_S_FE_REQ_HLETTER = 14
_S_FE_REQ_NUMERIC = 15


@njit(cache=True, nogil=True, forceinline=True)
def _is_fe(cat: int) -> bool:
    return cat == WB_EXTEND or cat == WB_FORMAT or cat == WB_ZWJ


@njit(cache=True, nogil=True)
def _wb_segment_end(data: np.ndarray, i: int, stop: int, wbt: np.ndarray) -> int:
    """End (byte offset) of the UAX #29 word segment that starts at byte ``i < stop``.

    The forward iterator of ``unicode-segmentation`` 1.12.0 (``split_word_bounds``), state for
    state, on the code points that :func:`decode` reads; ``wbt`` is the hat table.
    """
    state = _S_START
    cat = -1
    saveidx = i
    skipped = False
    j = i
    while j < stop:
        cp, nxt = decode(data, j, stop)
        prev_zwj = cat == WB_ZWJ
        f = wbt[cp]
        cat = np.int64(f & WB_MASK)
        if state != _S_START and _is_fe(cat):  # WB4
            skipped = True
            j = nxt
            continue
        if prev_zwj and (f & WB_EXTPICT) != 0:  # WB3c
            state = _S_EMOJI
            j = nxt
            continue
        if state == _S_START:
            if cat == WB_CR:
                if nxt < stop and data[nxt] == 0x0A:  # WB3
                    return nxt + 1
                return nxt  # WB3a
            if cat == WB_ALETTER:
                state = _S_LETTER
            elif cat == WB_HEBREW:
                state = _S_HLETTER
            elif cat == WB_NUMERIC:
                state = _S_NUMERIC
            elif cat == WB_KATAKANA:
                state = _S_KATAKANA
            elif cat == WB_EXTENDNUMLET:
                state = _S_ENL
            elif cat == WB_RI:
                state = _S_RI_HALF
            elif cat == WB_LF or cat == WB_NEWLINE:
                return nxt  # WB3a
            elif cat == WB_ZWJ:
                state = _S_ZWJ
            elif cat == WB_WSEGSPACE:
                state = _S_WSEG
            else:
                if nxt < stop:
                    ncp, _ = decode(data, nxt, stop)
                    if _is_fe(np.int64(wbt[ncp] & WB_MASK)):  # WB4
                        state = _S_FE_NONE
                        j = nxt
                        continue
                return nxt  # WB999
        elif state == _S_WSEG:
            if not (cat == WB_WSEGSPACE and not skipped):  # WB3d
                return j
        elif state == _S_LETTER or state == _S_HLETTER:
            if cat == WB_ALETTER:
                state = _S_LETTER
            elif cat == WB_HEBREW:
                state = _S_HLETTER
            elif cat == WB_NUMERIC:
                state = _S_NUMERIC
            elif cat == WB_EXTENDNUMLET:
                state = _S_ENL
            elif cat == WB_DQ and state == _S_HLETTER:
                saveidx = j
                state = _S_FE_REQ_HLETTER  # WB7b
            elif cat == WB_SQ and state == _S_HLETTER:
                state = _S_FE_QLETTER  # WB7a
            elif cat == WB_MIDLETTER or cat == WB_MIDNUMLET or cat == WB_SQ:
                saveidx = j
                state = _S_FE_REQ_LETTER  # WB6
            else:
                return j
        elif state == _S_NUMERIC:
            if cat == WB_NUMERIC:
                state = _S_NUMERIC
            elif cat == WB_ALETTER:
                state = _S_LETTER
            elif cat == WB_HEBREW:
                state = _S_HLETTER
            elif cat == WB_EXTENDNUMLET:
                state = _S_ENL
            elif cat == WB_MIDNUM or cat == WB_MIDNUMLET or cat == WB_SQ:
                saveidx = j
                state = _S_FE_REQ_NUMERIC  # WB12
            else:
                return j
        elif state == _S_KATAKANA:
            if cat == WB_EXTENDNUMLET:
                state = _S_ENL
            elif cat != WB_KATAKANA:
                return j
        elif state == _S_ENL:
            if cat == WB_ALETTER:
                state = _S_LETTER
            elif cat == WB_HEBREW:
                state = _S_HLETTER
            elif cat == WB_NUMERIC:
                state = _S_NUMERIC
            elif cat == WB_KATAKANA:
                state = _S_KATAKANA
            elif cat != WB_EXTENDNUMLET:
                return j
        elif state == _S_RI_HALF:
            if cat == WB_RI:
                state = _S_RI_FULL
            else:
                return j
        elif state == _S_RI_FULL or state == _S_ZWJ or state == _S_EMOJI:
            return j
        else:  # the FormatExtend states
            if state == _S_FE_REQ_NUMERIC and cat == WB_NUMERIC:
                state = _S_NUMERIC  # WB11
            elif (state == _S_FE_REQ_LETTER or state == _S_FE_QLETTER) and cat == WB_ALETTER:
                state = _S_LETTER  # WB7
            elif (
                state == _S_FE_REQ_LETTER or state == _S_FE_QLETTER or state == _S_FE_REQ_HLETTER
            ) and cat == WB_HEBREW:
                state = _S_HLETTER  # WB7a, WB7b
            elif state == _S_FE_NONE or state == _S_FE_QLETTER:
                return j
            else:
                return saveidx  # the Mid character was not followed by a letter or digit
        j = nxt
    if state == _S_FE_REQ_LETTER or state == _S_FE_REQ_HLETTER or state == _S_FE_REQ_NUMERIC:
        return saveidx
    return stop


_K_NONE = 0
_K_SPACE = 1
_K_WHITESPACE = 2
_K_PUNCT = 3
_K_WORD = 4


@njit(cache=True, nogil=True)
def _hat_into(
    data: np.ndarray, start: int, stop: int, wbt: np.ndarray, out: np.ndarray, k: int
) -> int:
    """Append the hat-rule word starts of ``data[start:stop]`` (no cap) to ``out[k:]``."""
    out[k] = start
    k += 1
    prev_kind = _K_NONE
    prev_spaces = False
    s = start
    while s < stop:
        e = _wb_segment_end(data, s, stop, wbt)
        # Walk the segment's characters, closing a piece after \p{P} and between Ll and Lu.
        ps = s
        nchars = 0
        all_sp = True
        all_ws = True
        first_p = False
        prev_ll = False
        prev_p = False
        j = s
        while True:
            cp = np.int64(0)
            nxt = j
            f = np.uint16(0)
            if j < e:
                cp, nxt = decode(data, j, stop)
                f = wbt[cp]
                cut = nchars > 0 and (prev_p or (prev_ll and (f & WB_LU) != 0))
            else:
                cut = True
            if cut:
                # The piece [ps, j) is complete: its kind, and whether a word starts at ps.
                if nchars == 1 and all_sp and prev_spaces:
                    prev_kind = _K_WHITESPACE  # a single space merged into the spaces before it
                else:
                    if nchars == 1 and all_sp:
                        kind = _K_SPACE
                    elif all_ws:
                        kind = _K_WHITESPACE
                    elif nchars == 1 and first_p:
                        kind = _K_PUNCT
                    else:
                        kind = _K_WORD
                    joins = (prev_kind == _K_SPACE and kind == _K_WORD) or (
                        kind == _K_PUNCT
                        and (prev_kind == _K_SPACE or prev_kind == _K_WORD or prev_kind == _K_PUNCT)
                    )
                    if ps > start and not joins:
                        out[k] = ps
                        k += 1
                    prev_kind = kind
                    prev_spaces = all_sp
                ps = j
                nchars = 0
                all_sp = True
                all_ws = True
            if j >= e:
                break
            if nchars == 0:
                first_p = (f & WB_PUNCT) != 0
            nchars += 1
            all_sp = all_sp and cp == 0x20
            all_ws = all_ws and (f & WB_WHITE) != 0
            prev_ll = (f & WB_LL) != 0
            prev_p = (f & WB_PUNCT) != 0
            j = nxt
        s = e
    return k


@njit(cache=True, nogil=True, forceinline=True)
def _spacelike(b: int) -> bool:
    """SpaceByte's spacelike byte: not an ASCII letter or digit, not a continuation byte."""
    return not (
        (0x30 <= b <= 0x39) or (0x41 <= b <= 0x5A) or (0x61 <= b <= 0x7A) or (0x80 <= b <= 0xBF)
    )


@njit(cache=True, nogil=True)
def _space_into(data: np.ndarray, start: int, stop: int, out: np.ndarray, k: int) -> int:
    """Append the space-rule word starts of ``data[start:stop]`` (no cap) to ``out[k:]``."""
    out[k] = start
    k += 1
    prev_last_sp = True  # the BOS before the text is spacelike
    i = start
    while i < stop:
        _, nxt = decode(data, i, stop)
        if _spacelike(np.int64(data[i])) and not prev_last_sp and nxt < stop:
            out[k] = nxt
            k += 1
        prev_last_sp = _spacelike(np.int64(data[nxt - 1]))
        i = nxt
    return k


@njit(cache=True, nogil=True)
def _cap_into(
    data: np.ndarray, stop: int, starts: np.ndarray, n: int, cap: int, out: np.ndarray, k: int
) -> int:
    """Copy the ``n`` word starts ``starts[:n]`` (words end at the next start or ``stop``) to
    ``out[k:]``, cutting a word longer than ``cap`` bytes greedily before the first character
    that would make its piece longer than ``cap``; return the new ``k``."""
    for w in range(n):
        a = starts[w]
        b = starts[w + 1] if w + 1 < n else stop
        out[k] = a
        k += 1
        if b - a <= cap:
            continue
        piece = a
        i = a
        while i < b:
            _, nxt = decode(data, i, stop)
            if nxt - piece > cap and i > piece:
                out[k] = i
                k += 1
                piece = i
            i = nxt
    return k


#: Rule codes of the kernels below (the library layer maps names to them).
RULE_WHITESPACE = 0
RULE_HAT = 1
RULE_SPACE = 2


@njit(cache=True, nogil=True)
def _rule_into(
    data: np.ndarray,
    start: int,
    stop: int,
    rule: int,
    table: np.ndarray,
    wbt: np.ndarray,
    cap: int,
    tmp: np.ndarray,
    out: np.ndarray,
    k: int,
) -> int:
    """Append the word starts of ``data[start:stop]`` under ``rule`` and ``cap`` to ``out[k:]``."""
    if rule == RULE_WHITESPACE:
        n = _whitespace_into(data, start, stop, table, tmp, 0)
    elif rule == RULE_HAT:
        n = _hat_into(data, start, stop, wbt, tmp, 0)
    else:
        n = _space_into(data, start, stop, tmp, 0)
    if cap <= 0:
        out[k : k + n] = tmp[:n]
        return k + n
    return _cap_into(data, stop, tmp, n, cap, out, k)


@njit(cache=True, nogil=True)
def rule_starts(
    data: np.ndarray, rule: int, table: np.ndarray, wbt: np.ndarray, cap: int
) -> np.ndarray:
    """Byte offsets of each word's start in ``data`` (uint8) under ``rule`` (``RULE_*``), then
    ``len(data)``. ``table`` is the class table (whitespace rule), ``wbt`` the hat table (hat
    rule); a rule ignores the other one. An empty text gives ``[0]``; ``cap`` ≤ 0: no cap."""
    n = data.shape[0]
    out = np.empty(n + 2, dtype=np.int64)
    tmp = np.empty(n + 2, dtype=np.int64)
    k = 0
    if n > 0:
        k = _rule_into(data, 0, n, rule, table, wbt, cap, tmp, out, 0)
    out[k] = n
    return out[: k + 1].copy()


@njit(cache=True, nogil=True)
def rule_starts_batch(
    data: np.ndarray,
    doc_offsets: np.ndarray,
    rule: int,
    table: np.ndarray,
    wbt: np.ndarray,
    cap: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rule_starts` of many texts concatenated in ``data``, in the form of
    :func:`word_starts_batch`: ``(starts, word_offsets)``, offsets relative to each text."""
    nd = doc_offsets.shape[0] - 1
    out = np.empty(data.shape[0] + 2 * nd + 1, dtype=np.int64)
    longest = 0
    for d in range(nd):
        longest = max(longest, doc_offsets[d + 1] - doc_offsets[d])
    tmp = np.empty(longest + 2, dtype=np.int64)
    word_offsets = np.empty(nd + 1, dtype=np.int64)
    k = 0
    for d in range(nd):
        word_offsets[d] = k
        a = doc_offsets[d]
        b = doc_offsets[d + 1]
        first = k
        if b > a:
            k = _rule_into(data, a, b, rule, table, wbt, cap, tmp, out, k)
        out[k] = b
        k += 1
        for j in range(first, k):
            out[j] -= a
    word_offsets[nd] = k
    return out[:k].copy(), word_offsets


@njit(cache=True, nogil=True)
def entropy_starts_batch(
    entropies: np.ndarray, lengths: np.ndarray, threshold: float, monotonic: bool
) -> tuple[np.ndarray, np.ndarray]:
    """BLT entropy patch starts of each row of ``entropies`` ([batch, T], float), row ``b``
    read up to ``lengths[b]`` (≤ T).

    ``entropies[b, i]`` is the entropy of the next-byte prediction made after byte ``i``. A
    patch starts at 0 (when the row is not empty) and at ``p ≥ 1`` where
    ``entropies[b, p-1] > threshold`` (``monotonic`` False) or, for ``p ≥ 2``, where
    ``entropies[b, p-1] - entropies[b, p-2] > threshold`` (``monotonic`` True); the
    arithmetic is in the array's dtype. Returns ``(starts, offsets)``: row ``b``'s starts are
    ``starts[offsets[b]:offsets[b+1]]``. Rows never see each other.
    """
    nb = entropies.shape[0]
    total = 0
    for b in range(nb):
        total += lengths[b]
    out = np.empty(total, dtype=np.int64)
    offsets = np.empty(nb + 1, dtype=np.int64)
    t = threshold
    k = 0
    for b in range(nb):
        offsets[b] = k
        n = lengths[b]
        if n == 0:
            continue
        out[k] = 0
        k += 1
        for p in range(1, n):
            if monotonic:
                hit = p >= 2 and entropies[b, p - 1] - entropies[b, p - 2] > t
            else:
                hit = entropies[b, p - 1] > t
            if hit:
                out[k] = p
                k += 1
    offsets[nb] = k
    return out[:k].copy(), offsets
