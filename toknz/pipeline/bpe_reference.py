"""The BPE merge in plain Python: the reference the Numba merge kernel is tested against.

One loop for every merge rule: while some pair of neighbours merges, merge the pair of
lowest rank, the leftmost one among equal ranks. What a pair's rank is, and what it
merges into, is the caller's ``pair`` function:

- ``tokenizers``' merge list: the pair's index in the list (:func:`table_pair` over ids,
  :func:`listed_pair` over spellings);
- tiktoken's ranks: the rank of the concatenated token (:func:`concat_pair`; symbols are
  byte strings or spellings, ``a + b`` is looked up in the vocabulary).

``below`` keeps only merges of rank below it (deriving a merge list from ranks: a token
split by the merges below its own rank). The kernel of ``toknz_core/encode.py`` does the
same with a hash table; ``BPE._merge_python`` (the start-up path before the kernels
load), the merge-list analysis and the tests all call this function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

S = TypeVar("S")


def bpe_merge(
    symbols: Sequence[S],
    pair: Callable[[S, S], tuple[int, S] | None],
    below: int | None = None,
) -> list[S]:
    """Merge ``symbols`` with BPE: the lowest-ranked pair first, the leftmost among ties.

    ``pair(a, b)`` is ``(rank, merged)`` for neighbours that merge, None otherwise;
    with ``below``, only merges of rank ``< below`` are made. Returns the merged symbols
    (a new list; ``symbols`` is not changed). Quadratic: for tests and short pieces.

    >>> table = {(1, 2): (0, 5), (5, 3): (1, 6), (2, 3): (0, 7)}
    >>> bpe_merge([1, 2, 3], lambda a, b: table.get((a, b)))  # tie at rank 0: left first
    [6]
    >>> bpe_merge([1, 2, 3], lambda a, b: table.get((a, b)), below=1)
    [5, 3]
    >>> vocab = {"a": 0, "b": 1, "ab": 3, "aba": 2}
    >>> def concat(a, b):
    ...     r = vocab.get(a + b)
    ...     return None if r is None else (r, a + b)
    >>> bpe_merge(list("abab"), concat)
    ['aba', 'b']
    """
    word = list(symbols)
    while len(word) > 1:
        best: tuple[int, S] | None = None
        at = -1
        for i in range(len(word) - 1):
            hit = pair(word[i], word[i + 1])
            if hit is None or (below is not None and hit[0] >= below):
                continue
            if best is None or hit[0] < best[0]:
                best, at = hit, i
        if best is None:
            break
        word[at : at + 2] = [best[1]]
    return word


def table_pair(
    table: dict[tuple[S, S], tuple[int, S]],
) -> Callable[[S, S], tuple[int, S] | None]:
    """The ``pair`` function of a table ``{(a, b): (rank, merged)}`` (merge-list rule).

    >>> bpe_merge([0, 1, 0, 1], table_pair({(0, 1): (0, 2), (2, 2): (1, 3)}))
    [3]
    """

    def pair(a: S, b: S) -> tuple[int, S] | None:
        return table.get((a, b))

    return pair


def listed_pair(ranks: dict[tuple[S, S], int]) -> Callable[[S, S], tuple[int, S] | None]:
    """The ``pair`` function of a merge list over spellings: ``(a, b)`` merges into
    ``a + b`` at its rank in ``ranks`` (``{(a, b): index in the list}``).

    >>> bpe_merge(list("abab"), listed_pair({("a", "b"): 0, ("ab", "ab"): 1}))
    ['abab']
    """

    def pair(a: S, b: S) -> tuple[int, S] | None:
        r = ranks.get((a, b))
        return None if r is None else (r, a + b)  # type: ignore[operator]

    return pair


def concat_pair(ranks: dict[S, int]) -> Callable[[S, S], tuple[int, S] | None]:
    """The ``pair`` function of tiktoken's rule: ``a + b`` merges at its rank in ``ranks``
    (symbols are byte strings or spellings).

    >>> ranks = {b"a": 0, b"b": 1, b"ab": 2, b"bb": 3, b"abb": 4}
    >>> [ranks[t] for t in bpe_merge([b"a", b"b", b"b"], concat_pair(ranks))]
    [4]
    """

    def pair(a: S, b: S) -> tuple[int, S] | None:
        merged = a + b  # type: ignore[operator]
        r = ranks.get(merged)
        return None if r is None else (r, merged)

    return pair


__all__ = ["bpe_merge", "concat_pair", "listed_pair", "table_pair"]
