"""Count distinct pre-tokenized words over a stream of text chunks, on several processes.

Memory grows with the number of distinct words, not with the corpus: chunks
are handed to worker processes a few at a time and each returns the counts
of its chunk, which are added into one table.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context

from toknz.normalizers import Normalizer
from toknz.pretokenize import Split

# Set in each worker process (and in-process for one thread).
_SPLITTER: Split | None = None
_NORMALIZER: Normalizer | None = None


def _init_worker(splitter: Split, normalizer: Normalizer | None) -> None:
    global _SPLITTER, _NORMALIZER
    _SPLITTER = splitter
    _NORMALIZER = normalizer


def count_chunk(text: str) -> tuple[Counter[bytes], int]:
    """Words of one chunk as UTF-8 bytes with their counts, and the chunk's size in bytes."""
    assert _SPLITTER is not None
    size = len(text.encode("utf-8"))
    if _NORMALIZER is not None:
        text = _NORMALIZER.normalize(text)
    words = _SPLITTER.split([text])
    return Counter(w.encode("utf-8") for w in words), size


def count_words(
    chunks: Iterable[str],
    splitter: Split,
    *,
    normalizer: Normalizer | None = None,
    threads: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Counter[bytes]:
    """Count the words ``splitter`` makes of every chunk (after ``normalizer``).

    ``threads`` worker processes (default: all cores) count chunks in
    parallel; the result does not depend on the number of threads.
    ``on_bytes(n)`` is called with the size of each chunk counted.
    """
    threads = threads or os.cpu_count() or 1
    total: Counter[bytes] = Counter()
    if threads <= 1:
        _init_worker(splitter, normalizer)
        for chunk in chunks:
            counts, size = count_chunk(chunk)
            total.update(counts)
            if on_bytes:
                on_bytes(size)
        return total
    with ProcessPoolExecutor(
        max_workers=threads,
        mp_context=get_context("fork") if hasattr(os, "fork") else None,
        initializer=_init_worker,
        initargs=(splitter, normalizer),
    ) as pool:
        pending: list[Future[tuple[Counter[bytes], int]]] = []
        window = 2 * threads
        for chunk in chunks:
            pending.append(pool.submit(count_chunk, chunk))
            if len(pending) >= window:
                counts, size = pending.pop(0).result()
                total.update(counts)
                if on_bytes:
                    on_bytes(size)
        for fut in pending:
            counts, size = fut.result()
            total.update(counts)
            if on_bytes:
                on_bytes(size)
    return total
