#!/usr/bin/env python3
"""Resident memory of one process across many exact FIM calls, each with a fresh ``HFCausalLM``.

    python benchmarks/bytelm_memory.py --cases 12          # Qwen2.5-Coder-0.5B, the FIM cases of bytelevel.py

Each case builds a new ``HFCausalLM`` and ``FimModel`` (as ``benchmarks/bytelevel.py``
does), fills the middle with ``toknz.bytelevel.fim``, drops both and runs the garbage
collector, then prints the process's resident memory (``/proc/self/statm``) and the
Python-traced allocations that grew since the first case (``tracemalloc``; torch's own
allocations are not traced). Memory that keeps growing from case to case is held past
the call: by a cache, or by the allocator not giving freed memory back.
Needs the converted model (``toknz fetch qwen2.5-coder-0.5b``) and the
held-out files of ``benchmarks/bytelevel.py``.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import bytelevel as bench


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=12, help="FIM cases to run, in benchmark order")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from toknz.bytelevel import FimModel, HFCausalLM

    tok, model, _ = bench.load_model(bench.FIM_MODEL, args.threads)
    cases, _ = bench.fim_cases(args.cases, bench.SEED)
    print(f"loaded: {rss_mib():.0f} MiB")
    first = None
    for k, case in enumerate(cases):
        t0 = time.perf_counter()
        lm = HFCausalLM(model, max_states=256)
        FimModel(lm, tok).exact(case["prefix"], case["suffix"], len(case["middle"]) + 10)
        del lm
        gc.collect()
        traced = ""
        if first is None:
            tracemalloc.start(4)
            first = tracemalloc.take_snapshot()
        else:
            grown = sum(
                s.size_diff for s in tracemalloc.take_snapshot().compare_to(first, "filename")
            )
            traced = f", traced growth since case 0 {grown / 2**20:.0f} MiB"
        print(
            f"case {k}: {rss_mib():.0f} MiB resident{traced} ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
