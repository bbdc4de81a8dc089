"""Word counting on a Dask cluster: the counting half of BPE training, past one machine.

:func:`count_words_dask` counts the same words as :func:`toknz.train.counting.count_words`
over :func:`toknz.train.inputs.iter_chunks`, with the work spread over the workers
of a ``dask.distributed`` cluster:

- Plain text files are cut into byte ranges of about ``task_bytes``. Each task
  gets ``(path, nominal start, nominal stop)`` and moves both ends to the first
  *safe cut* at or after them (a position just after a ``"\\n"`` that the local
  chunker, :func:`toknz.train.inputs._safe_cut`, would also cut at), reading a
  little past the boundary to find it. Both tasks beside a boundary find the
  same cut point, so the ranges tile each file with no gap and no overlap
  (:func:`range_bounds`). Inside its range a task counts pieces of about
  ``piece_bytes``, cut the same way, with :func:`toknz.train.counting.count_text`
  (the counting code of local training) and adds them into one table with
  :class:`toknz.train.counting._Accumulator` (``merge_tables``).
- Compressed files, ``.jsonl`` and ``.parquet`` are one task per file, read by the
  local readers (:func:`toknz.train.inputs.iter_chunks`); a file that only fsspec
  can open is first copied to the worker's temporary folder.
- The tasks' tables are added pairwise on the workers (a binary tree of merges,
  each with ``merge_tables``); only the final table comes back to the client, so
  the client holds the distinct words, never the text.
- A task is a pure function of its file and range: it returns a table and changes
  nothing else. A task that is run again (its worker died, or its result was lost
  with the worker that held it) computes the same table, and nothing was added
  twice.

dask is imported only when :func:`count_words_dask` runs; without it the call is
a :class:`~toknz.errors.UsageError` that says ``pip install 'toknz[dask]'``.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from toknz.errors import InputError, UsageError
from toknz.pipeline.normalizers import Normalizer
from toknz.pipeline.pretokenize import Split
from toknz.train.counting import (
    MAX_WORD_BYTES,
    UNITS,
    WordTable,
    _Accumulator,
    count_text,
    has_compiled_split,
)
from toknz.train.inputs import (
    CHUNK_BYTES,
    InputStats,
    _decode_lines,
    _logical_name,
    _safe_cut,
    expand_paths,
    iter_chunks,
)

#: Nominal size of the byte range of a plain text file that one task counts.
TASK_BYTES = 32 << 20

#: How far past a boundary a task looks for a safe cut before cutting a line
#: (at a UTF-8 character start) as the local chunker does after 4 chunks.
SCAN_FACTOR = 4

#: Environment for Dask worker processes (``distributed.nanny.pre-spawn-environ``).
#: Dask sets ``MALLOC_TRIM_THRESHOLD_=65536`` by default, which pins glibc's mmap
#: threshold at 128 KiB: every 1 MiB buffer of the counting is then mapped and
#: unmapped afresh, and counting runs about 1.5x slower (measured in
#: ``benchmarks/dask_counting.py``). A local cluster started here uses these values;
#: start your own workers with them too (see ``docs/training-at-scale.md``).
WORKER_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": 128 << 20, "MALLOC_MMAP_THRESHOLD_": 32 << 20}

_COMPRESSED = (".gz", ".zst", ".zstd")
_JSON = (".jsonl", ".ndjson", ".json")
_INSTALL = "pip install 'toknz[dask]'"


@dataclass(frozen=True)
class CountTask:
    """One task: file ``index`` of the input list; a byte range, or the whole file.

    ``path`` is what the worker opens (an absolute path or an fsspec URL);
    ``name`` is how messages name the file (as the user gave it).
    ``start``/``stop`` are the nominal range (moved to safe cuts by the task);
    ``whole`` tasks read the file with the local readers.
    """

    index: int
    path: str
    name: str
    size: int
    start: int = 0
    stop: int = 0
    whole: bool = False


@dataclass(frozen=True)
class _Settings:
    splitter: Split
    normalizer: Normalizer | None
    max_word_bytes: int
    unit: str
    field_name: str | None
    skip_invalid: bool
    piece_bytes: int
    compiled: bool


@dataclass
class _Partial:
    """What a task (or a merge of tasks) returns: a table and what was read."""

    table: WordTable
    words_cut: int = 0
    bytes: int = 0
    skipped_lines: int = 0
    # (file index, piece offset, order, "path, byte offset N"): sorted, the first 20 kept.
    skipped_where: list[tuple[int, int, int, str]] = field(default_factory=list)


def _is_url(path: str) -> bool:
    return "://" in path


def _url_fs(path: str) -> tuple[Any, str]:
    import fsspec.core

    fs, root = fsspec.core.url_to_fs(path)
    return fs, root


def expand_inputs(inputs: Iterable[str | os.PathLike[str]], glob: str | None = None) -> list[str]:
    """The files of ``inputs`` (files, folders, glob patterns, fsspec URLs), as the workers name them.

    Local files and folders expand as in :func:`toknz.train.inputs.expand_paths`
    (folders recursively, files matching ``glob``, sorted); a local path that
    does not exist but holds ``*``, ``?`` or ``[`` is a glob pattern (``**``
    spans folders). A URL (``s3://bucket/dir``, ``file:///data``, any protocol
    fsspec opens) expands the same way through its file system. Local paths
    are made absolute so that workers started elsewhere open the same files
    (they must see the same file system). Standard input (``-``) is refused.
    """
    out: list[str] = []
    for raw in inputs:
        item = os.fspath(raw)
        if item == "-":
            raise UsageError(
                "the Dask engine reads files that its workers open; it cannot read "
                "standard input (-)"
            )
        if _is_url(item):
            out.extend(_expand_url(item, glob))
        elif not os.path.exists(item) and globlib.has_magic(item):
            found = sorted(globlib.glob(item, recursive=True))
            if not found:
                raise InputError(f"{item}: no file matches this pattern")
            out.extend(expand_paths(found, glob))
        else:
            out.extend(expand_paths([item], glob))
    if not out:
        raise UsageError("no input files given")
    return out


def _expand_url(url: str, glob: str | None) -> list[str]:
    fs, root = _url_fs(url)
    if globlib.has_magic(root):
        found = sorted(p for p in fs.glob(root) if fs.isfile(p))
        if not found:
            raise InputError(f"{url}: no file matches this pattern")
        return [fs.unstrip_protocol(p) for p in found]
    if fs.isdir(root):
        pattern = glob or "*"
        base = root.rstrip("/")
        found = []
        for p in sorted(fs.find(root)):
            rel = p[len(base) :].lstrip("/")
            name = rel.rsplit("/", 1)[-1]
            if name.startswith("."):
                continue
            if fnmatch.fnmatch(rel if "/" in pattern else name, pattern):
                found.append(fs.unstrip_protocol(p))
        if not found:
            raise InputError(f"{url}: folder holds no files matching {pattern!r}")
        return found
    if fs.isfile(root):
        return [url]
    raise InputError(f"{url}: no such file or folder")


def plan_tasks(
    paths: Sequence[str], *, field_name: str | None = None, task_bytes: int = TASK_BYTES
) -> list[CountTask]:
    """The tasks that count ``paths`` (as :func:`expand_inputs` gives them).

    A plain text file of ``size`` bytes gives ``ceil(size / task_bytes)`` range
    tasks (one for an empty file) with nominal bounds ``0, task_bytes, ...,
    size``; compressed, JSON lines and Parquet files give one task each.
    Raises the local reader's :class:`~toknz.errors.UsageError` when a
    JSON lines or Parquet file has no ``field_name``.
    """
    if task_bytes < 1:
        raise UsageError(f"task_bytes must be positive, not {task_bytes}")
    tasks: list[CountTask] = []
    for index, name in enumerate(paths):
        path = name if _is_url(name) else os.path.abspath(name)
        logical = _logical_name(name)
        if logical.endswith(_JSON) and field_name is None:
            raise UsageError(
                f"{name}: JSON lines input needs --field NAME (the text field of each record)"
            )
        if logical.endswith(".parquet") and field_name is None:
            raise UsageError(f"{name}: Parquet input needs --field NAME (the text column)")
        if _is_url(name):
            fs, root = _url_fs(name)
            size = int(fs.size(root))
        else:
            try:
                size = os.path.getsize(path)
            except OSError as exc:
                raise InputError(f"{name}: cannot open ({exc.strerror})") from None
        if name.endswith(_COMPRESSED) or logical.endswith((*_JSON, ".parquet")):
            tasks.append(CountTask(index, path, name, size, 0, size, whole=True))
            continue
        bounds = list(range(0, size, task_bytes)) + [size]
        if len(bounds) == 1:
            bounds = [0, 0]
        for a, b in zip(bounds, bounds[1:], strict=False):
            tasks.append(CountTask(index, path, name, size, a, b))
    return tasks


def _open(path: str) -> IO[bytes]:
    if _is_url(path):
        fs, root = _url_fs(path)
        return fs.open(root, "rb")  # type: ignore[no-any-return]
    return open(path, "rb")  # noqa: SIM115


#: Bytes on each side of a cut point that :func:`~toknz.train.inputs._safe_cut` looks at.
_CONTEXT = 2
#: Largest window handed to ``_safe_cut`` (it looks for its fallback cuts in the last 64 KiB).
_WINDOW = 1 << 16


def _first_cut_in(w: bytes, need: int) -> int:
    """The first cut of ``w`` at index ``need`` or later that ``_safe_cut`` finds; -1 if none.

    ``_safe_cut(w[:m])`` is the last cut it sees in ``w[:m]``; as ``m`` grows, a cut at
    index ``need`` or later appears once and stays (every cut ``_safe_cut`` makes has
    its first kind, after a line end, at index 2 or later, and ``need`` is at most 2),
    so the first such cut is found by bisection on ``m``.
    """
    if _safe_cut(w) < need:
        return -1
    lo, hi = need, len(w)
    while lo < hi:
        mid = (lo + hi) // 2
        if _safe_cut(w[:mid]) >= need:
            hi = mid
        else:
            lo = mid + 1
    return _safe_cut(w[:hi])


def next_cut(read: Callable[[int, int], bytes], size: int, at: int, scan: int) -> int:
    """The first safe cut point at or after ``at`` in a file of ``size`` bytes.

    ``read(offset, n)`` returns up to ``n`` bytes from ``offset``. 0 and ``size``
    are cut points; a safe cut is a position where
    :func:`~toknz.train.inputs._safe_cut` (the local chunker's rule) cuts when it
    sees the bytes around it (``_CONTEXT`` on each side). When there is none in
    ``[at, at + scan]``, the cut is the first UTF-8 character start at or after
    ``at + scan`` (text with no safe cut for that long is cut anyway, as the local
    chunker cuts it after 4 chunks).

    The result depends only on the file's bytes and ``at``, and never decreases as
    ``at`` grows, so the two tasks that meet at a nominal boundary agree on it and
    the ranges between consecutive boundaries tile the file.
    """
    if at <= 0:
        return 0
    if at >= size:
        return size
    limit = min(at + scan, size)
    start = max(0, at - _CONTEXT)  # where the window starts
    need = at - start  # the first index of the window that may be returned
    n = 256
    while start + need <= limit:
        w = read(start, min(n, size - start))
        if len(w) < min(n, size - start):
            raise InputError(
                f"byte offset {start + len(w)}: file ended early (changed while read?)"
            )
        c = _first_cut_in(w, need)
        if c >= 0:
            return start + c if start + c <= limit else _char_start(read, size, limit)
        if start + len(w) >= size:
            return size  # no cut before the end (and the end is within limit)
        # Every cut up to index len(w) - _CONTEXT was seen; go on from the next one.
        nxt = start + len(w) - _CONTEXT + 1
        start, need = nxt - _CONTEXT, _CONTEXT
        n = min(4 * n, _WINDOW)
    return _char_start(read, size, limit)


def _char_start(read: Callable[[int, int], bytes], size: int, p: int) -> int:
    """The first UTF-8 character start (a byte that is not ``10xxxxxx``) at or after ``p``."""
    while p < size:
        chunk = read(p, 64)
        if not chunk:
            break
        for byte in chunk:
            if byte & 0xC0 != 0x80:
                return p
            p += 1
    return min(p, size)


def range_bounds(
    task: CountTask, read: Callable[[int, int], bytes], scan_bytes: int
) -> tuple[int, int]:
    """The byte range ``[start, stop)`` that a range task counts (its nominal ends moved to safe cuts)."""
    return (
        next_cut(read, task.size, task.start, scan_bytes),
        next_cut(read, task.size, task.stop, scan_bytes),
    )


def _reader(f: IO[bytes]) -> Callable[[int, int], bytes]:
    def read(offset: int, n: int) -> bytes:
        f.seek(offset)
        return f.read(n)

    return read


def _count_range(task: CountTask, settings: _Settings) -> _Partial:
    """Count one range task: read ``[start, stop)``, decode and count it piece by piece."""
    piece = settings.piece_bytes
    scan = SCAN_FACTOR * piece
    try:
        with _open(task.path) as f:
            read = _reader(f)
            start, stop = range_bounds(task, read, scan)
            data = read(start, stop - start) if stop > start else b""
    except OSError as exc:
        raise InputError(f"{task.name}: cannot read ({exc})") from None
    except InputError as exc:
        raise InputError(f"{task.name}, {exc}") from None
    if len(data) != stop - start:
        raise InputError(f"{task.name}, byte offset {start + len(data)}: file ended early")
    acc = _Accumulator()
    cut = 0
    where: list[tuple[int, int, int, str]] = []
    stats = InputStats()

    def read_data(offset: int, n: int) -> bytes:
        return data[offset : offset + n]

    p = 0
    while p < len(data):
        q = next_cut(read_data, len(data), p + piece, scan)
        before = len(stats.skipped_where)
        text = _decode_lines(data[p:q], task.name, start + p, stats, settings.skip_invalid)
        where.extend(
            (task.index, start + p, j, w) for j, w in enumerate(stats.skipped_where[before:])
        )
        del stats.skipped_where[:]
        if text:
            cut += _count_into(acc, text, settings)
        p = q
    return _Partial(acc.result(), cut, len(data), stats.skipped_lines, where)


def _count_into(acc: _Accumulator, text: str, settings: _Settings) -> int:
    """Count ``text`` with :func:`~toknz.train.counting.count_text` into ``acc``; the words cut."""
    table, _size, cut = count_text(
        text,
        settings.splitter,
        normalizer=settings.normalizer,
        max_word_bytes=settings.max_word_bytes,
        unit=settings.unit,
        compiled=settings.compiled,
    )
    acc.add(table)
    return cut


def _count_whole(task: CountTask, settings: _Settings) -> _Partial:
    """Count one whole-file task with the local readers (a URL is copied to a local file first)."""
    tmpdir = None
    local = task.path
    try:
        if _is_url(task.path):
            tmpdir = tempfile.mkdtemp(prefix="toknz-dask-")
            local = os.path.join(tmpdir, task.path.rstrip("/").rsplit("/", 1)[-1])
            fs, root = _url_fs(task.path)
            fs.get_file(root, local)
        stats = InputStats()
        acc = _Accumulator()
        cut = 0
        for text in iter_chunks(
            [local],
            field_name=settings.field_name,
            skip_invalid=settings.skip_invalid,
            chunk_bytes=settings.piece_bytes,
            stats=stats,
        ):
            cut += _count_into(acc, text, settings)
        where = [
            (task.index, 0, j, w.replace(local, task.name))
            for j, w in enumerate(stats.skipped_where)
        ]
        return _Partial(acc.result(), cut, stats.bytes, stats.skipped_lines, where)
    except InputError as exc:
        if local == task.name:
            raise
        raise InputError(str(exc).replace(local, task.name)) from None
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


def count_task(task: CountTask, settings: _Settings) -> _Partial:
    """Run one task (on a worker): a pure function of the task and the settings."""
    return _count_whole(task, settings) if task.whole else _count_range(task, settings)


def merge_partials(a: _Partial, b: _Partial) -> _Partial:
    """Add two tasks' results (on a worker), with the merge code of local counting."""
    acc = _Accumulator()
    acc.add(a.table)
    acc.add(b.table)
    return _Partial(
        acc.result(),
        a.words_cut + b.words_cut,
        a.bytes + b.bytes,
        a.skipped_lines + b.skipped_lines,
        sorted(a.skipped_where + b.skipped_where)[:20],
    )


def _client(client: Any) -> tuple[Any, bool]:
    """The ``distributed.Client`` to use, and whether this call made it (and closes it)."""
    try:
        import distributed
    except ImportError:
        raise UsageError(
            f"the Dask engine needs dask.distributed, which is not installed: {_INSTALL}"
        ) from None
    if isinstance(client, distributed.Client):
        return client, False
    if client is None:
        try:
            return distributed.default_client(), False
        except ValueError:
            import dask

            with dask.config.set(
                {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENVIRON.items()}
            ):
                return distributed.Client(), True
    if isinstance(client, str):
        try:
            return distributed.Client(client), True
        except OSError as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {client} ({exc})") from None
    raise UsageError(f"client must be a distributed.Client or a scheduler address, not {client!r}")


def count_words_dask(
    inputs: Iterable[str | os.PathLike[str]],
    splitter: Split,
    *,
    normalizer: Normalizer | None = None,
    unit: str = "document",
    max_word_bytes: int = MAX_WORD_BYTES,
    field_name: str | None = None,
    glob: str | None = None,
    skip_invalid: bool = False,
    client: Any = None,
    task_bytes: int = TASK_BYTES,
    piece_bytes: int = CHUNK_BYTES,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[WordTable, int, InputStats]:
    """Count the words of ``inputs`` on a Dask cluster: the table, words cut, and what was read.

    The same words and counts as :func:`toknz.train.counting.count_words` over
    :func:`toknz.train.inputs.iter_chunks` of the same files with the same
    ``splitter``, ``normalizer``, ``unit``, ``max_word_bytes``, ``field_name`` and
    ``skip_invalid`` (the order of the words in the table may differ; training
    does not depend on it). ``inputs`` are files, folders, glob patterns or
    fsspec URLs (:func:`expand_inputs`, with ``glob`` filtering folders); every
    worker must be able to open them.

    ``client`` is a ``distributed.Client``, a scheduler address
    (``"tcp://host:8786"``; the client made for it is closed at the end), or
    None for the current default client (or, when there is none, a local
    cluster on this machine, closed at the end). ``task_bytes`` is the nominal
    size of the range one task counts; ``piece_bytes`` the size of the pieces
    it decodes and counts at a time (the local chunk size). ``on_bytes(n)`` is
    called on the client as tasks finish, with the nominal bytes each covered.

    Invalid UTF-8 stops the run with an :class:`~toknz.errors.InputError` that
    names the file and byte offset (the first one a task meets; several bad
    files may be found in any order), unless ``skip_invalid``: then the bad
    lines are dropped and counted in the returned :class:`InputStats`.
    """
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    if piece_bytes < 1:
        raise UsageError(f"piece_bytes must be positive, not {piece_bytes}")
    dask_client, owned = _client(client)
    try:
        from distributed import as_completed

        paths = expand_inputs(inputs, glob)
        tasks = plan_tasks(paths, field_name=field_name, task_bytes=task_bytes)
        settings = _Settings(
            splitter,
            normalizer,
            max_word_bytes,
            unit,
            field_name,
            skip_invalid,
            piece_bytes,
            has_compiled_split(splitter),
        )
        token = uuid.uuid4().hex[:12]
        level = [
            dask_client.submit(count_task, t, settings, key=f"toknz-count-{token}-{i}", pure=False)
            for i, t in enumerate(tasks)
        ]
        size_of = {f.key: (t.stop - t.start) for f, t in zip(level, tasks, strict=True)}
        leaves = list(level) if on_bytes is not None else []
        depth = 0
        while len(level) > 1:
            depth += 1
            merged = [
                dask_client.submit(
                    merge_partials,
                    level[i],
                    level[i + 1],
                    key=f"toknz-merge-{token}-{depth}-{i // 2}",
                    pure=False,
                )
                for i in range(0, len(level) - 1, 2)
            ]
            if len(level) % 2:
                merged.append(level[-1])
            level = merged
        root = level[0]
        level = []
        if leaves:
            # Hold no leaf once it is done, so the workers can drop it once merged.
            done = as_completed(leaves)
            leaves = []
            for fut in done:
                assert on_bytes is not None
                on_bytes(size_of[fut.key])
                del fut
        result: _Partial = root.result()
        del root
    finally:
        if owned:
            dask_client.close()
    stats = InputStats(
        files=len(paths),
        bytes=result.bytes,
        skipped_lines=result.skipped_lines,
        skipped_where=[where for *_, where in sorted(result.skipped_where)[:20]],
    )
    return result.table, result.words_cut, stats


__all__ = [
    "TASK_BYTES",
    "WORKER_ENVIRON",
    "CountTask",
    "count_task",
    "count_words_dask",
    "expand_inputs",
    "merge_partials",
    "next_cut",
    "plan_tasks",
    "range_bounds",
]
