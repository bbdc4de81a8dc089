"""Compiled pre-tokenizers: ``regex.findall`` for the GPT split patterns, without ``regex``.

:func:`compiled_splitter` gives, for a supported split pattern, a function
``str -> list[str]`` that returns exactly what ``regex.findall(pattern, text)``
returns; :func:`split_bytes` and :func:`split_bytes_batch` give byte offsets
for callers that work on UTF-8 bytes (the training word counter). The
patterns are recognized by their regex string (not by name), so a tokenizer
file whose pattern is spelled differently falls back to ``regex``.

Supported: ``PATTERNS["gpt2"]``, ``["r50k"]`` (= p50k), ``["cl100k"]``,
``["o200k"]``, ``["llama3"]`` and ``["qwen"]``. The scanners are in
:mod:`toknz_core.pretok`, the character classes in :mod:`toknz.pipeline.unicode_tables`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from toknz_core import pretok
from toknz_core.unicode_classes import utf8_error_offset

from toknz.errors import InputError
from toknz.pipeline.pretokenize import PATTERNS
from toknz.pipeline.regex_dialect import python_to_onig
from toknz.pipeline.unicode_tables import load_table

_KINDS = {
    "gpt2": pretok.R50K,
    "r50k": pretok.R50K,
    "cl100k": pretok.CL100K,
    "o200k": pretok.O200K,
    "llama3": pretok.LLAMA3,
    "qwen": pretok.QWEN,
}
#: Regex string -> scanner kind (:mod:`toknz_core.pretok`): each pattern as Python spells it
#: and as toknz writes it to ``tokenizer.json`` (Oniguruma, where the two differ).
SUPPORTED: dict[str, int] = {
    **{python_to_onig(PATTERNS[name]): kind for name, kind in _KINDS.items()},
    **{PATTERNS[name]: kind for name, kind in _KINDS.items()},
}

# Separators tried, in order, for the join-and-split conversion to str: ASCII
# controls that real text rarely holds. Text holding all of them is sliced.
_SEPARATORS = tuple(
    (bytes([c]), chr(c), np.uint8(c)) for c in (*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F)
)


def kind_of(pattern: str) -> int | None:
    """The scanner kind of a split regex, or None when it has no compiled scanner."""
    return SUPPORTED.get(pattern)


def _as_u8(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    # Always a read-only C-contiguous uint8 array, so Numba compiles one signature.
    if isinstance(data, np.ndarray):
        arr = np.ascontiguousarray(data, dtype=np.uint8).view()
        arr.flags.writeable = False
        return arr
    return np.frombuffer(data, dtype=np.uint8)


def _ends_to_str(text: str, raw: bytes, data: np.ndarray, ends: np.ndarray) -> list[str]:
    if ends.shape[0] == 1:
        return [text]
    # One C-level split of the re-joined text beats decoding piece by piece (2.5-6x).
    for sep_byte, sep, sep_u8 in _SEPARATORS:
        if sep_byte not in raw:  # memchr over the bytes: faster than searching the str
            joined = pretok.join_with_separator(data, ends, sep_u8)
            return str(joined.data, "utf-8", "surrogatepass").split(sep)
    pieces = []
    start = 0
    for end in ends.tolist():
        pieces.append(raw[start:end].decode("utf-8", "surrogatepass"))
        start = end
    return pieces


def compiled_splitter(pattern: str) -> Callable[[str], list[str]] | None:
    """A compiled ``regex.findall(pattern, text)`` for a supported pattern, else None.

    The returned function takes a ``str`` (any, lone surrogates included) and
    returns its pieces in order; they concatenate to the text. The first call
    compiles (or loads from Numba's cache) the scanner and loads the class table.
    """
    kind = kind_of(pattern)
    if kind is None:
        return None
    table = load_table()

    def split(text: str) -> list[str]:
        if not text:
            return []
        raw = text.encode("utf-8", "surrogatepass")
        data = np.frombuffer(raw, dtype=np.uint8)
        ends = pretok.split(kind, data, table)
        return _ends_to_str(text, raw, data, ends)

    split.__doc__ = f"``regex.findall({pattern!r}, text)``, compiled."
    return split


def _kind_or_error(pattern: str) -> int:
    kind = kind_of(pattern)
    if kind is None:
        raise ValueError(
            "no compiled scanner for this split pattern; supported: the gpt2, r50k, p50k, "
            "cl100k, o200k, llama3 and qwen regexes of toknz.pipeline.pretokenize.PATTERNS"
        )
    return kind


def _check_utf8(arr: np.ndarray) -> None:
    bad = int(utf8_error_offset(arr))
    if bad >= 0:
        raise InputError(
            f"invalid UTF-8 at byte offset {bad}; decode the input with errors='replace' "
            "or pass validate=False to split it anyway"
        )


def split_bytes(
    pattern: str, data: bytes | bytearray | memoryview | np.ndarray, *, validate: bool = True
) -> tuple[bytes, np.ndarray]:
    """Split UTF-8 ``data`` as ``regex.findall(pattern, data.decode())`` would, in bytes.

    Returns ``(data, offsets)``: ``data`` as ``bytes`` and ``offsets``, an
    ``int64`` array of ``n_pieces + 1`` byte offsets starting at 0 and ending
    at ``len(data)``; piece ``i`` is ``data[offsets[i]:offsets[i + 1]]``.
    Raises ``ValueError`` for an unsupported pattern and :class:`InputError`
    (with the byte offset) for invalid UTF-8 unless ``validate=False``.
    """
    kind = _kind_or_error(pattern)
    raw = data if isinstance(data, bytes) else bytes(data)
    arr = _as_u8(raw)
    if validate:
        _check_utf8(arr)
    ends = pretok.split(kind, arr, load_table())
    offsets = np.empty(ends.shape[0] + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = ends
    return raw, offsets


def split_bytes_batch(
    pattern: str,
    data: bytes | bytearray | memoryview | np.ndarray,
    doc_offsets: np.ndarray,
    *,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Split many UTF-8 documents stored back to back (CSR layout).

    Document ``d`` is ``data[doc_offsets[d]:doc_offsets[d + 1]]``; each is split
    on its own. Returns ``(ends, piece_offsets)``: the ``int64`` end byte
    offsets (into ``data``) of every piece, documents in order, and the
    ``n_docs + 1`` offsets of each document's pieces in ``ends``. A piece
    starts where the previous one ends, or at its document's start.
    """
    kind = _kind_or_error(pattern)
    arr = _as_u8(data)
    offs = np.ascontiguousarray(doc_offsets, dtype=np.int64).view()
    offs.flags.writeable = False
    if offs.ndim != 1 or offs.shape[0] < 1:
        raise ValueError("doc_offsets must be a 1-D array of n_docs + 1 offsets")
    if offs[0] < 0 or offs[-1] > arr.shape[0] or np.any(np.diff(offs) < 0):
        raise ValueError("doc_offsets must be non-decreasing and within the data")
    if validate:
        lo, hi = int(offs[0]), int(offs[-1])
        _check_utf8(arr[lo:hi])
        inner = offs[1:-1]
        inner = inner[inner < hi]
        cut = inner[(arr[inner] & 0xC0) == 0x80]
        if cut.shape[0]:
            raise InputError(
                f"a document boundary at byte offset {int(cut[0])} splits a UTF-8 character"
            )
    return pretok.split_batch(kind, arr, offs, load_table())
