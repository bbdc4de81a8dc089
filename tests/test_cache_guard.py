"""toknz_core.cache_guard: compiled kernels are dropped exactly when a source changed."""

from __future__ import annotations

from pathlib import Path

from toknz_core.cache_guard import STAMP, drop_stale_kernels


def _package(root: Path) -> Path:
    package = root / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "b.py").write_text("y = 2\n")
    return package


def _compiled(package: Path) -> list[str]:
    cache = package / "__pycache__"
    return sorted(p.name for p in (*cache.glob("*.nbi"), *cache.glob("*.nbc")))


def test_kernels_compiled_for_other_sources_are_dropped(tmp_path: Path) -> None:
    package = _package(tmp_path)
    cache = package / "__pycache__"
    for name in ("a.f-1.py311.nbi", "a.f-1.py311.1.nbc", "b.g-3.py311.nbi"):
        (cache / name).write_bytes(b"old")
    (cache / "a.cpython-311.pyc").write_bytes(b"bytecode")

    assert drop_stale_kernels(package)  # no stamp yet: compiled for unknown sources
    assert _compiled(package) == [] and (cache / "a.cpython-311.pyc").exists()
    assert (cache / STAMP).is_file()

    (cache / "a.f-1.py311.nbi").write_bytes(b"new")
    assert not drop_stale_kernels(package)  # same sources: kept
    assert _compiled(package) == ["a.f-1.py311.nbi"]

    (package / "b.py").write_text("y = 3\n")  # another module's source changed
    assert drop_stale_kernels(package)
    assert _compiled(package) == []


def test_an_unwritable_cache_is_left_alone(tmp_path: Path) -> None:
    package = _package(tmp_path)
    (package / "__pycache__").rmdir()
    (package / "__pycache__").write_text("not a directory")
    assert not drop_stale_kernels(package)
