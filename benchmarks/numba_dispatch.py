"""What a Numba call costs by the shape of its arguments: separate arrays against one bundle.

    python benchmarks/numba_dispatch.py

A kernel of toknz_core either takes its arrays one by one or as one ``typing.NamedTuple``
bundle (the trainer's and the replay's step helpers do, docs/architecture.md). From Python,
the dispatcher types every argument on every call; this prints the cost per call, best of
three rounds of 200,000 calls, of a do-nothing kernel taking 13 arguments (11 tables as
the per-document encoder takes them) against the same 11 tables as one bundle, and against
three arguments (the short-text kernel's packed blob). Inside compiled code, bundles are free.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from numba import njit


class Tables(NamedTuple):
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    flag: bool
    f: np.ndarray
    g: np.ndarray
    h: np.ndarray
    i: np.ndarray
    j: np.ndarray
    k: np.ndarray


@njit
def separate(x, a, b, c, d, flag, f, g, h, i, j, k, cache):  # noqa: ANN001, ANN201
    return x.shape[0] + a.shape[0]


@njit
def bundled(x, tables, cache):  # noqa: ANN001, ANN201
    return x.shape[0] + tables.a.shape[0]


@njit
def three(x, blob, cache):  # noqa: ANN001, ANN201
    return x.shape[0] + blob.shape[0]


def per_call_us(fn, args: tuple, n: int = 200_000) -> float:  # noqa: ANN001
    """Best of three rounds of ``n`` calls, in microseconds per call."""
    fn(*args)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn(*args)
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def main() -> None:
    arrays = [np.zeros(10, dtype=np.int32) for _ in range(10)]
    x = np.zeros(5, dtype=np.uint8)
    cache = np.zeros(4, dtype=np.int64)
    tables = Tables(*arrays[:4], True, *arrays[4:])
    print(f"13 separate arguments: {per_call_us(separate, (x, *tables, cache)):.2f} us per call")
    print(f"3 arguments, one a bundle of 11: {per_call_us(bundled, (x, tables, cache)):.2f} us")
    print(f"3 array arguments: {per_call_us(three, (x, arrays[0], cache)):.2f} us")


if __name__ == "__main__":
    main()
