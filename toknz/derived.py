"""Derived state: what an object computes from its inputs, built once, never pickled.

A class that keeps tables or caches computed from its inputs (:class:`toknz.pipeline.bpe.BPE`,
:class:`toknz.tokenizer.Tokenizer`) declares each of them as a
:func:`functools.cached_property`: built on first use, in that one place, and kept in
the instance afterwards. Deriving from :class:`DerivedState` then pickles the inputs
only: every cached value is left out, whatever the class adds later, and the
unpickled object rebuilds what it uses. Computing a value is thread-safe as far as
:func:`functools.cached_property` is (two threads may both build a value before one
is kept; each gets a correct one).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any


def is_derived(cls: type, name: str) -> bool:
    """True when attribute ``name`` of ``cls`` is a :func:`functools.cached_property`.

    >>> class Box:
    ...     @cached_property
    ...     def doubled(self) -> int:
    ...         return 2
    >>> is_derived(Box, "doubled"), is_derived(Box, "other")
    (True, False)
    """
    return isinstance(getattr(cls, name, None), cached_property)


class DerivedState:
    """Mixin: pickle an object without the values of its cached properties.

    >>> import copy
    >>> class Squares(DerivedState):
    ...     def __init__(self, n: int) -> None:
    ...         self.n = n
    ...     @cached_property
    ...     def table(self) -> list[int]:
    ...         return [i * i for i in range(self.n)]
    >>> s = Squares(4)
    >>> s.table
    [0, 1, 4, 9]
    >>> s.__getstate__()
    {'n': 4}
    >>> copy.copy(s).__dict__  # copy and pickle use the same state
    {'n': 4}
    """

    def __getstate__(self) -> dict[str, Any]:
        cls = type(self)
        return {k: v for k, v in self.__dict__.items() if not is_derived(cls, k)}
