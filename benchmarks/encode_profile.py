#!/usr/bin/env python3
"""What bounds toknz's single-thread encoding: time per piece in each phase of the compiled path.

    python benchmarks/encode_profile.py                 # cl100k_base and o200k_base
    python benchmarks/encode_profile.py --encodings cl100k_base --rounds 5

For prose, code and multilingual text from corpora/ (documents of ~10 KB, the
first third used only to warm up), one thread, best of ``--rounds``:

- ``split``: the compiled scanner alone (:func:`toknz_core.pretok.split`);
- ``kernel, warm cache``: BPE of the split pieces with the word cache warmed
  on other documents (what a long-running process sees on new text);
- ``kernel, hits only``: the same pieces a second time (every short piece cached);
- ``kernel, no cache``: a one-slot cache, so every piece takes the shortcut
  lookup or the merge (the cost of a cache miss);
- ``to list``: ``ndarray.tolist()`` of the ids (what the list API adds);
- ``end to end``: ``encode_ordinary_to_numpy``, for reference.

Times are nanoseconds per piece; ``miss rate`` is the share of pieces of 2-24
bytes whose word-cache slot held another piece. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
from toknz_core import docencode
from toknz_core.pretok import split

import toknz
from toknz.pipeline.unicode_tables import load_table

ROOT = Path(__file__).resolve().parent.parent

CORPORA = {
    "prose": ["en/austen_emma.txt"],
    "code": [f"code/{n}" for n in ("python_stdlib.txt", "go_stdlib.txt", "rust_core.txt")],
    "multilingual": [f"multi/{n}.txt" for n in ("de", "ru", "ja", "zh-cn", "hi", "ko")],
}


def documents(paths: list[str], size: int = 10_000) -> list[str]:
    docs = []
    for rel in paths:
        text = (ROOT / "corpora" / rel).read_text(encoding="utf-8")
        i = 0
        while i < len(text):
            j = text.find("\n", i + size)
            j = len(text) if j < 0 else j + 1
            docs.append(text[i:j])
            i = j
    random.Random(0).shuffle(docs)
    return docs


def best(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def miss_rate(arrays: list[np.ndarray], ends: list[np.ndarray], warm: list[tuple]) -> float:
    """Share of 2-24-byte pieces whose direct-mapped cache slot holds another piece (simulated)."""
    slots: dict[int, bytes] = {}
    mask = docencode.CACHE_SLOTS - 1
    m64 = (1 << 64) - 1

    def slot(b: bytes) -> int:
        w = [int.from_bytes(b[k : k + 8].ljust(8, b"\0"), "little") for k in (0, 8, 16)]
        h = ((w[0] ^ len(b)) * 0x9E3779B97F4A7C15) & m64
        h = ((h ^ w[1]) * 0xC2B2AE3D27D4EB4F) & m64
        h = ((h ^ w[2]) * 0x165667B19E3779F9) & m64
        return (h >> 32) & mask

    def pieces(a: np.ndarray, e: np.ndarray):
        start = 0
        for end in e.tolist():
            b = a[start:end].tobytes()
            start = end
            if 2 <= len(b) <= docencode.CACHE_WORD:
                yield b

    for a, e in warm:
        for b in pieces(a, e):
            slots[slot(b)] = b
    total = misses = 0
    for a, e in zip(arrays, ends, strict=True):
        for b in pieces(a, e):
            total += 1
            k = slot(b)
            if slots.get(k) != b:
                misses += 1
                slots[k] = b
    return misses / max(total, 1)


def profile(encoding: str, category: str, rounds: int) -> dict[str, float]:
    tok = toknz.load(encoding)
    kind = np.int64(tok._scanner_kind)
    table = load_table()
    tables = tok.model._fast_tables  # the tables of docencode.encode_pieces
    docs = documents(CORPORA[category])
    cut = len(docs) // 3
    warm_docs, docs = docs[:cut], docs[cut:]
    arrays = [np.frombuffer(d.encode("utf-8"), dtype=np.uint8) for d in docs]
    ends = [split(kind, a, table) for a in arrays]
    warm_arrays = [np.frombuffer(d.encode("utf-8"), dtype=np.uint8) for d in warm_docs]
    warm_ends = [split(kind, a, table) for a in warm_arrays]
    n_pieces = sum(len(e) for e in ends)
    n_bytes = sum(len(a) for a in arrays)

    def kernel(cache: np.ndarray) -> None:
        for a, e in zip(arrays, ends, strict=True):
            docencode.encode_pieces(a, e, *tables, cache)

    def warmed() -> np.ndarray:
        cache = docencode.new_word_cache()
        for a, e in zip(warm_arrays, warm_ends, strict=True):
            docencode.encode_pieces(a, e, *tables, cache)
        return cache

    # Each warm-cache round starts from a cache warmed on the warm-up documents only.
    warm_times = []
    for _ in range(rounds):
        cache = warmed()
        t = time.perf_counter()
        kernel(cache)
        warm_times.append(time.perf_counter() - t)
    hot = warmed()
    kernel(hot)
    one_slot = np.zeros((1, 8), dtype=np.uint64)
    ids = [docencode.encode_pieces(a, e, *tables, hot) for a, e in zip(arrays, ends, strict=True)]
    for d in warm_docs:
        tok.encode_ordinary_to_numpy(d)
    row = {
        "split": best(lambda: [split(kind, a, table) for a in arrays], rounds),
        "kernel, warm cache": min(warm_times),
        "kernel, hits only": best(lambda: kernel(hot), rounds),
        "kernel, no cache": best(lambda: kernel(one_slot), rounds),
        "to list": best(lambda: [x.tolist() for x in ids], rounds),
        "end to end": best(lambda: [tok.encode_ordinary_to_numpy(d) for d in docs], rounds),
    }
    out = {k: v / n_pieces * 1e9 for k, v in row.items()}
    out["MB/s end to end"] = n_bytes / row["end to end"] / 1e6
    out["bytes/piece"] = n_bytes / n_pieces
    out["miss rate"] = miss_rate(arrays, ends, list(zip(warm_arrays, warm_ends, strict=True)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--encodings", nargs="*", default=["cl100k_base", "o200k_base"])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cols = [
        "split",
        "kernel, warm cache",
        "kernel, hits only",
        "kernel, no cache",
        "to list",
        "end to end",
    ]
    print("ns per piece, one thread, best of", args.rounds, "rounds")
    print(
        f"{'encoding':12} {'corpus':13} "
        + " ".join(f"{c:>18}" for c in cols)
        + f" {'bytes/piece':>11} {'miss rate':>9} {'MB/s':>6}"
    )
    for enc in args.encodings:
        for category in CORPORA:
            r = profile(enc, category, args.rounds)
            print(
                f"{enc:12} {category:13} "
                + " ".join(f"{r[c]:18.1f}" for c in cols)
                + f" {r['bytes/piece']:11.2f} {r['miss rate']:9.3f} {r['MB/s end to end']:6.1f}"
            )


if __name__ == "__main__":
    main()
