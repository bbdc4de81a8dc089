#!/usr/bin/env python3
"""Domain tokenizers (legal, financial, code) at 32K and 128K against cl100k, o200k and Llama 3.

    python benchmarks/domain.py            # trains, measures, writes its tables into docs/domain.md
    python benchmarks/domain.py --quick    # 32K only, no scaling table; prints only

Everything is measured on held-out text only, with :func:`toknz.analysis.compare.compare_tokenizers`
(the library behind ``toknz compare``).

- Domain text: ``python corpora/build.py --kind legal --size-mb 50`` and ``--kind financial
  --size-mb 5`` (run here when their folders are missing from the cache): ``train.txt`` and
  ``heldout.txt``, split by document with no shared paragraph (docs/corpora.md). Code: the six
  files of ``corpora/code``, the first 80 % of each (cut at a line start) to train on and the
  rest held out.
- General text, trained on by every domain tokenizer: the World English Bible, the Python
  documentation and the GCIDE dictionary from ``python corpora/build.py --kind prose
  --size-mb 40`` (36 MB). General English prose to check against: ``corpora/en/austen_emma.txt``
  (Jane Austen's *Emma*), which no tokenizer here was trained on (the prose build's Austen
  component is left out of training).
- Training: ``toknz.train.train`` with the domain's preset (pattern, normalization, special
  tokens, required tokens) and ``vocab_size`` 32,768 or 131,072, on the general text plus the
  domain's training text repeated ``k`` times, ``k`` the smallest count that makes the domain
  at least 40 % of the bytes, at most 16 (``--max-repeat``).
- Superwords: one more 128K tokenizer per domain with ``superwords_at=114688`` (7/8 of the
  vocabulary, near SuperBPE's 180K of 200K): ordinary merges up to there, then merges across
  the spaces between words. To tell what the domain text does from what superwords do, two
  *general* 128K tokenizers (general text only, the legal preset's settings without its
  required tokens), one of each kind, are measured on every domain too.
- Encoding speed: MB/s of ``toknz`` encoding the held-out text as one string, best of three.
- Tokens per domain term, two lists per domain: the preset's required-token list, and 100
  *derived* terms: the words (letters only, at least 4) with the highest ratio of their rate in
  the domain's training text to their rate in the general text, seen at least 20 times in the
  domain (the held-out text plays no part in choosing them). Each term is measured as it
  stands in running text (``" " + term``).
- The ceiling: the token count if every pre-token (o200k or cl100k split) were one token,
  against o200k_base's count. No tokenizer with that split can do better.
- Scaling (full run): the legal 128K tokenizer trained on 25 %, 50 % and 100 % of the legal
  training text (whole paragraphs, in order), the rest unchanged.
"""

from __future__ import annotations

import argparse
import collections
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import regex
from _common import describe_machine, git_state, load_average, machine_info, write_marked

import toknz
from toknz import fetch
from toknz.analysis.compare import CompareReport, compare_tokenizers
from toknz.pipeline.pretokenize import PATTERNS
from toknz.train import TrainReport, load_preset, train

ROOT = Path(__file__).resolve().parent.parent

DOC = ROOT / "docs" / "domain.md"
MARK = "<!-- domain -->"
PEERS = ("o200k_base", "cl100k_base", "llama3")
BASELINE = "o200k_base"
SIZES = (32768, 131072)
DOMAIN_SHARE = 0.4
GENERAL_PARTS = ("web_bible.txt", "python_docs.txt", "gcide.txt")
PROSE = ROOT / "corpora/en/austen_emma.txt"
CODE_TRAIN_SHARE = 0.8
DERIVED_TERMS = 100
WORD = regex.compile(r"\p{L}{4,}")


def built(kind: str, size_mb: int) -> Path:
    """The cache folder of ``corpora/build.py --kind KIND --size-mb N`` (built when missing)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "corpora/build.py"), "--kind", kind, "--size-mb", str(size_mb)],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(done.stdout.strip().splitlines()[-1])


def code_split(work: Path) -> tuple[Path, Path]:
    """corpora/code cut into a training file (first 80 % of each) and a held-out file (the rest)."""
    train_parts, held_parts = [], []
    for path in sorted((ROOT / "corpora/code").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        cut = text.rfind("\n", 0, int(len(text) * CODE_TRAIN_SHARE)) + 1
        train_parts.append(text[:cut])
        held_parts.append(text[cut:])
    (work / "code-train.txt").write_text("".join(train_parts), encoding="utf-8")
    (work / "code-heldout.txt").write_text("\n".join(held_parts), encoding="utf-8")
    return work / "code-train.txt", work / "code-heldout.txt"


def derived_terms(domain_text: str, general_text: str) -> list[str]:
    """The words most typical of the domain's training text against the general text."""
    dom = collections.Counter(WORD.findall(domain_text))
    gen = collections.Counter(WORD.findall(general_text))
    n_dom, n_gen = sum(dom.values()), sum(gen.values())

    def ratio(word: str) -> float:
        return (dom[word] / n_dom) / ((gen[word] + 1) / n_gen)

    frequent = [w for w, c in dom.items() if c >= 20]
    return sorted(frequent, key=lambda w: (-ratio(w), w))[:DERIVED_TERMS]


def repeats(domain_bytes: int, general_bytes: int, most: int) -> int:
    """The smallest k with k * domain >= 40 % of all bytes, capped at ``most``."""
    need = DOMAIN_SHARE / (1 - DOMAIN_SHARE) * general_bytes / max(domain_bytes, 1)
    return max(1, min(most, math.ceil(need)))


def encode_speed(tok: str | Path, text: str) -> float:
    """MB/s of toknz encoding ``text`` with ``tok`` (one thread; best of three after a warm-up)."""
    loaded = toknz.load(tok)
    loaded.encode(text[:10_000])
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        loaded.encode(text)
        best = min(best, time.perf_counter() - t0)
    return len(text.encode()) / 1e6 / best


def ceiling(text: str, pattern: str, base: toknz.Tokenizer) -> tuple[int, int]:
    """(pre-tokens of ``text`` under ``pattern``, ``base``'s token count)."""
    return len(regex.findall(PATTERNS[pattern], text)), len(base.encode(text))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="32K only, no scaling; print only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-repeat", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "runs/domain", help="tokenizers go here")
    args = ap.parse_args()
    start = time.time()
    missing = [p for p in PEERS if fetch.cached_path(p) is None]
    if missing:
        raise SystemExit(f"fetch the peers first: toknz fetch {' '.join(missing)}")
    sizes = SIZES[:1] if args.quick else SIZES
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="toknz-domain-"))

    prose_dir = built("prose", 40)
    general = [prose_dir / name for name in GENERAL_PARTS]
    general_text = "".join(p.read_text(encoding="utf-8") for p in general)
    legal, financial = built("legal", 50), built("financial", 5)
    code_train, code_held = code_split(work)
    domains = {
        "legal": (legal / "train.txt", legal / "heldout.txt"),
        "financial": (financial / "train.txt", financial / "heldout.txt"),
        "code": (code_train, code_held),
    }

    trained: dict[str, Path] = {}
    notes: list[str] = []
    big = sizes[-1]
    runs = [("general", None, size, None) for size in (big,)]
    runs += [("general", None, big, big * 7 // 8)]
    for name in domains:
        runs += [(name, name, size, None) for size in sizes]
        runs += [(name, name, big, big * 7 // 8)]
    for name, preset, size, superwords_at in runs:
        train_path = domains[name][0] if name in domains else None
        k = (
            repeats(train_path.stat().st_size, len(general_text.encode()), args.max_repeat)
            if train_path
            else 0
        )
        report = TrainReport()
        tok = train(
            [*general, *([train_path] * k if train_path else [])],
            preset=preset or "legal",
            vocab_size=size,
            superwords_at=superwords_at,
            required_tokens=None if preset else [],
            threads=args.threads,
            report=report,
        )
        label = f"toknz-{name}-{size // 1024}k" + ("-superwords" if superwords_at else "")
        path = args.out / f"{label}.json"
        tok.save(path)
        trained[label] = path
        whole = sum(t["one_token"] for t in report.required_tokens)
        notes.append(
            f"{label}: {report.input_bytes / 1e6:.1f} MB"
            + (f" ({name} text x{k})" if k else " (general text only, legal preset's settings)")
            + f", {tok.n_vocab:,} ids"
            + (f", superwords from {superwords_at:,}" if superwords_at else "")
            + (
                f", required tokens {whole}/{len(report.required_tokens)} one token"
                if report.required_tokens
                else ""
            )
        )
        print(notes[-1], flush=True)

    peers = {p: toknz.load(p) for p in PEERS}
    lines: list[str] = []
    summary = [
        "| domain | tokenizer | held-out tokens | % fewer than o200k_base | chars / token "
        "| words split in ≥ 3 | tokens / preset term | tokens / derived term "
        "| English prose: % fewer than o200k_base | encode MB/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    prose_report = compare_tokenizers(
        [*PEERS, *trained.values()],
        {"prose": [PROSE.read_text(encoding="utf-8")]},
        baseline=BASELINE,
        threads=args.threads,
    )
    prose_labels = dict(zip([*PEERS, *trained], prose_report.tokenizers, strict=True))
    for name, (train_path, held_path) in domains.items():
        held = held_path.read_text(encoding="utf-8")
        mine = {
            label: path
            for label, path in trained.items()
            if f"-{name}-" in label or "-general-" in label
        }
        tokenizers = [*PEERS, *mine.values()]
        labels = [*PEERS, *mine]
        preset_terms = load_preset(name).required_terms()
        derived = derived_terms(train_path.read_text(encoding="utf-8"), general_text)
        reports: list[CompareReport] = [
            compare_tokenizers(
                tokenizers, {name: [held]}, terms, baseline=BASELINE, threads=args.threads
            )
            for terms in (preset_terms, derived)
        ]
        speed = {
            label: encode_speed(tok, held) for label, tok in zip(labels, tokenizers, strict=True)
        }
        for label, key in zip(labels, reports[0].tokenizers, strict=True):
            row = reports[0].row(key, name)
            per_term = [next(t for t in r.term_results if t.tokenizer == key).mean for r in reports]
            prose_row = prose_report.row(prose_labels[label], "prose")
            summary.append(
                f"| {name} | {label} | {row.tokens:,} | {100 * row.fewer_than_baseline:+.1f} "
                f"| {row.chars_per_token:.2f} | {100 * (row.share_split or 0):.1f} % "
                f"| {per_term[0]:.2f} | {per_term[1]:.2f} "
                f"| {100 * prose_row.fewer_than_baseline:+.1f} | {speed[label]:.0f} |"
            )
        base = peers[BASELINE]
        for pattern in ("o200k", "cl100k"):
            pieces, tokens = ceiling(held, pattern, base)
            lines.append(
                f"| {name} | {pattern} | {pieces:,} | {tokens:,} | {100 * (1 - pieces / tokens):.1f} % |"
            )
        print(f"measured {name}", flush=True)

    scaling: list[str] = []
    if not args.quick:
        legal_train = domains["legal"][0].read_text(encoding="utf-8")
        paragraphs = legal_train.split("\n")
        held = domains["legal"][1].read_text(encoding="utf-8")
        base_tokens = len(peers[BASELINE].encode(held))
        scaling = [
            "| legal training text | MB | held-out tokens | % fewer than o200k_base |",
            "|---|---|---|---|",
        ]
        for share in (0.25, 0.5, 1.0):
            part = work / f"legal-{share}.txt"
            part.write_text("\n".join(paragraphs[: int(len(paragraphs) * share)]), encoding="utf-8")
            k = repeats(part.stat().st_size, len(general_text.encode()), args.max_repeat)
            tok = train(
                [*general, *([part] * k)],
                preset="legal",
                vocab_size=SIZES[-1],
                threads=args.threads,
            )
            n = len(tok.encode(held))
            scaling.append(
                f"| {100 * share:.0f} % (x{k}) | {part.stat().st_size / 1e6:.2f} | {n:,} "
                f"| {100 * (1 - n / base_tokens):+.1f} |"
            )
            print(scaling[-1], flush=True)

    out = [
        f"Machine: {describe_machine(machine_info())}; load {load_average()}; {git_state()}; "
        f"`python benchmarks/domain.py{' --quick' if args.quick else ''}` "
        f"({time.time() - start:.0f} s).",
        "",
        "Trained: " + "; ".join(notes) + ".",
        "",
        "Held-out text: legal "
        f"{domains['legal'][1].stat().st_size / 1e6:.2f} MB, financial "
        f"{domains['financial'][1].stat().st_size / 1e6:.2f} MB, code "
        f"{domains['code'][1].stat().st_size / 1e6:.2f} MB; English prose "
        f"{PROSE.stat().st_size / 1e6:.2f} MB (*Emma*, not trained on).",
        "",
        *summary,
        "",
        "The ceiling of any tokenizer with the same split: every pre-token one token.",
        "",
        "| domain | split | pre-tokens | o200k_base tokens | at most % fewer |",
        "|---|---|---|---|---|",
        *lines,
    ]
    if scaling:
        out += ["", "More legal text, same 128K recipe:", "", *scaling]
    report = "\n".join(out)
    print(report)
    if not args.quick:
        write_marked(DOC, MARK, report)


if __name__ == "__main__":
    main()
