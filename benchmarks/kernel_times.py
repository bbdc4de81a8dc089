"""Time the training and replay kernels on the shipped corpora: for before/after checks.

    python benchmarks/kernel_times.py                   # this checkout
    git worktree add /tmp/before REV && \\
      PYTHONPATH=/tmp/before:/tmp/before/rust-free-core python benchmarks/kernel_times.py

Counts the words of ``corpora/`` (cl100k split, one thread) once, then prints the best of
five runs of the trainer kernel (``learn_merges`` to 32,768 tokens) and of the replay
kernel (``toknz_core.replay.replay_merges`` of the first 8,000 learned merges over the
same words), with a checksum of each output so two checkouts can be checked to agree.
Run both checkouts alternately on a quiet machine and compare the best times.
"""

from __future__ import annotations

import sys
import time
import zlib
from pathlib import Path

import numpy as np
import toknz_core
from toknz_core.replay import replay_merges

from toknz.train.shards import count_corpus
from toknz.train.trainer import byte_alphabet_order, learn_merges

ROOT = Path(__file__).resolve().parent.parent


def best_of(fn, runs: int = 5) -> tuple[float, object]:  # noqa: ANN001
    """The best wall time of ``runs`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    counts, _ = count_corpus(
        [str(ROOT / "corpora")],
        pattern="cl100k",
        normalize="none",
        cased=True,
        unit="document",
        field_name=None,
        glob="*.txt",
        skip_invalid=False,
        threads=1,
        max_word_bytes=10_000,
        progress=False,
        engine="local",
        scheduler=None,
    )
    print(f"kernels from {Path(toknz_core.__file__).parent}", file=sys.stderr)
    learn_merges(counts, 300)  # compile / load the kernel
    t_train, result = best_of(lambda: learn_merges(counts, 32_768))
    merges = np.array(result.merges[:8_000], dtype=np.int32)  # type: ignore[attr-defined]
    lut = np.empty(256, dtype=np.int32)
    lut[np.array(byte_alphabet_order())] = np.arange(256, dtype=np.int32)
    sym = lut[counts.arena]
    off = counts.offsets.astype(np.int64)
    cnt = counts.counts.astype(np.int64)
    left, right, new = merges[:, 0].copy(), merges[:, 1].copy(), merges[:, 2].copy()
    replay_merges(sym, off, cnt, left[:10], right[:10], new[:10])
    t_replay, replayed = best_of(lambda: replay_merges(sym, off, cnt, left, right, new))
    train_sum = zlib.crc32(np.array(result.merges, dtype=np.int64).tobytes())  # type: ignore[attr-defined]
    replay_sum = zlib.crc32(b"".join(np.ascontiguousarray(a).tobytes() for a in replayed))  # type: ignore[union-attr]
    print(f"train  32,768 tokens: best {t_train:.3f} s  (merges crc32 {train_sum:08x})")
    print(f"replay 8,000 merges:  best {t_replay:.3f} s  (output crc32 {replay_sum:08x})")


if __name__ == "__main__":
    main()
