#!/usr/bin/env python3
"""Hierarchical, BPE and byte-level LMs at equal parameters and equal training time.

    python benchmarks/torch_lm.py train --minutes 10 --params 3000000   # the runs (slow)
    python benchmarks/torch_lm.py report                                # evaluate + write docs

``train`` runs ``toknz train-lm`` on corpora/en and corpora/code (the last 10 % of each file's
windows held out) once per contender, two at a time with one torch thread each (each gets one
of this machine's two cores, so "equal training time" is equal time on one core):

- ``hierarchical``, ``bpe`` (a 4,096-token BPE trained on the training windows), ``bytes``:
  sized to the same trainable parameter count (``--params``);
- ``bytes-gate``: the byte model with an MrT5 delete gate after 2 of its 6 layers, its
  controller holding a 50 % deletion rate (also sized to ``--params``);
- ``bytes-gate-sym``: the same gate with the symmetric controller (``--symmetric-controller``),
  trained for the ungated byte model's 195 steps (equal steps, so other load does not matter);
- ``backbone``: the hierarchical model whose word backbone is the first ``--backbone-layers``
  blocks of SmolLM2-135M (``toknz fetch smollm2-135m`` first), same minutes.

``report`` loads every finished run and measures, in one process, on held-out windows no run
trained on: bits per byte on prose (Emma) and code, on English text none of the project's
benchmarks or tests use (the licence texts in /usr/share/common-licenses), and on the prose
under each perturbation of :mod:`toknz.perturb` (5 % of characters, fixed seeds); for the
gated byte model its deletion rate at inference and its forward speed against the ungated
one (alternated, 3 rounds, median); the backbone run's held-out bits per byte over training
time from its log. Rows go to docs/bench/torch_lm.jsonl and the tables into docs/torch.md
(between the ``<!-- torch_lm -->`` markers).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    describe_machine,
    git_state,
    library_versions,
    machine_info,
    write_atomic,
    write_marked,
)

RUNS = Path(os.environ.get("TOKNZ_BENCH_RUNS", ROOT / "runs" / "torch_lm"))
JSONL = ROOT / "docs" / "bench" / "torch_lm.jsonl"
DOC = ROOT / "docs" / "torch.md"
MARK = "<!-- torch_lm -->"
CORPUS = [ROOT / "corpora" / "en", ROOT / "corpora" / "code"]
OTHER_PROSE = [
    Path("/usr/share/common-licenses/GPL-3"),
    Path("/usr/share/common-licenses/Apache-2.0"),
]
SEQ_BYTES = 512
HELDOUT = 0.1
RATE = 0.05
SMOLLM2 = (
    Path(os.environ.get("TOKNZ_CACHE", Path.home() / ".cache" / "toknz"))
    / "models"
    / "smollm2-135m"
    / "hf"
)

CONTENDERS: dict[str, list[str]] = {
    "hierarchical": ["--arch", "hierarchical"],
    "bpe": ["--arch", "bpe", "--vocab-size", "4096"],
    "bytes": ["--arch", "bytes"],
    "bytes-gate": ["--arch", "bytes", "--gate-layer", "2", "--target-deletion", "0.5"],
    # the symmetric controller, at the ungated model's step count (equal steps, not minutes)
    "bytes-gate-sym": [
        "--arch",
        "bytes",
        "--gate-layer",
        "2",
        "--target-deletion",
        "0.5",
        "--symmetric-controller",
        "--steps",
        "195",
    ],  # fmt: skip
    "backbone": ["--arch", "hierarchical"],
}
ORDER = [["hierarchical", "bpe"], ["bytes", "bytes-gate"], ["backbone", "bytes-gate-sym"]]
GATED = ("bytes-gate", "bytes-gate-sym")


def _command(name: str, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "toknz", "train-lm", *map(str, CORPUS), "-o", str(RUNS / name)]
    cmd += CONTENDERS[name]
    if "--steps" not in CONTENDERS[name]:
        cmd += ["--minutes", str(args.minutes)]
    cmd += ["--seq-bytes", str(SEQ_BYTES), "--heldout", str(HELDOUT)]
    cmd += ["--batch-size", str(args.batch_size), "--eval-every", str(args.eval_every)]
    cmd += ["--eval-windows", "64", "--checkpoint-every", "200", "--device", "cpu", "-q"]
    if name == "backbone":
        cmd += ["--backbone", str(SMOLLM2), "--backbone-layers", str(args.backbone_layers)]
    else:
        cmd += ["--params", str(args.params)]
    if (RUNS / name / "checkpoint").exists():
        cmd.append("--resume")
    return cmd


def train(args: argparse.Namespace) -> None:
    """Run the contenders, two at a time, one torch thread each; resume any unfinished run."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    names = args.only.split(",") if args.only else [n for group in ORDER for n in group]
    groups = [[n for n in group if n in names] for group in ORDER]
    for group in filter(None, groups):
        procs = []
        for name in group:
            (RUNS / name).mkdir(parents=True, exist_ok=True)
            cmd = _command(name, args)
            print("$", " ".join(cmd), flush=True)
            log = open(RUNS / name / "stdout.txt", "a")  # noqa: SIM115 - closed below
            procs.append((name, subprocess.Popen(cmd, env=env, stdout=log, stderr=log), log))
        for name, proc, log in procs:
            code = proc.wait()
            log.close()
            print(f"{name}: exit {code}: {(RUNS / name / 'stdout.txt').read_text().strip()[-200:]}")


# --------------------------------------------------------------------------------- report


def _load(name: str) -> Any:
    from toknz.torch.lm_training import model_class

    log = json.loads((RUNS / name / "log.json").read_text())
    model = model_class(log["arch"]).from_pretrained(RUNS / name / "checkpoint")
    return model.eval(), log


def _heldout(path: Path) -> list[str]:
    from toknz.torch.lm_training import load_corpus

    return load_corpus([path], seq_bytes=SEQ_BYTES, heldout=HELDOUT).heldout


def _other_prose() -> list[str]:
    from toknz.torch.lm_training import cut_windows

    texts = [p.read_text(encoding="utf-8") for p in OTHER_PROSE if p.exists()]
    return [w for t in texts for w in cut_windows(t, SEQ_BYTES)]


def _bpb(model: Any, windows: list[str]) -> float:
    from toknz.torch.lm_training import evaluate_bpb

    return evaluate_bpb(model, windows, batch_size=16)


def _forward_seconds(model: Any, windows: list[str]) -> float:
    import torch

    batcher = model.batcher()
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(windows), 16):
            model(batcher(windows[i : i + 16]))
    return time.perf_counter() - start


def _deletion_rate(model: Any, windows: list[str]) -> float:
    """Share of byte positions the gate deletes at inference, over ``windows``."""
    import torch

    batcher = model.batcher()
    deleted = total = 0.0
    with torch.no_grad():
        for i in range(0, len(windows), 16):
            batch = batcher(windows[i : i + 16])
            out = model(batch)
            n = float(batch.mask.sum())
            deleted += out.aux["deletion_rate"] * n
            total += n
    return deleted / total


def report(args: argparse.Namespace) -> None:
    import torch

    from toknz.perturb import PERTURBATIONS, perturb_all

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sets = {
        "prose": _heldout(CORPUS[0])[: args.windows],
        "code": _heldout(CORPUS[1])[: args.windows],
        "other prose": _other_prose()[: args.windows],
    }
    for name in PERTURBATIONS:
        sets[f"prose, {name} {RATE:.0%}"] = perturb_all(sets["prose"], name, RATE, seed=1)
    rows: list[dict[str, Any]] = []
    meta = {
        "kind": "meta",
        "machine": describe_machine(machine_info()),
        "versions": library_versions(("torch", "transformers", "numba")),
        "commit": git_state(),
        "windows": {k: len(v) for k, v in sets.items()},
        "bytes": {k: sum(len(w.encode()) for w in v) for k, v in sets.items()},
        "command": "python benchmarks/torch_lm.py " + " ".join(sys.argv[1:]),
    }
    names = [n for n in CONTENDERS if (RUNS / n / "log.json").exists()]
    models = {}
    for name in names:
        model, log = _load(name)
        models[name] = model
        row = {
            "kind": "model",
            "name": name,
            "arch": log["arch"],
            "params": log["params"],
            "steps": log["evals"][-1]["step"] if log["evals"] else 0,
            "train_seconds": log["evals"][-1]["seconds"] if log["evals"] else 0.0,
            "curve": [(e["seconds"], e["heldout_bpb"]) for e in log["evals"]],
            "curve_steps": [(e["step"], e["heldout_bpb"]) for e in log["evals"]],
        }
        for set_name, windows in sets.items():
            row[set_name] = _bpb(model, windows)
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
        rows.append(row)
    for name in GATED:
        if "bytes" not in models or name not in models:
            continue
        windows = sets["prose"] + sets["code"]
        rate = _deletion_rate(models[name], windows)
        plain, gated = [], []
        for _ in range(3):
            plain.append(_forward_seconds(models["bytes"], windows))
            gated.append(_forward_seconds(models[name], windows))
        ratios = sorted(p / g for p, g in zip(plain, gated, strict=True))
        rows.append(
            {
                "kind": "gate",
                "name": name,
                "deletion_rate": rate,
                "plain_seconds": sorted(plain)[1],
                "gated_seconds": sorted(gated)[1],
                "speedup": ratios[1],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    JSONL.parent.mkdir(parents=True, exist_ok=True)
    kept = []  # the rows other parts wrote (``buckets``) stay
    if JSONL.exists():
        kept = [json.loads(x) for x in JSONL.read_text().splitlines()]
        kept = [r for r in kept if r["kind"] == "buckets"]
    write_atomic(JSONL, "".join(json.dumps(r) + "\n" for r in [meta, *rows, *kept]))
    render()


def render() -> None:
    """Write the tables of docs/bench/torch_lm.jsonl into docs/torch.md."""
    rows = [json.loads(line) for line in JSONL.read_text().splitlines()]
    meta = rows[0]
    models = [r for r in rows if r["kind"] == "model"]
    sets = list(meta["windows"])
    out: list[str] = []
    out.append(f"Measured on {meta['machine']}; {meta['commit']}; `{meta['command']}`.")
    out.append(
        "Held-out windows (bytes): " + ", ".join(f"{k} {meta['bytes'][k]:,}" for k in sets) + "."
    )
    out.append("")
    out.append("| model | params | steps | train s | " + " | ".join(sets) + " |")
    out.append("|---|---:|---:|---:|" + "---:|" * len(sets))
    for r in models:
        cells = " | ".join(f"{r[s]:.3f}" for s in sets)
        out.append(
            f"| {r['name']} | {r['params']:,} | {r['steps']:,} | {r['train_seconds']:.0f} | {cells} |"
        )
    by = {r["name"]: r for r in models}
    if "hierarchical" in by and "bpe" in by:
        out.append("")
        out.append("Hierarchical against BPE (bits per byte, relative: negative is better):")
        out.append("")
        out.append("| set | hierarchical | bpe | difference |")
        out.append("|---|---:|---:|---:|")
        for s in sets:
            h, b = by["hierarchical"][s], by["bpe"][s]
            out.append(f"| {s} | {h:.3f} | {b:.3f} | {100 * (h - b) / b:+.1f} % |")
        noisy = [s for s in sets if s.startswith("prose, ")]
        if noisy:
            out.append("")
            out.append(
                "What each perturbation costs each model (bits per byte, relative to clean prose):"
            )
            out.append("")
            out.append("| model | " + " | ".join(noisy) + " |")
            out.append("|---|" + "---:|" * len(noisy))
            for r in models:
                cells = " | ".join(
                    f"{100 * (r[s] - r['prose']) / r['prose']:+.1f} %" for s in noisy
                )
                out.append(f"| {r['name']} | {cells} |")
    for gate in (r for r in rows if r["kind"] == "gate"):
        name = gate.get("name", "bytes-gate")
        if "bytes" not in by or name not in by:
            continue
        cost = [100 * (by[name][s] - by["bytes"][s]) / by["bytes"][s] for s in ("prose", "code")]
        out.append("")
        out.append(
            f"Delete gate `{name}` at inference: {100 * gate['deletion_rate']:.1f} % of byte "
            f"positions deleted after layer 2 (prose + code held out); forward pass "
            f"{gate['speedup']:.2f}× the ungated model's speed (median of 3 alternated rounds: "
            f"{gate['plain_seconds']:.2f} s against {gate['gated_seconds']:.2f} s); bits per byte "
            f"{cost[0]:+.1f} % on prose and {cost[1]:+.1f} % on code against `bytes` "
            f"({by[name]['steps']} steps against {by['bytes']['steps']})."
        )
    gated_runs = [n for n in GATED if n in by]
    if "bytes" in by and gated_runs:
        curves = {n: dict(by[n]["curve_steps"]) for n in ["bytes", *gated_runs]}
        common = sorted(set.intersection(*(set(c) for c in curves.values())))
        if common:
            out.append("")
            out.append("The byte models at equal steps (held-out bits per byte, first 64 windows):")
            out.append("")
            out.append("| step | " + " | ".join(curves) + " |")
            out.append("|---:|" + "---:|" * len(curves))
            for k in common:
                base = curves["bytes"][k]
                cells = [f"{base:.3f}"] + [
                    f"{curves[n][k]:.3f} ({100 * (curves[n][k] - base) / base:+.1f} %)"
                    for n in gated_runs
                ]
                out.append(f"| {k} | " + " | ".join(cells) + " |")
    grouped = next((r for r in rows if r["kind"] == "buckets"), None)
    if grouped:
        out.append("")
        out.append(
            f"Hierarchical training step, {grouped['params']:,}-parameter model, 3 batches of 16 "
            f"windows, one thread (`python benchmarks/torch_lm.py buckets`): words padded to the "
            f"batch's longest {grouped['padded_seconds']:.2f} s, in {grouped['word_buckets']} "
            f"length groups {grouped['grouped_seconds']:.2f} s ({grouped['speedup']:.2f}× faster; "
            f"same losses: {'yes' if grouped['same_loss'] else 'NO'})."
        )
    curves = [r for r in models if r["name"] in ("hierarchical", "backbone")]
    if len(curves) == 2:
        out.append("")
        out.append("Held-out bits per byte (first 64 windows) as training goes:")
        out.append("")
        out.append("| model | step | training seconds | bits per byte |")
        out.append("|---|---:|---:|---:|")
        for r in curves:
            for (step, bpb), (seconds, _) in zip(r["curve_steps"], r["curve"], strict=True):
                out.append(f"| {r['name']} | {step} | {seconds:.0f} | {bpb:.3f} |")
    write_marked(DOC, MARK, "\n".join(out))


def buckets(args: argparse.Namespace) -> None:
    """Training-step time of the hierarchical model with and without length groups.

    The same 3 batches of 16 training windows, forward and backward, ``word_buckets`` 0 (every
    word padded to the batch's longest) against the default, alternated for 3 rounds on one
    thread; the losses are checked equal. Appends a ``buckets`` row to the JSON lines.
    """
    import dataclasses

    import torch

    from toknz.torch.hierarchical import HierarchicalLM
    from toknz.torch.lm_training import load_corpus, size_for

    torch.set_num_threads(1)
    corpus = load_corpus(CORPUS, seq_bytes=SEQ_BYTES, heldout=HELDOUT)
    config = size_for("hierarchical", args.params).config
    texts = [corpus.train[i * 16 : (i + 1) * 16] for i in range(3)]
    models = {}
    for k in (0, config.word_buckets):
        torch.manual_seed(0)
        models[k] = HierarchicalLM(dataclasses.replace(config, word_buckets=k))
    seconds: dict[int, list[float]] = {k: [] for k in models}
    losses: dict[int, list[float]] = {k: [] for k in models}
    for _ in range(3):
        for k, model in models.items():
            batcher = model.batcher()
            start = time.perf_counter()
            for batch in texts:
                out = model(batcher(batch))
                out.loss.backward()
                losses[k].append(float(out.loss))
            seconds[k].append(time.perf_counter() - start)
    plain, grouped = sorted(seconds[0]), sorted(seconds[config.word_buckets])
    row = {
        "kind": "buckets",
        "params": args.params,
        "word_buckets": config.word_buckets,
        "padded_seconds": plain[1],
        "grouped_seconds": grouped[1],
        "speedup": sorted(
            p / g for p, g in zip(seconds[0], seconds[config.word_buckets], strict=True)
        )[1],
        "same_loss": all(
            math.isclose(a, b, rel_tol=1e-4)
            for a, b in zip(losses[0], losses[config.word_buckets], strict=True)
        ),
    }
    print(json.dumps(row))
    rows = [json.loads(line) for line in JSONL.read_text().splitlines()]
    rows = [r for r in rows if r["kind"] != "buckets"] + [row]
    write_atomic(JSONL, "".join(json.dumps(r) + "\n" for r in rows))
    render()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="part", required=True)
    t = sub.add_parser("train", help="run the contenders (resumes unfinished runs)")
    t.add_argument("--minutes", type=float, default=10.0)
    t.add_argument("--params", type=int, default=3_000_000)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--eval-every", type=int, default=100)
    t.add_argument("--backbone-layers", type=int, default=4)
    t.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    r = sub.add_parser("report", help="evaluate the finished runs and write the docs")
    r.add_argument("--windows", type=int, default=128, help="held-out windows per set")
    r.add_argument("--threads", type=int, default=2)
    sub.add_parser("render", help="re-write docs/torch.md from docs/bench/torch_lm.jsonl")
    b = sub.add_parser("buckets", help="hierarchical step time with and without word_buckets")
    b.add_argument("--params", type=int, default=2_000_000)
    args = parser.parse_args()
    parts = {"train": train, "report": report, "render": lambda _a: render(), "buckets": buckets}
    parts[args.part](args)


if __name__ == "__main__":
    main()
