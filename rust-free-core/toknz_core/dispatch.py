"""Calling a compiled kernel without Numba's per-call dispatch.

Every call of a Numba dispatcher types its arguments and looks up the matching
compiled overload before running it; for a kernel that does a microsecond of work
(one short text) that is a fifth of the call. :func:`direct_entry` returns the
compiled overload's own entry point for fixed argument types, which unboxes the
arguments and runs the machine code with no lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def direct_entry(kernel: Any, *example_args: Any) -> Callable[..., Any]:
    """The compiled entry point of ``kernel`` for the types of ``example_args``.

    Compiles the overload (or loads it from Numba's cache) if needed; nothing is run.
    Every later call must pass arguments of exactly those types (the entry point does
    not check them against other overloads). Returns ``kernel`` itself when it is not a
    Numba dispatcher (e.g. under ``NUMBA_DISABLE_JIT``), so the result is always callable
    the same way.

    >>> import numpy as np
    >>> from numba import njit
    >>> @njit
    ... def total(x):
    ...     return x.sum()
    >>> fast = direct_entry(total, np.zeros(3))
    >>> float(fast(np.arange(4.0)))
    6.0
    """
    compile_for = getattr(kernel, "compile", None)
    if compile_for is None:
        return kernel  # type: ignore[no-any-return]
    from numba import typeof

    return compile_for(tuple(typeof(a) for a in example_args))  # type: ignore[no-any-return]
