"""The encoding workloads of benchmarks/encode.py beyond documents of a few KB.

- :func:`per_call_us`: per-call overhead, microseconds per ``encode("hi")``;
- :func:`measure_short`: 400-character documents in a fresh process that encodes nothing
  else (chat messages, dataset rows): throughput from the first call on, start-up
  included, and over the second half of the stream (the steady state), plus which path
  toknz ended on;
- :func:`measure_worst`: inputs that defeat piece caches and split points (one piece with
  no split point, a run of one character, random bytes), from 10 KB up to 10 MB, each
  size in its own process with a time limit, to show how time grows with the length.

Every contender's ids are compared with tiktoken's on the same input (for the worst
cases, by a hash of the ids at each size tiktoken finished).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHORT_CHARS = 400
SHORT_CONTENDERS = ("toknz", "tiktoken", "gigatoken", "fastokens", "bpe-openai")
WORST_CONTENDERS = ("toknz-numpy", "tiktoken", "gigatoken", "fastokens", "bpe-openai")
WORST_SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
WORST_KINDS = {
    "no split point": "random lowercase letters: one piece as long as the input",
    "one character": "`a` repeated: one piece, one character",
    "random bytes": "random bytes read as Latin-1 text (every byte value a character)",
}


def per_call_us(fn: Callable[[str], Any], text: str = "hi", calls: int = 20_000) -> float:
    """Best of 5 timings of ``calls`` calls ``fn(text)``, in microseconds per call."""
    fn(text)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls):
            fn(text)
        best = min(best, time.perf_counter() - t)
    return best / calls * 1e6


def _child_env() -> dict[str, str]:
    """This environment with benchmarks/ first on ``PYTHONPATH`` (for the child's imports)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    return env


def short_docs(texts: Sequence[str], want_bytes: int, seed: int = 0) -> list[str]:
    """Documents of about :data:`SHORT_CHARS` characters cut from ``texts``, shuffled; none
    that spells a special token (``<|...|>``: some peers' single-text API encodes it as one)."""
    docs = []
    for t in texts:
        for i in range(0, len(t) - SHORT_CHARS // 2, SHORT_CHARS):
            doc = t[i : i + SHORT_CHARS]
            if "<|" not in doc:
                docs.append(doc)
    random.Random(seed).shuffle(docs)
    out, total = [], 0
    for d in docs:
        if total >= want_bytes:
            break
        out.append(d)
        total += len(d.encode("utf-8"))
    return out


SHORT_CODE = """
import json, sys, time
t0 = time.perf_counter()
from encode_contenders import load, one_doc
docs = json.loads(open({docs!r}, encoding="utf-8").read())
obj = load({name!r}, {encoding!r})
fn = one_doc({name!r}, obj)
t1 = time.perf_counter()
ends, raw = [], []
for d in docs:
    raw.append(fn(d))
    ends.append(time.perf_counter())
ids = [list(map(int, r)) for r in raw]  # after the clock: lists or arrays, same cost to all
path = None
if {name!r}.startswith("toknz"):
    path = obj.encode_path
print(json.dumps({{"load_s": t1 - t0, "ends": [e - t1 for e in ends], "ids": ids, "path": path}}))
"""


def measure_short(
    encoding: str, docs: list[str], names: Sequence[str], repeats: int
) -> list[dict[str, Any]]:
    """Each contender of ``names`` on ``docs`` one by one in a fresh process, ``repeats`` times."""
    rows = []
    sizes = [len(d.encode("utf-8")) for d in docs]
    half = len(docs) // 2
    with tempfile.TemporaryDirectory(prefix="toknz-short-") as tmp:
        path = Path(tmp) / "docs.json"
        path.write_text(json.dumps(docs), encoding="utf-8")
        ref = None
        for r in range(repeats):
            for name in names:  # alternate A B C ..., a fresh process each
                code = SHORT_CODE.format(docs=str(path), name=name, encoding=encoding)
                proc = subprocess.run(
                    [sys.executable, "-c", code],
                    capture_output=True,
                    text=True,
                    env=_child_env(),
                    cwd=HERE.parent,
                )
                row: dict[str, Any] = {
                    "kind": "short",
                    "encoding": encoding,
                    "contender": name,
                    "round": r,
                    "docs": len(docs),
                    "bytes": sum(sizes),
                }
                if proc.returncode != 0:
                    row["error"] = proc.stderr.strip()[-300:]
                    rows.append(row)
                    continue
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                ends = got["ends"]
                if name == "tiktoken":
                    ref = got["ids"]
                row.update(
                    load_s=got["load_s"],
                    all_mb_per_s=sum(sizes) / ends[-1] / 1e6,
                    steady_mb_per_s=sum(sizes[half:]) / (ends[-1] - ends[half - 1]) / 1e6,
                    first_ms=ends[0] * 1e3,
                    path=got["path"],
                    ids_sha=hashlib.sha256(json.dumps(got["ids"]).encode()).hexdigest(),
                )
                rows.append(row)
        ref_sha = hashlib.sha256(json.dumps(ref).encode()).hexdigest() if ref else None
        for row in rows:
            if "ids_sha" in row:
                row["ids_match"] = None if ref_sha is None else row["ids_sha"] == ref_sha
    return rows


def worst_text(kind: str, size: int, seed: int = 0) -> str:
    """The ``kind`` input of ``size`` characters (see :data:`WORST_KINDS`)."""
    rng = random.Random(seed)
    if kind == "no split point":
        return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=size))
    if kind == "one character":
        return "a" * size
    if kind == "random bytes":
        return rng.randbytes(size).decode("latin-1")
    raise ValueError(kind)


WORST_CODE = """
import hashlib, json, sys, time
import numpy as np
from encode_contenders import load, one_doc
from encode_workloads import worst_text
fn = one_doc({name!r}, load({name!r}, {encoding!r}))
for _ in range(3):  # past any start-up path: every kernel loaded (toknz: both of them)
    fn("warm up " * 1000)
text = worst_text({kind!r}, {size!r})
t = time.perf_counter()
ids = fn(text)
s = time.perf_counter() - t
ids = np.asarray(ids, dtype=np.uint32)
print(json.dumps({{"s": s, "tokens": len(ids), "sha": hashlib.sha256(ids.tobytes()).hexdigest()}}))
"""


def measure_worst(
    encoding: str, names: Sequence[str], budget_s: float, sizes: Sequence[int] = WORST_SIZES
) -> list[dict[str, Any]]:
    """Seconds to encode each worst-case input at growing sizes, per contender.

    A size runs in its own process, killed after ``budget_s``; a contender skips the
    sizes after one that timed out or whose time, grown in proportion to the size,
    would pass the budget.
    """
    rows = []
    for kind in WORST_KINDS:
        for name in names:
            last: tuple[int, float] | None = None
            for size in sizes:
                row: dict[str, Any] = {
                    "kind": "worst",
                    "encoding": encoding,
                    "input": kind,
                    "contender": name,
                    "size": size,
                }
                if last is not None and last[1] * size / last[0] > budget_s:
                    row["skipped"] = f"{last[1]:.3g} s at {last[0]:,} chars"
                    rows.append(row)
                    continue
                code = WORST_CODE.format(name=name, encoding=encoding, kind=kind, size=size)
                try:
                    proc = subprocess.run(
                        [sys.executable, "-c", code],
                        capture_output=True,
                        text=True,
                        timeout=budget_s + 30,  # loading the tokenizer is not timed
                        env=_child_env(),
                        cwd=HERE.parent,
                    )
                except subprocess.TimeoutExpired:
                    row["timeout_s"] = budget_s
                    rows.append(row)
                    last = (size, float("inf"))
                    continue
                if proc.returncode != 0:
                    row["error"] = proc.stderr.strip()[-300:]
                    rows.append(row)
                    last = (size, float("inf"))
                    continue
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                row.update(s=got["s"], tokens=got["tokens"], sha=got["sha"])
                rows.append(row)
                last = (size, got["s"])
    ref = {
        (r["input"], r["size"]): r["sha"]
        for r in rows
        if r["contender"] == "tiktoken" and "sha" in r
    }
    for r in rows:
        if "sha" in r:
            want = ref.get((r["input"], r["size"]))
            r["ids_match"] = None if want is None else r["sha"] == want
    return rows


def _median(xs: Sequence[float]) -> float:
    import statistics

    return statistics.median(xs) if xs else float("nan")


def overhead_markdown(per_call: dict[str, dict[str, float]]) -> list[str]:
    """The per-call table: ``per_call[encoding][contender]`` microseconds."""
    if not per_call:
        return []
    encs = list(per_call)
    names = [n for n in dict.fromkeys(n for e in encs for n in per_call[e])]
    lines = [
        '### Per-call overhead: `encode("hi")`',
        "",
        "Microseconds per call, best of 5 × 20,000 calls, after the documents above (everything "
        "warm), in the single-thread process; the API of the single-thread table.",
        "",
        "| contender | " + " | ".join(f"{e} µs" for e in encs) + " |",
        "|---|" + "---:|" * len(encs),
    ]
    for n in names:
        cells = [f"{per_call[e][n]:.2f}" if n in per_call[e] else "—" for e in encs]
        lines.append(
            f"| {'**' + n + '**' if n.startswith('toknz') else n} | " + " | ".join(cells) + " |"
        )
    return lines + [""]


def short_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The short-text table: medians over the fresh processes of each contender."""
    if not rows:
        return []
    r0 = next((r for r in rows if "docs" in r), rows[0])
    lines = [
        f"### Short texts: {SHORT_CHARS}-character documents in a fresh process",
        "",
        f"A fresh process per contender and round loads the tokenizer, then encodes "
        f"{r0['docs']:,} documents of {SHORT_CHARS} characters ({r0['bytes'] / 1e6:.2f} MB, cut "
        "from the measured text above, shuffled) one by one and nothing else. `all`: MB/s from "
        "the first call to the last (a kernel load or compile in between included); `steady`: "
        "MB/s over the second half of the documents; `first call`: the first document's "
        "milliseconds. `path`: where toknz's `encode_ordinary` ended (`compiled` kernels or the "
        "`python` start-up path). Medians over the rounds; `toknz ÷ it` on `all` and `steady`.",
        "",
        "| encoding | contender | load s | first call ms | all MB/s | steady MB/s | "
        "toknz ÷ it (all / steady) | path | ids vs tiktoken |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for enc in dict.fromkeys(r["encoding"] for r in rows):
        mine = [r for r in rows if r["encoding"] == enc]
        stats: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(r["contender"] for r in mine):
            rs = [r for r in mine if r["contender"] == name and "error" not in r]
            errs = [r["error"] for r in mine if r["contender"] == name and "error" in r]
            stats[name] = {
                "rs": rs,
                "err": errs[0] if errs else None,
                "all": _median([r["all_mb_per_s"] for r in rs]),
                "steady": _median([r["steady_mb_per_s"] for r in rs]),
            }
        base = stats.get("toknz")
        for name, st in stats.items():
            rs = st["rs"]
            if not rs:
                lines.append(f"| {enc} | {name} | failed: `{str(st['err'])[-120:]}` | | | | | | |")
                continue
            ratio = "1"
            if base and not name.startswith("toknz"):
                ratio = f"{base['all'] / st['all']:.2f}× / {base['steady'] / st['steady']:.2f}×"
            paths = ", ".join(sorted({r["path"] for r in rs if r["path"]})) or "—"
            verdict = {True: "identical", False: "**MISMATCH**", None: "unchecked"}[
                all(r["ids_match"] for r in rs)
                if all(r["ids_match"] is not None for r in rs)
                else None
            ]
            lines.append(
                f"| {enc} | {'**' + name + '**' if name.startswith('toknz') else name} | "
                f"{_median([r['load_s'] for r in rs]):.3f} | "
                f"{_median([r['first_ms'] for r in rs]):.2f} | {st['all']:.3g} | "
                f"{st['steady']:.3g} | {ratio} | {paths} | {verdict} |"
            )
    return lines + [""]


def worst_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The worst-case table: seconds per input size, per encoding, input and contender."""
    if not rows:
        return []
    sizes = sorted({r["size"] for r in rows})
    lines = [
        "### Worst-case inputs: one long piece, one repeated character, random bytes",
        "",
        "Seconds for one `encode` call (single-document API of the table above) on inputs of "
        "growing size, each in its own process after loading; a contender stops growing once "
        "its time, scaled in proportion to the size, would pass the budget "
        "(`skipped`). Linear time: ×10 per size step; quadratic: ×100. Inputs: "
        + "; ".join(f"`{k}`: {v}" for k, v in WORST_KINDS.items())
        + ". Ids compared with tiktoken's at every size tiktoken finished.",
        "",
        "| encoding | input | contender | "
        + " | ".join(f"{s:,} chars s" for s in sizes)
        + " | ids vs tiktoken |",
        "|---|---|---|" + "---:|" * len(sizes) + "---|",
    ]
    keys = dict.fromkeys((r["encoding"], r["input"], r["contender"]) for r in rows)
    for enc, kind, name in keys:
        rs = {
            r["size"]: r
            for r in rows
            if (r["encoding"], r["input"], r["contender"]) == (enc, kind, name)
        }
        cells = []
        for s in sizes:
            r = rs.get(s)
            if r is None:
                cells.append("—")
            elif "s" in r:
                cells.append(f"{r['s']:.3g}")
            elif "timeout_s" in r:
                cells.append(f"> {r['timeout_s']:g} (killed)")
            elif "skipped" in r:
                cells.append("skipped")
            else:
                last_line = r["error"].strip().splitlines()[-1] if r["error"].strip() else "?"
                cells.append(f"error: `{last_line[:80]}`".replace("|", "\\|"))
        checks = [r.get("ids_match") for r in rs.values() if "s" in r]
        if any(c is False for c in checks):
            verdict = "**MISMATCH**"
        elif any(c is True for c in checks):
            verdict = f"identical ({sum(c is True for c in checks)} sizes)"
        else:
            verdict = "unchecked"
        label = "**" + name + "**" if name.startswith("toknz") else name
        lines.append(f"| {enc} | {kind} | {label} | " + " | ".join(cells) + f" | {verdict} |")
    return lines + [""]
