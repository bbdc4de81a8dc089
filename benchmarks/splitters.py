#!/usr/bin/env python3
"""Speed of toknz's ``hat`` word rule against Aleph Alpha's ``hat-splitter``, per corpus kind.

    python benchmarks/splitters.py               # all of corpora/en, code, multi; 5 rounds
    python benchmarks/splitters.py --quick       # 0.3 MB per kind, 3 rounds
    python benchmarks/splitters.py --rounds 9

Inputs: the prose (corpora/en), code (corpora/code) and multilingual (corpora/multi) files of
``corpora/MANIFEST``, cut into documents of about 10 KB at line ends (the cutter of
``benchmarks/pretokenize.py``). Contenders, each one call per document on one thread, str in
and a list of str out:

- ``hat-splitter``: ``HATSplitter().split(doc)`` (``pip install hat-splitter``; a test and
  benchmark reference only, never a toknz dependency: its license is non-commercial);
- ``toknz``: :func:`toknz.words.split_words` with ``rule="hat"``;
- ``toknz-batch``: :func:`toknz.words.split_words_batch` on all documents of the kind at once.

Both are warmed up first (Numba code loaded, tables loaded). Each round times every contender
once, in alternating order (A B C, then C B A, ...), and the words of every contender are
checked equal to ``hat-splitter``'s in the same run (a mismatch stops the script). The table
gives the median over rounds of the MB/s of UTF-8 input (wall clock) and the median of the
per-round speed ratios against ``hat-splitter``. One JSON line per contender, kind and round
goes to ``docs/bench/splitters.jsonl`` (replaced each run); the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    describe_machine,
    free_cores,
    git_state,
    library_versions,
    load_average,
    machine_info,
    write_marked,
)
from pretokenize import corpus_documents

from toknz.words import split_words, split_words_batch

ROOT = Path(__file__).resolve().parent.parent

JSONL = ROOT / "docs" / "bench" / "splitters.jsonl"
DOC = ROOT / "docs" / "torch.md"
KINDS = {"prose": "en", "code": "code", "multilingual": "multi"}


def contenders(hat: object) -> dict[str, Callable[[list[str]], list[list[str]]]]:
    return {
        "hat-splitter": lambda docs: [hat.split(d) for d in docs],  # type: ignore[attr-defined]
        "toknz": lambda docs: [split_words(d, rule="hat") for d in docs],
        "toknz-batch": lambda docs: split_words_batch(docs, rule="hat"),
    }


def run(rounds: int, limit_mb: float | None) -> list[dict[str, object]]:
    try:
        from hat_splitter import HATSplitter  # type: ignore[attr-defined]  # (stub says HatSplitter)
    except ImportError:
        sys.exit("benchmarks/splitters.py needs the reference: pip install hat-splitter")
    fns = contenders(HATSplitter())
    docs_by_kind = corpus_documents(limit_mb)
    machine = machine_info()
    common = {
        "kind": "splitters",
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", "benchmarks/splitters.py", *sys.argv[1:]]),
        "cpu_model": machine["cpu_model"],
        "cores": machine["cores"],
        "git": git_state(),
        "versions": library_versions(("toknz", "hat-splitter", "numba", "numpy", "regex")),
        "load_average": load_average(),
        "free_cores": free_cores(),
    }
    rows: list[dict[str, object]] = []
    names = list(fns)
    for category, docs in docs_by_kind.items():
        nbytes = sum(len(d.encode("utf-8")) for d in docs)
        reference = fns["hat-splitter"](docs)  # warm-up, and the words to match
        for name in names[1:]:
            if fns[name](docs) != reference:
                sys.exit(f"{name} and hat-splitter give different words on {category}")
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                t0 = time.perf_counter()
                words = fns[name](docs)
                wall = time.perf_counter() - t0
                match = words == reference
                if not match:
                    sys.exit(f"{name} and hat-splitter give different words on {category}")
                rows.append(
                    {
                        **common,
                        "category": category,
                        "folder": f"corpora/{KINDS[category]}",
                        "contender": name,
                        "round": r,
                        "bytes": nbytes,
                        "docs": len(docs),
                        "words": sum(len(w) for w in words),
                        "wall_s": wall,
                        "mb_per_s": nbytes / wall / 1e6,
                        "words_match": match,
                    }
                )
    return rows


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| corpus | MB | hat-splitter MB/s | toknz MB/s | ratio | toknz-batch MB/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for category, folder in KINDS.items():
        mine = [r for r in rows if r["category"] == category]
        if not mine:
            continue

        def speeds(name: str, mine: list[dict[str, object]] = mine) -> dict[object, float]:
            return {r["round"]: float(r["mb_per_s"]) for r in mine if r["contender"] == name}  # type: ignore[arg-type]

        hat, tok, batch = speeds("hat-splitter"), speeds("toknz"), speeds("toknz-batch")
        ratio = statistics.median(tok[k] / hat[k] for k in hat)
        ratio_b = statistics.median(batch[k] / hat[k] for k in hat)
        mb = float(mine[0]["bytes"]) / 1e6  # type: ignore[arg-type]
        lines.append(
            f"| corpora/{folder} | {mb:.2f} | {statistics.median(hat.values()):.1f} "
            f"| {statistics.median(tok.values()):.1f} | {ratio:.2f}x "
            f"| {statistics.median(batch.values()):.1f} | {ratio_b:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (at least 3)")
    ap.add_argument("--quick", action="store_true", help="0.3 MB per kind, 3 rounds")
    ap.add_argument("--mb", type=float, default=None, help="MB per kind (default: all)")
    args = ap.parse_args()
    rounds = 3 if args.quick else max(3, args.rounds)
    limit = 0.3 if args.quick else args.mb
    rows = run(rounds, limit)
    JSONL.parent.mkdir(parents=True, exist_ok=True)
    JSONL.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = (
        f"Machine: {describe_machine(machine_info())}; load {load_average()}; "
        f"`python benchmarks/splitters.py{' --quick' if args.quick else ''}`. "
        f"Rounds: {rounds}, alternating order; medians; every contender's words checked.\n\n"
        + table(rows)
    )
    print(report)
    if not args.quick and args.mb is None:
        write_marked(DOC, "<!-- splitters -->", report)


if __name__ == "__main__":
    main()
