"""The vocabulary as a byte trie: token byte strings sorted, so every trie node is a range.

Tokens are sorted by their bytes; the tokens that start with a byte string
``p`` form one contiguous range of that order, found by binary search, and a
range narrows by one byte in O(log V). Within a range whose tokens share ``d``
bytes, the tokens exactly ``d`` bytes long come first.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import numpy as np


class TokenTrie:
    """Sorted token bytes of a vocabulary subset.

    ``token_bytes[i]`` are the bytes of token id ``i``; only ``ids`` (tokens
    with non-empty bytes) enter the trie. Positions (0..size-1) index the
    sorted order; :attr:`ids` maps a position to its token id.
    """

    def __init__(self, token_bytes: Sequence[bytes], ids: Sequence[int]) -> None:
        keep = [int(i) for i in ids if token_bytes[int(i)]]
        keep.sort(key=lambda i: (token_bytes[i], i))
        self.ids = np.array(keep, dtype=np.int64)
        self.keys: list[bytes] = [token_bytes[i] for i in keep]
        self.lengths = np.array([len(k) for k in self.keys], dtype=np.int64)
        self.offsets = np.zeros(len(keep) + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])
        self.data = np.frombuffer(b"".join(self.keys), dtype=np.uint8)
        # A short head of each token that decides pre-token boundaries before it: its
        # first two characters, or a leading run of white space and one character more.
        heads: dict[bytes, int] = {}
        self.first_char_ids = np.array(
            [heads.setdefault(_head(k), len(heads)) for k in self.keys], dtype=np.int64
        )
        self.first_chars: list[bytes] = list(heads)

    @property
    def size(self) -> int:
        return len(self.keys)

    def narrow(self, lo: int, hi: int, prefix: bytes) -> tuple[int, int]:
        """The sub-range of ``[lo, hi)`` whose tokens start with ``prefix``.

        Every token in ``[lo, hi)`` must already start with ``prefix[:-1]``.
        """
        if not prefix:
            return lo, hi
        lo2 = bisect_left(self.keys, prefix, lo, hi)
        last = prefix[-1]
        if last == 255:
            return lo2, hi
        hi2 = bisect_left(self.keys, prefix[:-1] + bytes((last + 1,)), lo2, hi)
        return lo2, hi2

    def exact_end(self, lo: int, hi: int, depth: int) -> int:
        """End of the leading run of ``[lo, hi)`` whose tokens are exactly ``depth`` bytes long."""
        k = lo
        while k < hi and self.lengths[k] == depth:
            k += 1
        return k

    def next_bytes(self, lo: int, hi: int, depth: int) -> np.ndarray:
        """Byte ``depth`` of each token in ``[lo, hi)`` (int64), -1 for tokens that end before it."""
        lengths = self.lengths[lo:hi]
        out = np.full(hi - lo, -1, dtype=np.int64)
        longer = lengths > depth
        out[longer] = self.data[self.offsets[lo:hi][longer] + depth]
        return out


def _first_char(data: bytes) -> bytes:
    """The bytes of the first UTF-8 character of ``data`` (one byte if it is not valid UTF-8)."""
    for width in (1, 2, 3, 4):
        try:
            data[:width].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return data[:width]
    return data[:1]


def _head(data: bytes) -> bytes:
    """The first two characters of ``data``, or its leading white space and one more character."""
    out = b""
    rest = data
    chars = 0
    while rest:
        c = _first_char(rest)
        out += c
        rest = rest[len(c) :]
        chars += 1
        if chars >= 2 and not c.isspace():
            break
    return out
