"""File helpers shared by the formats: atomic writes and friendly reads."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import time
from glob import escape as glob_escape
from pathlib import Path

from toknz.errors import InputError, OutputError

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _new_file_mode(target: Path) -> int:
    """The mode a written file gets: the replaced file's, else ``0o666`` less the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def write_error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """A one-line :class:`OutputError` for a failed write of ``path``."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        for parent in Path(path).parents:
            if parent.exists():
                if not parent.is_dir():
                    reason = f"{parent} is a file, not a folder"
                break
    return OutputError(f"{path}: cannot write ({reason})")


#: A temporary file of :func:`atomic_write` older than this (seconds) was left by a killed run.
STALE_TEMPORARY_SECONDS = 3600


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    """Delete ``.NAME.*.tmp`` files that a killed write left behind (older than an hour).

    A younger one may belong to a write still under way, so it is left alone.
    """
    now = time.time()
    for old in folder.glob(f".{glob_escape(name)}.*.tmp"):
        try:
            if now - old.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                old.unlink()
        except OSError:
            pass


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A killed process leaves either the old file or the new one, never half of one.
    The file gets the mode of the file it replaces, or ``0o666`` less the umask
    (as ``open`` would give it). A path that is not a regular file (``/dev/stdout``,
    a FIFO) is written directly. Any failure (a full disk, a read-only folder, a
    parent that is a file) is an :class:`OutputError` naming ``path``.
    """
    target = Path(path)
    try:
        st = os.stat(target)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: is a folder, expected a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:  # a device or a pipe: there is nothing to replace atomically
            with open(target, "wb") as f:
                f.write(data)
                f.flush()
        except OSError as exc:
            raise write_error(path, exc) from None
        return
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(folder, target.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _new_file_mode(target))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise


def read_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a whole file; a missing or unreadable file is an :class:`InputError` naming it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def decode_utf8(data: bytes, path: str | os.PathLike[str]) -> str:
    """Decode UTF-8 strictly; invalid input is an :class:`InputError` with the byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}, line {line}, byte offset {exc.start}: invalid UTF-8 ({exc.reason}); "
            "convert the file to UTF-8 or read it as bytes"
        ) from None
