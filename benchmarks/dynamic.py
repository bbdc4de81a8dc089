#!/usr/bin/env python3
"""Dynamic tokenization: sequence-length reduction and merge speed against encoding.

    python benchmarks/dynamic.py              # full run
    python benchmarks/dynamic.py --quick      # 256 documents per language, batches 8 and 32
    python benchmarks/dynamic.py --docs 512   # documents per language
    python benchmarks/dynamic.py --profile    # and the time of each phase of the dynamic path

What it measures (toknz.dynamic, see its docstring for the rules):

- Inputs: corpora/multi/*.txt (de el es fr hi ja ko ru zh-cn, and udhr_20: twenty
  languages of the UDHR, kept as one group), one document per non-empty line
  (a paragraph), and corpora/en (Emma), one document per blank-line-separated
  paragraph. The first ``--docs`` documents of each, in file order, cut into
  consecutive batches of 8, 32, 128 and 256 documents.
- Tokenizers: o200k_base, llama3, qwen3 and SmolLM2's tokenizer.json when
  ``toknz fetch smollm2-135m`` has put it under $TOKNZ_CACHE/models/smollm2-135m/hf
  (skipped, with a note, otherwise).
- Budget: the paper's code merges a fixed number of merges per batch (swept
  0, 10, 20, ... in its evaluation) and counts every pair, even one seen once.
  Here the main number merges until no pair repeats within the batch
  (``budget=None, min_count=2``); the same run's length curve gives the
  reduction after a fixed 10 and 100 merges per batch (merges are a prefix
  property), and ``min_count=1`` with no budget (every pre-token one token) is
  the ceiling.
- Boundary: ``"pretoken"`` (the paper's default) for every row.
- Time, per batch, on one thread: ``encode`` = ``tok.encode_batch_to_numpy(docs,
  num_threads=1)``, timed once, when the batch is first seen (toknz's piece
  cache still holds the words of earlier batches, as it would in use);
  ``bounds`` = :func:`toknz.dynamic.boundaries_for` and ``merge`` =
  :func:`toknz.dynamic.merge_batch` on the id lists (the list API: flattening the
  lists, the merge kernel, the batch; per-text boundary arrays); ``dynamic`` =
  what ``tok.encode_batch(docs, dynamic={})`` adds to encoding: the encoder's
  flags of where each pre-token's ids start (``marks``: the flagging encoder's
  time minus the plain one's on the same warm batch, at least 0) plus
  :func:`toknz.dynamic.encode_dynamic` on its output (the validity rule on those
  flags, then the merge, in one kernel call). Best of ``--repeat`` runs, summed
  over batches; the merged ids of ``encode_batch(docs, dynamic={})`` and of
  ``encode_dynamic`` are checked equal to the list API's. Where the flagging
  encoder is not taken (a batch in which an added token occurs), ``dynamic``
  splits the bytes the ids spell instead, as ``encode_batch`` does.
  ``--profile`` splits ``dynamic`` into its phases (:func:`profile_phases`) and times
  the per-sequence ``ids``/``spans`` views a user builds on first use.

Outputs: ``docs/bench/dynamic.jsonl`` (one JSON line per tokenizer x language x
batch size, replaced each run) and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    describe_machine,
    git_state,
    load_average,
    machine_info,
    write_atomic,
    write_marked,
)

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
OUT_JSONL = ROOT / "docs" / "bench" / "dynamic.jsonl"
BATCH_SIZES = (8, 32, 128, 256)
FIXED_BUDGETS = (10, 100)


def documents(limit: int) -> dict[str, list[str]]:
    """Language -> its first ``limit`` documents."""
    out: dict[str, list[str]] = {}
    for path in sorted((CORPORA / "multi").glob("*.txt")):
        lines = [ln for ln in path.read_text("utf-8").splitlines() if ln.strip()]
        out[path.stem] = lines[:limit]
    for path in sorted((CORPORA / "en").glob("*.txt")):
        paras = [" ".join(p.split("\n")).strip() for p in path.read_text("utf-8").split("\n\n")]
        out["en"] = [p for p in paras if p][:limit]
    return out


def tokenizers(notes: list[str]) -> dict[str, Any]:
    import toknz
    from toknz.fetch import cache_dir

    out = {name: toknz.load(name) for name in ("o200k_base", "llama3", "qwen3")}
    smol = cache_dir() / "models" / "smollm2-135m" / "hf" / "tokenizer.json"
    if smol.exists():
        out["smollm2"] = toknz.Tokenizer.from_file(smol)
    else:
        notes.append(f"SmolLM2 skipped: {smol} is missing (run `toknz fetch smollm2-135m`)")
    return out


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


#: The phases of ``encode_batch(dynamic=...)`` after encoding (``--profile``), in order.
PHASES = ("marks", "rule", "segments", "merge loop", "expand", "rest")


def encoder_starts(tok: Any, chunk: list[str]) -> Any:
    """``(ids, offsets, starts)`` from the encoder that flags pre-token starts, or None where
    ``encode_batch(dynamic=...)`` cannot use it (then it splits the spelled bytes)."""
    return tok._compiled_batch(chunk, frozenset(), frozenset(), 1, False, marked=True)


def profile_phases(
    tok: Any, chunk: list[str], flat: Any, starts: Any, repeat: int
) -> dict[str, float]:
    """Best-of-``repeat`` seconds of each phase of :func:`toknz.dynamic.encode_dynamic` on ``flat``.

    ``rule``: the boundary kernel: the validity rule on the encoder's pre-token starts
    (``starts``), or, when the encoder gave none (``None``), the pre-token split of the
    bytes the ids spell and the rule; ``segments``/``merge loop``/``expand``: the three
    phases of the merge kernel called one by one (``expand`` with the definitions);
    ``rest``: the whole call minus those (options, checks, kernel calls, the batch object,
    and the caches a single pass over the batch finds cold that the phases, timed one by
    one and repeated, find warm). ``marks`` is timed by :func:`measure`.
    """
    import numpy as np
    from toknz_core import dynamic as kernels

    from toknz.dynamic import _token_tables, encode_dynamic
    from toknz.pipeline.unicode_tables import load_table

    out: dict[str, float] = {}
    total, _ = best_time(lambda: encode_dynamic(tok, chunk, flat, {}, starts=starts), repeat)
    ids = flat.ids.astype(np.int64)
    props, arena, arena_off = _token_tables(tok)
    kind, table = tok._compiled_kind(), load_table()
    if starts is not None:
        out["rule"], (cut, _) = best_time(
            lambda: kernels.marked_cuts(ids, flat.offsets, props, starts), repeat
        )
    else:
        out["rule"], (cut, _, _) = best_time(
            lambda: kernels.spelled_cuts(kind, arena, arena_off, table, ids, flat.offsets, props),
            repeat,
        )
    out["segments"], seg = best_time(lambda: kernels.segment_words(ids, cut), repeat)
    seg_start, seg_word, words, word_off, counts = seg
    top = int(ids.max()) if ids.size else -1
    best = float("inf")
    for _ in range(repeat):
        w = words.copy()
        t0 = time.perf_counter()
        merged = kernels.merge_words(w, word_off, counts, top, -1, 2)
        best = min(best, time.perf_counter() - t0)
    out["merge loop"] = best
    word_len, t_left, t_right, t_len = merged[0], merged[6], merged[7], merged[8]

    def expand() -> Any:
        kernels.definitions(t_left, t_right, t_len, top)
        return kernels.expand(
            ids, flat.offsets, seg_start, seg_word, w, word_off, word_len, t_len, top, tok.n_vocab
        )

    out["expand"], _ = best_time(expand, repeat)
    out["rest"] = max(0.0, total - sum(out.values()))
    out["total"] = total
    return out


def sequence_views(batch: Any) -> tuple[Any, Any]:
    """Build ``batch.ids`` and ``batch.spans`` (per-sequence views) anew: their cost on first use."""
    batch.__dict__.pop("ids", None)
    batch.__dict__.pop("spans", None)
    return batch.ids, batch.spans


def measure(tok: Any, docs: list[str], batch: int, repeat: int, profile: bool) -> dict[str, Any]:
    """One row: ``docs`` in batches of ``batch``, lengths and times summed over the batches.

    Times: ``encode`` (``encode_batch_to_numpy``, once, on the batch's first sight);
    ``merge``/``bounds`` (the list API); ``dynamic``: what ``encode_batch(dynamic=...)``
    adds to encoding: the encoder's pre-token flags (``marks``: the flagging encoder
    minus the plain one, both on the same warm batch, best of ``repeat``, at least 0) and
    :func:`toknz.dynamic.encode_dynamic` on its output. The merged ids of
    ``encode_batch(dynamic=...)`` itself are checked against the list API's.
    """
    from toknz.dynamic import FlatIds, boundaries_for, encode_dynamic, length_curve, merge_batch

    row: dict[str, Any] = {
        "batches": 0,
        "tokens": 0,
        "after": 0,
        "after_min1": 0,
        "merges": 0,
        "new_ids": 0,
        "encode_s": 0.0,
        "bounds_s": 0.0,
        "merge_s": 0.0,
        "dynamic_s": 0.0,
        "views_s": 0.0,
        "marked_batches": 0,
    }
    for b in FIXED_BUDGETS:
        row[f"after_{b}"] = 0
    for ph in PHASES:
        row[f"phase_{ph}_s"] = 0.0
    first = tok.n_vocab
    for i in range(0, len(docs), batch):
        chunk = docs[i : i + batch]
        # once: a repeat would hit toknz's piece cache for every word of the batch
        t_enc, (flat_ids, offsets) = best_time(
            lambda c=chunk: tok.encode_batch_to_numpy(c, num_threads=1), 1
        )
        bounds_off = offsets.tolist()
        ids = [flat_ids[a:b].tolist() for a, b in zip(bounds_off[:-1], bounds_off[1:], strict=True)]
        t_bnd, bounds = best_time(lambda c=chunk, x=ids: boundaries_for(tok, c, ids=x), repeat)
        t_mrg, got = best_time(
            lambda x=ids, bd=bounds: merge_batch(x, bd, min_count=2, first_new_id=first), repeat
        )
        # What encode_batch(dynamic=...) adds to encoding: the encoder's flags, the merge.
        t_plain, _ = best_time(lambda c=chunk: tok.encode_batch_to_numpy(c, num_threads=1), repeat)
        t_marked, marked = best_time(lambda c=chunk: encoder_starts(tok, c), repeat)
        starts = None
        t_marks = 0.0
        if marked is not None:
            assert marked[0].tolist() == flat_ids.tolist()
            starts = marked[2]
            t_marks = max(0.0, t_marked - t_plain)
            row["marked_batches"] += 1
        flat = FlatIds(flat_ids, offsets)
        t_dyn, dyn = best_time(
            lambda c=chunk, f=flat, s=starts: encode_dynamic(tok, c, f, {}, starts=s), repeat
        )
        whole = tok.encode_batch(chunk, num_threads=1, dynamic={})
        for d in (dyn, whole):
            assert d.merges == got.merges and d.flat_ids.tolist() == got.flat_ids.tolist()
        t_views, _ = best_time(lambda d=dyn: sequence_views(d), repeat)
        curve = length_curve(ids, bounds, min_count=2)
        assert curve[-1] == got.n_after
        ceiling = merge_batch(ids, bounds, min_count=1, first_new_id=first)
        row["batches"] += 1
        row["tokens"] += got.n_before
        row["after"] += got.n_after
        row["after_min1"] += ceiling.n_after
        row["merges"] += len(got.merges)
        row["new_ids"] += got.n_new
        for b in FIXED_BUDGETS:
            row[f"after_{b}"] += int(curve[min(b, len(curve) - 1)])
        row["encode_s"] += t_enc
        row["bounds_s"] += t_bnd
        row["merge_s"] += t_mrg
        row["dynamic_s"] += t_dyn + t_marks
        row["views_s"] += t_views
        if profile:
            row["phase_marks_s"] += t_marks
            for ph, t in profile_phases(tok, chunk, flat, starts, repeat).items():
                if ph in PHASES:
                    row[f"phase_{ph}_s"] += t
    n = max(row["tokens"], 1)
    row["reduction"] = 1 - row["after"] / n
    row["reduction_min1"] = 1 - row["after_min1"] / n
    for b in FIXED_BUDGETS:
        row[f"reduction_{b}"] = 1 - row[f"after_{b}"] / n
    row["merge_tokens_per_s"] = row["tokens"] / row["merge_s"] if row["merge_s"] else None
    row["encode_tokens_per_s"] = row["tokens"] / row["encode_s"] if row["encode_s"] else None
    row["merge_over_encode"] = row["merge_s"] / row["encode_s"]
    row["merge_bounds_over_encode"] = (row["merge_s"] + row["bounds_s"]) / row["encode_s"]
    row["dynamic_over_encode"] = row["dynamic_s"] / row["encode_s"]
    return row


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def markdown(rows: list[dict[str, Any]], langs: list[str]) -> str:
    out = []
    toks = list(dict.fromkeys(r["tokenizer"] for r in rows))
    sizes = list(dict.fromkeys(r["batch_size"] for r in rows))
    for bs in sizes:
        out.append(f"\n### Length reduction, batches of {bs} documents (until no pair repeats)\n")
        out.append("| language | " + " | ".join(toks) + " |")
        out.append("|---|" + "---:|" * len(toks))
        for lang in langs:
            cells = []
            for t in toks:
                key = (t, lang, bs)
                r = next(r for r in rows if (r["tokenizer"], r["language"], r["batch_size"]) == key)
                cells.append(pct(r["reduction"]))
            out.append(f"| {lang} | " + " | ".join(cells) + " |")
        means = []
        for t in toks:
            rs = [r for r in rows if r["tokenizer"] == t and r["batch_size"] == bs]
            means.append(pct(statistics.mean(r["reduction"] for r in rs)))
        out.append("| **mean** | " + " | ".join(f"**{m}**" for m in means) + " |")
    out.append("\n### Per tokenizer and batch size: mean over languages, and time\n")
    hdr = (
        "| tokenizer | batch | reduction (no repeat) | after 10 merges | after 100 merges "
        "| min_count=1 ceiling | encode Mtok/s | merge Mtok/s | merge / encode "
        "| (merge + bounds) / encode | dynamic Mtok/s | dynamic / encode |"
    )
    out.append(hdr)
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in toks:
        for bs in sizes:
            rs = [r for r in rows if r["tokenizer"] == t and r["batch_size"] == bs]
            tokens = sum(r["tokens"] for r in rs)
            merge_s = sum(r["merge_s"] for r in rs)
            enc_s = sum(r["encode_s"] for r in rs)
            bnd_s = sum(r["bounds_s"] for r in rs)
            dyn_s = sum(r["dynamic_s"] for r in rs)
            out.append(
                f"| {t} | {bs} | {pct(statistics.mean(r['reduction'] for r in rs))} "
                f"| {pct(statistics.mean(r['reduction_10'] for r in rs))} "
                f"| {pct(statistics.mean(r['reduction_100'] for r in rs))} "
                f"| {pct(statistics.mean(r['reduction_min1'] for r in rs))} "
                f"| {tokens / enc_s / 1e6:.2f} | {tokens / merge_s / 1e6:.2f} "
                f"| {merge_s / enc_s:.3f} | {(merge_s + bnd_s) / enc_s:.3f} "
                f"| {tokens / dyn_s / 1e6:.2f} | {dyn_s / enc_s:.3f} |"
            )
    if any(r.get("phase_rest_s") for r in rows):
        out.append(
            "\n### Where `encode_batch(dynamic=...)` spends its time after encoding "
            "(`--profile`; % of the encoding time)\n"
        )
        out.append(
            "| tokenizer | batch | " + " | ".join(PHASES) + " | dynamic (all) "
            "| per-sequence `ids`/`spans` (on first use) |"
        )
        out.append("|---|---:|" + "---:|" * (len(PHASES) + 2))
        for t in toks:
            for bs in sizes:
                rs = [r for r in rows if r["tokenizer"] == t and r["batch_size"] == bs]
                enc_s = sum(r["encode_s"] for r in rs)
                cells = [pct(sum(r[f"phase_{ph}_s"] for r in rs) / enc_s) for ph in PHASES]
                dyn = pct(sum(r["dynamic_s"] for r in rs) / enc_s)
                views = pct(sum(r["views_s"] for r in rs) / enc_s)
                out.append(f"| {t} | {bs} | " + " | ".join(cells) + f" | {dyn} | {views} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=1024, help="documents per language")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per batch (best kept)")
    ap.add_argument("--quick", action="store_true", help="256 documents, batches 8 and 32")
    ap.add_argument(
        "--profile", action="store_true", help="also time each phase of the dynamic path"
    )
    args = ap.parse_args(argv)
    sizes = (8, 32) if args.quick else BATCH_SIZES
    limit = 256 if args.quick else args.docs
    notes: list[str] = []
    docs = documents(limit)
    toks = tokenizers(notes)
    # Warm up: compile / load every kernel once.
    from toknz.dynamic import boundaries_for, merge_batch

    for tok in toks.values():
        tok.encode("warm up " * 1000)  # loads the compiled path (short texts first take regex)
        warm = docs["en"][:8]
        ids = tok.encode_batch(warm, num_threads=1)
        merge_batch(ids, boundaries_for(tok, warm, ids=ids))
        tok.encode_batch(warm, dynamic={})
        encoder_starts(tok, warm)
    rows = []
    load_before = load_average()
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for name, tok in toks.items():
        for lang, ds in docs.items():
            for bs in sizes:
                r = measure(tok, ds, bs, args.repeat, args.profile)
                r.update(
                    {"tokenizer": name, "language": lang, "batch_size": bs, "documents": len(ds)}
                )
                rows.append(r)
                print(
                    f"{name:10s} {lang:7s} b={bs:3d}: {pct(r['reduction']):>7s} "
                    f"merge/encode {r['merge_over_encode']:.3f} "
                    f"dynamic/encode {r['dynamic_over_encode']:.3f}",
                    file=sys.stderr,
                )
    machine = machine_info()
    meta = {
        "kind": "meta",
        "date": stamp,
        "git": git_state(),
        "machine": machine,
        "load": load_before,
        "command": "python benchmarks/dynamic.py " + " ".join(argv or sys.argv[1:]),
        "notes": notes,
    }
    meta["load_after"] = load_average()
    lines = [json.dumps(meta)] + [json.dumps({"kind": "row", **r}) for r in rows]
    OUT_JSONL.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(OUT_JSONL, "\n".join(lines) + "\n")
    report = "\n".join(
        [
            f"Machine: {describe_machine(machine)}; load {meta['load']} (before), "
            f"{meta['load_after']} (after); {stamp}; {meta['git']}; "
            f"`{meta['command'].strip()}`.",
            *(f"Note: {n}" for n in notes),
            "",
            markdown(rows, list(docs)),
        ]
    )
    print(report)
    if not args.quick:
        write_marked(ROOT / "docs" / "dynamic.md", "<!-- dynamic -->", report)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
