"""Replay a cleaned merge list over one category's sample: pair counts per step, incrementally.

:func:`replay_sample` runs :func:`toknz_core.replay.replay_merges` on a
:class:`~toknz.analysis.samples.CategorySample` and returns
:class:`PairCounts`: the pair counts before the first merge, the count of
each step's merged pair, and each step's changes (pair keys
``left << 32 | right``, int64 counts).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toknz.analysis.merges import MergeList
from toknz.analysis.samples import CategorySample


@dataclass
class PairCounts:
    """What a category's sample would have shown at each merge step (all counts int64).

    ``init_keys``/``init_counts``: pairs before the first merge;
    ``merge_counts[t]``: the count of merge ``t``'s pair just before it
    (0 when its parts never meet in the sample); step ``t``'s changes are
    ``delta_keys/delta_values[delta_offsets[t]:delta_offsets[t + 1]]``.
    """

    init_keys: np.ndarray
    init_counts: np.ndarray
    merge_counts: np.ndarray
    delta_offsets: np.ndarray
    delta_keys: np.ndarray
    delta_values: np.ndarray

    @property
    def total_pairs(self) -> int:
        """Pairs before the first merge (the per-category normalizer of the LP)."""
        return int(self.init_counts.sum())

    @property
    def steps(self) -> int:
        return int(self.merge_counts.shape[0])

    def counts_at(self, step: int) -> dict[int, int]:
        """Every pair's count just before merge ``step`` (0 <= step <= steps), as key -> count.

        Linear in the changes before ``step``; for tests and inspection.
        """
        out = dict(zip(self.init_keys.tolist(), self.init_counts.tolist(), strict=True))
        end = int(self.delta_offsets[step])
        for k, d in zip(
            self.delta_keys[:end].tolist(), self.delta_values[:end].tolist(), strict=True
        ):
            c = out.get(k, 0) + d
            if c:
                out[k] = c
            else:
                out.pop(k, None)
        return out


def pair_key(left: int, right: int) -> int:
    """The int64 key of pair ``(left, right)``."""
    return (int(left) << 32) | int(right)


def replay_arrays(
    symbols: np.ndarray, offsets: np.ndarray, counts: np.ndarray, merges: MergeList
) -> PairCounts:
    """Replay ``merges`` over words in CSR form (int32 symbols, int64 offsets and counts)."""
    from toknz_core.replay import replay_merges

    return PairCounts(
        *replay_merges(
            np.ascontiguousarray(symbols, dtype=np.int32),
            np.ascontiguousarray(offsets, dtype=np.int64),
            np.ascontiguousarray(counts, dtype=np.int64),
            np.ascontiguousarray(merges.left, dtype=np.int32),
            np.ascontiguousarray(merges.right, dtype=np.int32),
            np.ascontiguousarray(merges.new, dtype=np.int32),
        )
    )


def replay_sample(sample: CategorySample, merges: MergeList) -> PairCounts:
    """Replay ``merges`` over ``sample``'s words."""
    return replay_arrays(sample.symbols, sample.offsets, sample.counts, merges)


def replay_samples(
    samples: Sequence[CategorySample], merges: MergeList, *, threads: int | None = None
) -> list[PairCounts]:
    """Replay ``merges`` over every sample, on ``threads`` threads (default: usable cores).

    The kernel releases the GIL, so categories replay side by side; the
    result is :func:`replay_sample` of each, in order.

    >>> replay_samples([], None, threads=2)
    []
    """
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if threads <= 1 or len(samples) <= 1:
        return [replay_sample(s, merges) for s in samples]
    from concurrent.futures import ThreadPoolExecutor

    # The first call compiles (or loads) the kernel once, before the threads start.
    first = replay_sample(samples[0], merges)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        rest = list(pool.map(lambda s: replay_sample(s, merges), samples[1:]))
    return [first, *rest]


__all__ = ["PairCounts", "pair_key", "replay_arrays", "replay_sample", "replay_samples"]
