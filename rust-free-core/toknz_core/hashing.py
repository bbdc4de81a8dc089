"""The hash functions every kernel's open-addressing table uses, in one place.

- :func:`mix64`: the splitmix64 / murmur3 finalizer over a 64-bit key (a token pair
  packed as ``left << 32 | right``, or a running hash of a sequence): every key bit
  reaches every low bit, so ``mix64(key) & (size - 1)`` spreads well in a
  power-of-two table.
- :func:`fnv1a`: FNV-1a over a byte range: the hash of every byte-string table.
- :func:`fibonacci_slot`: Fibonacci (multiplicative) hashing of a 64-bit key folded to a
  power-of-two table's mask: the merge kernels' pair tables.

All are ``inline="always"``: they compile into their callers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True, inline="always")
def mix64(key: np.int64) -> np.uint64:
    """The splitmix64 finalizer of ``key``.

    >>> import numpy as np
    >>> int(mix64(np.int64(0))), mix64(np.int64(1)) != mix64(np.int64(2))
    (0, True)
    """
    h = np.uint64(key)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(cache=True, nogil=True, inline="always")
def fnv1a(data: np.ndarray, start: int, end: int) -> np.uint64:
    """FNV-1a hash of ``data[start:end]`` (uint8).

    >>> import numpy as np
    >>> hex(fnv1a(np.frombuffer(b"a", dtype=np.uint8), 0, 1))
    '0xaf63dc4c8601ec8c'
    """
    h = _FNV_OFFSET
    for i in range(start, end):
        h ^= np.uint64(data[i])
        h *= _FNV_PRIME
    return h


@njit(cache=True, nogil=True, inline="always")
def fibonacci_slot(key: np.int64, mask: np.int64) -> np.int64:
    """Slot of ``key`` in a table of ``mask + 1`` (a power of two) slots.

    >>> import numpy as np
    >>> 0 <= int(fibonacci_slot(np.int64(12345), np.int64(15))) < 16
    True
    """
    h = np.uint64(key) * _GOLDEN
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))
