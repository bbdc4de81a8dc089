#!/usr/bin/env python3
"""Encoding with ``tokenizer.json`` tokenizers (Llama 3, Qwen 3, SmolLM2): toknz against every peer.

    python benchmarks/encode_hf.py                  # writes its section of docs/benchmarks.md
    python benchmarks/encode_hf.py --rounds 3 --no-write

``benchmarks/encode.py`` races the tiktoken encodings against tiktoken; this
script does the same for tokenizers published as ``tokenizer.json``, whose
reference is the ``tokenizers`` library. Qwen 3's file has an NFC normalizer
and non-special added tokens (``<think>``...), which every text must be
checked for, so it takes steps the tiktoken encodings do not.

- Inputs (MB = 10^6 UTF-8 bytes): documents of about 4 KB cut at line ends
  from corpora/ — ``prose`` (corpora/en), ``code`` (corpora/code) and
  ``multilingual`` (corpora/multi: de fr es ru ja zh-cn el ko hi) —
  shuffled with seed 0; the first ``--warmup`` documents of each warm every
  contender up (Numba compiles, caches fill), then each round encodes a slice
  no contender has seen.
- Contenders, one thread, one call per document: toknz (``encode(doc)`` ->
  list; ``encode_to_numpy(doc)`` -> NumPy), ``tokenizers``, fastokens,
  gigatoken, kitoken and tokie where installed, each loading the same file.
  They alternate within each round; the table gives the median MB/s over the
  rounds and toknz's speed over each peer's (same output kind: lists against
  lists, NumPy against gigatoken's NumPy). ``hi``: microseconds per call of
  ``encode("hi")`` (20,000 calls, best of 3).
- Ids: every contender's ids are compared with ``tokenizers``'
  (``encode(doc, add_special_tokens=False).ids``) on all measured text.

Writes the section between the ``<!-- encode_hf -->`` lines of docs/benchmarks.md
(unless ``--no-write``) and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import describe_machine, git_state, load_average, machine_info, write_marked
from encode_profile import documents  # ~N-byte documents cut at line ends, shuffled (seed 0)

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
CATEGORIES = {
    "prose": sorted(f"en/{p.name}" for p in (CORPORA / "en").glob("*.txt")),
    "code": sorted(f"code/{p.name}" for p in (CORPORA / "code").glob("*.txt")),
    "multilingual": [
        f"multi/{n}.txt" for n in ("de", "fr", "es", "ru", "ja", "zh-cn", "el", "ko", "hi")
    ],
}
PEERS = ("tokenizers", "fastokens", "gigatoken", "kitoken", "tokie")
#: Which toknz API a peer is compared with: the one returning the same kind of output.
NUMPY_PEERS = {"gigatoken"}


def tokenizer_files() -> dict[str, Path]:
    from toknz import fetch
    from toknz.fetch import cache_dir

    out = {name: Path(fetch.require(name)) for name in ("llama3", "qwen3")}
    smol = cache_dir() / "models" / "smollm2-135m" / "hf" / "tokenizer.json"
    if smol.exists():
        out["smollm2"] = smol
    return out


def contenders(path: Path) -> tuple[dict[str, Callable[[str], Any]], dict[str, str]]:
    """Name -> one-document encoder for the file at ``path``, and the peers that failed."""
    import toknz

    # One object each: a shared one would hand the second the first one's warm word cache.
    lists, arrays = toknz.Tokenizer.from_file(path), toknz.Tokenizer.from_file(path)
    fns: dict[str, Callable[[str], Any]] = {
        "toknz": lambda d: lists.encode(d, disallowed_special=()),
        "toknz-numpy": lambda d: arrays.encode_to_numpy(d, disallowed_special=()),
    }
    failed: dict[str, str] = {}
    for name in PEERS:
        try:
            fns[name] = _peer(name, path)
        except ImportError:
            continue
        except Exception as exc:  # a peer that cannot read the file is reported, not fatal
            failed[name] = f"{type(exc).__name__}: {exc}"[:200]
    return fns, failed


def _peer(name: str, path: Path) -> Callable[[str], Any]:
    if name == "tokenizers":
        import tokenizers

        hf = tokenizers.Tokenizer.from_file(str(path))
        return lambda d: hf.encode(d, add_special_tokens=False).ids
    if name == "fastokens":
        import fastokens

        fa = fastokens.Tokenizer.from_file(str(path))
        return lambda d: fa.encode(d, add_special_tokens=False).ids
    if name == "gigatoken":
        import gigatoken

        gi = gigatoken.Tokenizer.from_json(path.read_text(encoding="utf-8"))
        return lambda d: gi.encode(d)
    if name == "kitoken":
        import kitoken

        ki = kitoken.Kitoken.from_file(str(path))
        return lambda d: ki.encode(d)
    import tokie

    to = tokie.Tokenizer.from_json(str(path))
    return lambda d: to.encode(d, add_special_tokens=False).ids


def per_call_us(fn: Callable[[str], Any], calls: int = 20_000) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn("hi")
        best = min(best, time.perf_counter() - t0)
    return best / calls * 1e6


def as_list(ids: Any) -> list[int]:
    return ids.tolist() if hasattr(ids, "tolist") else list(ids)


def measure(path: Path, docs: dict[str, list[str]], warmup: int, rounds: int) -> dict[str, Any]:
    """Per contender and category: MB/s per round, mismatching documents; ``hi`` µs."""
    fns, failed = contenders(path)
    for cat_docs in docs.values():
        for fn in fns.values():
            for d in cat_docs[:warmup]:
                fn(d)
    speed: dict[str, dict[str, list[float]]] = {n: {c: [] for c in docs} for n in fns}
    bad: dict[str, dict[str, int]] = {n: {c: 0 for c in docs} for n in fns}
    order = list(fns)
    for r in range(rounds):
        for cat, cat_docs in docs.items():
            chunk = cat_docs[warmup:][r::rounds]
            nbytes = sum(len(d.encode("utf-8")) for d in chunk)
            got: dict[str, list[Any]] = {}
            for name in order[r % len(order) :] + order[: r % len(order)]:  # rotate the order
                fn = fns[name]
                t0 = time.perf_counter()
                got[name] = [fn(d) for d in chunk]
                speed[name][cat].append(nbytes / (time.perf_counter() - t0) / 1e6)
            ref = got.get("tokenizers")
            if ref is None:
                continue
            want = [as_list(x) for x in ref]
            for name, out in got.items():
                bad[name][cat] += sum(as_list(x) != w for x, w in zip(out, want, strict=True))
    hi = {name: per_call_us(fn) for name, fn in fns.items()}
    return {"speed": speed, "bad": bad, "hi": hi, "failed": failed}


def markdown(name: str, res: dict[str, Any], cats: list[str]) -> list[str]:
    speed, bad, hi = res["speed"], res["bad"], res["hi"]
    out = [
        f"\n### {name}\n",
        "| contender | "
        + " | ".join(f"{c} MB/s" for c in cats)
        + " | "
        + " | ".join(f"toknz ÷ it, {c}" for c in cats)
        + " | `encode('hi')` µs | ids vs tokenizers |",
        "|---|" + "---:|" * (2 * len(cats) + 1) + "---|",
    ]
    for who in speed:
        mine = "toknz-numpy" if who in NUMPY_PEERS else "toknz"
        cells = [f"{statistics.median(speed[who][c]):.1f}" for c in cats]
        ratios = []
        for c in cats:
            if who.startswith("toknz"):
                ratios.append("1")
                continue
            per_round = [a / b for a, b in zip(speed[mine][c], speed[who][c], strict=True)]
            ratios.append(f"{statistics.median(per_round):.2f}×")
        n_bad = sum(bad[who].values())
        ids = "identical" if n_bad == 0 else f"**MISMATCH** in {n_bad} document(s)"
        label = f"**{who}**" if who.startswith("toknz") else who
        out.append(f"| {label} | " + " | ".join(cells + ratios) + f" | {hi[who]:.2f} | {ids} |")
    for peer, err in res["failed"].items():
        out.append(f"\n{peer} could not load the file: {err}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=120, help="documents per category (~4 KB each)")
    ap.add_argument("--warmup", type=int, default=20, help="of which warm-up documents")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    docs = {c: documents(paths, 4000)[: args.docs] for c, paths in CATEGORIES.items()}
    cats = list(docs)
    load_before = load_average()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    body: list[str] = []
    for name, path in tokenizer_files().items():
        print(f"{name}: {path}", file=sys.stderr)
        body += markdown(name, measure(path, docs, args.warmup, args.rounds), cats)
    sizes = ", ".join(
        f"{c} {sum(len(d.encode('utf-8')) for d in docs[c][args.warmup :]) / 1e6:.2f} MB"
        for c in cats
    )
    head = [
        f"- command: `{' '.join(['python benchmarks/encode_hf.py', *(argv or sys.argv[1:])])}` "
        f"({stamp}, {time.perf_counter() - t0:.0f} s)",
        f"- machine: {describe_machine(machine_info())}; load before {load_before}, "
        f"after {load_average()}",
        f"- repo: {git_state()}",
        f"- measured text after the warm-up: {sizes} in documents of ~4 KB, "
        f"{args.rounds} rounds of fresh slices; one thread; medians over the rounds",
    ]
    report = "\n".join(head + body)
    print(report)
    if not args.no_write:
        write_marked(ROOT / "docs" / "benchmarks.md", "<!-- encode_hf -->", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
