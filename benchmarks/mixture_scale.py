"""Mixture inference at paper scale: 30,000 merges x 100+ categories, timed per phase.

Categories are regions of the corpus files ``corpora/build.py`` builds into
``~/.cache/toknz/corpora`` (``--kind code --size-mb 200``, ``--kind prose
--size-mb 40``, ``--kind legal --size-mb 50``): each file is cut into as many
equal regions as its share of the bytes gives (at least one), so a category
is "the 3rd region of go.txt" (per-language and per-file categories). Each
region is cut into ~2,000-character blocks at line ends: even blocks are its
training side, odd blocks its sample (``benchmarks/mixture_helpers.py``). Weights
are drawn from a flat Dirichlet (``--seed``); a tokenizer with ``--merges``
merges (plus a margin for merges the cleaning skips) is trained with toknz on
that mixture of training sides (cached in ``--work``), and the mixture is
inferred from the samples, each phase timed: merge-list cleaning, counting,
replay, building the LP inputs and the LP (rounds, rows, time in the
violation scan, in building rows, in HiGHS). Reported: max/mean absolute error
of the byte weights per category and per source file (regions of one file are
near-indistinguishable, so the per-file error is the meaningful one), the LP
objective, and the process's peak RSS. ``--tokenizer o200k_base`` runs a real
tokenizer on the same categories instead (no known answer).

    python benchmarks/mixture_scale.py --merges 10000 --categories 30 --label dev
    python benchmarks/mixture_scale.py --merges 30000 --categories 112 --write

Each run appends to ``docs/bench/mixture_scale.jsonl``; ``--write`` rewrites
the part of ``docs/mixture.md`` between the ``<!-- mixture_scale -->`` markers
from the runs in it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import sys
import time
from pathlib import Path

import _common
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mixture.md"
JSONL = ROOT / "docs" / "bench" / "mixture_scale.jsonl"
MARK = "<!-- mixture_scale -->"
CACHE = Path(os.environ.get("TOKNZ_CACHE", Path.home() / ".cache" / "toknz")) / "corpora"
#: Corpus folders (built by corpora/build.py) the categories are cut from.
CORPORA = ["code-200mb", "prose-40mb", "legal-50mb"]
BUILD = (
    "python corpora/build.py --kind code --size-mb 200; "
    "python corpora/build.py --kind prose --size-mb 40; "
    "python corpora/build.py --kind legal --size-mb 50"
)


#: Solver variants ``--variants`` compares (keyword arguments of solve_mixture_lp).
OLD = {"drop_rule": "slack", "drop_after": 2, "max_drops": 1}
VARIANTS: dict[str, dict] = {
    "old rule: rows slack for 2 solves dropped, once": OLD,
    "old rule, drop_after 1": {**OLD, "drop_after": 1},
    "old rule, per_step 1, every step scanned each round": {
        **OLD,
        "per_step": 1,
        "max_add": 10**9,
    },
    "old rule, per_step 10, max_add 40,000": {**OLD, "per_step": 10, "max_add": 40_000},
    "old rule, HiGHS Devex pricing": {
        **OLD,
        "highs_options": {"simplex_dual_edge_weight_strategy": 1},
    },
    "old rule, HiGHS no cost perturbation": {
        **OLD,
        "highs_options": {"dual_simplex_cost_perturbation_multiplier": 0.0},
    },
    "old rule, HiGHS interior point, no crossover": {
        **OLD,
        "highs_options": {"solver": "ipm", "run_crossover": "off"},
    },
    "rows with a basic slack dropped after 1 solve, once": {"max_drops": 1},
    "default: rows with a basic slack dropped after 1 solve, up to 5 times": {},
    "default, per_step 1, every step scanned each round": {"per_step": 1, "max_add": 10**9},
    "stabilized (in-out), smoothing 0.5": {"method": "stabilized", "smoothing": 0.5},
    "stabilized (in-out), smoothing 0.8": {"method": "stabilized", "smoothing": 0.8},
}
#: The variant that re-solves from scratch with only the final rows of the first variant run.
SEEDED = "one solve from scratch with the first row's final rows only"


def first_steps(data: object, steps: int) -> object:
    """The LP inputs of the first ``steps`` merges only."""
    from dataclasses import replace

    return replace(
        data,
        step_offsets=np.ascontiguousarray(data.step_offsets[:, : steps + 1]),
        merge_counts=np.ascontiguousarray(data.merge_counts[:, :steps]),
        merge_pairs=data.merge_pairs[:steps].copy(),
    )


def compare_variants(
    data: object, steps: int, limit: float, only: list[str] | None = None
) -> list[dict]:
    """Each of :data:`VARIANTS` (those whose name holds one of ``only``) on the first ``steps``
    merges, one after the other, then :data:`SEEDED`: the LP of the first variant's final rows
    solved from scratch, the iterations a solve needs when it is handed the right rows."""
    from toknz.analysis.lp import solve_mixture_lp

    cut = first_steps(data, steps)
    active = cut.merge_counts.sum(axis=0) > 0
    out: list[dict] = []
    chosen = [
        (name, kw)
        for name, kw in VARIANTS.items()
        if not only or any(word in name for word in only)
    ]
    first_rows = None
    for name, kw in [*chosen, (SEEDED, {})]:
        if name == SEEDED:
            if first_rows is None:
                break
            kw = {"initial_rows": first_rows}
        sol = solve_mixture_lp(cut, active=active, time_limit=limit, **kw)
        if first_rows is None:
            first_rows = sol.final_rows
        ref = out[0]["weights"] if out else sol.pair_weights.tolist()
        row = {
            "variant": name,
            "seconds": round(sol.seconds, 1),
            "highs": round(sol.timings.get("highs", 0.0), 1),
            "iterations": sol.iterations,
            "rounds": sol.rounds,
            "rows": sol.constraints,
            "converged": sol.converged,
            "objective": sol.slack,
            "max_weight_diff": float(np.abs(sol.pair_weights - np.array(ref)).max()),
            "weights": sol.pair_weights.tolist(),
        }
        print(json.dumps({k: v for k, v in row.items() if k != "weights"}), flush=True)
        out.append(row)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def source_files(corpus_root: Path) -> list[Path]:
    files: list[Path] = []
    for name in CORPORA:
        folder = corpus_root / name
        if not folder.is_dir():
            raise SystemExit(f"{folder}: missing (build it: {BUILD})")
        files += sorted(p for p in folder.glob("*.txt") if p.name != "heldout.txt")
    return files


def regions(files: list[Path], n: int, region_mb: float) -> list[tuple[str, Path, int, int]]:
    """``n`` categories ``(name, file, offset, length)``: each file cut into regions by size."""
    sizes = np.array([f.stat().st_size for f in files], dtype=np.float64)
    length = int(region_mb * 1e6)
    cap = np.maximum(1, (sizes // length).astype(np.int64))
    per = np.minimum(cap, np.maximum(1, np.floor(n * sizes / sizes.sum()).astype(np.int64)))
    while per.sum() < n:  # hand the rest to the files with the most regions to spare
        spare = (cap - per) * sizes
        if spare.max() <= 0:
            raise SystemExit(f"the corpora hold only {per.sum()} regions of {region_mb} MB")
        per[int(np.argmax(spare / (per + 1)))] += 1
    while per.sum() > n:
        per[int(np.argmax(per))] -= 1
    out = []
    for f, size, k in zip(files, sizes, per.tolist(), strict=True):
        step = int(size) // k
        for j in range(k):
            name = f"{f.parent.name.split('-')[0]}/{f.stem}#{j}"
            out.append((name, f, j * step, min(length, step)))
    return out


def read_region(path: Path, offset: int, length: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length).decode("utf-8", "ignore")


def prepare(args: argparse.Namespace) -> tuple[object, dict[str, str], np.ndarray, list[str]]:
    """The tokenizer, each category's sample text, the true byte shares (or None) and groups."""
    from mixture_helpers import known_mixture, split_blocks

    import toknz
    from toknz.train import save_trained, train

    cats = regions(source_files(args.corpus), args.categories, args.region_mb)
    names = [c[0] for c in cats]
    groups = [c[0].split("#")[0] for c in cats]
    train_side: dict[str, str] = {}
    samples: dict[str, str] = {}
    for name, path, offset, length in cats:
        a, b = split_blocks(read_region(path, offset, length))
        train_side[name] = a
        samples[name] = b.encode("utf-8")[: int(args.sample_mb * 1e6)].decode("utf-8", "ignore")
    if args.tokenizer != "trained":
        return toknz.load(args.tokenizer), samples, None, groups
    key = f"m{args.merges}-c{args.categories}-r{args.region_mb:g}-t{args.train_mb:g}-s{args.seed}"
    work = args.work / key
    tok_path, truth_path = work / "tokenizer.json", work / "truth.json"
    if not tok_path.is_file():
        work.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        weights = rng.dirichlet(np.ones(len(names)))
        text, actual = known_mixture(train_side, weights, int(args.train_mb * 1e6), spread=True)
        corpus = work / "mixture.txt"
        corpus.write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        # A margin of merges: the cleaning skips a few (e.g. merges no training would make).
        tok = train([corpus], vocab_size=256 + int(args.merges * 1.02) + 64, threads=2)
        print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)
        save_trained(tok, tok_path)
        truth_path.write_text(json.dumps(dict(zip(names, actual.tolist(), strict=True))))
        corpus.unlink()
    truth = json.loads(truth_path.read_text())
    return toknz.load(str(tok_path)), samples, np.array([truth[n] for n in names]), groups


def run(args: argparse.Namespace) -> dict:
    from toknz.analysis import Text
    from toknz.analysis.lp import build_inputs, solve_mixture_lp
    from toknz.analysis.mixture import byte_weights, prepare_merges
    from toknz.analysis.samples import count_sample, sample_from_table, word_splitter

    tok, texts, truth, groups = prepare(args)
    names = list(texts)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    cleaned = prepare_merges(tok, args.merges)
    seconds["merges"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    splitter = word_splitter(tok)
    samples = []
    for n in names:
        table, size, sources = count_sample(tok, n, Text(texts[n]), threads=2, splitter=splitter)
        samples.append(sample_from_table(tok, n, table, size, sources))
    seconds["counting"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from toknz.analysis import replay as replay_mod

    if hasattr(replay_mod, "replay_samples"):
        counts = replay_mod.replay_samples(samples, cleaned, threads=args.threads)
    else:
        counts = [replay_mod.replay_sample(s, cleaned) for s in samples]
    seconds["replay"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    merge_keys = (cleaned.left.astype(np.int64) << np.int64(32)) | cleaned.right.astype(np.int64)
    data = build_inputs(counts, merge_keys)
    active = data.merge_counts.sum(axis=0) > 0
    seconds["lp inputs"] = time.perf_counter() - t0

    if args.variants:
        variants = compare_variants(
            data, min(args.variants, data.steps), args.time_limit or 600, args.only
        )
        for v in variants:
            v.pop("weights")
        return {
            "label": args.label,
            "commit": _common.git_state(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": _common.describe_machine(_common.machine_info()),
            "load_before": args.load_before,
            "free_cores_before": args.free_before,
            "merges": len(cleaned),
            "categories": len(names),
            "variant_steps": min(args.variants, data.steps),
            "variants": variants,
        }

    rounds: list[tuple[int, int, float]] = []
    t_solve = time.perf_counter()

    def on_round(r: int, rows: int) -> None:
        rounds.append((r, rows, time.perf_counter() - t_solve))
        if args.verbose:
            print(f"  round {r}: {rows:,} rows, {rounds[-1][2]:.1f} s", flush=True)

    prof = cProfile.Profile() if args.profile else None
    if prof is not None:
        prof.enable()
    t_solve = time.perf_counter()
    limit = {"time_limit": args.time_limit} if args.time_limit else {}
    method = {"method": args.method, "smoothing": args.smoothing}
    sol = solve_mixture_lp(data, active=active, on_round=on_round, **limit, **method)
    seconds["solve"] = time.perf_counter() - t_solve
    seeded = None
    if args.seeded_check and sol.converged:
        again = solve_mixture_lp(data, active=active, initial_rows=sol.final_rows, **method)
        seeded = {
            "seconds": round(again.seconds, 2),
            "highs": round(again.timings.get("highs", 0.0), 2),
            "iterations": again.iterations,
            "rounds": again.rounds,
            "objective": again.slack,
        }
        print(json.dumps({"seeded": seeded}), flush=True)
    profile_top = ""
    if prof is not None:
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
        profile_top = out.getvalue()
        print(profile_top)
    seconds["total"] = sum(seconds.values())

    sizes = np.array([s.bytes for s in samples], dtype=np.float64)
    pairs = np.array([c.total_pairs for c in counts], dtype=np.float64)
    est = byte_weights(sol.pair_weights, sizes, pairs)
    result: dict = {
        "label": args.label,
        "commit": _common.git_state(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": _common.describe_machine(_common.machine_info()),
        "load_before": args.load_before,
        "free_cores_before": args.free_before,
        "tokenizer": args.tokenizer,
        "merges": len(cleaned),
        "categories": len(names),
        "sample_mb": args.sample_mb,
        "train_mb": args.train_mb if args.tokenizer == "trained" else None,
        "sample_bytes": int(sizes.sum()),
        "distinct_words": int(sum(len(s.table) for s in samples)),
        "pairs_global": int(data.n_pairs),
        "deltas": int(data.delta_pairs.shape[0]),
        "steps_active": int(active.sum()),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "lp": {
            "rounds": sol.rounds,
            "rows_final": sol.constraints,
            "rows_peak": max([r[1] for r in rounds] or [0]),
            "pair_slacks": sol.pair_slacks,
            "converged": sol.converged,
            "objective": sol.slack,
            "largest_violation": sol.largest_violation,
            "iterations": getattr(sol, "iterations", None),
            "timings": {k: round(v, 2) for k, v in getattr(sol, "timings", {}).items()},
            "method": args.method,
            "smoothing": args.smoothing if args.method == "stabilized" else None,
            "seeded": seeded,
        },
        "round_trace": rounds[:: max(1, len(rounds) // 40)] + rounds[-1:],
        "peak_rss_mb": round(peak_rss_mb()),
        "weights": dict(zip(names, est.tolist(), strict=True)),
    }
    if profile_top:
        result["profile"] = profile_top.splitlines()[:40]
    if truth is not None:
        err = np.abs(est - truth)
        g_names = sorted(set(groups))
        g_idx = np.array([g_names.index(g) for g in groups])
        g_err = np.abs(
            np.bincount(g_idx, weights=est, minlength=len(g_names))
            - np.bincount(g_idx, weights=truth, minlength=len(g_names))
        )
        result["error"] = {
            "category_max": float(err.max()),
            "category_mean": float(err.mean()),
            "file_max": float(g_err.max()),
            "file_mean": float(g_err.mean()),
            "files": len(g_names),
        }
    return result


def render(runs: list[dict]) -> str:
    lines = [
        "Generated by `benchmarks/mixture_scale.py` from `docs/bench/mixture_scale.jsonl` "
        "(one row per run; each run is one process: counting on 2 threads, then replay and "
        "the LP). Seconds are wall time; *scan* is the violated-constraint search, *rows* "
        "building constraint rows, *HiGHS* the solver's re-solves. Error: absolute error "
        "of the byte weights against the known mixture, per category / per source file.",
        "",
        "| run | commit | tokenizer | merges | categories | sample MB/cat | count s | "
        "replay s | LP s (scan / rows / HiGHS) | rounds | rows (peak) | objective | "
        "total s | max err cat / file | peak RSS MB |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---|---:|",
    ]
    variant_runs = [r for r in runs if "variants" in r]
    runs = [r for r in runs if "variants" not in r]
    for r in runs:
        s, lp = r["seconds"], r["lp"]
        tm = lp.get("timings") or {}
        split = (
            f" ({tm.get('scan', 0):.0f} / {tm.get('rows', 0):.0f} / {tm.get('highs', 0):.0f})"
            if tm
            else ""
        )
        solve = f"{s['solve']:.0f}{split}" + ("" if lp["converged"] else " (not converged)")
        err = r.get("error")
        err_s = f"{err['category_max']:.3f} / {err['file_max']:.3f}" if err else "–"
        lines.append(
            f"| {r['label']} | {r['commit']} | {r['tokenizer']} | {r['merges']:,} | "
            f"{r['categories']} | {r['sample_mb']:g} | {s['counting']:.0f} | {s['replay']:.0f} | "
            f"{solve} | {lp['rounds']} | {lp['rows_final']:,} ({lp['rows_peak']:,}) | "
            f"{lp['objective']:.5f} | {s['total']:.0f} | {err_s} | {r['peak_rss_mb']:,} |"
        )
    lines += [""]
    for r in runs:
        lines.append(
            f"- {r['label']}: {r['date']}, {r['machine']}; load before {r['load_before']}, "
            f"free cores {r['free_cores_before']:.2f}; {r['sample_bytes'] / 1e6:.0f} MB of "
            f"sample, {r['distinct_words']:,} distinct words, {r['pairs_global']:,} pairs, "
            f"{r['deltas']:,} pair-count changes, {r['steps_active']:,} active steps"
            + (
                f"; {r['lp']['iterations']:,} simplex iterations"
                if r["lp"].get("iterations")
                else ""
            )
            + (
                f"; method {r['lp']['method']}"
                + (
                    f" (smoothing {r['lp']['smoothing']:g})"
                    if r["lp"].get("smoothing") is not None
                    else ""
                )
                if r["lp"].get("method")
                else ""
            )
            + (
                f"; the same LP solved again from scratch with only its final rows: "
                f"{r['lp']['seeded']['iterations']:,} iterations, "
                f"{r['lp']['seeded']['highs']:.0f} s of HiGHS, {r['lp']['seeded']['rounds']} "
                f"round(s), objective {r['lp']['seeded']['objective']:.8f}"
                if r["lp"].get("seeded")
                else ""
            )
            + (
                ""
                if r["lp"]["converged"]
                else f"; stopped with a constraint violated by {r['lp']['largest_violation']:.2g}"
                if r["lp"]["largest_violation"] > 0
                # Stabilized runs of d69ffce and before did not measure it when stopped.
                else "; stopped with constraints still violated (by how much was not recorded)"
            )
            + "."
        )
    for r in variant_runs:
        lines += [
            "",
            f"Solver variants, `--variants {r['variant_steps']}` ({r['label']}: the first "
            f"{r['variant_steps']:,} of {r['merges']:,} merges, {r['categories']} categories; "
            f"{r['date']}, load before {r['load_before']}, free cores "
            f"{r['free_cores_before']:.2f}), one after the other in one process. *max weight "
            "diff*: largest difference of a pair-unit weight from the first row's.",
            "",
            "| variant | s | HiGHS s | simplex iterations | rounds | rows | objective | "
            "max weight diff |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for v in r["variants"]:
            lines.append(
                f"| {v['variant']} | {v['seconds']:.1f} | {v['highs']:.1f} | "
                f"{v['iterations']:,} | {v['rounds']} | {v['rows']:,} | {v['objective']:.8f}"
                + ("" if v["converged"] else " (not converged)")
                + f" | {v['max_weight_diff']:.1e} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CACHE, help="folder holding the corpora")
    ap.add_argument("--merges", type=int, default=30_000)
    ap.add_argument("--categories", type=int, default=112)
    ap.add_argument("--region-mb", type=float, default=1.6, help="bytes of a file per category")
    ap.add_argument("--sample-mb", type=float, default=0.5, help="sample bytes per category")
    ap.add_argument("--train-mb", type=float, default=40.0, help="training mixture size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default="trained", help="'trained' or a known name")
    ap.add_argument("--threads", type=int, default=2, help="replay threads (when supported)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/toknz-mixture-scale"))
    ap.add_argument("--time-limit", type=float, default=None, help="stop the LP after S s")
    ap.add_argument(
        "--variants", type=int, default=0, help="compare solver variants on the first N merges"
    )
    ap.add_argument("--method", choices=["lazy", "stabilized"], default="lazy", help="LP method")
    ap.add_argument(
        "--smoothing", type=float, default=0.8, help="centre's share for --method stabilized"
    )
    ap.add_argument(
        "--seeded-check",
        action="store_true",
        help="after the LP, solve it again from scratch with only its final rows",
    )
    ap.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="with --variants: only the variants whose name holds one of these words",
    )
    ap.add_argument("--label", default="run")
    ap.add_argument("--profile", action="store_true", help="cProfile the LP solve")
    ap.add_argument("--verbose", action="store_true", help="print every LP round")
    ap.add_argument("--no-record", action="store_true", help="do not append to the JSONL")
    ap.add_argument("--write", action="store_true", help="rewrite the docs/mixture.md section")
    ap.add_argument(
        "--render-only", action="store_true", help="only rewrite the section from the JSONL"
    )
    args = ap.parse_args()
    if args.render_only:
        runs = [json.loads(x) for x in JSONL.read_text(encoding="utf-8").splitlines() if x]
        _common.write_marked(DOC, MARK, render(runs))
        return
    args.load_before = _common.load_average()
    args.free_before = _common.free_cores(2)
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k not in ("weights", "profile")}))
    if not args.no_record:
        JSONL.parent.mkdir(parents=True, exist_ok=True)
        with open(JSONL, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
    if args.write:
        runs = [json.loads(x) for x in JSONL.read_text(encoding="utf-8").splitlines() if x]
        _common.write_marked(DOC, MARK, render(runs))


if __name__ == "__main__":
    sys.exit(main())
