"""Infer the data mixture a BPE tokenizer was trained on: :func:`infer_mixture`.

Steps: clean the tokenizer's merge list (:mod:`toknz.analysis.merges`),
count each category's sample once into distinct words with the tokenizer's
own normalizer and pre-tokenizer (:mod:`toknz.analysis.samples`), replay
the merges over each (:mod:`toknz.analysis.replay`), solve the LP
(:mod:`toknz.analysis.lp`), and convert the weights from pair units to
shares of bytes: ``alpha_i * bytes_i / pairs_i``, renormalised. The plain
LP's slack per merge gives the fit diagnostic
(:mod:`toknz.analysis.mixture_fit`): whether the samples explain the merges,
or the training text came from other sources than the samples (distribution
shift), which bootstrap intervals cannot show.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from toknz.analysis.lp import LPInputs, LPSolution, build_inputs, solve_mixture_lp
from toknz.analysis.merges import MergeList, merge_list
from toknz.analysis.mixture_fit import FitReport, fit_report, mixed_merge_counts, shortfalls
from toknz.analysis.replay import PairCounts, replay_samples
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
#: the LP's time grows with merges x categories (docs/mixture.md, "Scale": 10,000 x 30
#: in 85 s, 30,000 x 112 past 15 minutes on two cores), so the default is 3,000.
DEFAULT_MERGES = 3_000

#: How the weights are estimated from the replayed samples (``method=``):
#: ``plain``: the LP of Hayase et al. (2024) over every merge seen in a sample;
#: ``tokens``: the same, but a merge competes only with pairs the tokenizer joins into a
#: token (pairs frequent in a sample that the tokenizer never joins are, under distribution
#: shift, mostly words of the sample's own sources, and pull the weights away);
#: ``early``: only the first :data:`EARLY_FRACTION` of the merges (frequent pairs, which
#: differ least between sources of one kind of text); ``supported``: only merges whose
#: pair occurs at least :data:`SUPPORT_MIN` times in the samples together; ``trimmed``:
#: the plain LP, then again without the merges it explains worst (shortfall above
#: :data:`TRIM_SHORTFALL`, :mod:`toknz.analysis.mixture_fit`); ``mass``: each category's
#: counts divided by its merged pairs (the merge mass of the steps used) instead of by all
#: its pairs. Measured against each other in ``benchmarks/mixture_shift.py`` (docs/mixture.md).
METHODS = ("plain", "tokens", "early", "supported", "trimmed", "mass")
#: The method ``infer_mixture`` uses unless told (docs/mixture.md says why).
DEFAULT_METHOD = "plain"
EARLY_FRACTION = 1 / 3
SUPPORT_MIN = 50
TRIM_SHORTFALL = 0.5
#: ``unit=``: count samples as whole documents, line by line (as ``tokenizers``'
#: ``train(files)`` saw its text), or both, keeping the one that explains the merges better.
UNITS = ("document", "line", "auto")


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
    ``distinct_words``, ``pairs``; ``method``: how the weights were estimated
    (:data:`METHODS`); ``unit``: how the samples were counted;
    ``fit``: the fit diagnostic of the plain LP over every merge used
    (:class:`~toknz.analysis.mixture_fit.FitReport` as a dict: ``score``,
    ``threshold``, ``explained``, ``unseen``, ``per_category``, ``worst``
    merges, ``warning``); ``unit_scores``: the fit score of each unit tried
    (``unit="auto"``).

    The bootstrap intervals are *sampling* intervals: they say how much the
    estimate moves when the samples are redrawn from themselves, not how far
    it is from the truth when the training text differs from the samples
    (other sources of the same kind of text: distribution shift). The fit
    diagnostic is the warning for that; under shift the error can be many
    times the interval's width (docs/mixture.md).
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
    method: str = DEFAULT_METHOD
    unit: str = "document"
    fit: dict[str, Any] = field(default_factory=dict)
    unit_scores: dict[str, float] = field(default_factory=dict)

    @property
    def warning(self) -> str | None:
        """One line when the samples do not explain the merges (``fit``), else None."""
        return str(self.fit["warning"]) if self.fit.get("warning") else None

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


def merge_names(cleaned: MergeList) -> list[str]:
    """Every kept merge spelled for people: ``'left' + 'right'`` (bytes decoded, bad ones escaped)."""

    def spell(b: bytes) -> str:
        return repr(b.decode("utf-8", "backslashreplace"))

    return [
        f"{spell(a)} + {spell(b)}" for a, b in (cleaned.pair_bytes(t) for t in range(len(cleaned)))
    ]


@dataclass
class Fitted:
    """One category set solved: the chosen method's LP and the plain LP's fit diagnostic."""

    solution: LPSolution
    data: LPInputs
    counts: list[PairCounts]
    active: np.ndarray
    fit: FitReport
    replay_seconds: float
    pair_keys: np.ndarray


def method_steps(
    method: str,
    data: LPInputs,
    active: np.ndarray,
    plain: LPSolution,
    joinable: np.ndarray | None = None,
) -> tuple[LPInputs, np.ndarray]:
    """The LP inputs and active steps ``method`` (:data:`METHODS`) solves, given the plain optimum.

    ``joinable`` (bool per global pair of ``data``): the pairs the tokenizer
    joins into a token, for ``method="tokens"`` (default: the merged pairs of
    ``data``'s steps).
    """
    steps = data.steps
    chosen = active.copy()
    if method == "tokens":
        keep = np.zeros(data.n_pairs, dtype=np.bool_)
        if joinable is not None:
            keep |= joinable
        keep[data.merge_pairs] = True
        data = replace(
            data,
            init_counts=np.where(keep[data.init_pairs], data.init_counts, 0),
            delta_values=np.where(keep[data.delta_pairs], data.delta_values, 0),
        )
    elif method == "early":
        chosen[int(np.ceil(steps * EARLY_FRACTION)) :] = False
    elif method == "supported":
        chosen &= data.merge_counts.sum(axis=0) >= SUPPORT_MIN
    elif method == "trimmed":
        mixed = mixed_merge_counts(data.merge_counts, data.denominators, plain.pair_weights)
        chosen &= shortfalls(plain.merge_slack, mixed, active) <= TRIM_SHORTFALL
    elif method == "mass":
        mass = (data.merge_counts * active[None, :]).sum(axis=1).astype(np.float64)
        data = replace(data, denominators=np.maximum(mass, 1.0))
    elif method != "plain":
        raise UsageError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if not chosen.any():
        chosen = active
    return data, chosen


def solve_samples(
    names: list[str],
    samples: list[CategorySample],
    cleaned: MergeList,
    *,
    method: str = DEFAULT_METHOD,
    skip_absent: bool = True,
    lp_options: Mapping[str, Any] | None = None,
    on_round: Callable[[int, int], None] | None = None,
    tokens: Collection[bytes] | None = None,
) -> Fitted:
    """Replay ``cleaned`` over ``samples``, solve the plain LP (for the fit diagnostic) and ``method``.

    ``tokens``: the tokenizer's tokens as bytes (:func:`token_bytes`), for
    ``method="tokens"`` (default: the merged pairs of ``cleaned`` only).
    Raises :class:`~toknz.errors.UsageError` for an unknown method.
    """
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    options = dict(lp_options or {})
    t0 = time.perf_counter()
    counts = replay_samples(samples, cleaned)
    t1 = time.perf_counter()
    merge_keys = (cleaned.left.astype(np.int64) << np.int64(32)) | cleaned.right.astype(np.int64)
    data = build_inputs(counts, merge_keys)
    seen = data.merge_counts.sum(axis=0) > 0
    active = seen if skip_absent else np.ones(data.steps, dtype=np.bool_)
    plain = solve_mixture_lp(data, active=active, on_round=on_round, **options)
    fit = fit_report(
        names,
        data.merge_counts,
        data.denominators,
        plain.pair_weights,
        plain.merge_slack,
        seen,
        merge_names(cleaned),
        cleaned.ranks.tolist(),
    )
    keys = pair_keys(counts, merge_keys)
    if keys.shape[0] != data.n_pairs or not np.array_equal(keys[data.merge_pairs], merge_keys):
        raise RuntimeError("pair_keys no longer numbers pairs as build_inputs does")
    if method == "plain":
        return Fitted(plain, data, counts, active, fit, t1 - t0, keys)
    joinable = None
    if method == "tokens" and tokens is not None:
        joinable = joinable_pairs(keys, cleaned, tokens)
    data_m, active_m = method_steps(method, data, active, plain, joinable)
    solution = solve_mixture_lp(data_m, active=active_m, on_round=on_round, **options)
    solution.seconds += plain.seconds
    return Fitted(solution, data_m, counts, active_m, fit, t1 - t0, keys)


def pair_keys(counts: list[PairCounts], merge_keys: np.ndarray) -> np.ndarray:
    """The pair key (``left << 32 | right``) of every global pair index of ``build_inputs``.

    The global index is the rank among the sorted distinct keys of the merges
    and of every category's pairs, as :func:`toknz.analysis.lp.build_inputs` numbers them.
    """
    return np.unique(
        np.concatenate(
            [merge_keys.astype(np.int64)]
            + [c.init_keys for c in counts]
            + [np.unique(c.delta_keys) for c in counts]
        )
    )


def token_bytes(tok: Tokenizer, cleaned: MergeList) -> frozenset[bytes]:
    """Every token of ``tok`` as the bytes it stands for (as ``cleaned.symbol_bytes`` spells them)."""
    return frozenset(cleaned.symbol_bytes(i) for i in tok.model.vocab.values())


def joinable_pairs(keys: np.ndarray, cleaned: MergeList, tokens: Collection[bytes]) -> np.ndarray:
    """Per pair key: is the concatenation of its two symbols a token (in ``tokens``)?"""
    left = (keys >> np.int64(32)).astype(np.int64)
    right = (keys & np.int64(0xFFFFFFFF)).astype(np.int64)
    cache: dict[int, bytes] = {}

    def spell(i: int) -> bytes:
        b = cache.get(i)
        if b is None:
            b = cache[i] = cleaned.symbol_bytes(i)
        return b

    return np.fromiter(
        (spell(a) + spell(b) in tokens for a, b in zip(left.tolist(), right.tolist(), strict=True)),
        dtype=np.bool_,
        count=keys.shape[0],
    )


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


def count_samples(
    tok: Tokenizer,
    categories: Mapping[str, CategoryInput],
    *,
    unit: str = "document",
    threads: int | None = None,
    engine: str = "local",
    scheduler: Any = None,
    progress: bool = False,
) -> list[CategorySample]:
    """Each category's sample counted into the tokenizer's words (``unit``: document or line)."""
    from toknz.analysis.samples import word_splitter

    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(categories), desc="counting", unit="cat", leave=False, disable=None)
    splitter = word_splitter(tok)
    samples: list[CategorySample] = []
    for name, data in categories.items():
        table, size, sources = count_sample(
            tok,
            name,
            data,
            threads=threads,
            splitter=splitter,
            engine=engine,
            scheduler=scheduler,
            unit=unit,
        )
        samples.append(sample_from_table(tok, name, table, size, sources))
        if bar is not None:
            bar.set_postfix_str(name)
            bar.update(1)
    if bar is not None:
        bar.close()
    return samples


def sample_weights(fitted: Fitted, samples: list[CategorySample]) -> np.ndarray:
    """The byte shares of a solved category set (pair-unit weights times bytes per pair unit)."""
    sizes = np.array([s.bytes for s in samples], dtype=np.float64)
    return byte_weights(fitted.solution.pair_weights, sizes, fitted.data.denominators)


def infer_mixture(
    tokenizer: Tokenizer | str | os.PathLike[str],
    categories: Mapping[str, CategoryInput],
    *,
    merges: int | None = None,
    threads: int | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    method: str = DEFAULT_METHOD,
    unit: str = "document",
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
    (cleaned) merges to use, default up to 3,000. ``method``: how the
    weights are estimated (:data:`METHODS`, default :data:`DEFAULT_METHOD`).
    ``unit``: count the samples as whole documents, line by line (what a
    tokenizer trained by ``tokenizers``' ``train(files)`` saw), or ``"auto"``:
    both, keeping the unit whose fit score is lower. ``bootstrap``: resample
    each category's words this many times and report a ``confidence``
    interval per weight (:func:`shifted_intervals`): a *sampling* interval,
    which does not cover the error when the training text differs from the
    samples (distribution shift); ``fit`` (the fit diagnostic,
    :mod:`toknz.analysis.mixture_fit`) warns of that. ``skip_absent``: give
    no constraints to steps whose merge occurs in no sample.
    ``per_step``/``max_add``/``tolerance``: lazy generation's batch sizes and
    violation tolerance (pair-fraction units). ``engine="dask"`` counts the
    samples on a Dask cluster (``scheduler``: a client, an address or None
    for a local one), as ``toknz train --engine dask`` does. Raises
    :class:`~toknz.errors.UsageError` for fewer than two categories, an empty
    name, an unknown method or unit, a tokenizer with no merges or
    ``merges`` beyond its list, and :class:`~toknz.errors.InputError` for a
    missing, unreadable, not-UTF-8 or empty sample.

    >>> import toknz
    >>> from toknz.analysis import Text
    >>> from toknz.train import train
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.txt").write_text("the cat sat on the mat. " * 50 + "def f(x): return x; " * 10)
    >>> tok = train([d / "t.txt"], vocab_size=290, threads=1)
    >>> r = infer_mixture(tok, {"prose": Text("the cat sat on the mat. " * 20),
    ...                         "code": Text("def f(x): return x; " * 20)}, threads=1)
    >>> round(sum(r.weights.values()), 6), r.method, r.unit, 0 <= r.fit["score"] <= 1
    (1.0, 'plain', 'document', True)
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
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    tok = _load_tokenizer(tokenizer)
    cleaned = prepare_merges(tok, merges)
    tokens = token_bytes(tok, cleaned) if method == "tokens" else None
    t_merges = time.perf_counter()

    lp_options = {"per_step": per_step, "max_add": max_add, "tolerance": tolerance}
    round_bar: Any = None
    on_round = None
    if progress:
        from tqdm import tqdm

        round_bar = tqdm(desc="LP rounds", unit="round", leave=False, disable=None)

        def on_round(rounds: int, rows: int) -> None:
            round_bar.update(1)
            round_bar.set_postfix_str(f"{rows:,} constraints")

    t_count = 0.0
    tried: dict[str, tuple[list[CategorySample], Fitted]] = {}
    for u in ("document", "line") if unit == "auto" else (unit,):
        t0 = time.perf_counter()
        samples_u = count_samples(
            tok,
            categories,
            unit=u,
            threads=threads,
            engine=engine,
            scheduler=scheduler,
            progress=progress,
        )
        t_count += time.perf_counter() - t0
        tried[u] = (
            samples_u,
            solve_samples(
                names,
                samples_u,
                cleaned,
                method=method,
                skip_absent=skip_absent,
                lp_options=lp_options,
                on_round=on_round,
            ),
        )
    if round_bar is not None:
        round_bar.close()
    chosen = min(tried, key=lambda u: tried[u][1].fit.score)
    samples, fitted = tried[chosen]
    solution, counts, active = fitted.solution, fitted.counts, fitted.active
    weights = sample_weights(fitted, samples)

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
            fitted_b = solve_samples(
                names,
                resampled,
                cleaned,
                method=method,
                skip_absent=skip_absent,
                lp_options=lp_options,
                tokens=tokens,
            )
            w = sample_weights(fitted_b, resampled)
            draws.append({n: float(x) for n, x in zip(names, w, strict=True)})
            if boot_bar is not None:
                boot_bar.update(1)
        if boot_bar is not None:
            boot_bar.close()
        intervals = shifted_intervals(weights, names, draws, confidence)
    end = time.perf_counter()
    fit = asdict(fitted.fit)
    fit["warning"] = fitted.fit.warning()
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
            "counting": round(t_count, 3),
            "replay": round(sum(f.replay_seconds for _s, f in tried.values()), 3),
            "solve": round(sum(f.solution.seconds for _s, f in tried.values()), 3),
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
        method=method,
        unit=chosen,
        fit=fit,
        unit_scores={u: round(f.fit.score, 6) for u, (_s, f) in tried.items()},
    )


__all__ = [
    "DEFAULT_MERGES",
    "DEFAULT_METHOD",
    "METHODS",
    "UNITS",
    "Fitted",
    "MixtureResult",
    "byte_weights",
    "count_samples",
    "infer_mixture",
    "joinable_pairs",
    "merge_names",
    "pair_keys",
    "method_steps",
    "sample_weights",
    "solve_samples",
    "token_bytes",
    "prepare_merges",
    "shifted_intervals",
]
