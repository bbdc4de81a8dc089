"""Infer the data mixture a BPE tokenizer was trained on: :func:`infer_mixture`.

Steps: clean the tokenizer's merge list (:mod:`toknz.analysis.merges`),
count each category's sample once into distinct words with the tokenizer's
own normalizer and pre-tokenizer (:mod:`toknz.analysis.samples`), replay
the merges over each (:mod:`toknz.analysis.replay`), solve the LP
(:mod:`toknz.analysis.lp`), and convert the weights from pair units to
shares of bytes: ``alpha_i * bytes_i / pairs_i``, renormalised.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from toknz.analysis.lp import LPSolution, build_inputs, solve_mixture_lp
from toknz.analysis.merges import MergeList, merge_list
from toknz.analysis.replay import PairCounts, replay_sample
from toknz.analysis.samples import (
    CategoryInput,
    CategorySample,
    count_sample,
    sample_from_table,
)
from toknz.errors import UsageError

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

#: Merges used when the caller does not say, or all when fewer. The paper uses 30,000;
#: on noisy real tokenizers the LP at 3,000 merges and 10 categories takes about two
#: minutes on two cores (docs/mixture.md), so that is the default here.
DEFAULT_MERGES = 3_000


@dataclass
class MixtureResult:
    """An inferred mixture.

    ``weights``: each category's share of the training bytes (sums to 1);
    ``pair_weights``: the LP's weights in pair units; ``slack``: the LP's
    total slack (in fractions of a category's pairs; 0 when some mixture
    explains every merge exactly); ``constraints``: LP rows used (of the
    |pairs| x T possible); ``intervals``: bootstrap interval per byte weight
    (:func:`shifted_intervals`) (when asked for); ``merge_report``: what the merge-list
    cleaning skipped; ``categories``: per category ``bytes``, ``words``,
    ``distinct_words``, ``pairs``.
    """

    tokenizer: str
    weights: dict[str, float]
    pair_weights: dict[str, float]
    slack: float
    constraints: int
    pair_slacks: int
    rounds: int
    converged: bool
    merges_used: int
    steps_active: int
    seconds: dict[str, float]
    merge_report: dict[str, Any]
    categories: dict[str, dict[str, int]]
    intervals: dict[str, tuple[float, float]] | None = None
    bootstrap: list[dict[str, float]] = field(default_factory=list)

    def ranked(self) -> list[tuple[str, float]]:
        """``(category, byte share)`` from the largest share down."""
        return sorted(self.weights.items(), key=lambda kv: (-kv[1], kv[0]))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``"weights"`` maps category -> byte share)."""
        out = asdict(self)
        if self.intervals is not None:
            out["intervals"] = {k: list(v) for k, v in self.intervals.items()}
        return out


def _load_tokenizer(tokenizer: Tokenizer | str | os.PathLike[str]) -> Tokenizer:
    from toknz.tokenizer import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    import toknz

    return toknz.load(tokenizer)


def prepare_merges(tok: Tokenizer, merges: int | None) -> MergeList:
    """The first ``merges`` cleaned merges (default: up to :data:`DEFAULT_MERGES`).

    Raises :class:`~toknz.errors.UsageError` when ``merges`` is below 1 or
    beyond the usable merges of the tokenizer.
    """
    if merges is not None and merges < 1:
        raise UsageError(f"merges must be at least 1, got {merges}")
    limit = DEFAULT_MERGES if merges is None else merges
    cleaned = merge_list(tok, limit)
    if merges is not None and len(cleaned) < merges:
        raise UsageError(
            f"{tok.name}: asked for {merges:,} merges but the tokenizer has only "
            f"{len(cleaned):,} usable merges ({cleaned.total:,} listed; skipped: "
            f"{', '.join(f'{k} {v:,}' for k, v in cleaned.skipped.items()) or 'none'})"
        )
    if len(cleaned) == 0:
        raise UsageError(f"{tok.name}: no usable merges (skipped: {cleaned.skipped})")
    return cleaned


def byte_weights(pair_weights: np.ndarray, sizes: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Pair-unit weights -> byte shares: ``alpha_i * bytes_i / pairs_i``, renormalised."""
    raw = pair_weights * sizes / np.maximum(pairs, 1)
    total = raw.sum()
    return raw / total if total > 0 else np.full(raw.shape, 1.0 / raw.shape[0])


def _solve(
    names: list[str],
    samples: list[CategorySample],
    cleaned: MergeList,
    *,
    skip_absent: bool,
    lp_options: Mapping[str, Any],
    on_round: Callable[[int, int], None] | None,
) -> tuple[LPSolution, list[PairCounts], np.ndarray, float]:
    t0 = time.perf_counter()
    counts = [replay_sample(s, cleaned) for s in samples]
    t1 = time.perf_counter()
    merge_keys = (cleaned.left.astype(np.int64) << np.int64(32)) | cleaned.right.astype(np.int64)
    data = build_inputs(counts, merge_keys)
    active = (
        data.merge_counts.sum(axis=0) > 0 if skip_absent else np.ones(data.steps, dtype=np.bool_)
    )
    solution = solve_mixture_lp(data, active=active, on_round=on_round, **lp_options)
    return solution, counts, active, t1 - t0


def _resample(sample: CategorySample, tok: Tokenizer, rng: np.random.Generator) -> CategorySample:
    """Resample the sample's words with replacement (a multinomial over word occurrences)."""
    from toknz.train.counting import WordTable

    table = sample.table
    total = int(table.counts.sum())
    new_counts = rng.multinomial(total, table.counts / total).astype(np.int64)
    keep = new_counts > 0
    lengths = np.diff(table.offsets)
    offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=offsets[1:])
    index = np.repeat(table.offsets[:-1][keep] - offsets[:-1], lengths[keep]) + np.arange(
        offsets[-1]
    )
    resampled = WordTable(table.arena[index], offsets, new_counts[keep])
    old_bytes = float((lengths * table.counts).sum()) or 1.0
    new_bytes = float((lengths * new_counts).sum())
    size = max(1, round(sample.bytes * new_bytes / old_bytes))
    return sample_from_table(tok, sample.name, resampled, size, sample.sources)


def shifted_intervals(
    point: np.ndarray, names: list[str], draws: list[dict[str, float]], confidence: float
) -> dict[str, tuple[float, float]]:
    """A ``confidence`` interval per weight: the draws' spread placed around the point estimate.

    ``[point - (median - q_lo), point + (q_hi - median)]`` with q the draws'
    quantiles, clipped to [0, 1]. Plain percentile intervals can leave the
    point estimate out when resampling shifts the estimate (resampled word
    tables repeat words); shifting keeps the spread and always holds the
    point estimate.
    """
    lo_q = (1 - confidence) / 2
    out: dict[str, tuple[float, float]] = {}
    for i, n in enumerate(names):
        values = np.array([d[n] for d in draws], dtype=np.float64)
        lo, med, hi = np.quantile(values, [lo_q, 0.5, 1 - lo_q])
        out[n] = (
            float(max(0.0, point[i] - (med - lo))),
            float(min(1.0, point[i] + (hi - med))),
        )
    return out


def infer_mixture(
    tokenizer: Tokenizer | str | os.PathLike[str],
    categories: Mapping[str, CategoryInput],
    *,
    merges: int | None = None,
    threads: int | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    skip_absent: bool = True,
    per_step: int = 3,
    max_add: int = 10_000,
    tolerance: float = 1e-9,
    engine: str = "local",
    scheduler: Any = None,
    progress: bool = False,
) -> MixtureResult:
    """Infer the shares of ``categories`` in the data ``tokenizer``'s merges were learned from.

    ``tokenizer``: a :class:`~toknz.Tokenizer`, a known name or a file.
    ``categories``: name -> sample (a path, several paths, folders, or
    :class:`~toknz.analysis.Text`); at least two. ``merges``: how many
    (cleaned) merges to use, default up to 3,000. ``bootstrap``: resample
    each category's words this many times and report a ``confidence``
    interval per weight (:func:`shifted_intervals`). ``skip_absent``: give no constraints to
    steps whose merge occurs in no sample. ``per_step``/``max_add``/
    ``tolerance``: lazy generation's batch sizes and violation tolerance
    (pair-fraction units). ``engine="dask"`` counts the samples on a Dask
    cluster (``scheduler``: a client, an address or None for a local one), as
    ``toknz train --engine dask`` does. Raises :class:`~toknz.errors.UsageError` for
    fewer than two categories, an empty name, a tokenizer with no merges or
    ``merges`` beyond its list, and :class:`~toknz.errors.InputError` for
    a missing, unreadable, not-UTF-8 or empty sample.
    """
    start = time.perf_counter()
    names = list(categories)
    if len(names) < 2:
        raise UsageError(
            f"mixture inference needs at least two categories, got {len(names)}"
            + (f" ({names[0]!r})" if names else "")
        )
    for name in names:
        if not name or not name.strip():
            raise UsageError("a category name is empty")
    if bootstrap < 0:
        raise UsageError(f"bootstrap must be >= 0, got {bootstrap}")
    tok = _load_tokenizer(tokenizer)
    cleaned = prepare_merges(tok, merges)
    t_merges = time.perf_counter()

    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names), desc="counting", unit="cat", leave=False, disable=None)
    samples: list[CategorySample] = []
    from toknz.analysis.samples import word_splitter

    splitter = word_splitter(tok)
    for name in names:
        table, size, sources = count_sample(
            tok,
            name,
            categories[name],
            threads=threads,
            splitter=splitter,
            engine=engine,
            scheduler=scheduler,
        )
        samples.append(sample_from_table(tok, name, table, size, sources))
        if bar is not None:
            bar.set_postfix_str(name)
            bar.update(1)
    if bar is not None:
        bar.close()
    t_count = time.perf_counter()

    lp_options = {"per_step": per_step, "max_add": max_add, "tolerance": tolerance}
    round_bar: Any = None
    on_round = None
    if progress:
        from tqdm import tqdm

        round_bar = tqdm(desc="LP rounds", unit="round", leave=False, disable=None)

        def on_round(rounds: int, rows: int) -> None:
            round_bar.update(1)
            round_bar.set_postfix_str(f"{rows:,} constraints")

    solution, counts, active, t_replay = _solve(
        names, samples, cleaned, skip_absent=skip_absent, lp_options=lp_options, on_round=on_round
    )
    if round_bar is not None:
        round_bar.close()
    sizes = np.array([s.bytes for s in samples], dtype=np.float64)
    pairs = np.array([c.total_pairs for c in counts], dtype=np.float64)
    weights = byte_weights(solution.pair_weights, sizes, pairs)

    draws: list[dict[str, float]] = []
    intervals: dict[str, tuple[float, float]] | None = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        boot_bar: Any = None
        if progress:
            from tqdm import tqdm

            boot_bar = tqdm(total=bootstrap, desc="bootstrap", unit="draw", leave=False)
        for _ in range(bootstrap):
            resampled = [_resample(s, tok, rng) for s in samples]
            sol_b, counts_b, _a, _t = _solve(
                names,
                resampled,
                cleaned,
                skip_absent=skip_absent,
                lp_options=lp_options,
                on_round=None,
            )
            w = byte_weights(
                sol_b.pair_weights,
                np.array([s.bytes for s in resampled], dtype=np.float64),
                np.array([c.total_pairs for c in counts_b], dtype=np.float64),
            )
            draws.append({n: float(x) for n, x in zip(names, w, strict=True)})
            if boot_bar is not None:
                boot_bar.update(1)
        if boot_bar is not None:
            boot_bar.close()
        intervals = shifted_intervals(weights, names, draws, confidence)
    end = time.perf_counter()
    return MixtureResult(
        tokenizer=tok.name,
        weights={n: float(x) for n, x in zip(names, weights, strict=True)},
        pair_weights={n: float(x) for n, x in zip(names, solution.pair_weights, strict=True)},
        slack=solution.slack,
        constraints=solution.constraints,
        pair_slacks=solution.pair_slacks,
        rounds=solution.rounds,
        converged=solution.converged,
        merges_used=len(cleaned),
        steps_active=int(active.sum()),
        seconds={
            "merges": round(t_merges - start, 3),
            "counting": round(t_count - t_merges, 3),
            "replay": round(t_replay, 3),
            "solve": round(solution.seconds, 3),
            "total": round(end - start, 3),
        },
        merge_report=cleaned.report(),
        categories={
            s.name: {
                "bytes": s.bytes,
                "words": int(s.table.counts.sum()),
                "distinct_words": len(s.table),
                "pairs": c.total_pairs,
            }
            for s, c in zip(samples, counts, strict=True)
        },
        intervals=intervals,
        bootstrap=draws,
    )


__all__ = [
    "DEFAULT_MERGES",
    "MixtureResult",
    "byte_weights",
    "infer_mixture",
    "prepare_merges",
    "shifted_intervals",
]
