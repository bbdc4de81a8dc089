"""Dropping compiled kernels that no longer match their sources.

Numba's on-disk cache (``cache=True``) keys a compiled function on its own source file's
time stamp and size only. A kernel that inlines a helper of another module (every merge
kernel inlines :func:`toknz_core.encode.pair_rank`) keeps the old helper when only the
helper's module changes, after an upgrade that leaves the old ``__pycache__`` in place or
an edit: with a changed table layout that gives wrong ids or a probe that never ends.

:func:`drop_stale_kernels` hashes every source file of the package and, when the hash
differs from the one stored beside the cache, deletes the cache's ``.nbi``/``.nbc`` files
so every kernel compiles afresh. ``toknz_core`` calls it once on import; it costs a
millisecond. A cache directory that cannot be written is left alone.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

STAMP = "kernel-sources.sha256"


def sources_digest(package: Path) -> str:
    """The sha256 of the package's ``*.py`` files (names and contents, in name order).

    >>> len(sources_digest(Path(__file__).parent))
    64
    """
    digest = hashlib.sha256()
    for source in sorted(package.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def drop_stale_kernels(package: Path) -> bool:
    """Delete the compiled kernels in ``package/__pycache__`` when the sources changed since
    they were compiled; return True when some were deleted. Never raises for an unreadable
    or read-only cache directory (Numba then compiles into its own user cache)."""
    cache = package / "__pycache__"
    try:
        digest = sources_digest(package)
        stamp = cache / STAMP
        if stamp.is_file() and stamp.read_text() == digest:
            return False
        dropped = False
        for compiled in (*cache.glob("*.nbi"), *cache.glob("*.nbc")):
            compiled.unlink(missing_ok=True)
            dropped = True
        cache.mkdir(exist_ok=True)
        partial = cache / f"{STAMP}.{os.getpid()}"
        partial.write_text(digest)
        partial.replace(stamp)
        return dropped
    except OSError:
        return False
