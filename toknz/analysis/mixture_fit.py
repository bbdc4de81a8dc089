"""How well do the samples explain a tokenizer's merges? The fit diagnostic of mixture inference.

The LP of :mod:`toknz.analysis.lp` leaves a slack ``v_t`` at every merge step
``t``: how far (in fractions of a category's pairs) the mixed count of the
merged pair falls short of a competitor's at the best mixture. Part of it is
sampling noise: a merged pair counted ``c_i`` times in sample ``i`` has a
mixed count with standard deviation about ``sigma_t = sqrt(2 sum_i (alpha_i /
pairs_i)^2 c_i)`` (Poisson counts, for the merged pair and its competitor).
The *excess* ``max(0, v_t - NOISE_Z sigma_t)`` is what noise does not explain.

The score is the total excess over the total mixed count of the merged pairs
(``m_t = sum_i alpha_i c_i[m(t), t] / pairs_i``), over the merges seen in some
sample: the share of the merge list's mass the samples do not explain beyond
noise. Samples from the tokenizer's own sources give scores near 0; samples
of the same kind of text from *other sources* (other code bases, other
packages: distribution shift) give several times more, and with them the
inferred weights can be far off while bootstrap intervals stay tight (the
bootstrap resamples the samples; it cannot see that they differ from the
training text). :data:`FIT_THRESHOLD` was calibrated on the controlled shift
experiments of ``benchmarks/mixture_shift.py`` (docs/mixture.md) and is fixed
here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Above this score the samples do not explain the merges (``FitReport.explained`` is False,
#: ``toknz mixture`` warns). Calibrated by ``benchmarks/mixture_shift.py`` (docs/mixture.md).
FIT_THRESHOLD = 0.05

#: Standard deviations of sampling noise forgiven per merge before its slack counts.
NOISE_Z = 3.0

#: How many of the worst-explained merges a :class:`FitReport` names.
WORST_MERGES = 10


@dataclass
class FitReport:
    """The fit diagnostic of one inference.

    ``score``: the share of the merged pairs' mass not explained beyond
    sampling noise (0 = every merge explained; see the module docstring);
    ``explained``: ``score <= threshold``; ``unseen``: share of the merges
    whose pair occurs in no sample; ``per_category``: the same share over
    each category's part of the merges (its share of each merged pair's
    count): which samples explain their merges worst; ``worst``: the merges
    with the largest unexplained excess first, as ``{"rank", "merge",
    "shortfall"}`` (``rank`` in the tokenizer's list, the merge spelled
    ``'left' + 'right'``, ``shortfall`` the excess over the merged pair's
    mixed count).
    """

    score: float
    threshold: float
    explained: bool
    unseen: float
    per_category: dict[str, float]
    worst: list[dict[str, Any]] = field(default_factory=list)

    def warning(self) -> str | None:
        """One line saying the samples do not explain the merges, or None when they do."""
        if self.explained:
            return None
        names = ", ".join(m["merge"] for m in self.worst[:3])
        return (
            f"warning: the samples do not explain the merges (fit score {self.score:.3f} > "
            f"{self.threshold:.2f}): the training text likely differs from these samples "
            f"(other sources or a missing category), so the shares may be far off and "
            f"--bootstrap intervals do not cover that; worst merges: {names}"
        )


def shortfalls(
    merge_slack: np.ndarray,
    mixed_merge: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:
    """Per step: ``merge_slack / mixed_merge`` capped at 1; 1 for inactive steps (pair unseen).

    >>> shortfalls(np.array([0.0, 0.01, 0.0]), np.array([0.1, 0.02, 0.0]), np.array([True, True, False]))
    array([0. , 0.5, 1. ])
    """
    out = np.ones(merge_slack.shape[0], dtype=np.float64)
    seen = active & (mixed_merge > 0)
    out[seen] = np.minimum(1.0, merge_slack[seen] / mixed_merge[seen])
    return out


def noise_sd(
    merge_counts: np.ndarray, denominators: np.ndarray, pair_weights: np.ndarray
) -> np.ndarray:
    """Per step, about the standard deviation of (mixed merged count - mixed competitor count).

    ``sqrt(2 sum_i (w_i / denominators_i)^2 merge_counts[i, t])``: Poisson counts, the
    competitor as frequent as the merged pair.

    >>> noise_sd(np.array([[50], [0]]), np.array([100.0, 100.0]), np.array([1.0, 0.0]))
    array([0.1])
    """
    scale = (pair_weights / denominators) ** 2
    return np.asarray(np.sqrt(2.0 * (scale @ merge_counts.astype(np.float64))), dtype=np.float64)


def mixed_merge_counts(
    merge_counts: np.ndarray, denominators: np.ndarray, pair_weights: np.ndarray
) -> np.ndarray:
    """Per step, the merged pair's mixed count: ``sum_i w_i merge_counts[i, t] / denominators[i]``.

    >>> mixed_merge_counts(np.array([[10, 0], [30, 20]]), np.array([100.0, 100.0]), np.array([0.5, 0.5]))
    array([0.2, 0.1])
    """
    per = merge_counts.astype(np.float64) / denominators[:, None]
    return np.asarray(pair_weights @ per, dtype=np.float64)


def fit_report(
    names: Sequence[str],
    merge_counts: np.ndarray,
    denominators: np.ndarray,
    pair_weights: np.ndarray,
    merge_slack: np.ndarray,
    active: np.ndarray,
    merge_names: Sequence[str],
    merge_ranks: Sequence[int] | None = None,
    *,
    threshold: float = FIT_THRESHOLD,
    noise_z: float = NOISE_Z,
    worst: int = WORST_MERGES,
) -> FitReport:
    """The fit diagnostic of an LP optimum (see the module docstring).

    ``merge_counts`` (n x T), ``denominators`` (n) and ``pair_weights`` (n)
    as in :class:`toknz.analysis.lp.LPInputs` / ``LPSolution``;
    ``merge_slack`` (T) the LP's per-step slack; ``active`` (T, bool) the
    steps that had constraints; ``merge_names`` (T) each merge spelled for
    people, ``merge_ranks`` (T) their indices in the tokenizer's own list
    (default: the step). Raises ValueError when the shapes disagree.

    Merge 1 falls short by 0.05 of the pairs, far beyond the noise of counts
    in the thousands: 0.048 (after forgiving 3 sd of noise) of the merge
    mass 0.1 + 0.05 is not explained.

    >>> r = fit_report(["a", "b"], np.array([[10000, 5000], [10000, 5000]]),
    ...                np.array([100000.0, 100000.0]), np.array([0.5, 0.5]),
    ...                np.array([0.0, 0.05]), np.array([True, True]), ["'x' + 'y'", "'y' + 'z'"])
    >>> round(r.score, 3), r.explained, r.worst[0]["merge"]
    (0.319, False, "'y' + 'z'")
    """
    n, steps = merge_counts.shape
    if not (len(names) == n == denominators.shape[0] == pair_weights.shape[0]):
        raise ValueError("names, denominators and pair weights must have one entry per category")
    if not (merge_slack.shape[0] == active.shape[0] == len(merge_names) == steps):
        raise ValueError("merge slack, active steps and merge names must have one entry per step")
    mixed = mixed_merge_counts(merge_counts, denominators, pair_weights)
    seen = active & (mixed > 0)
    excess = np.where(
        seen,
        np.maximum(0.0, merge_slack - noise_z * noise_sd(merge_counts, denominators, pair_weights)),
        0.0,
    )
    mass = float(mixed[seen].sum())
    score = float(excess.sum() / mass) if mass > 0 else 1.0
    # A category's part in each merge: its share of the merged pair's count.
    per = merge_counts.astype(np.float64) / denominators[:, None]
    totals = per.sum(axis=0)
    part = np.where(totals > 0, per / np.where(totals > 0, totals, 1.0), 0.0)
    part_mass = part @ np.where(seen, mixed, 0.0)
    per_category = {
        name: float(part[i] @ excess / part_mass[i]) if part_mass[i] > 0 else 0.0
        for i, name in enumerate(names)
    }
    order = np.argsort(-excess, kind="stable")[: max(0, worst)]
    worst_list = [
        {
            "rank": int(t if merge_ranks is None else merge_ranks[t]),
            "merge": merge_names[t],
            "shortfall": round(float(excess[t] / mixed[t]), 4),
        }
        for t in order.tolist()
        if excess[t] > 0
    ]
    return FitReport(
        score=score,
        threshold=threshold,
        explained=score <= threshold,
        unseen=float(1.0 - seen.mean()) if steps else 0.0,
        per_category=per_category,
        worst=worst_list,
    )


__all__ = [
    "FIT_THRESHOLD",
    "NOISE_Z",
    "WORST_MERGES",
    "FitReport",
    "fit_report",
    "mixed_merge_counts",
    "noise_sd",
    "shortfalls",
]
