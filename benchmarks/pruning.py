#!/usr/bin/env python3
"""What ``--min-count`` pruning of count shards costs in exactness.

    python benchmarks/pruning.py                       # corpora/, 8,192 tokens, cl100k
    python benchmarks/pruning.py DATA/ --vocab-size 32768 --min-count 2 5 10

Counts the corpus once (:func:`toknz.train.shards.count_corpus`), then for each
``--min-count`` learns the merges with and without the words seen fewer times
(:func:`toknz.train.shards.pruning_cost`) and prints a Markdown table: distinct
words kept, the index of the first merge that differs, how many positions of
the merge list differ and how many exact merges the pruned run never learns.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from toknz.train.shards import count_corpus, pruning_cost

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="*", default=[str(ROOT / "corpora")])
    parser.add_argument("--glob", default="*.txt")
    parser.add_argument("--pattern", default="cl100k")
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--min-count", type=int, nargs="+", default=[1, 2, 3, 5, 10, 100])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    table, meta = count_corpus(
        args.corpus, pattern=args.pattern, glob=args.glob, threads=args.threads
    )
    print(
        f"{meta.input_files} files, {meta.input_bytes / 1e6:.1f} MB, {len(table):,} distinct "
        f"words, {int(table.counts.sum()):,} in all; counted in {time.perf_counter() - start:.1f} s; "
        f"vocab {args.vocab_size:,}, pattern {args.pattern}\n"
    )
    print(
        "| min_count | words kept | share kept | first differing merge | merges differing | exact merges never learned |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.min_count:
        cost = pruning_cost(table, args.vocab_size, n)
        first = "none" if cost.first_difference is None else f"{cost.first_difference:,}"
        print(
            f"| {n} | {cost.words_kept:,} | {cost.words_kept / cost.words:.1%} | {first} | "
            f"{cost.differing:,} of {cost.merges:,} | {cost.missing:,} |"
        )


if __name__ == "__main__":
    main()
