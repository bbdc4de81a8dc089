"""Compiled pre-tokenizers: the GPT split regexes as Numba scanners over UTF-8 bytes.

Each scanner reproduces, match for match, what ``regex.findall`` returns for
one split pattern of ``toknz.pipeline.pretokenize.PATTERNS``:

- ``R50K``: r50k/p50k (tiktoken's spelling of GPT-2's pattern) and the original
  GPT-2 pattern, whose matches are the same;
- ``CL100K``: cl100k (possessive quantifiers, ``\\s++$``, ``\\p{N}{1,3}+``);
- ``O200K``: o200k (upper/lower-ish letter classes with backtracking);
- ``LLAMA3`` and ``QWEN``: Llama 3 and Qwen 2 (as cl100k, without ``\\s++$``,
  with ``\\s*[\\r\\n]+``; Qwen splits digits one by one).

These patterns match every character of any text, and their matches are never
empty, so the matches tile the input and a split is fully described by the
pieces' end offsets. Every scanner returns an ``int64`` array of piece **end
byte offsets**, increasing; the first piece starts at 0 (or the document's
start) and the last end is the input's length. An empty input gives an empty
array.

Inputs: ``data`` is a C-contiguous ``uint8`` array of valid UTF-8 (surrogates
as 3-byte sequences are accepted: that is what ``str.encode("utf-8",
"surrogatepass")`` gives); code points are decoded inline. Invalid UTF-8 gives
some split but never reads out of bounds (validate with
:func:`toknz_core.unicode_classes.utf8_error_offset` first). ``table`` is the
``uint16`` class table of :mod:`toknz_core.unicode_classes`. Pass arrays of one
kind (the Python layer passes read-only views) so that Numba compiles once.

How each regex alternative is decided (``c`` the character at the position,
``X = [^\\r\\n\\p{L}\\p{N}]``, ``P = [^\\s\\p{L}\\p{N}]``):

- a whitespace run ``[i, r)`` gives, in pattern order: the whole run if it
  reaches the end (``\\s++$``; ``\\s+(?!\\S)`` at the end); up to and including
  its last CR/LF (``\\s*[\\r\\n]``: ``\\s*`` gives characters back until one of
  CR/LF follows); the run minus its last character if it has two or more
  (``\\s+(?!\\S)``); else the one character;
- o200k's ``X?U*W+C?`` (``U``: Lu Lt Lm Lo M, ``W``: Ll Lm Lo M): ``X?`` first
  takes ``c`` when it is in ``X``; ``U*`` takes the longest U-run and gives back
  until a W character follows, i.e. the W character after the run or else the
  last Lm/Lo/M inside it; if no choice works and ``c`` is a mark (in ``X``
  *and* in ``U``), ``X?`` gives ``c`` back and ``U*`` starts at ``c``. Then
  ``X?U+W*C?`` the same way;
- contractions compare the table's fold letter (simple case folding as in
  ``regex``: ``'S``, U+017F LONG S and ``s`` all match ``'s``).

Speed: the helpers are ``forceinline`` (inlined by LLVM, compiled once each)
and every kernel takes :func:`~toknz_core.memory.borrowed` views of its
arrays first, so that passing arrays to helpers costs no reference counting;
the output array is grown outside the scanning loop. Together these take the
scanners from ~50 to ~300 MB/s on English text.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from toknz_core.memory import borrowed
from toknz_core.unicode_classes import decode

#: Pattern kinds accepted by :func:`split` and :func:`split_batch`.
R50K = 0
CL100K = 1
O200K = 2
LLAMA3 = 3
QWEN = 4
KINDS = {"r50k": R50K, "cl100k": CL100K, "o200k": O200K, "llama3": LLAMA3, "qwen": QWEN}

# Flag bits (see toknz_core.unicode_classes), as plain ints for Numba.
_L = 1
_N = 2
_WS = 4
_UP = 8
_LO = 16
_LNW = 7  # L | N | WS: a character with none of them is in P
_UPLO = 24
_SH = 8  # fold letter shift
_APOS = 0x27
_CR = 0x0D
_LF = 0x0A
_SP = 0x20


@njit(cache=True, nogil=True, forceinline=True)
def _flags(data: np.ndarray, i: int, stop: int, table: np.ndarray):
    b = data[i]
    if b < 0x80:
        return np.int64(table[b]), i + 1
    cp, j = decode(data, i, stop)
    return np.int64(table[cp]), j


@njit(cache=True, nogil=True, forceinline=True)
def _run(data: np.ndarray, i: int, stop: int, table: np.ndarray, mask: int):
    """End of the run of characters having some flag of ``mask`` that starts at ``i``."""
    while i < stop:
        f, j = _flags(data, i, stop, table)
        if (f & mask) == 0:
            break
        i = j
    return i


@njit(cache=True, nogil=True, forceinline=True)
def _run_other(data: np.ndarray, i: int, stop: int, table: np.ndarray):
    """End of the run of ``[^\\s\\p{L}\\p{N}]`` characters that starts at ``i``."""
    while i < stop:
        f, j = _flags(data, i, stop, table)
        if (f & _LNW) != 0:
            break
        i = j
    return i


@njit(cache=True, nogil=True, forceinline=True)
def _run_crlf(data: np.ndarray, i: int, stop: int, slash: bool):
    """End of the run of CR/LF (and ``/`` if ``slash``) that starts at ``i``."""
    while i < stop:
        b = data[i]
        if b == _CR or b == _LF or (slash and b == 0x2F):
            i += 1
        else:
            break
    return i


@njit(cache=True, nogil=True, forceinline=True)
def _digits(data: np.ndarray, j: int, stop: int, table: np.ndarray, most: int):
    """End of ``\\p{N}{1,most}`` whose first character ends at ``j``."""
    count = 1
    while count < most and j < stop:
        f, k = _flags(data, j, stop, table)
        if (f & _N) == 0:
            break
        j = k
        count += 1
    return j


@njit(cache=True, nogil=True, forceinline=True)
def _contraction_ci(data: np.ndarray, i: int, stop: int, table: np.ndarray):
    """End of ``(?i:'s|'t|'re|'ve|'m|'ll|'d)`` at ``i`` (an apostrophe), or -1."""
    j = i + 1
    if j >= stop:
        return np.int64(-1)
    f, k = _flags(data, j, stop, table)
    c = f >> _SH
    if c == 0x73 or c == 0x74 or c == 0x64 or c == 0x6D:  # s t d m
        return k
    if (c == 0x6C or c == 0x76 or c == 0x72) and k < stop:  # l v r
        f2, k2 = _flags(data, k, stop, table)
        c2 = f2 >> _SH
        if (c == 0x6C and c2 == 0x6C) or (c != 0x6C and c2 == 0x65):
            return k2
    return np.int64(-1)


@njit(cache=True, nogil=True, forceinline=True)
def _contraction_cs(data: np.ndarray, i: int, stop: int):
    """End of ``'(?:[sdmt]|ll|ve|re)`` (case-sensitive) at ``i`` (an apostrophe), or -1."""
    if i + 1 >= stop:
        return np.int64(-1)
    c = data[i + 1]
    if c == 0x73 or c == 0x74 or c == 0x64 or c == 0x6D:
        return i + 2
    if i + 2 < stop:
        c2 = data[i + 2]
        if (c == 0x6C and c2 == 0x6C) or ((c == 0x76 or c == 0x72) and c2 == 0x65):
            return i + 3
    return np.int64(-1)


@njit(cache=True, nogil=True, forceinline=True)
def _space_end(data: np.ndarray, i: int, stop: int, table: np.ndarray, kind: int) -> int:
    """End of the whitespace match at ``i`` (a whitespace character) for pattern ``kind``."""
    r = i
    last = i  # start of the run's last character
    nl = np.int64(-1)  # end of the run's last CR/LF
    while r < stop:
        b = data[r]
        if b < 0x80:
            if (table[b] & _WS) == 0:
                break
            last = r
            r += 1
            if b == _LF or b == _CR:
                nl = r
        else:
            cp, j = decode(data, r, stop)
            if (table[cp] & _WS) == 0:
                break
            last = r
            r = j
    if kind == R50K:
        if r == stop:
            return r
    elif kind == CL100K:
        if r == stop:
            return r
        if nl >= 0:
            return nl
    else:  # O200K, LLAMA3, QWEN: \s*[\r\n]+ before \s+(?!\S)
        if nl >= 0:
            return nl
        if r == stop:
            return r
    if last > i:
        return last
    return r


@njit(cache=True, nogil=True)
def _scan_r50k(data, start, stop, table, out, k):
    data = borrowed(data)
    table = borrowed(table)
    out = borrowed(out)
    cap = out.shape[0]
    i = start
    while i < stop and k < cap:
        cp, j = decode(data, i, stop)
        f = np.int64(table[cp])
        e = np.int64(-1)
        if cp == _APOS:
            e = _contraction_cs(data, i, stop)
        if e < 0:
            if (f & _L) != 0:
                e = _run(data, j, stop, table, _L)
            elif (f & _N) != 0:
                e = _run(data, j, stop, table, _N)
            elif (f & _WS) == 0:
                e = _run_other(data, j, stop, table)
            else:
                if cp == _SP and j < stop:
                    f2, j2 = _flags(data, j, stop, table)
                    if (f2 & _L) != 0:
                        e = _run(data, j2, stop, table, _L)
                    elif (f2 & _N) != 0:
                        e = _run(data, j2, stop, table, _N)
                    elif (f2 & _WS) == 0:
                        e = _run_other(data, j2, stop, table)
                if e < 0:
                    e = _space_end(data, i, stop, table, R50K)
        out[k] = e
        k += 1
        i = e
    return i, k


@njit(cache=True, nogil=True)
def _scan_cl(data, start, stop, table, out, k, kind):
    """cl100k, llama3 and qwen: they differ in digit groups and in whitespace order."""
    data = borrowed(data)
    table = borrowed(table)
    out = borrowed(out)
    cap = out.shape[0]
    most = np.int64(1) if kind == QWEN else np.int64(3)
    i = start
    while i < stop and k < cap:
        cp, j = decode(data, i, stop)
        f = np.int64(table[cp])
        e = np.int64(-1)
        if (f & _L) != 0:
            e = _run(data, j, stop, table, _L)
        elif (f & _N) != 0:
            e = _digits(data, j, stop, table, most)
        elif (f & _WS) == 0:  # P, also in X
            if cp == _APOS:
                e = _contraction_ci(data, i, stop, table)
            if e < 0:
                if j < stop:
                    f2, j2 = _flags(data, j, stop, table)
                    if (f2 & _L) != 0:
                        e = _run(data, j2, stop, table, _L)
                if e < 0:
                    e = _run_crlf(data, _run_other(data, j, stop, table), stop, False)
        else:
            if cp != _CR and cp != _LF and j < stop:
                f2, j2 = _flags(data, j, stop, table)
                if (f2 & _L) != 0:
                    e = _run(data, j2, stop, table, _L)
                elif cp == _SP and (f2 & _LNW) == 0:
                    e = _run_crlf(data, _run_other(data, j2, stop, table), stop, False)
            if e < 0:
                e = _space_end(data, i, stop, table, kind)
        out[k] = e
        k += 1
        i = e
    return i, k


@njit(cache=True, nogil=True, forceinline=True)
def _opt_contraction(data: np.ndarray, e: int, stop: int, table: np.ndarray):
    if e < stop and data[e] == _APOS:
        c = _contraction_ci(data, e, stop, table)
        if c >= 0:
            return c
    return e


@njit(cache=True, nogil=True, forceinline=True)
def _o_upper_lower(data: np.ndarray, p: int, stop: int, table: np.ndarray):
    """End of ``[U]*[W]+C?`` at ``p`` (o200k's first alternative after ``X?``), or -1."""
    s = p
    q = np.int64(-1)  # start of the last character of the U-run that is also in W
    while s < stop:
        f, t = _flags(data, s, stop, table)
        if (f & _UP) == 0:
            if (f & _LO) != 0:  # U* keeps the whole run, W+ starts here
                return _opt_contraction(data, _run(data, t, stop, table, _LO), stop, table)
            break
        if (f & _LO) != 0:
            q = s
        s = t
    if q < 0:
        return np.int64(-1)
    f, t = _flags(data, q, stop, table)
    return _opt_contraction(data, _run(data, t, stop, table, _LO), stop, table)


@njit(cache=True, nogil=True, forceinline=True)
def _o_upper_first(data: np.ndarray, p: int, stop: int, table: np.ndarray):
    """End of ``[U]+[W]*C?`` at ``p`` (o200k's second alternative after ``X?``), or -1."""
    if p >= stop:
        return np.int64(-1)
    f, t = _flags(data, p, stop, table)
    if (f & _UP) == 0:
        return np.int64(-1)
    e = _run(data, t, stop, table, _UP)
    e = _run(data, e, stop, table, _LO)
    return _opt_contraction(data, e, stop, table)


@njit(cache=True, nogil=True)
def _scan_o200k(data, start, stop, table, out, k):
    data = borrowed(data)
    table = borrowed(table)
    out = borrowed(out)
    cap = out.shape[0]
    i = start
    while i < stop and k < cap:
        cp, j = decode(data, i, stop)
        f = np.int64(table[cp])
        e = np.int64(-1)
        if (f & _N) != 0:
            e = _digits(data, j, stop, table, np.int64(3))
        elif cp != _CR and cp != _LF:
            if (f & _L) != 0:
                e = _o_upper_lower(data, i, stop, table)
                if e < 0:
                    e = _o_upper_first(data, i, stop, table)
            else:  # c in X: X? takes it first, gives it back if c is a mark
                mark = (f & _UPLO) != 0
                e = _o_upper_lower(data, j, stop, table)
                if e < 0 and mark:
                    e = _o_upper_lower(data, i, stop, table)
                if e < 0:
                    e = _o_upper_first(data, j, stop, table)
                if e < 0 and mark:
                    e = _o_upper_first(data, i, stop, table)
                if e < 0:
                    if (f & _WS) == 0:
                        e = _run_crlf(data, _run_other(data, j, stop, table), stop, True)
                    elif cp == _SP and j < stop:
                        f2, j2 = _flags(data, j, stop, table)
                        if (f2 & _LNW) == 0:
                            e = _run_crlf(data, _run_other(data, j2, stop, table), stop, True)
        if e < 0:
            e = _space_end(data, i, stop, table, O200K)
        out[k] = e
        k += 1
        i = e
    return i, k


@njit(cache=True, nogil=True)
def _grow(out: np.ndarray) -> np.ndarray:
    bigger = np.empty(max(2 * out.shape[0], 16), dtype=np.int64)
    bigger[: out.shape[0]] = out
    return bigger


@njit(cache=True, nogil=True)
def _scan(kind, data, i, stop, table, out, k):
    if kind == R50K:
        return _scan_r50k(data, i, stop, table, out, k)
    if kind == O200K:
        return _scan_o200k(data, i, stop, table, out, k)
    return _scan_cl(data, i, stop, table, out, k, kind)


@njit(cache=True, nogil=True)
def split_into(
    kind: int,
    data: np.ndarray,
    start: int,
    stop: int,
    table: np.ndarray,
    out: np.ndarray,
    k: int,
):
    """Split ``data[start:stop]`` (one document) and append the piece ends to ``out[k:]``.

    Returns ``(out, k)``: ``out`` is the same array or a larger copy when it was
    full; ``k`` the new count. Ends are offsets into ``data`` (not relative to
    ``start``). An unknown ``kind`` appends nothing.
    """
    if kind != R50K and kind != CL100K and kind != O200K and kind != LLAMA3 and kind != QWEN:
        return out, k
    i = start
    while True:
        i, k = _scan(kind, data, i, stop, table, out, k)
        if i >= stop:
            return out, k
        out = _grow(out)


@njit(cache=True, nogil=True)
def split(kind: int, data: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piece end byte offsets (``int64``) of one document for pattern ``kind``."""
    n = np.int64(data.shape[0])
    out = np.empty(n // 3 + 16, dtype=np.int64)
    out, k = split_into(kind, data, np.int64(0), n, table, out, np.int64(0))
    return out[:k]


@njit(cache=True, nogil=True)
def split_batch(kind: int, data: np.ndarray, doc_offsets: np.ndarray, table: np.ndarray):
    """Split many documents in CSR layout.

    ``data`` holds the documents back to back; document ``d`` is
    ``data[doc_offsets[d]:doc_offsets[d + 1]]`` (``doc_offsets``: ``int64``,
    non-decreasing, ``n_docs + 1`` entries). Each document is split on its own
    (``$`` is its end). Returns ``(ends, piece_offsets)``: the piece end offsets
    into ``data`` of all documents in order, and the ``n_docs + 1`` offsets of
    each document's pieces in ``ends``.
    """
    n_docs = doc_offsets.shape[0] - 1
    piece_offsets = np.empty(max(n_docs, 0) + 1, dtype=np.int64)
    piece_offsets[0] = 0
    total = doc_offsets[n_docs] - doc_offsets[0] if n_docs > 0 else np.int64(0)
    out = np.empty(total // 3 + 16, dtype=np.int64)
    k = np.int64(0)
    for d in range(n_docs):
        out, k = split_into(kind, data, doc_offsets[d], doc_offsets[d + 1], table, out, k)
        piece_offsets[d + 1] = k
    return out[:k], piece_offsets


def split_r50k(data: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piece ends of r50k/p50k and GPT-2 (same matches)."""
    return split(R50K, data, table)


def split_gpt2(data: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piece ends of the original GPT-2 pattern (same as r50k)."""
    return split(R50K, data, table)


def split_cl100k(data: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piece ends of cl100k."""
    return split(CL100K, data, table)


def split_o200k(data: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piece ends of o200k."""
    return split(O200K, data, table)


def split_llama3(data: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piece ends of Llama 3."""
    return split(LLAMA3, data, table)


def split_qwen(data: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Piece ends of Qwen 2."""
    return split(QWEN, data, table)


@njit(cache=True, nogil=True)
def join_with_separator(data: np.ndarray, ends: np.ndarray, sep: np.uint8) -> np.ndarray:
    """The bytes of ``data`` with the byte ``sep`` inserted at every inner piece end.

    Decoding the result and splitting it on ``sep`` gives the pieces as ``str``
    in one C call (when ``sep`` does not occur in ``data``).
    """
    n = data.shape[0]
    m = ends.shape[0]
    result = np.empty(n + max(m - 1, 0), dtype=np.uint8)
    src = borrowed(data)
    pos = borrowed(ends)
    out = borrowed(result)
    o = 0
    s = 0
    for p in range(m):
        e = pos[p]
        if p > 0:
            out[o] = sep
            o += 1
        for t in range(s, e):
            out[o] = src[t]
            o += 1
        s = e
    return result
