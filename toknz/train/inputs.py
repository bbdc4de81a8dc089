"""Training inputs: files, folders, stdin, JSON lines, Parquet, gzip/zstd, streamed in chunks.

:func:`iter_chunks` yields text chunks of about ``chunk_bytes`` bytes. Plain
text is cut only where none of the GPT split patterns can join two words
(:func:`_safe_cut`), so chunking does not change the words counted. Invalid UTF-8 is an
:class:`~toknz.errors.InputError` naming the file and byte offset, unless
``skip_invalid`` is set: then the offending lines are dropped and counted in
:class:`InputStats`.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from toknz.errors import InputError, UsageError

CHUNK_BYTES = 1 << 20


@dataclass
class InputStats:
    """What was read: files, bytes (as stored, decompressed), skipped lines."""

    files: int = 0
    bytes: int = 0
    skipped_lines: int = 0
    skipped_where: list[str] = field(default_factory=list)


def expand_paths(inputs: Iterable[str], glob: str | None = None) -> list[str]:
    """Expand folders recursively (files matching ``glob``, default all) into a sorted file list.

    ``-`` stands for standard input. A missing path is an :class:`InputError`.
    """
    out: list[str] = []
    for item in inputs:
        if item == "-":
            out.append(item)
            continue
        p = Path(item)
        if p.is_dir():
            pattern = glob or "*"
            found = sorted(
                str(f) for f in p.rglob(pattern) if f.is_file() and not f.name.startswith(".")
            )
            if not found:
                raise InputError(f"{p}: folder holds no files matching {pattern!r}")
            out.extend(found)
        elif p.is_file():
            out.append(str(p))
        elif p.exists():
            raise InputError(f"{p}: not a regular file")
        else:
            raise InputError(f"{p}: no such file or folder")
    if not out:
        raise UsageError("no input files given")
    return out


def _open_binary(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        if path.endswith((".zst", ".zstd")):
            try:
                import zstandard
            except ImportError:
                raise UsageError(
                    f"{path}: reading .zst needs the 'zstandard' package (pip install zstandard)"
                ) from None
            return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))  # noqa: SIM115
        return open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror})") from None


def _logical_name(path: str) -> str:
    name = path
    for suffix in (".gz", ".zst", ".zstd"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _decode_lines(data: bytes, path: str, base: int, stats: InputStats, skip_invalid: bool) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not skip_invalid:
            raise InputError(
                f"{path}, byte offset {base + exc.start}: invalid UTF-8 ({exc.reason}); "
                "fix the file or pass --skip-invalid to drop bad lines"
            ) from None
    kept: list[str] = []
    offset = base
    for line in data.splitlines(keepends=True):
        try:
            kept.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            stats.skipped_lines += 1
            if len(stats.skipped_where) < 20:
                stats.skipped_where.append(f"{path}, byte offset {offset + exc.start}")
        offset += len(line)
    return "".join(kept)


_SPACE_BYTES = b" \t\r\n\x0b\x0c"
#: A space between two ASCII letters: the cut goes before the space.
_WORD_GAP = re.compile(rb"[A-Za-z] [A-Za-z]")


def _safe_cut(buf: bytes) -> int:
    r"""Where ``buf`` may be cut without changing what a GPT split pattern makes of it (0: nowhere).

    The last of these, preferring the first kind:

    1. just after a ``"\n"`` that follows a byte other than whitespace and comes before a
       byte other than whitespace and ``"/"`` (o200k's ``[\r\n/]*`` takes a ``"/"`` after
       a line end into the pre-token before it, and GPT-2's ``\s+(?!\S)`` splits a run
       of whitespace differently at the end of a text);
    2. just before a space between two ASCII letters (text with no such line end, such as
       CRLF files or one long line).

    Every GPT pattern (gpt2, cl100k, o200k, llama3, qwen) ends a pre-token there, and
    the pieces on each side are the same as in the whole text
    (``tests/test_train_units.py::test_chunk_cuts_never_change_the_words``).
    """
    i = len(buf) - 1
    while True:
        i = buf.rfind(b"\n", 0, i)
        if i <= 0 or i + 1 >= len(buf):
            break
        if buf[i - 1] not in _SPACE_BYTES and buf[i + 1] not in _SPACE_BYTES + b"/":
            return i + 1
    tail = max(0, len(buf) - (1 << 16))
    last = 0
    for m in _WORD_GAP.finditer(buf, tail):
        last = m.start() + 1
    return last


def _text_chunks(
    path: str, stats: InputStats, skip_invalid: bool, chunk_bytes: int
) -> Iterator[str]:
    f = _open_binary(path)
    base = 0
    pending = b""
    try:
        while True:
            try:
                block = f.read(chunk_bytes)
            except (OSError, EOFError) as exc:
                raise InputError(
                    f"{path}, byte offset {base + len(pending)}: read failed ({exc})"
                ) from None
            if not block:
                break
            stats.bytes += len(block)
            pending += block
            cut = _safe_cut(pending)
            if cut == 0 and len(pending) < 4 * chunk_bytes:
                continue  # no safe place yet; read more (a huge line is cut below)
            if cut == 0:
                # A single line far longer than a chunk: cut at a UTF-8 boundary.
                cut = len(pending)
                while cut > 0 and (pending[cut - 1] & 0xC0) == 0x80:
                    cut -= 1
                if cut > 0 and pending[cut - 1] >= 0xC0:
                    cut -= 1
            text = _decode_lines(pending[:cut], path, base, stats, skip_invalid)
            base += cut
            pending = pending[cut:]
            if text:
                yield text
        if pending:
            text = _decode_lines(pending, path, base, stats, skip_invalid)
            if text:
                yield text
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def _jsonl_chunks(
    path: str, field_name: str, stats: InputStats, skip_invalid: bool, chunk_bytes: int
) -> Iterator[str]:
    f = _open_binary(path)
    batch: list[str] = []
    size = 0
    offset = 0
    try:
        for lineno, raw in enumerate(f, start=1):
            stats.bytes += len(raw)
            start = offset
            offset += len(raw)
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if skip_invalid:
                    stats.skipped_lines += 1
                    if len(stats.skipped_where) < 20:
                        stats.skipped_where.append(f"{path}, line {lineno}")
                    continue
                raise InputError(
                    f"{path}, line {lineno} (byte offset {start}): not valid JSON ({exc})"
                ) from None
            if not isinstance(record, dict) or field_name not in record:
                raise InputError(
                    f"{path}, line {lineno}: no field {field_name!r} in this record; "
                    f"choose the text field with --field (record keys: {', '.join(map(str, record)) if isinstance(record, dict) else type(record).__name__})"
                )
            value = record[field_name]
            if not isinstance(value, str):
                raise InputError(
                    f"{path}, line {lineno}: field {field_name!r} is {type(value).__name__}, not text"
                )
            batch.append(value)
            size += len(value)
            if size >= chunk_bytes:
                yield from batch
                batch, size = [], 0
        yield from batch
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def _parquet_chunks(path: str, field_name: str, stats: InputStats) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            f"{path}: reading Parquet needs pyarrow (pip install 'toknz[parquet]')"
        ) from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    if field_name not in pf.schema_arrow.names:
        raise InputError(
            f"{path}: no column {field_name!r} (columns: {', '.join(pf.schema_arrow.names)}); use --field"
        )
    for batch in pf.iter_batches(columns=[field_name], batch_size=4096):
        for value in batch.column(0).to_pylist():
            if value is None:
                continue
            if not isinstance(value, str):
                raise InputError(
                    f"{path}: column {field_name!r} holds {type(value).__name__}, not text"
                )
            stats.bytes += len(value.encode("utf-8"))
            yield value


def iter_chunks(
    paths: Iterable[str],
    *,
    field_name: str | None = None,
    skip_invalid: bool = False,
    chunk_bytes: int = CHUNK_BYTES,
    stats: InputStats | None = None,
) -> Iterator[str]:
    """Yield the text of every input as chunks (documents for JSON lines / Parquet)."""
    stats = stats if stats is not None else InputStats()
    for path in paths:
        stats.files += 1
        name = _logical_name(path)
        if name.endswith((".jsonl", ".ndjson", ".json")):
            if field_name is None:
                raise UsageError(
                    f"{path}: JSON lines input needs --field NAME (the text field of each record)"
                )
            yield from _jsonl_chunks(path, field_name, stats, skip_invalid, chunk_bytes)
        elif name.endswith(".parquet"):
            if field_name is None:
                raise UsageError(f"{path}: Parquet input needs --field NAME (the text column)")
            yield from _parquet_chunks(path, field_name, stats)
        else:
            yield from _text_chunks(path, stats, skip_invalid, chunk_bytes)


__all__ = ["CHUNK_BYTES", "InputStats", "expand_paths", "iter_chunks"]
