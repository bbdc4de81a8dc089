#!/usr/bin/env python3
"""Dynamic tokenization with a real model: SmolLM2-135M's loss on merged input.

    python benchmarks/dynamic_lm.py                     # train the hypernetwork, then measure
    python benchmarks/dynamic_lm.py --train-minutes 0   # reuse runs/dynamic_lm/hypernet
    python benchmarks/dynamic_lm.py --render            # tables from docs/bench/dynamic_lm.jsonl

Needs ``toknz fetch smollm2-135m`` (the model under
$TOKNZ_CACHE/models/smollm2-135m/hf). SmolLM2 is trained mostly on English; the text here is
German, French, Spanish and Russian (corpora/multi, LibreOffice help paragraphs), where its
tokenizer splits words into several pieces and merging has something to do.

- Split: per language, the non-empty lines (documents) in file order; the last 20 % are the
  held-out part, the first 80 % the training part (never overlapping). Evaluation uses the
  first ``--eval-docs`` held-out documents of each language, in batches of ``--batch-size``
  (32) documents of one language; each document is cut to its first ``--max-tokens`` base
  tokens and read after ``<|endoftext|>`` (id 0, SmolLM2's document separator).
- Merging: :func:`toknz.dynamic.merge_batch` on each batch, on pre-token boundaries, until no
  pair repeats (``budget=None, min_count=2``), new ids from 49152 on.
- Compared positions: the first base token of every word (pre-token) that follows a word
  holding a merged token, predicted from the end of that merged word: in the merged input
  from its last (merged) position, in the unmerged input from the same place (the word's
  last base token). Both have read the same text and predict the same base token, so the
  losses compare directly.
- Conditions: ``unmerged`` (the model as it is), ``mean`` (merged tokens embedded by the
  mean of their constituents' embeddings), ``hypernet`` (by the trained
  :class:`~toknz.torch.dynamic_embedding.MergedTokenHypernet`); positions ``0, 1, 2...`` of
  the merged input (the model sees the shorter sequence).
- Hypernetwork: :func:`toknz.torch.dynamic_training.train_hypernet` on the training part of
  the same four languages (batches of one language, the same merging), for
  ``--train-minutes`` on this machine (each step merges ``--train-batch`` documents cut to
  ``--train-max-tokens`` and runs the model on ``--train-rows`` of them), objective KL(unmerged || merged) of the next-token
  distributions at aligned positions, the model under bf16 autocast (``--train-autocast``;
  about twice as fast on this CPU; the evaluation runs in float32); saved in
  runs/dynamic_lm/hypernet.
- Numbers: mean nats per compared token, 95 % bootstrap interval over documents (2,000
  resamples, seeded), the relative difference against ``unmerged`` on the same resamples, the
  mean KL(unmerged || merged) at the compared positions, the sequence-length reduction.

Rows go to docs/bench/dynamic_lm.jsonl (replaced each run) and the table into docs/dynamic.md
between the ``<!-- dynamic_lm -->`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    ROOT,
    describe_machine,
    git_state,
    library_versions,
    load_average,
    machine_info,
    write_atomic,
    write_marked,
)

LANGS = ("de", "fr", "es", "ru")
HELDOUT = 0.2
JSONL = ROOT / "docs" / "bench" / "dynamic_lm.jsonl"
DOC = ROOT / "docs" / "dynamic.md"
MARK = "<!-- dynamic_lm -->"
RUN = Path(os.environ.get("TOKNZ_BENCH_RUNS", ROOT / "runs")) / "dynamic_lm" / "hypernet"
SMOLLM2 = (
    Path(os.environ.get("TOKNZ_CACHE", Path.home() / ".cache" / "toknz"))
    / "models"
    / "smollm2-135m"
    / "hf"
)
PREFIX = (0,)  # <|endoftext|>
CONDITIONS = ("unmerged", "mean", "hypernet")


def split_corpus() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Language -> training documents, language -> held-out documents."""
    train: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    for lang in LANGS:
        path = ROOT / "corpora" / "multi" / f"{lang}.txt"
        docs = [ln for ln in path.read_text("utf-8").splitlines() if ln.strip()]
        cut = int(len(docs) * (1 - HELDOUT))
        train[lang], held[lang] = docs[:cut], docs[cut:]
    return train, held


def compared_positions(batch: Any, bounds: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    """``(row, merged position, unmerged position, target id)`` of every compared token.

    Positions are in the inputs without the prefix. Row ``i``'s merged position ``j`` is the
    last token of a word holding a new id and ``j + 1`` starts the next word; the unmerged
    position is that word's last base position; the target is the next word's first base id.
    """
    out = []
    first = batch.first_new_id
    for i, (ids, spans) in enumerate(zip(batch.ids, batch.spans, strict=True)):
        if len(spans) == 0:
            continue
        starts = np.zeros(int(spans[-1, 1]), dtype=np.int64)
        starts[0] = 1
        starts[bounds[i]] = 1
        word = np.cumsum(starts)  # word number of each base position
        dyn_word = word[spans[:, 0]]
        merged_words = set(dyn_word[np.asarray(ids) >= first].tolist())
        for j in range(len(ids) - 1):
            w = int(dyn_word[j])
            if w in merged_words and dyn_word[j + 1] != w:
                base_pos = int(spans[j, 1]) - 1
                out.append((i, j, base_pos, base_pos + 1))
    return out


def score(
    model: Any, embed: Any, inputs: Any, rows: Any, pos: Any, targets: Any
) -> tuple[Any, Any]:
    """Log-probabilities ``[P, V]`` at ``(rows, pos)`` and the NLL of ``targets``."""
    import torch
    import torch.nn.functional as F

    from toknz.torch.dynamic_embedding import hidden_at

    hidden = hidden_at(model, embed, inputs, rows, pos)
    logp = F.log_softmax(model.get_output_embeddings()(hidden).float(), dim=-1)
    nll = -logp.gather(1, targets[:, None])[:, 0]
    return logp, nll.to(torch.float64)


def evaluate(
    model: Any, tok: Any, embeddings: dict[str, Any], docs: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Per document and condition: summed NLL and count at compared positions; lengths; KL."""
    import torch

    from toknz.dynamic import merge_batch
    from toknz.torch.dynamic_embedding import lm_inputs
    from toknz.torch.dynamic_training import prepare_texts

    first_new = model.get_input_embeddings().num_embeddings
    nll: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    kl: dict[str, list[float]] = {c: [] for c in CONDITIONS if c != "unmerged"}
    count: list[int] = []
    before = after = merges = 0
    seconds = dict.fromkeys(CONDITIONS, 0.0)
    p = len(PREFIX)
    for start in range(0, len(docs), args.batch_size):
        chunk = docs[start : start + args.batch_size]
        ids, bounds = prepare_texts(tok, chunk, max_tokens=args.max_tokens)
        batch = merge_batch(ids, bounds, min_count=2, first_new_id=first_new)
        before += batch.n_before
        after += batch.n_after
        merges += batch.n_new
        where = compared_positions(batch, bounds)
        per_doc = np.zeros((len(chunk), len(CONDITIONS)))
        n_doc = np.bincount([w[0] for w in where], minlength=len(chunk))
        if not where:
            for c in CONDITIONS:
                nll[c] += [0.0] * len(chunk)
            count += n_doc.tolist()
            continue
        rows = torch.tensor([w[0] for w in where])
        dyn_pos = torch.tensor([p + w[1] for w in where])
        base_pos = torch.tensor([p + w[2] for w in where])
        targets = torch.tensor([ids[w[0]][w[3]] for w in where])
        with torch.no_grad():
            t0 = time.perf_counter()
            plain = lm_inputs(ids, prefix=PREFIX)
            ref_logp, ref_nll = score(
                model, model.get_input_embeddings(), plain, rows, base_pos, targets
            )
            seconds["unmerged"] += time.perf_counter() - t0
            per_doc[:, 0] = np.bincount(rows.numpy(), ref_nll.numpy(), minlength=len(chunk))
            merged = lm_inputs(batch, prefix=PREFIX, positions=args.positions)
            for k, cond in enumerate(CONDITIONS[1:], start=1):
                t0 = time.perf_counter()
                emb = embeddings[cond]
                logp, cond_nll = score(
                    model, lambda x, e=emb, b=batch: e(x, b), merged, rows, dyn_pos, targets
                )
                seconds[cond] += time.perf_counter() - t0
                per_doc[:, k] = np.bincount(rows.numpy(), cond_nll.numpy(), minlength=len(chunk))
                div = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
                kl[cond] += div.tolist()
        for k, cond in enumerate(CONDITIONS):
            nll[cond] += per_doc[:, k].tolist()
        count += n_doc.tolist()
    return {
        "nll": nll,
        "count": count,
        "kl": kl,
        "before": before,
        "after": after,
        "new_ids": merges,
        "seconds": seconds,
    }


def bootstrap(
    nll: dict[str, list[float]], count: list[int], reps: int, seed: int
) -> dict[str, dict[str, float]]:
    """Mean nats per compared token per condition, and the relative difference against
    ``unmerged``, each with a 95 % interval over documents resampled with replacement."""
    counts = np.asarray(count, dtype=np.float64)
    sums = {c: np.asarray(v) for c, v in nll.items()}
    rng = np.random.default_rng(seed)
    n = counts.shape[0]
    idx = rng.integers(0, n, size=(reps, n))
    total = counts[idx].sum(1)
    ref = sums["unmerged"][idx].sum(1) / total
    out: dict[str, dict[str, float]] = {}
    for c, s in sums.items():
        mean = float(s.sum() / counts.sum())
        boot = s[idx].sum(1) / total
        rel = boot / ref - 1
        point_rel = mean / float(sums["unmerged"].sum() / counts.sum()) - 1
        out[c] = {
            "nats": mean,
            "nats_lo": float(np.percentile(boot, 2.5)),
            "nats_hi": float(np.percentile(boot, 97.5)),
            "rel": point_rel,
            "rel_lo": float(np.percentile(rel, 2.5)),
            "rel_hi": float(np.percentile(rel, 97.5)),
        }
    return out


def rows_for(name: str, result: dict[str, Any], reps: int, seed: int) -> list[dict[str, Any]]:
    stats = bootstrap(result["nll"], result["count"], reps, seed)
    out = []
    for c in CONDITIONS:
        kl = result["kl"].get(c)
        out.append(
            {
                "kind": "row",
                "language": name,
                "condition": c,
                "positions": int(sum(result["count"])),
                "documents": len(result["count"]),
                "tokens_before": result["before"],
                "tokens_after": result["after"] if c != "unmerged" else result["before"],
                "reduction": 0.0 if c == "unmerged" else 1 - result["after"] / result["before"],
                "new_ids": result["new_ids"],
                "kl": float(np.mean(kl)) if kl else 0.0,
                "seconds": round(result["seconds"][c], 3),
                **stats[c],
            }
        )
    return out


def merge_results(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "nll": {c: [] for c in CONDITIONS},
        "kl": {c: [] for c in CONDITIONS[1:]},
        "count": [],
        "before": 0,
        "after": 0,
        "new_ids": 0,
        "seconds": dict.fromkeys(CONDITIONS, 0.0),
    }
    for r in parts:
        for c in CONDITIONS:
            out["nll"][c] += r["nll"][c]
            out["seconds"][c] += r["seconds"][c]
        for c in CONDITIONS[1:]:
            out["kl"][c] += r["kl"][c]
        out["count"] += r["count"]
        for k in ("before", "after", "new_ids"):
            out[k] += r[k]
    return out


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    langs = list(dict.fromkeys(r["language"] for r in rows))
    train = meta.get("training", {})
    lines = [
        f"Measured {meta['date']} on {meta['machine_text']} ({meta['git']}); `{meta['command']}`.",
        "",
        f"SmolLM2-135M, {meta['eval_docs']} held-out documents per language in batches of "
        f"{meta['batch_size']}, merged until no pair repeats (pre-token boundaries). Hypernetwork: "
        f"{train.get('params', '?'):,} parameters, trained {train.get('steps', '?')} steps "
        f"({train.get('minutes', '?')} min on this CPU, {train.get('positions', '?'):,} aligned "
        "positions) on the training part of the same languages"
        + (
            f", objective KL plus {train['hidden_weight']:g} × the relative squared distance of "
            f"the hidden states {', '.join(map(str, train.get('hidden_layers', [])))} "
            "at aligned positions"
            if train.get("hidden_weight")
            else ", objective KL at aligned positions"
        )
        + ". Loss: mean nats per compared "
        "token (the first token of each word after a merged word), 95 % bootstrap interval "
        "over documents; relative difference against the unmerged input on the same resamples.",
        "",
        "| language | condition | positions | length reduction | nats/token [95 % CI] "
        "| vs unmerged [95 % CI] | KL(unmerged ‖ merged) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for lang in langs:
        for r in rows:
            if r["language"] != lang:
                continue
            rel = (
                "—"
                if r["condition"] == "unmerged"
                else f"{100 * r['rel']:+.1f} % [{100 * r['rel_lo']:+.1f}, {100 * r['rel_hi']:+.1f}]"
            )
            name = f"**{lang}**" if lang == "all" else lang
            lines.append(
                f"| {name} | {r['condition']} | {r['positions']:,} | {100 * r['reduction']:.1f} % "
                f"| {r['nats']:.3f} [{r['nats_lo']:.3f}, {r['nats_hi']:.3f}] | {rel} "
                f"| {r['kl']:.3f} |"
            )
    return "\n".join(lines)


def load_model() -> tuple[Any, Any]:
    import torch
    import transformers

    import toknz

    if not (SMOLLM2 / "tokenizer.json").exists():
        raise SystemExit(f"{SMOLLM2} is missing: run `toknz fetch smollm2-135m`")
    model = transformers.AutoModelForCausalLM.from_pretrained(SMOLLM2, dtype=torch.float32)
    model.eval().requires_grad_(False)
    return model, toknz.Tokenizer.from_file(SMOLLM2 / "tokenizer.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--eval-docs", type=int, default=128, help="held-out documents per language")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=256, help="base tokens per document")
    ap.add_argument("--train-minutes", type=float, default=15.0, help="0: reuse the saved one")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--train-max-tokens", type=int, default=64)
    ap.add_argument("--train-rows", type=int, default=8, help="texts of a batch run per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=5, help="warmup steps")
    ap.add_argument(
        "--train-autocast",
        default="bfloat16",
        choices=["bfloat16", "none"],
        help="training forward/backward precision (evaluation is always float32)",
    )
    ap.add_argument(
        "--positions",
        default="compact",
        choices=["compact", "original"],
        help="position ids of the merged input (training and evaluation): 0, 1, 2, ... or "
        "each merged token at its last base token's position",
    )
    ap.add_argument("--no-save", action="store_true", help="print the table, write nothing")
    ap.add_argument("--train-steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument(
        "--hidden-weight",
        type=float,
        default=0.0,
        help="weight of the hidden-state matching term of the training loss (0: KL only)",
    )
    ap.add_argument(
        "--hidden-layers",
        type=lambda x: tuple(int(v) for v in x.split(",")),
        default=(),
        help="comma-separated hidden-state indices matched by that term",
    )
    ap.add_argument("--run-dir", type=Path, default=RUN, help="where the hypernetwork is saved")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--render", action="store_true", help="only rewrite docs/dynamic.md")
    args = ap.parse_args(argv)
    if args.render:
        lines = [json.loads(x) for x in JSONL.read_text("utf-8").splitlines() if x.strip()]
        write_marked(DOC, MARK, markdown(lines[0], [x for x in lines if x["kind"] == "row"]))
        return 0

    import torch

    from toknz.torch.dynamic_embedding import DynamicEmbedding, MergedTokenHypernet
    from toknz.torch.dynamic_training import HypernetTrainOptions, train_hypernet

    torch.set_num_threads(args.threads)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    model, tok = load_model()
    table = model.get_input_embeddings()
    train_docs, held = split_corpus()
    training: dict[str, Any] = {}
    if args.train_minutes > 0:
        options = HypernetTrainOptions(
            steps=args.train_steps,
            minutes=args.train_minutes,
            batch_size=args.train_batch,
            max_tokens=args.train_max_tokens,
            prefix=PREFIX,
            lr=args.lr,
            warmup_steps=args.warmup,
            rows_per_step=args.train_rows,
            autocast=None if args.train_autocast == "none" else args.train_autocast,
            seed=args.seed,
            checkpoint_every=10,
            positions=args.positions,
            hidden_weight=args.hidden_weight,
            hidden_layers=args.hidden_layers,
        )
        t_start = time.perf_counter()

        def report(step: int, loss: float) -> None:
            elapsed = time.perf_counter() - t_start
            print(f"step {step}: KL {loss:.4f} ({elapsed:.0f} s)", file=sys.stderr, flush=True)

        result = train_hypernet(
            model, tok, train_docs, options, output=args.run_dir, progress=True, on_step=report
        )
        dyn = result.embedding
        training = {
            "steps": result.steps,
            "minutes": round(result.seconds / 60, 1),
            "positions": result.positions,
            "hidden_weight": args.hidden_weight,
            "hidden_layers": list(args.hidden_layers),
            "first_losses": [round(x, 4) for x in result.losses[:5]],
            "last_losses": [round(x, 4) for x in result.losses[-5:]],
        }
    else:
        dyn = DynamicEmbedding.from_pretrained(table, args.run_dir)
        log = json.loads((args.run_dir / "train_log.json").read_text("utf-8"))
        training = {
            "steps": log["steps"],
            "minutes": round(log["seconds"] / 60, 1),
            "positions": log["positions"],
            "reused": str(args.run_dir),
            "hidden_weight": log["options"].get("hidden_weight", 0.0),
            "hidden_layers": log["options"].get("hidden_layers", []),
        }
    assert dyn.hypernet is not None
    training["params"] = sum(p.numel() for p in dyn.hypernet.parameters())
    training["config"] = json.loads((args.run_dir / "config.json").read_text("utf-8"))["config"]
    dyn.eval()
    embeddings = {"mean": DynamicEmbedding(table, mode="mean"), "hypernet": dyn}
    assert isinstance(dyn.hypernet, MergedTokenHypernet)
    parts = {}
    for lang in LANGS:
        t0 = time.perf_counter()
        parts[lang] = evaluate(model, tok, embeddings, held[lang][: args.eval_docs], args)
        print(f"{lang}: evaluated in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows = []
    for lang, r in parts.items():
        rows += rows_for(lang, r, args.bootstrap, args.seed)
    rows += rows_for("all", merge_results(list(parts.values())), args.bootstrap, args.seed)
    machine = machine_info()
    meta = {
        "kind": "meta",
        "date": stamp,
        "git": git_state(),
        "machine": machine,
        "machine_text": describe_machine(machine),
        "load": load_average(),
        "versions": library_versions(("torch", "transformers")),
        "command": "python benchmarks/dynamic_lm.py " + " ".join(argv or sys.argv[1:]),
        "model": "SmolLM2-135M",
        "languages": list(LANGS),
        "eval_docs": args.eval_docs,
        "batch_size": args.batch_size,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "positions": args.positions,
        "training": training,
    }
    table_md = markdown(meta, rows)
    print(table_md)
    if args.no_save:
        return 0
    write_atomic(JSONL, "\n".join(json.dumps(x) for x in [meta, *rows]) + "\n")
    if DOC.exists() and MARK in DOC.read_text("utf-8"):
        write_marked(DOC, MARK, table_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
