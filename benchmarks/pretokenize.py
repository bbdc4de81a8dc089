#!/usr/bin/env python3
"""Speed of the compiled pre-tokenizers against ``regex.findall``, per pattern and corpus kind.

    python benchmarks/pretokenize.py              # all patterns, all of corpora/ per category
    python benchmarks/pretokenize.py --quick      # 0.3 MB per category, 2 rounds
    python benchmarks/pretokenize.py --patterns cl100k o200k --rounds 5
    python benchmarks/pretokenize.py --clock cpu --compile   # CPU time; also a cold compile

A full run (no ``--quick``, ``--mb`` or ``--patterns``) replaces the section
"## Pre-tokenization" of docs/benchmarks.md with its table.

Inputs: the prose, code and multilingual files of ``corpora/MANIFEST``, cut into
documents of about 10 KB at line ends; every contender splits every document
with one call per document, on one thread. Contenders:

- ``regex``: ``regex.findall(pattern, doc)`` (the reference);
- ``str``: :func:`toknz.pipeline.fast_pretokenize.compiled_splitter` (str in, list of str out);
- ``bytes``: :func:`toknz.pipeline.fast_pretokenize.split_bytes` on the UTF-8 bytes (offsets out,
  validation on), the form the training word counter uses.

All are warm (compiled, table loaded) before timing; each round times every
contender on all documents, and the best round is reported in MB/s of UTF-8
input (wall clock, or with ``--clock cpu`` the process's CPU time, which a
busy shared machine disturbs less). The pieces are checked against ``regex``
on every document. Then the first-call cost is measured in fresh processes (median of 3): ``import`` of
the module, the class table load (from its disk cache), and the first split
(Numba loading its cached machine code); once with an empty table cache (the
table built with ``regex``); and with ``--compile`` once with an empty Numba
cache (the scanners compiled).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import regex
from _common import (
    describe_machine,
    git_state,
    library_versions,
    load_average,
    machine_info,
    write_section,
)

from toknz.pipeline.fast_pretokenize import compiled_splitter, split_bytes
from toknz.pipeline.pretokenize import PATTERNS

ROOT = Path(__file__).resolve().parent.parent

CATEGORIES = ("prose", "code", "multilingual")
DOC_BYTES = 10_000
DEFAULT_PATTERNS = ["r50k", "cl100k", "o200k", "llama3", "qwen"]


def corpus_documents(limit_mb: float | None) -> dict[str, list[str]]:
    """Documents of ~10 KB per MANIFEST category, in file order."""
    files: dict[str, list[Path]] = {c: [] for c in CATEGORIES}
    for line in (ROOT / "corpora" / "MANIFEST").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("path\t") or not line.strip():
            continue
        path, category = line.split("\t")[:2]
        if category in files:
            files[category].append(ROOT / "corpora" / path)
    docs: dict[str, list[str]] = {}
    for category, paths in files.items():
        out: list[str] = []
        total = 0
        for path in paths:
            buf: list[str] = []
            size = 0
            for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
                buf.append(line)
                size += len(line.encode("utf-8"))
                if size >= DOC_BYTES:
                    out.append("".join(buf))
                    total += size
                    buf, size = [], 0
            if buf:
                out.append("".join(buf))
                total += size
            if limit_mb is not None and total >= limit_mb * 1e6:
                break
        docs[category] = out
    return docs


CLOCK = time.perf_counter


def time_round(fn, docs) -> float:
    t0 = CLOCK()
    for d in docs:
        fn(d)
    return CLOCK() - t0


FIRST_CALL = r"""
import json, time
t0 = time.perf_counter()
from toknz.pipeline.fast_pretokenize import compiled_splitter
from toknz.pipeline.pretokenize import PATTERNS
t1 = time.perf_counter()
split = compiled_splitter(PATTERNS[{name!r}])
t2 = time.perf_counter()
split("Hello world, it's a first call.\n")
t3 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "table": t2 - t1, "first_call": t3 - t2}}))
"""


def first_call_cost(
    name: str, cache: str | None, numba_cache: str | None = None
) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "rust-free-core")])
    if cache is not None:
        env["TOKNZ_CACHE"] = cache
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL.format(name=name)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(
    rows: list[tuple[str, str, float, float, float]],
    sizes: dict[str, int],
    args: argparse.Namespace,
    started: str,
    load_start: str,
    warm: dict[str, float],
    cold: dict[str, float],
) -> str:
    """The markdown section of docs/benchmarks.md for one full run."""
    versions = library_versions(("toknz", "numba", "numpy", "regex"))
    lines = [
        "## Pre-tokenization",
        "",
        "_Written by `benchmarks/pretokenize.py`; re-running it replaces this section only._",
        "",
        f"- command: `python benchmarks/pretokenize.py` ({started})",
        f"- machine: {describe_machine(machine_info())}; load average at start {load_start}, "
        f"at end {load_average()}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- repo: {git_state()}",
        "- input: all of corpora/ per category, cut into documents of ~10 KB at line ends: "
        + ", ".join(f"{c} {sizes[c] / 1e6:.2f} MB" for c in CATEGORIES),
        f"- method: one thread, one call per document, best of {args.rounds} rounds "
        f"({args.clock} clock), MB/s of UTF-8 input; the pieces of every document are "
        "checked against `regex` first. `regex`: `regex.findall(pattern, doc)`; `str`: "
        "`toknz.pipeline.fast_pretokenize.compiled_splitter` (str in, list of str out); `bytes`: "
        "`toknz.pipeline.fast_pretokenize.split_bytes` on the UTF-8 bytes (offsets out, the form the "
        "encoder and the training word counter use)",
        "",
        "| pattern | corpus | `regex` MB/s | `str` MB/s | `bytes` MB/s | `str` ÷ `regex` "
        "| `bytes` ÷ `regex` |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, category, r, s, b in rows:
        lines.append(
            f"| {name} | {category} | {r:.1f} | {s:.1f} | {b:.1f} | {s / r:.1f}× | {b / r:.1f}× |"
        )
    lines += [
        "",
        "First call in a fresh process (median of 3, seconds): import of "
        f"`toknz.pipeline.fast_pretokenize` {warm['import']:.3f}, class-table load {warm['table']:.3f}, "
        f"first split (Numba loading its cached code) {warm['first_call']:.3f}; with an empty "
        f"table cache the table is built from `regex` in {cold['table']:.3f}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patterns", nargs="*", default=DEFAULT_PATTERNS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mb", type=float, default=None, help="at most this many MB per category")
    ap.add_argument("--quick", action="store_true", help="0.3 MB per category, 2 rounds")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time (default) or this process's CPU time (steadier on a shared machine)",
    )
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also time a first call with an empty Numba cache (compiles the scanners)",
    )
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.quick:
        args.mb, args.rounds = 0.3, 2
    docs = corpus_documents(args.mb)
    sizes = {c: sum(len(d.encode("utf-8")) for d in ds) for c, ds in docs.items()}
    print(
        f"python {sys.version.split()[0]}, regex {regex.__version__}, one thread, "
        f"{args.clock} clock"
    )
    print("corpora: " + ", ".join(f"{c} {sizes[c] / 1e6:.2f} MB" for c in CATEGORIES))
    print()
    print(
        f"{'pattern':8} {'corpus':13} {'regex':>8} {'str':>8} {'bytes':>8} {'str x':>7} {'bytes x':>8}"
    )
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = load_average()
    rows: list[tuple[str, str, float, float, float]] = []
    for name in args.patterns:
        pattern = PATTERNS[name]
        compiled = regex.compile(pattern)
        split = compiled_splitter(pattern)
        assert split is not None, name
        encoded = {c: [d.encode("utf-8") for d in ds] for c, ds in docs.items()}
        for category in CATEGORIES:
            ds, bs = docs[category], encoded[category]
            for d, b in zip(ds, bs, strict=True):  # warm up and check
                expected = compiled.findall(d)
                if split(d) != expected:
                    raise SystemExit(f"{name}/{category}: compiled split differs from regex")
                raw, offs = split_bytes(pattern, b)
                if len(offs) != len(expected) + 1:
                    raise SystemExit(f"{name}/{category}: split_bytes differs from regex")
            best = {"regex": float("inf"), "str": float("inf"), "bytes": float("inf")}
            for _ in range(args.rounds):
                best["regex"] = min(best["regex"], time_round(compiled.findall, ds))
                best["str"] = min(best["str"], time_round(split, ds))
                best["bytes"] = min(
                    best["bytes"], time_round(functools.partial(split_bytes, pattern), bs)
                )
            mb = sizes[category] / 1e6
            r, s, b = (mb / best[k] for k in ("regex", "str", "bytes"))
            rows.append((name, category, r, s, b))
            print(f"{name:8} {category:13} {r:8.1f} {s:8.1f} {b:8.1f} {s / r:6.1f}x {b / r:7.1f}x")
    print("(MB/s of UTF-8 input; best of", args.rounds, "rounds)")
    print()
    print("first-call cost in a fresh process (median of 3, seconds):")
    runs = [first_call_cost("cl100k", None) for _ in range(3)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"  import toknz.pipeline.fast_pretokenize {med['import']:.3f}, table load {med['table']:.3f}, "
        f"first split {med['first_call']:.3f}, total {sum(med.values()):.3f}"
    )
    with tempfile.TemporaryDirectory() as empty:
        cold = first_call_cost("cl100k", empty)
    print(
        f"  with an empty table cache: table build {cold['table']:.3f} "
        f"(total {sum(cold.values()):.3f})"
    )
    full = not args.quick and args.mb is None and args.patterns == DEFAULT_PATTERNS
    if full:
        write_section(
            "## Pre-tokenization",
            report(rows, sizes, args, started, load_start, med, cold),
        )
        print("wrote docs/benchmarks.md ('## Pre-tokenization')")
    if args.compile:
        with tempfile.TemporaryDirectory() as empty:
            fresh = first_call_cost("cl100k", None, numba_cache=empty)
        print(
            f"  with an empty Numba cache: first split {fresh['first_call']:.3f} "
            f"(compiles all scanners; total {sum(fresh.values()):.3f})"
        )


if __name__ == "__main__":
    main()
