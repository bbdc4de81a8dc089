"""Every repository file the library and the docs cite exists.

The library (``toknz/``, ``rust-free-core/toknz_core/``), ``README.md``, ``docs/`` and the
benchmark scripts that write parts of ``docs/`` may point a reader at another file of this
repository: a doc, a benchmark script, a test, a
corpus. A citation of a file the repository does not contain (a note kept outside it, a
renamed script) sends the reader nowhere, so this test lists every such reference.

What counts as a citation, so that examples (``tokenizer.json``, ``path/to/x``, ``OUT.json``)
are never taken for one:

- a path that starts with one of the repository's own top-level folders (``docs/``,
  ``benchmarks/``, ``tests/``, ``corpora/``, ``toknz/``, ``rust-free-core/``, ``.ci/``), or
  with ``toknz_core/`` (short for ``rust-free-core/toknz_core/``), not preceded by another
  path segment;
- an upper-case Markdown name (``DESIGN.md``, ``CHANGELOG.md``): a note at the root;
- a path that leads out of the repository: ``../`` steps that climb past its root from the
  citing file, or an absolute path into the folder that holds the repository. Nobody who has
  the repository has what lies there, so the project must never cite it;
- in Markdown files, a relative link target (``[x](bench/encode.png)``), resolved from the file.

Placeholders (``<name>``, ``{name}``, ``...``) are skipped; globs must match a file.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TOP_DIRS = ("docs", "benchmarks", "tests", "corpora", "toknz", "rust-free-core", ".ci")

#: A path inside one of the repository's top-level folders, not inside another path.
REPO_PATH = re.compile(
    r"(?<![\w./~-])((?:" + "|".join(re.escape(d) for d in TOP_DIRS) + r"|toknz_core)/[\w./*-]*)"
)
#: A note at the root: ``DESIGN.md``, ``README.md``.
ROOT_NOTE = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_]*\.md)\b")
#: A relative path that climbs with ``../`` (resolved from the citing file).
CLIMBING = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.-][\w./-]*)")
#: An absolute path into the folder that holds the repository.
BESIDE = re.compile(re.escape(str(REPO.parent)) + r"/[\w./-]+")
#: A Markdown link target.
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _sources() -> list[Path]:
    files = sorted((REPO / "toknz").rglob("*.py"))
    files += sorted((REPO / "rust-free-core" / "toknz_core").rglob("*.py"))
    files += sorted((REPO / "docs").rglob("*.md"))
    files += sorted((REPO / "benchmarks").glob("*.py"))
    files.append(REPO / "README.md")
    return files


def _exists(rel: str, base: Path = REPO) -> bool:
    if any(ch in rel for ch in "*?["):
        return bool(glob.glob(str(base / rel)))
    return (base / rel).exists()


def _problems_in(path: Path, text: str | None = None) -> list[str]:
    """The bad citations in ``path`` (or in ``text``, read as if it were that file)."""
    if text is None:
        text = path.read_text(encoding="utf-8")
    where = path.relative_to(REPO)
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):

        def report(ref: str, why: str, lineno: int = lineno) -> None:
            problems.append(f"{where}:{lineno}: {ref!r} {why}")

        for match in BESIDE.finditer(line):
            if not match.group(0).startswith(str(REPO) + "/"):
                report(match.group(0).rstrip("."), "is outside the repository")
        for match in CLIMBING.finditer(line):
            ref = match.group(1).rstrip(".")
            target = (path.parent / ref).resolve()
            if not target.is_relative_to(REPO):
                report(ref, "is outside the repository")
            elif not target.exists():
                report(ref, "does not exist")
        for match in REPO_PATH.finditer(line):
            ref = match.group(1).rstrip(".")
            if "<" in ref or "{" in ref or "..." in line[match.start() : match.end() + 3]:
                continue
            if ref.startswith("toknz_core/"):
                ref = "rust-free-core/" + ref
            if not _exists(ref):
                report(match.group(1), "does not exist")
        for match in ROOT_NOTE.finditer(line):
            if not (REPO / match.group(1)).exists():
                report(match.group(1), "is not a file at the repository root")
        if path.suffix == ".md":
            for match in MD_LINK.finditer(line):
                target = match.group(1).split("#", 1)[0]
                if not target or re.match(r"[a-z][a-z0-9+.-]*:", target):  # a URL, an anchor
                    continue
                if not _exists(target, path.parent):
                    report(match.group(1), "is a link to nothing")
    return problems


def test_cited_repository_files_exist() -> None:
    problems = [p for path in _sources() for p in _problems_in(path)]
    assert not problems, "citations of files the repository lacks:\n" + "\n".join(problems)


def test_the_scanner_finds_what_it_should() -> None:
    """The patterns catch missing files and paths out of the repository, and leave examples alone."""
    probe = (
        "See DESIGN.md, `benchmarks/nope.py`, docs/missing.md and ../../notes/DATA.md,\n"
        f"{REPO.parent}/notes/X.md, ../gone.md; fine: ../README.md, {REPO}/docs/corpora.md.\n"
        "[gone](bench/gone.png) [ok](bench/encode.png) [web](https://example.org/x.md)\n"
        "Fine: README.md, docs/benchmarks.md, toknz_core/encode.py, corpora/en/, "
        "tokenizer.json, OUT.json, path/to/docs/x.md, ~/tests/y.py, docs/<name>.md, "
        "docs/bench/*.jsonl, tests/test_mixture.py::test_x, toknz/train/presets/.\n"
    )
    found = _problems_in(REPO / "docs" / "probe.md", probe)
    refs = sorted(p.split(": ", 1)[1].split("'")[1] for p in found)
    assert refs == sorted(
        [
            "DESIGN.md",
            "benchmarks/nope.py",
            "docs/missing.md",
            "../../notes/DATA.md",
            f"{REPO.parent}/notes/X.md",
            "../gone.md",
            "bench/gone.png",
        ]
    ), found


def test_no_benchmark_module_shadows_an_installed_one() -> None:
    """pytest puts benchmarks/ on sys.path (pyproject's ``pythonpath``), so tests can import
    benchmark helpers by name; a benchmark named like an installed package (``kernels.py``
    against the ``kernels`` package transformers imports) would shadow it in every test."""
    import importlib.metadata
    import sys

    installed = set(importlib.metadata.packages_distributions()) | set(sys.stdlib_module_names)
    names = {p.stem for p in (REPO / "benchmarks").glob("*.py")}
    assert sorted(names & installed) == []
