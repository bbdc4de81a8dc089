"""Writes that fail on a real full or read-only file system (issue 23's write-path twin).

`/dev/full` covers standard output; these tests mount a small tmpfs (root only, where
the machine allows ``mount``; otherwise they skip saying why) and point ``-o`` into it,
so the failure comes from a real file system half-way through a write. Each checks the
one-line error and exit code 1, that a file already there is left as it was, and that
no temporary file is left behind.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_file
from test_faults import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
#: Varied enough that a 3,000-token tokenizer.json (~100 KB) cannot fit the 64 KiB disk.
CORPUS = ROOT / "corpora" / "en" / "austen_emma.txt"


def _mount_tmpfs(where: Path, size: str) -> None:
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {done.stderr.decode().strip()}")


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: room for a small file, not for a trained tokenizer."""
    where = tmp_path / "small"
    _mount_tmpfs(where, "64k")
    try:
        yield where
    finally:
        _umount(where)


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs remounted read-only (writable by nobody, root included) holding one old file."""
    where = tmp_path / "ro"
    _mount_tmpfs(where, "1m")
    try:
        (where / "tokenizer.json").write_text("old", encoding="utf-8")
        done = subprocess.run(
            ["mount", "-o", "remount,ro", str(where)], capture_output=True, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"cannot remount the tmpfs read-only: {done.stderr.decode().strip()}")
        yield where
    finally:
        _umount(where)


def _filler(disk: Path) -> Path:
    """Fill ``disk`` to its last KiB and return the filler file."""
    filler = disk / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def _corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_bytes(CORPUS.read_bytes()[:400_000])
    return path


def test_train_onto_a_full_disk_keeps_the_old_tokenizer(tmp_path: Path, small_disk: Path) -> None:
    out = small_disk / "tokenizer.json"
    out.write_text('{"old": true}', encoding="utf-8")
    report = small_disk / "tokenizer.json.report.json"
    report.write_text('{"old report": true}', encoding="utf-8")
    _filler(small_disk)
    result = run_cli("train", str(_corpus(tmp_path)), "-o", str(out), "--vocab-size", "3000", "-q")
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result.stderr, str(small_disk), "No space left on device")
    assert out.read_text(encoding="utf-8") == '{"old": true}'
    # The old report goes first (a report never disagrees with the tokenizer beside it).
    assert not report.exists() or report.read_text(encoding="utf-8") == '{"old report": true}'
    leftovers = {p.name for p in small_disk.iterdir()} - {
        "tokenizer.json",
        "tokenizer.json.report.json",
        "filler.bin",
    }
    assert leftovers == set()


@pytest.mark.parametrize("suffix", [".npy", ".jsonl"])
def test_encode_onto_a_full_disk_fails(tmp_path: Path, small_disk: Path, suffix: str) -> None:
    require_file("cl100k_base")
    out = small_disk / f"ids{suffix}"
    _filler(small_disk)
    doc = _corpus(tmp_path)
    result = run_cli("encode", "-t", "cl100k_base", str(doc), "-o", str(out))
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result.stderr, "No space left on device")
    assert {p.name for p in small_disk.iterdir()} == {"filler.bin"}


def test_train_onto_a_read_only_mount(tmp_path: Path, read_only_disk: Path) -> None:
    out = read_only_disk / "tokenizer.json"
    result = run_cli("train", str(_corpus(tmp_path)), "-o", str(out), "--vocab-size", "300", "-q")
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result.stderr, str(read_only_disk), "Read-only file system")
    assert out.read_text(encoding="utf-8") == "old"


def test_encode_onto_a_read_only_mount(tmp_path: Path, read_only_disk: Path) -> None:
    require_file("cl100k_base")
    out = read_only_disk / "ids.npy"
    result = run_cli("encode", "-t", "cl100k_base", str(_corpus(tmp_path)), "-o", str(out))
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result.stderr, "Read-only file system")
    assert not out.exists()
