"""What every benchmark script shares: the machine's facts and writing its section of the docs.

Each script in ``benchmarks/`` owns one level-2 section of ``docs/benchmarks.md``
and replaces only that section when it is re-run (:func:`write_section`).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def machine_info() -> dict[str, Any]:
    """CPU model, cores (all and usable), memory in GB, OS and Python version."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1e6, 1)
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "mem_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def describe_machine(m: dict[str, Any]) -> str:
    """One line for a report: ``AMD EPYC, 2 cores (2 usable), 24.7 GB RAM, Linux..., Python 3.11``."""
    return (
        f"{m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['mem_gb']} GB RAM, {m['os']}, Python {m['python']}"
    )


def library_versions(dists: tuple[str, ...]) -> dict[str, str]:
    """Installed version of each distribution (``"not installed"`` when absent)."""
    from importlib import metadata

    out = {}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def free_cores(threads: int = 2) -> float:
    """Cores ``threads`` busy threads actually got for ~0.3 s (CPU time / wall time).

    hashlib releases the GIL, so on an idle machine this is ``threads``; less means
    other processes hold the cores.
    """
    data = b"x" * 4_000_000

    def burn() -> None:
        for _ in range(25):
            hashlib.sha256(data).digest()

    workers = [threading.Thread(target=burn) for _ in range(threads)]
    c0, w0 = time.process_time(), time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return (time.process_time() - c0) / (time.perf_counter() - w0)


def git_state() -> str:
    """The short commit of the repository, marked when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        if head.returncode != 0:
            return "no commit yet"
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        return head.stdout.strip() + (" (uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; these are docs
    os.replace(tmp, path)


def replace_section(doc: str, section: str, body: str) -> str:
    """``doc`` with the level-2 section titled ``section`` replaced by ``body`` (or appended)."""
    lines = doc.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == section), None)
    if start is None:
        return doc.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n"
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"^## (?!#)", lines[i])), len(lines)
    )
    new = (
        lines[:start]
        + body.rstrip("\n").splitlines()
        + ([""] + lines[end:] if end < len(lines) else [])
    )
    return "\n".join(new).rstrip("\n") + "\n"


def write_section(section: str, body: str, path: Path = DOC) -> None:
    """Replace (or append) the section ``section`` (``"## Title"``) of ``path`` with ``body``."""
    doc = path.read_text(encoding="utf-8") if path.exists() else "# toknz benchmarks\n"
    write_atomic(path, replace_section(doc, section, body))


def write_marked(path: Path, mark: str, body: str) -> None:
    """Replace what stands between the two ``mark`` lines of ``path`` (an HTML comment such as
    ``<!-- torch_lm -->``) with ``body``; the rest of the file is kept as it is."""
    doc = path.read_text(encoding="utf-8")
    head, found, rest = doc.partition(mark)
    _, found_end, tail = rest.partition(mark)
    if not (found and found_end):
        raise SystemExit(f"{path}: no pair of {mark} lines to write between")
    write_atomic(path, head + mark + "\n\n" + body.strip("\n") + "\n\n" + mark + tail)
