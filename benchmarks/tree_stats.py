"""The shape of the code at a git revision: lines per package, longest functions, big modules.

    python benchmarks/tree_stats.py                 # the working tree
    python benchmarks/tree_stats.py --rev bbfe555^  # any revision (read with git show)
    python benchmarks/tree_stats.py --rev A --rev B # side by side

Counts physical lines of ``*.py`` files per package (sub-packages apart), the longest
functions (by lines, ``ast`` end minus start) and the modules over 600 lines, for
``toknz/``, ``rust-free-core/toknz_core/``, ``tests/`` and ``benchmarks/``. Prints
Markdown.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("toknz", "rust-free-core/toknz_core", "tests", "benchmarks")


def _files(rev: str | None) -> dict[str, str]:
    """Path -> source of every tracked ``*.py`` under :data:`TOPS` at ``rev`` (None: work tree)."""
    if rev is None:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", *TOPS],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return {
            p: (ROOT / p).read_text(encoding="utf-8")
            for p in listed
            if p.endswith(".py") and (ROOT / p).is_file()
        }
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "--", *TOPS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        p: subprocess.run(
            ["git", "show", f"{rev}:{p}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        for p in listed
        if p.endswith(".py")
    }


@dataclass
class TreeStats:
    """``packages``: folder -> (modules, lines); ``longest``: (lines, path:function), longest
    first; ``big``: (lines, path) of the modules over 600 lines."""

    packages: dict[str, tuple[int, int]]
    longest: list[tuple[int, str]]
    big: list[tuple[int, str]]


def stats(rev: str | None) -> TreeStats:
    """Lines per package, the 10 longest functions and the modules over 600 lines."""
    files = _files(rev)
    per_package: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    functions: list[tuple[int, str]] = []
    big: list[tuple[int, str]] = []
    for path, source in files.items():
        lines = source.count("\n")
        package = str(Path(path).parent)
        per_package[package][0] += 1
        per_package[package][1] += lines
        if lines > 600:
            big.append((lines, path))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno:
                functions.append((node.end_lineno - node.lineno + 1, f"{path}:{node.name}"))
    functions.sort(reverse=True)
    big.sort(reverse=True)
    return TreeStats(
        {k: (n, lines) for k, (n, lines) in sorted(per_package.items())}, functions[:10], big
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", action="append", help="a git revision (repeat to compare)")
    args = parser.parse_args()
    for rev in args.rev or [None]:
        s = stats(rev)
        print(f"## {rev or 'working tree'}\n")
        print("| package | modules | lines |\n| --- | ---: | ---: |")
        for package, (n, lines) in s.packages.items():
            print(f"| `{package}/` | {n} | {lines:,} |")
        print("\nLongest functions:\n")
        for lines, name in s.longest:
            print(f"- {lines} lines: `{name}`")
        print("\nModules over 600 lines:\n")
        for lines, path in s.big:
            print(f"- {lines:,}: `{path}`")
        print()


if __name__ == "__main__":
    main()
