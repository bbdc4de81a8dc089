#!/usr/bin/env python3
"""Token-boundary stability under synthetic OCR noise: character-level BPE against general BPE.

    python benchmarks/stability.py            # 3 seeds; writes its table into docs/domain.md
    python benchmarks/stability.py --quick    # 1 seed, English and German only; prints only

What it measures (:mod:`toknz.analysis.stability`, see its docstring for the definitions):

- Text: the first 80 % (in characters) of every file of corpora/en, corpora/code and
  corpora/multi (prose, six programming languages, 20+ natural languages; 3.0 M characters)
  is the training text. Measured on the last 20 % of English prose (corpora/en/austen_emma.txt),
  German (corpora/multi/de.txt) and Russian (corpora/multi/ru.txt), cut into documents of
  2,000 characters.
- Tokenizers: the ``char-4k``, ``char-8k`` and ``char-16k`` presets and a general 32K
  tokenizer (``vocab_size=32768``, ``pattern="o200k"``, no other option), all trained here on
  the same training text; and the real ``o200k_base`` and ``cl100k_base`` (skipped, with a
  note, when ``toknz fetch`` has not cached them).
- Noise: ``toknz.perturb.perturb_with_edits(doc, "ocr", rate, seed=f"{seed}.{i}")`` at 2, 5
  and 10 % of characters, seeds 0, 1, 2 (counts summed over the seeds).
- Measure: :func:`toknz.analysis.stability.boundary_stability` with ``margin=0``.
  ``stability``: of the token boundaries outside every edit (either encoding), the share both
  encodings have. ``recall``: share of the clean boundaries the noisy encoding keeps;
  ``precision``: share of the noisy boundaries that are clean ones; ``changed / edit``:
  boundaries outside the edits that only one encoding has, per edit.

The report (machine, command, vocabulary sizes reached, two tables) is printed and, for a full
run, written into ``docs/domain.md`` between the two ``<!-- stability -->`` lines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import describe_machine, git_state, load_average, machine_info, write_marked

import toknz
from toknz import fetch
from toknz.analysis.stability import StabilityResult, boundary_stability
from toknz.perturb import Edit, perturb_with_edits
from toknz.train import train

ROOT = Path(__file__).resolve().parent.parent

DOC = ROOT / "docs" / "domain.md"
MARK = "<!-- stability -->"
KINDS = {
    "English": ROOT / "corpora/en/austen_emma.txt",
    "German": ROOT / "corpora/multi/de.txt",
    "Russian": ROOT / "corpora/multi/ru.txt",
}
TRAIN_SHARE = 0.8
DOC_CHARS = 2000
TRAIN_DIRS = ("en", "code", "multi")
RATES = (0.02, 0.05, 0.10)
DETAIL_RATE = 0.05
CHAR_PRESETS = ("char-4k", "char-8k", "char-16k")
REAL = ("o200k_base", "cl100k_base")


def split(path: Path) -> tuple[str, list[str]]:
    """(training text, held-out documents) of one file."""
    text = path.read_text(encoding="utf-8")
    cut = int(len(text) * TRAIN_SHARE)
    held = text[cut:]
    return text[:cut], [held[i : i + DOC_CHARS] for i in range(0, len(held), DOC_CHARS)]


def tokenizers(train_text: str, notes: list[str]) -> dict[str, toknz.Tokenizer]:
    out: dict[str, toknz.Tokenizer] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text(train_text, encoding="utf-8")
        for preset in CHAR_PRESETS:
            out[preset] = train([path], preset=preset)
        out["32K (o200k pattern)"] = train([path], vocab_size=32768, pattern="o200k")
    for name in REAL:
        if fetch.cached_path(name) is None:
            notes.append(f"{name} is not cached (`toknz fetch {name}`): left out.")
        else:
            out[name] = toknz.load(name)
    return out


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, English and German; print only")
    ap.add_argument("--seeds", type=int, default=3, help="noise seeds per rate (default 3)")
    args = ap.parse_args()
    seeds = 1 if args.quick else args.seeds
    kinds = dict(list(KINDS.items())[:2]) if args.quick else KINDS
    notes: list[str] = []
    t0 = time.perf_counter()
    parts = {kind: split(path) for kind, path in kinds.items()}
    files = sorted(p for d in TRAIN_DIRS for p in (ROOT / "corpora" / d).glob("*.txt"))
    train_text = "\n".join(split(p)[0] for p in files)
    toks = tokenizers(train_text, notes)
    t_train = time.perf_counter() - t0

    results: dict[tuple[str, str, float], StabilityResult] = {}
    for kind, (_, docs) in parts.items():
        for rate in RATES:
            noisy: list[list[tuple[str, list[Edit]]]] = [
                [perturb_with_edits(d, "ocr", rate, seed=f"{s}.{i}") for i, d in enumerate(docs)]
                for s in range(seeds)
            ]
            for name, tok in toks.items():
                total = StabilityResult()
                for batch in noisy:
                    total = total + boundary_stability(tok, docs, batch, num_threads=1)
                results[name, kind, rate] = total
                print(
                    f"{name:20s} {kind:8s} {rate:.0%}: stability {pct(total.stability)} "
                    f"recall {pct(total.recall)} precision {pct(total.precision)}",
                    file=sys.stderr,
                )
    seconds = time.perf_counter() - t0

    held_chars = {kind: sum(map(len, docs)) for kind, (_, docs) in parts.items()}
    command = "python benchmarks/stability.py" + (" --quick" if args.quick else "")
    if args.seeds != 3 and not args.quick:
        command += f" --seeds {args.seeds}"
    vocab = ", ".join(f"{name} {tok.n_vocab:,}" for name, tok in toks.items() if name not in REAL)
    lines = [
        f"Machine: {describe_machine(machine_info())}; load {load_average()}; {git_state()}; "
        f"`{command}` ({seconds:.0f} s, training {t_train:.0f} s).",
        "",
        f"Training text: the first {TRAIN_SHARE:.0%} of each of the {len(files)} files of "
        + ", ".join(f"`corpora/{d}`" for d in TRAIN_DIRS)
        + f" ({len(train_text):,} characters); ids reached (special tokens included): {vocab}. "
        "Held out: the rest, in documents of 2,000 characters ("
        + ", ".join(f"{kind} {n:,}" for kind, n in held_chars.items())
        + f' characters). `"ocr"` noise, {seeds} seed{"s" * (seeds > 1)} per rate; margin 0.',
        *(f"Note: {n}" for n in notes),
        "",
        "Stability (%): of the token boundaries outside the edits, the share that the clean and "
        "the noisy encoding both have.",
        "",
    ]
    cols = [(kind, rate) for kind in parts for rate in RATES]
    lines.append("| tokenizer | " + " | ".join(f"{k} {r:.0%}" for k, r in cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for name in toks:
        cells = [pct(results[name, k, r].stability) for k, r in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"At {DETAIL_RATE:.0%} noise: tokens per 100 characters of clean text, the one-sided "
        "shares (recall: clean boundaries the noisy encoding keeps; precision: noisy boundaries "
        "the clean encoding has), F1, and boundaries outside the edits that only one encoding "
        "has, per edit.",
        "",
        "| tokenizer | text | tokens / 100 chars | recall % | precision % | F1 % | changed / edit |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in toks:
        for kind in parts:
            r = results[name, kind, DETAIL_RATE]
            per100 = 100 * r.clean_tokens / (held_chars[kind] * seeds)
            lines.append(
                f"| {name} | {kind} | {per100:.1f} | {pct(r.recall)} | {pct(r.precision)} | "
                f"{pct(r.f1)} | {r.changed_per_edit:.3f} |"
            )
    report = "\n".join(lines)
    print(report)
    if not args.quick:
        write_marked(DOC, MARK, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
