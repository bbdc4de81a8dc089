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

#: Words longer than this many bytes are cut into pieces of at most this size.
MAX_WORD_BYTES = 1024

# Set in each worker process (and in-process for one thread).
_SPLITTER: Split | None = None
_NORMALIZER: Normalizer | None = None
_MAX_WORD = MAX_WORD_BYTES


def _init_worker(
    splitter: Split, normalizer: Normalizer | None, max_word_bytes: int = MAX_WORD_BYTES
) -> None:
    global _SPLITTER, _NORMALIZER, _MAX_WORD
    _SPLITTER = splitter
    _NORMALIZER = normalizer
    _MAX_WORD = max_word_bytes


def cut_word(word: bytes, limit: int) -> list[bytes]:
    """Cut ``word`` into pieces of at most ``limit`` bytes, at UTF-8 character boundaries.

    A character longer than the limit (``limit`` < 4) stays whole.
    """
    pieces: list[bytes] = []
    start = 0
    n = len(word)
    while n - start > limit:
        end = start + limit
        while end > start and (word[end] & 0xC0) == 0x80:
            end -= 1
        if end == start:
            end = start + limit
            while end < n and (word[end] & 0xC0) == 0x80:
                end += 1
        pieces.append(word[start:end])
        start = end
    pieces.append(word[start:])
    return pieces


def count_chunk(text: str) -> tuple[Counter[bytes], int, int]:
    """Words of one chunk as UTF-8 bytes with their counts, the chunk's size in bytes, and words cut."""
    assert _SPLITTER is not None
    size = len(text.encode("utf-8"))
    if _NORMALIZER is not None:
        text = _NORMALIZER.normalize(text)
    words = _SPLITTER.split([text])
    counts = Counter(w.encode("utf-8") for w in words)
    cut = 0
    long_words = [w for w in counts if len(w) > _MAX_WORD]
    for w in long_words:
        n = counts.pop(w)
        cut += n
        for piece in cut_word(w, _MAX_WORD):
            counts[piece] += n
    return counts, size, cut


def count_words(
    chunks: Iterable[str],
    splitter: Split,
    *,
    normalizer: Normalizer | None = None,
    threads: int | None = None,
    max_word_bytes: int = MAX_WORD_BYTES,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[Counter[bytes], int]:
    """Count the words ``splitter`` makes of every chunk (after ``normalizer``).

    Words longer than ``max_word_bytes`` (long runs with no split point: DNA,
    minified code, base64) are cut into pieces of at most that many bytes, so
    that neither memory nor the merge loop blows up on them; the number of
    words cut is returned beside the counts. ``threads`` worker processes
    (default: all cores) count chunks in parallel; the result does not depend
    on the number of threads. ``on_bytes(n)`` is called with the size of each
    chunk counted.
    """
    threads = threads or os.cpu_count() or 1
    total: Counter[bytes] = Counter()
    words_cut = 0

    def add(result: tuple[Counter[bytes], int, int]) -> None:
        nonlocal words_cut
        counts, size, cut = result
        total.update(counts)
        words_cut += cut
        if on_bytes:
            on_bytes(size)

    if threads <= 1:
        _init_worker(splitter, normalizer, max_word_bytes)
        for chunk in chunks:
            add(count_chunk(chunk))
        return total, words_cut
    with ProcessPoolExecutor(
        max_workers=threads,
        mp_context=get_context("fork") if hasattr(os, "fork") else None,
        initializer=_init_worker,
        initargs=(splitter, normalizer, max_word_bytes),
    ) as pool:
        pending: list[Future[tuple[Counter[bytes], int, int]]] = []
        window = 2 * threads
        for chunk in chunks:
            pending.append(pool.submit(count_chunk, chunk))
            if len(pending) >= window:
                add(pending.pop(0).result())
        for fut in pending:
            add(fut.result())
    return total, words_cut
