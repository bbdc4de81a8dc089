"""Count distinct pre-tokenized words over a stream of text chunks, on several processes.

Each chunk is split into words and counted into a :class:`WordTable` (flat
arrays: the bytes of the distinct words, their offsets and counts, see
:mod:`toknz_core.wordcount`). Worker processes return their chunk's table
and the parent adds it into one; memory grows with the number of distinct
words, not with the corpus.

For the GPT split patterns the split is the compiled scanner of
:mod:`toknz.pipeline.fast_pretokenize` and the counting a Numba hash table, so no
Python object is made per word; other patterns go through ``regex``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np

from toknz.errors import UsageError
from toknz.pipeline.normalizers import Normalizer
from toknz.pipeline.pretokenize import Split
from toknz.train.inputs import InputStats, iter_chunks

#: Words longer than this many bytes are cut into pieces of at most this size.
MAX_WORD_BYTES = 1024

#: How text is cut into sequences before pre-tokenization (see :func:`count_words`).
UNITS = ("document", "line")

#: Where words are counted: on this machine, or on a Dask cluster (:func:`count_files`).
ENGINES = ("local", "dask")

_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def split_lines(text: str) -> list[str]:
    r"""Cut ``text`` into lines as ``tokenizers``' ``train(files)`` reads them.

    A line ends just after each ``"\n"`` and keeps it (so ``"\r\n"`` stays at
    the end of its line); ``"\r"`` alone, ``"\x0b"``, ``"\x0c"``, U+0085 and
    U+2028 do not end a line. An empty line is the one-character sequence
    ``"\n"``; a last line without ``"\n"`` is kept; ``""`` gives no line.

    >>> split_lines("a\r\n\nb\rc")
    ['a\r\n', '\n', 'b\rc']
    """
    return _LINE.findall(text)


def line_offsets(data: np.ndarray) -> np.ndarray:
    """Byte offsets (int64, ``n_lines + 1``, from 0 to ``len(data)``) of the lines of UTF-8 ``data``.

    The same cut as :func:`split_lines`, in bytes.
    """
    ends = np.flatnonzero(data == 10).astype(np.int64) + 1
    n = int(data.shape[0])
    if ends.shape[0] and ends[-1] == n:
        return np.concatenate((np.zeros(1, dtype=np.int64), ends))
    return np.concatenate((np.zeros(1, dtype=np.int64), ends, np.array([n], dtype=np.int64)))


@dataclass
class WordTable:
    """Distinct words and counts: word ``i`` is ``arena[offsets[i]:offsets[i + 1]]``, seen ``counts[i]`` times."""

    arena: np.ndarray  # uint8
    offsets: np.ndarray  # int64, n + 1
    counts: np.ndarray  # int64, n

    def __len__(self) -> int:
        return int(self.counts.shape[0])

    def to_dict(self) -> dict[bytes, int]:
        raw = self.arena.tobytes()
        offs = self.offsets.tolist()
        return {raw[offs[i] : offs[i + 1]]: int(c) for i, c in enumerate(self.counts.tolist())}

    @classmethod
    def from_counts(cls, counts: Counter[bytes] | dict[bytes, int]) -> WordTable:
        words = list(counts)
        arena = np.frombuffer(b"".join(words), dtype=np.uint8).copy()
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        if words:
            np.cumsum(
                np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words)),
                out=offsets[1:],
            )
        return cls(
            arena,
            offsets,
            np.fromiter((counts[w] for w in words), dtype=np.int64, count=len(words)),
        )


class _Accumulator:
    """A growing word table in the parent process."""

    def __init__(self) -> None:
        from toknz_core.wordcount import new_table

        self.state = new_table(1 << 16, 1 << 22)

    def add(self, table: WordTable) -> None:
        from toknz_core.wordcount import merge_tables

        arena, offsets, counts, slots, n = self.state
        self.state = merge_tables(
            arena, offsets, counts, slots, n, table.arena, table.offsets, table.counts, len(table)
        )

    def result(self) -> WordTable:
        arena, offsets, counts, _slots, n = self.state
        return WordTable(arena[: offsets[n]].copy(), offsets[: n + 1].copy(), counts[:n].copy())


# Set in each worker process (and in-process for one thread).
_SPLITTER: Split | None = None
_NORMALIZER: Normalizer | None = None
_MAX_WORD = MAX_WORD_BYTES
_COMPILED = False
_BY_LINE = False


def _init_worker(
    splitter: Split,
    normalizer: Normalizer | None,
    max_word_bytes: int = MAX_WORD_BYTES,
    unit: str = "document",
) -> None:
    global _SPLITTER, _NORMALIZER, _MAX_WORD, _COMPILED, _BY_LINE
    _SPLITTER = splitter
    _NORMALIZER = normalizer
    _MAX_WORD = max_word_bytes
    _COMPILED = has_compiled_split(splitter)
    _BY_LINE = unit == "line"


def has_compiled_split(splitter: Split) -> bool:
    """True when ``splitter`` keeps all matches of a pattern with a compiled scanner."""
    if not splitter.is_regex or splitter.invert or splitter.behavior not in ("Isolated", "Removed"):
        return False
    from toknz.pipeline.fast_pretokenize import kind_of

    # The supported patterns match every character, so Isolated keeps just the matches.
    return kind_of(splitter.pattern) is not None and splitter.behavior == "Isolated"


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


def count_chunk(text: str) -> tuple[WordTable, int, int]:
    """Words of one chunk with their counts, the chunk's size in bytes, and how many words were cut.

    :func:`count_text` with the settings :func:`_init_worker` gave this process.
    """
    assert _SPLITTER is not None
    return count_text(
        text,
        _SPLITTER,
        normalizer=_NORMALIZER,
        max_word_bytes=_MAX_WORD,
        unit="line" if _BY_LINE else "document",
        compiled=_COMPILED,
    )


def count_text(
    text: str,
    splitter: Split,
    *,
    normalizer: Normalizer | None = None,
    max_word_bytes: int = MAX_WORD_BYTES,
    unit: str = "document",
    compiled: bool | None = None,
) -> tuple[WordTable, int, int]:
    """Words of ``text`` with their counts, its size in bytes, and how many words were cut.

    The counting of one chunk with explicit settings (no process state, so any
    number of threads may call it with different settings): :func:`count_words`
    and the Dask engine (:mod:`toknz.train.distributed`) both count through it.
    ``compiled`` is :func:`has_compiled_split` of ``splitter`` (computed when None).
    """
    size = len(text.encode("utf-8"))
    if normalizer is not None:
        text = normalizer.normalize(text)
    if compiled is None:
        compiled = has_compiled_split(splitter)
    if compiled:
        from toknz_core.wordcount import count_pieces, new_table

        from toknz.pipeline.fast_pretokenize import split_bytes, split_bytes_batch

        if unit == "line":
            # Each line is split on its own; the pieces of all lines cover the chunk.
            data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
            ends, _ = split_bytes_batch(splitter.pattern, data, line_offsets(data), validate=False)
            offsets = np.concatenate((np.zeros(1, dtype=np.int64), ends))
        else:
            raw, offsets = split_bytes(splitter.pattern, text.encode("utf-8"), validate=False)
            data = np.frombuffer(raw, dtype=np.uint8)
        arena, woff, counts, slots, n, cut = count_pieces(
            *new_table(1 << 12, 1 << 16), data, offsets[1:], max_word_bytes
        )
        return WordTable(arena[: woff[n]], woff[: n + 1], counts[:n]), size, int(cut)
    words = splitter.split(split_lines(text) if unit == "line" else [text])
    counted = Counter(w.encode("utf-8") for w in words)
    cut = 0
    for w in [w for w in counted if len(w) > max_word_bytes]:
        n_seen = counted.pop(w)
        cut += n_seen
        for piece in cut_word(w, max_word_bytes):
            counted[piece] += n_seen
    return WordTable.from_counts(counted), size, cut


def count_words(
    chunks: Iterable[str],
    splitter: Split,
    *,
    normalizer: Normalizer | None = None,
    threads: int | None = None,
    max_word_bytes: int = MAX_WORD_BYTES,
    on_bytes: Callable[[int], None] | None = None,
    unit: str = "document",
) -> tuple[WordTable, int]:
    r"""Count the words ``splitter`` makes of every chunk (after ``normalizer``).

    ``unit="document"`` splits each chunk as one text; ``unit="line"`` first
    cuts it into lines (:func:`split_lines`: after each ``"\n"``, which stays
    on its line) and splits each line on its own, as ``tokenizers``'
    ``train(files)`` does, so no word spans a line end. Normalization is
    applied to the chunk before the cut; the normalizers offered (NFC, NFKC)
    never move or merge a ``"\n"``, so this equals normalizing each line.

    Words longer than ``max_word_bytes`` (long runs with no split point: DNA,
    minified code, base64) are cut into pieces of at most that many bytes, so
    that neither memory nor the merge loop blows up on them; the number of
    words cut is returned beside the table. ``threads`` worker processes
    (default: all cores) count chunks in parallel; the counts do not depend
    on the number of threads. ``on_bytes(n)`` is called with the size of each
    chunk counted.
    """
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    threads = threads or os.cpu_count() or 1
    total = _Accumulator()
    words_cut = 0

    def add(result: tuple[WordTable, int, int]) -> None:
        nonlocal words_cut
        table, size, cut = result
        total.add(table)
        words_cut += cut
        if on_bytes:
            on_bytes(size)

    if threads <= 1:
        _init_worker(splitter, normalizer, max_word_bytes, unit)
        for chunk in chunks:
            add(count_chunk(chunk))
        return total.result(), words_cut
    if has_compiled_split(splitter) and normalizer is None:
        # The compiled scanner and counter release the GIL: threads share the
        # work with no process start-up and nothing to pickle.
        _init_worker(splitter, normalizer, max_word_bytes, unit)
        with ThreadPoolExecutor(max_workers=threads) as threads_pool:
            pending_t: list[Future[tuple[WordTable, int, int]]] = []
            for chunk in chunks:
                pending_t.append(threads_pool.submit(count_chunk, chunk))
                if len(pending_t) >= 2 * threads:
                    add(pending_t.pop(0).result())
            for fut in pending_t:
                add(fut.result())
        return total.result(), words_cut
    with ProcessPoolExecutor(
        max_workers=threads,
        mp_context=get_context("fork") if hasattr(os, "fork") else None,
        initializer=_init_worker,
        initargs=(splitter, normalizer, max_word_bytes, unit),
    ) as pool:
        pending: list[Future[tuple[WordTable, int, int]]] = []
        window = 2 * threads
        for chunk in chunks:
            pending.append(pool.submit(count_chunk, chunk))
            if len(pending) >= window:
                add(pending.pop(0).result())
        for fut in pending:
            add(fut.result())
    return total.result(), words_cut


def count_files(
    paths: Sequence[str],
    splitter: Split,
    *,
    normalizer: Normalizer | None = None,
    field_name: str | None = None,
    skip_invalid: bool = False,
    threads: int | None = None,
    max_word_bytes: int = MAX_WORD_BYTES,
    unit: str = "document",
    stats: InputStats | None = None,
    progress: str | None = None,
    engine: str = "local",
    scheduler: Any = None,
) -> tuple[WordTable, int]:
    """Count the words of the files ``paths`` (already expanded; ``"-"`` is stdin): :func:`count_words`
    over :func:`~toknz.train.inputs.iter_chunks`.

    This is the one place where training and ``toknz count`` read and count text.
    ``stats`` is filled in with what was read; ``progress``, when given, is the
    label of a progress bar over the bytes read. ``engine="dask"`` counts on a
    Dask cluster instead (:func:`toknz.train.distributed.count_words_dask`;
    ``scheduler``: a ``distributed.Client``, a scheduler address, or None for a
    local cluster), with the same words and counts.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "dask":
        from dataclasses import fields

        from toknz.train.distributed import count_words_dask

        table, cut, got = count_words_dask(
            paths,
            splitter,
            normalizer=normalizer,
            unit=unit,
            max_word_bytes=max_word_bytes,
            field_name=field_name,
            skip_invalid=skip_invalid,
            client=scheduler,
        )
        if stats is not None:
            for f in fields(got):
                setattr(stats, f.name, getattr(got, f.name))
        return table, cut
    chunks = iter_chunks(paths, field_name=field_name, skip_invalid=skip_invalid, stats=stats)
    bar = None
    if progress:
        from tqdm import tqdm

        total = sum(
            os.path.getsize(p)
            for p in paths
            if p != "-" and not p.endswith((".gz", ".zst", ".zstd"))
        )
        bar = tqdm(
            total=total or None,
            desc=progress,
            unit="B",
            unit_scale=True,
            leave=False,
            disable=None,
        )
    try:
        return count_words(
            chunks,
            splitter,
            normalizer=normalizer,
            threads=threads,
            max_word_bytes=max_word_bytes,
            on_bytes=bar.update if bar else None,
            unit=unit,
        )
    finally:
        if bar is not None:
            bar.close()
