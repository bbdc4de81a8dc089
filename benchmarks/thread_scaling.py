#!/usr/bin/env python3
"""Why two threads barely beat one in toknz's batch API: fresh text against cached text.

    python benchmarks/thread_scaling.py            # writes docs/benchmarks.md's marked section
    python benchmarks/thread_scaling.py --no-write

benchmarks/encode.py measures each round on text no contender has seen, in a fresh process
per mode; there toknz's ``encode_batch_to_numpy`` with 2 threads is about as fast as with
one. This script separates the two things a second thread changes:

- *fresh*: like encode.py, each round encodes a slice of documents not seen before;
- *repeat*: each round encodes the same slice again, so every piece is already in the
  word caches (each worker's own cache: a cache is never shared between threads);
- *kernel, repeat*: the compiled batch kernel alone (``toknz_core.docencode.encode_documents``)
  on the repeat slice, called from ``threads`` plain threads on equal shares of it, each with
  its own word cache: no thread pool, no GIL-held step between calls. If this scales and the
  batch API does not, the loss is in the Python around the kernel.

Each (encoding, threads) pair runs in its own process: load, warm up on a separate slice,
then ``--rounds`` rounds of each kind, median MB/s. If 2 threads scale on *repeat* but not
on *fresh*, the cost is the cache misses each thread pays on its own (what one thread's
cache already holds, the other's does not), not the thread pool or the GIL. Text: the
multilingual and code files of corpora/ (corpora/MANIFEST), documents of ~4 KB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    ROOT,
    describe_machine,
    free_cores,
    git_state,
    load_average,
    machine_info,
    write_marked,
)
from encode import split_docs

DOC = ROOT / "docs" / "benchmarks.md"
MARK = "<!-- thread_scaling -->"
FILES = (
    "multi/de.txt",
    "multi/ru.txt",
    "multi/ja.txt",
    "code/python_stdlib.txt",
    "code/go_stdlib.txt",
)


def documents() -> list[str]:
    """~4 KB documents of the files above, interleaved (file order, then round robin)."""
    per_file = [split_docs((ROOT / "corpora" / f).read_bytes(), 4000) for f in FILES]
    docs: list[str] = []
    for i in range(max(len(p) for p in per_file)):
        docs += [p[i] for p in per_file if i < len(p)]
    return docs


def worker(encoding: str, threads: int, rounds: int, slice_docs: int) -> dict[str, float]:
    import toknz

    tok = toknz.load(encoding)
    docs = documents()
    warm, rest = docs[:slice_docs], docs[slice_docs:]
    tok.encode_batch_to_numpy(warm, num_threads=threads)
    out: dict[str, float] = {}
    out.update(kernel_alone(tok, warm, threads, rounds))
    for kind in ("fresh", "repeat"):
        speeds = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for r in range(rounds):
            part = rest[r * slice_docs : (r + 1) * slice_docs] if kind == "fresh" else warm
            size = sum(len(d.encode("utf-8")) for d in part)
            t0 = time.perf_counter()
            tok.encode_batch_to_numpy(part, num_threads=threads)
            speeds.append(size / 1e6 / (time.perf_counter() - t0))
        out[kind] = statistics.median(speeds)
        out[kind + " cpu/wall"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return out


def kernel_alone(tok: object, docs: list[str], threads: int, rounds: int) -> dict[str, float]:
    """Median MB/s (and cpu/wall) of ``encode_documents`` on ``docs`` (already cached) split
    into ``threads`` equal shares, one plain thread and one word cache per share."""
    import threading

    import numpy as np
    from toknz_core.docencode import encode_documents, new_word_cache

    model = tok.model  # type: ignore[attr-defined]
    kind = tok._scanner_kind  # type: ignore[attr-defined]
    blob, views = model._packed[kind]
    shares = []
    for t in range(threads):
        datas = [d.encode("utf-8") for d in docs[t::threads]]
        sizes = np.zeros(len(datas) + 1, dtype=np.int64)
        np.cumsum([len(d) for d in datas], out=sizes[1:])
        shares.append((np.frombuffer(b"".join(datas), dtype=np.uint8), sizes, new_word_cache()))
    size = sum(s[0].size for s in shares) / 1e6

    def run(share: tuple) -> None:
        data, sizes, cache = share
        encode_documents(kind, data, sizes, views[0], *views[1:], cache)

    for share in shares:
        run(share)  # compiled, and every piece in its share's cache
    speeds = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        workers = [threading.Thread(target=run, args=(share,)) for share in shares]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        speeds.append(size / (time.perf_counter() - t0))
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return {"kernel, repeat": statistics.median(speeds), "kernel, repeat cpu/wall": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--slice-docs", type=int, default=45, help="documents per batch call")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--worker", nargs=2, metavar=("ENCODING", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        enc, threads = args.worker
        print(json.dumps(worker(enc, int(threads), args.rounds, args.slice_docs)))
        return 0
    load_before, cores = load_average(), free_cores()
    rows = []
    for enc in ("cl100k_base", "o200k_base"):
        got = {}
        for threads in (1, 2):
            cmd = [sys.executable, __file__, "--worker", enc, str(threads)]
            cmd += ["--rounds", str(args.rounds), "--slice-docs", str(args.slice_docs)]
            res = subprocess.run(
                cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).parent
            )
            got[threads] = json.loads(res.stdout.strip().splitlines()[-1])
        for kind in ("fresh", "repeat", "kernel, repeat"):
            one, two = got[1][kind], got[2][kind]
            cpu = got[2][kind + " cpu/wall"]
            rows.append(
                f"| {enc} | {kind} | {one:.1f} | {two:.1f} | {two / one:.2f}× | {cpu:.2f} |"
            )
    body = "\n".join(
        [
            f"Written by `python benchmarks/thread_scaling.py` ({git_state()}; "
            f"{describe_machine(machine_info())}; load {load_before}, {cores:.2f} free cores "
            f"for 2 threads at start). `encode_batch_to_numpy` on batches of {args.slice_docs} "
            f"documents of ~4 KB (German, Russian, Japanese, Python, Go), median of "
            f"{args.rounds} rounds, one process per encoding and thread count. *fresh*: every "
            "round new text; *repeat*: the same text every round (its pieces cached); *kernel, "
            "repeat*: the compiled kernel alone on the repeat text, one plain thread and word "
            "cache per half, no Python between calls; *cpu/wall*: "
            "the process's CPU seconds over wall seconds during the 2-thread rounds (2: both "
            "threads busy all the time).",
            "",
            "| encoding | text | 1 thread MB/s | 2 threads MB/s | 2 ÷ 1 | cpu/wall, 2 threads |",
            "|---|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        write_marked(DOC, MARK, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
