#!/usr/bin/env python3
"""Encoding speed of toknz against every exact peer that is installed, in one run.

    python benchmarks/encode.py            # full run (all of corpora/ per category)
    python benchmarks/encode.py --quick    # smoke run: 0.25 MB per category, 3 rounds
    python benchmarks/encode.py --mb 2     # up to 2 MB of text per category

What it does:

- Inputs: the English prose, code and multilingual files listed in ``corpora/MANIFEST``
  (until that exists: the files under corpora/en, corpora/code, corpora/multi; for code
  with nothing there, the Python standard library's source), and ``packages``: the
  descriptions (``*.dist-info/METADATA``) of the installed Python packages, text no other
  benchmark or test uses. Every file is cut into documents of ~4 KB (``--doc-kb``) at line
  ends, the documents of a category are shuffled with a fixed seed, ~10 % of them become
  the warm-up slice and the rest are dealt into one disjoint slice per round. No text is
  repeated: no contender ever encodes the same bytes twice, so no cache (toknz's piece
  cache, gigatoken's pretoken cache) inflates a number.
- Contenders, for cl100k_base and o200k_base (``benchmarks/encode_contenders.py``): toknz
  (lists and NumPy out), tiktoken, `tokenizers`, gigatoken, fastokens, bpe-openai, kitoken
  and tokie, each from the local tokenizer files; a peer that is not installed is left out.
- Three modes, each in its own fresh process: "single" encodes the documents one by one on
  one thread (``RAYON_NUM_THREADS=1``); "batch-1" and "batch-2" hand the whole slice to each
  library's batch API on 1 and on 2 threads (thread scaling is their ratio).
- Each process warms every contender up on the warm-up slice, then alternates
  A B C D, A B C D ... over the rounds, each round on its own fresh slice, and checks that
  every contender's ids equal tiktoken's on all measured text (a mismatch is shrunk to a
  minimal input and reported in the table). The single-thread process then times the
  per-call overhead of ``encode("hi")``.
- Start-up: ``import toknz; toknz.load("cl100k_base").encode("hello")`` against the same
  for the peers, fresh processes, median.
- Short texts and worst cases (``benchmarks/encode_workloads.py``): 400-character
  documents in a fresh process that encodes nothing else, and one long piece with no
  split point, a run of one character and random bytes from 10 KB to 10 MB.

Outputs: ``docs/bench/encode.jsonl`` (one JSON line per measurement, replaced each run),
the "## Encoding" section of ``docs/benchmarks.md`` (other sections are kept) and, when
matplotlib is installed, ``docs/bench/encode.png``. The exit status is 1 when toknz's ids
differ from tiktoken's or toknz crashes (a peer's mismatch is only reported).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import (  # noqa: E402
    free_cores,
    git_state,
    library_versions,
    load_average,
    machine_info,
    replace_section,
    write_atomic,
)
from encode_contenders import (  # noqa: E402
    API_TEXT,
    CONTENDERS,
    HF_JSON,
    Encoder,
    as_lists,
    available,
    build,
    same_output,
)
from encode_workloads import (  # noqa: E402
    SHORT_CHARS,
    SHORT_CONTENDERS,
    WORST_CONTENDERS,
    measure_short,
    measure_worst,
    overhead_markdown,
    per_call_us,
    short_docs,
    short_markdown,
    worst_markdown,
)

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
DOCS = ROOT / "docs"
OUT_JSONL = DOCS / "bench" / "encode.jsonl"
OUT_PNG = DOCS / "bench" / "encode.png"
OUT_MD = DOCS / "benchmarks.md"
SECTION = "## Encoding"
MD_TITLE = "# toknz benchmarks"
MD_INTRO = (
    "Measured by the scripts in `benchmarks/` (each script's docstring says how): ratios taken side by\n"
    "side in one run, on the same input and machine. Each section is written by one script\n"
    "and replaced when that script is re-run.\n"
)

CATEGORIES = ("prose", "code", "multilingual", "packages")
ENCODINGS = ("cl100k_base", "o200k_base")
STARTUP_CONTENDERS = ("toknz", "tiktoken", "tokenizers", "gigatoken", "fastokens", "bpe-openai")
REFERENCE = "tiktoken"
#: Modes: one document per call on one thread, or the batch API on 1 and on 2 threads.
MODES = ("single", "batch-1", "batch-2")
VERSION_DISTS = (
    "toknz",
    "tiktoken",
    "tokenizers",
    "gigatoken",
    "fastokens",
    "bpe-openai",
    "kitoken",
    "tokie",
    "numba",
    "numpy",
    "regex",
)
SEED = 0
WARMUP_FRACTION = 0.10


def mode_threads(mode: str) -> int:
    """Threads of ``mode``: 1 for ``single`` and ``batch-1``, 2 for ``batch-2``."""
    return int(mode.split("-")[1]) if mode.startswith("batch") else 1


def mode_kind(mode: str) -> str:
    """``single`` or ``batch``: which API table of :data:`API_TEXT` a mode uses."""
    return "batch" if mode.startswith("batch") else "single"


def mode_text(mode: str, doc_kb: int) -> str:
    if mode == "single":
        return f"single thread: documents of ~{doc_kb} KB encoded one by one in a Python loop"
    n = mode_threads(mode)
    return f"batched: the whole slice in one call of each library's batch API, {n} thread" + (
        "s" if n > 1 else ""
    )


# --------------------------------------------------------------------------- #
# machine and versions


# --------------------------------------------------------------------------- #
# inputs


def note(msg: str) -> None:
    print(f"encode.py: {msg}", file=sys.stderr, flush=True)


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of corpora/MANIFEST: tab-separated, a header line, '#' comment lines."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and ln[0] != "#"]
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"), strict=False)) for ln in lines[1:]]


def corpus_files(notes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Files of each category: corpora/MANIFEST, else the corpora/ folders (fallback)."""
    found: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}
    manifest = CORPORA / "MANIFEST"
    if manifest.exists():
        for row in read_manifest(manifest):
            cat = row.get("category", "")
            path = CORPORA / row.get("path", "")
            if cat not in found:
                continue
            if not path.is_file():
                notes.append(f"corpora/MANIFEST lists {row.get('path')} but the file is missing")
                continue
            found[cat].append(
                {
                    "path": str(path.relative_to(ROOT)),
                    "sha256_manifest": row.get("sha256"),
                    "license": row.get("license", ""),
                    "language": row.get("language", ""),
                }
            )
        src = "corpora/MANIFEST"
    else:
        folders = {"prose": ("en", "prose"), "code": ("code",), "multilingual": ("multi",)}
        for cat, names in folders.items():
            for name in names:
                for path in sorted((CORPORA / name).glob("*.txt")):
                    if not path.name.startswith("."):
                        found[cat].append({"path": str(path.relative_to(ROOT))})
        src = "corpora/ folders (no corpora/MANIFEST yet)"
    found["packages"] = package_metadata_files()
    notes.append(
        f"inputs from {src}; `packages`: the descriptions (`*.dist-info/METADATA`) of the "
        "installed Python packages, text no other benchmark or test of the project uses"
    )
    return found


def package_metadata_files(min_bytes: int = 2_000) -> list[dict[str, Any]]:
    """The ``METADATA`` files (package descriptions: Markdown/reST prose, code samples) of
    the installed packages, in name order, at least ``min_bytes`` each."""
    site = Path(sysconfig.get_paths()["purelib"])
    return [
        {"path": str(path), "license": "each package's own"}
        for path in sorted(site.glob("*.dist-info/METADATA"))
        if path.stat().st_size >= min_bytes
    ]


def cached_built_files(category: str) -> list[dict[str, Any]]:
    """The ``category`` files of the largest corpus built by corpora/build.py into the cache.

    One built corpus only: two corpora cut from the same sources would share text.
    """
    env = os.environ.get("TOKNZ_CACHE")
    root = (Path(env).expanduser() if env else Path.home() / ".cache" / "toknz") / "corpora"
    best: list[dict[str, Any]] = []
    best_bytes = 0
    for manifest in sorted(root.glob("*/manifest.json")):
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        files = [
            {
                "path": str(manifest.parent / f["path"]),
                "sha256_manifest": f.get("sha256"),
                "bytes": int(f.get("bytes", 0)),
            }
            for f in data.get("files", [])
            if f.get("category") == category and (manifest.parent / f["path"]).is_file()
        ]
        total = sum(f["bytes"] for f in files)
        if total > best_bytes:
            best, best_bytes = files, total
    return best


def stdlib_code_files(limit_bytes: int) -> list[dict[str, Any]]:
    """Fallback code: the standard library's own .py files, in name order (no tests)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out, total = [], 0
    for path in sorted(stdlib.glob("*.py")):
        size = path.stat().st_size
        if size < 2_000:
            continue
        out.append({"path": str(path), "license": "PSF-2.0"})
        total += size
        if total >= limit_bytes:
            break
    return out


def split_docs(data: bytes, target: int) -> list[str]:
    """Cut UTF-8 ``data`` into documents of about ``target`` bytes, at line ends."""
    docs, start, n = [], 0, len(data)
    while start < n:
        if n - start <= target * 1.5:
            end = n
        else:
            end = data.find(b"\n", start + target, start + 2 * target)
            if end < 0:
                end = data.find(b" ", start + target, start + 2 * target)
            if end < 0:
                end = start + target
                while end > start and (data[end] & 0xC0) == 0x80:  # not inside a character
                    end -= 1
            else:
                end += 1
        docs.append(data[start:end].decode("utf-8"))
        start = end
    return docs


def load_inputs(args: argparse.Namespace, notes: list[str]) -> dict[str, Any]:
    """Per category: the files used, the shuffled documents, and the slices per round."""
    files = corpus_files(notes)
    want = int(args.mb * 1e6) if args.mb else None
    out: dict[str, Any] = {}
    for cat in CATEGORIES:
        entries = list(files[cat])
        have = sum(Path(_abs(e["path"])).stat().st_size for e in entries)
        if want and have < want:
            built = cached_built_files(cat)
            built_bytes = sum(f["bytes"] for f in built)
            if built_bytes > have:
                entries, have = built, built_bytes
                where = Path(built[0]["path"]).parent
                notes.append(f"{cat}: using the corpus built by corpora/build.py in {where}")
            if have < want and cat != "packages" and (CORPORA / "build.py").exists():
                notes.append(
                    f"{cat}: --mb {args.mb:g} asks for more than corpora/ holds "
                    f"({have / 1e6:.2f} MB); build more with "
                    f"`python corpora/build.py --kind {cat} --size-mb {args.mb:g}` "
                    "(it lands in ~/.cache/toknz/corpora, which this script then reads)"
                )
        if not entries and cat == "code":
            entries = stdlib_code_files(want or 1_000_000)
            notes.append("code: no corpus file yet, using the Python stdlib's own source")
        if not entries:
            notes.append(f"{cat}: no text available; category skipped")
            continue
        per_file: list[list[str]] = []
        seen: set[str] = set()
        used = []
        for e in entries:
            data = Path(_abs(e["path"])).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:  # the same text twice would let a cache help
                continue
            seen.add(digest)
            if e.get("sha256_manifest") and e["sha256_manifest"] != digest:
                notes.append(f"{e['path']}: sha256 differs from its manifest (file changed?)")
            per_file.append(split_docs(data, args.doc_kb * 1000))
            used.append({"path": e["path"], "bytes": len(data), "sha256": digest})
        rng = random.Random(SEED)
        docs = [d for f in per_file for d in f]
        unique = list(dict.fromkeys(docs))  # a repeated document would let a cache help
        if len(unique) < len(docs):
            notes.append(f"{cat}: dropped {len(docs) - len(unique)} repeated document(s)")
        docs = unique
        rng.shuffle(docs)
        if want:
            kept, total = [], 0
            for d in docs:
                if total >= want:
                    break
                kept.append(d)
                total += len(d.encode("utf-8"))
            docs = kept
        total = sum(len(d.encode("utf-8")) for d in docs)
        if want and total < want:
            notes.append(
                f"{cat}: asked for {args.mb:g} MB, using the {total / 1e6:.2f} MB there is"
            )
        n_warm = max(1, round(len(docs) * WARMUP_FRACTION))
        if len(docs) < n_warm + args.rounds:
            notes.append(f"{cat}: only {len(docs)} documents, too few for the rounds; skipped")
            continue
        warm, rest = docs[:n_warm], docs[n_warm:]
        rounds = [rest[i :: args.rounds] for i in range(args.rounds)]
        out[cat] = {
            "files": used,
            "bytes": total,
            "docs": len(docs),
            "warmup": warm,
            "rounds": rounds,
            "warmup_bytes": sum(len(d.encode("utf-8")) for d in warm),
            "round_bytes": [sum(len(d.encode("utf-8")) for d in r) for r in rounds],
        }
    return out


def _abs(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


# --------------------------------------------------------------------------- #
# contenders (built inside the worker process)


def build_contenders(
    encoding: str, mode: str
) -> tuple[dict[str, Encoder], frozenset[str], dict[str, str]]:
    """Each installed contender as docs -> per-document ids (its native output type), the
    reference's special tokens, and the contenders that failed to load (name -> error)."""
    threads = None if mode == "single" else mode_threads(mode)
    fns: dict[str, Encoder] = {}
    failed: dict[str, str] = {}
    for name in available():
        try:
            fns[name] = build(name, encoding, threads)
        except Exception as exc:  # a peer that cannot load this encoding is reported, not fatal
            failed[name] = f"{type(exc).__name__}: {exc}"[:300]
    from encode_contenders import load

    specials = frozenset(load(REFERENCE, encoding).special_tokens_set)
    return fns, specials, failed


def shrink(text: str, bad: Callable[[str], bool], budget_s: float = 20.0) -> str:
    """A short input on which ``bad`` still holds (delta debugging over characters)."""
    deadline = time.monotonic() + budget_s
    n = 2
    while len(text) >= 2 and time.monotonic() < deadline:
        chunk = -(-len(text) // n)
        for i in range(0, len(text), chunk):
            cand = text[:i] + text[i + chunk :]
            if cand and bad(cand):
                text, n = cand, max(n - 1, 2)
                break
        else:
            if n >= len(text):
                break
            n = min(len(text), n * 2)
    return text


def check_ids(
    name: str,
    got: list[list[int]],
    ref: list[list[int]],
    docs: Sequence[str],
    fns: dict[str, Encoder],
    specials: frozenset[str],
    shrink_budget: float,
) -> dict[str, Any]:
    bad_docs = [i for i, (a, b) in enumerate(zip(got, ref, strict=False)) if a != b]
    if len(got) != len(ref):
        bad_docs = bad_docs or [min(len(got), len(ref))]
    if not bad_docs:
        return {"ids_match": True}
    i = bad_docs[0]
    a, b = got[i] if i < len(got) else [], ref[i] if i < len(ref) else []
    pos = next(
        (k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )

    def differs(s: str) -> bool:
        try:
            return as_lists(fns[name]([s]))[0] != as_lists(fns[REFERENCE]([s]))[0]
        except Exception:  # hunting a wrong answer here, not a crash
            return False

    minimal = shrink(docs[i], differs, shrink_budget) if differs(docs[i]) else None
    out = {
        "ids_match": False,
        "mismatched_docs": len(bad_docs),
        "first_doc": i,
        "first_token": pos,
        "got": a[max(0, pos - 2) : pos + 4],
        "want": b[max(0, pos - 2) : pos + 4],
        "minimal_input": minimal,
    }
    if minimal is not None:
        out["minimal_got"] = as_lists(fns[name]([minimal]))[0]
        out["minimal_want"] = as_lists(fns[REFERENCE]([minimal]))[0]
        if any(s in minimal for s in specials):
            out["cause"] = "special-token text: this API encodes it as the special token"
    else:
        out["cause"] = "only inside the batch/whole document (the document alone agrees)"
    return out


# --------------------------------------------------------------------------- #
# the worker: one encoding, one mode, a fresh process


def worker(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    encoding, mode = spec["encoding"], spec["mode"]
    slices = spec["slices"]
    t0 = time.perf_counter()
    fns, specials, failed = build_contenders(encoding, mode)
    load_s = time.perf_counter() - t0
    order = [c for c in CONTENDERS if c in fns]
    for name, err in failed.items():
        note(f"{encoding} {mode}: {name} did not load: {err}")

    # Warm-up: every contender on the warm-up slice of every category (Numba compiles,
    # pools start, caches fill with the common words), never on measured text.
    note(f"{encoding} {mode}: contenders loaded in {load_s:.1f} s")
    warm: dict[str, float] = {}
    warm_errors: dict[str, str] = {}
    for cat, sl in slices.items():
        for name in order:
            t = time.perf_counter()
            try:
                fns[name](sl["warmup"])
            except Exception as exc:  # reported with the measured rounds, not fatal here
                warm_errors[f"{cat}/{name}"] = f"{type(exc).__name__}: {exc}"[:300]
            warm[f"{cat}/{name}"] = round(time.perf_counter() - t, 4)

    note(f"{encoding} {mode}: warm-up {sum(warm.values()):.1f} s")
    special_docs = {
        cat: sum(any(s in d for s in specials) for r in sl["rounds"] for d in r)
        for cat, sl in slices.items()
    }
    rows = []
    for r in range(spec["rounds"]):
        for cat, sl in slices.items():
            docs = sl["rounds"][r]
            nbytes = sum(len(d.encode("utf-8")) for d in docs)
            results: dict[str, Any] = {}
            for name in order:  # A B C D on the same fresh slice
                row = {
                    "encoding": encoding,
                    "mode": mode,
                    "category": cat,
                    "round": r,
                    "contender": name,
                    "bytes": nbytes,
                    "docs": len(docs),
                }
                gc.collect()
                c0, w0 = time.process_time(), time.perf_counter()
                try:
                    results[name] = fns[name](docs)
                except Exception as exc:  # a crash is a result: report it, go on
                    row["error"] = f"{type(exc).__name__}: {exc}"[:300]
                    note(f"{encoding} {mode} {cat} round {r}: {name} raised {row['error']}")
                    rows.append(row)
                    continue
                wall = time.perf_counter() - w0
                cpu = time.process_time() - c0
                row.update(
                    wall_s=wall, cpu_s=cpu, mb_per_s=nbytes / wall / 1e6, cpu_per_wall=cpu / wall
                )
                rows.append(row)
            ref = as_lists(results[REFERENCE]) if REFERENCE in results else None
            for row in rows[-len(order) :]:
                name = row["contender"]
                if name not in results:
                    continue
                got = as_lists(results[name])
                row["tokens"] = sum(map(len, got))
                if ref is None:
                    row.update(ids_match=None)
                    continue
                row.update(check_ids(name, got, ref, docs, fns, specials, spec["shrink_budget_s"]))
            del results
    overhead = {}
    if mode == "single":  # per-call overhead, after the documents (everything is warm)
        for name in order:
            one = getattr(fns[name], "one", None)
            if one is not None:
                overhead[name] = per_call_us(one, "hi")
    out = {
        "encoding": encoding,
        "mode": mode,
        "load_s": load_s,
        "failed": failed,
        "per_call_us": overhead,
        "warmup_s": warm,
        "warmup_errors": warm_errors,
        "special_token_docs": special_docs,
        "env": {k: os.environ.get(k) for k in THREAD_ENV},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
    }
    Path(spec["out"]).write_text(json.dumps(out, default=int), encoding="utf-8")
    return 0


THREAD_ENV = ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM", "NUMBA_NUM_THREADS")


def run_worker(encoding: str, mode: str, inputs: dict[str, Any], args: argparse.Namespace) -> dict:
    threads = mode_threads(mode)
    env = dict(os.environ)
    env.update(
        {
            "RAYON_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "true" if threads > 1 else "false",
            "NUMBA_NUM_THREADS": str(threads),
        }
    )
    with tempfile.TemporaryDirectory(prefix="toknz-bench-") as tmp:
        spec = {
            "encoding": encoding,
            "mode": mode,
            "rounds": args.rounds,
            "shrink_budget_s": args.shrink_budget,
            "out": str(Path(tmp) / "out.json"),
            "slices": {
                c: {"warmup": v["warmup"], "rounds": v["rounds"]} for c, v in inputs.items()
            },
        }
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", str(spec_path)], env=env, cwd=ROOT
        )
        if proc.returncode != 0:
            raise SystemExit(f"encode.py: the {encoding}/{mode} worker failed ({proc.returncode})")
        out = json.loads(Path(spec["out"]).read_text(encoding="utf-8"))
        note(f"{encoding} {mode}: {time.perf_counter() - t:.1f} s")
        return out


# --------------------------------------------------------------------------- #
# start-up


def startup_code(contender: str, encoding: str, paths: dict[str, str]) -> str:
    body = {
        "toknz": f"import toknz; toknz.load({encoding!r}).encode('hello')",
        "tiktoken": (
            "import os; os.environ['TIKTOKEN_CACHE_DIR'] = ''\n"
            "import tiktoken, tiktoken.load\n"
            "from tiktoken_ext import openai_public as op\n"
            "op.load_tiktoken_bpe = lambda u, expected_hash=None: "
            f"tiktoken.load.load_tiktoken_bpe({paths['rank']!r}, expected_hash)\n"
            f"tiktoken.Encoding(**op.ENCODING_CONSTRUCTORS[{encoding!r}]()).encode('hello')"
        ),
        "gigatoken": (
            f"import gigatoken; gigatoken.Tokenizer.from_tiktoken({paths['rank']!r}).encode('hello')"
        ),
        "fastokens": (
            "import fastokens; fastokens.Tokenizer.from_tiktoken("
            f"{paths['rank']!r}, encoding={encoding!r}).encode_ordinary('hello')"
        ),
        "bpe-openai": f"import bpe_openai; bpe_openai.get_encoding({encoding!r}).encode_ordinary('hello')",
        "tokenizers": (
            "import tokenizers; "
            f"tokenizers.Tokenizer.from_file({paths['json']!r}).encode('hello', add_special_tokens=False)"
        ),
    }[contender]
    return (
        "import time as _t, resource as _r, json as _j\n"
        "_t0 = _t.perf_counter()\n"
        f"{body}\n"
        "print(_j.dumps({'s': _t.perf_counter() - _t0, "
        "'rss_mb': _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )


def measure_startup(encoding: str, repeats: int) -> list[dict[str, Any]]:
    from toknz import fetch

    paths = {"rank": str(fetch.require(encoding)), "json": str(fetch.require(HF_JSON[encoding]))}
    rows = []
    for r in range(repeats):
        for name in STARTUP_CONTENDERS:  # alternate A B C D, fresh process each
            code = startup_code(name, encoding, paths)
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT
            )
            wall = time.perf_counter() - t
            if proc.returncode != 0:
                rows.append({"contender": name, "round": r, "error": proc.stderr.strip()[-300:]})
                continue
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(
                {
                    "kind": "startup",
                    "encoding": encoding,
                    "contender": name,
                    "round": r,
                    "import_load_encode_s": got["s"],
                    "process_wall_s": wall,
                    "peak_rss_mb": got["rss_mb"],
                }
            )
    return rows


# --------------------------------------------------------------------------- #
# summary, Markdown, JSON lines


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """(encoding, mode, category, contender) -> medians and the ids verdict."""
    by_key: dict[tuple[str, str, str, str], list[dict]] = {}
    for row in rows:
        key = (row["encoding"], row["mode"], row["category"], row["contender"])
        by_key.setdefault(key, []).append(row)
    toknz_speed = {
        (r["encoding"], r["mode"], r["category"], r["round"], r["contender"]): r["mb_per_s"]
        for r in rows
        if r["contender"].startswith("toknz") and "error" not in r
    }
    out = {}
    for key, rs in by_key.items():
        ok = [r for r in rs if "error" not in r]
        same = same_output(key[3], mode_kind(key[1]))
        ratios = [
            toknz_speed[(r["encoding"], r["mode"], r["category"], r["round"], same)] / r["mb_per_s"]
            for r in ok
            if (r["encoding"], r["mode"], r["category"], r["round"], same) in toknz_speed
        ]
        bad = [r for r in ok if r.get("ids_match") is False]
        out[key] = {
            "mb_per_s": med([r["mb_per_s"] for r in ok]),
            "toknz_ratio": med(ratios),
            "cpu_per_wall": med([r["cpu_per_wall"] for r in ok]),
            "rounds": len(rs),
            "rounds_ok": len(ok),
            "errors": [(r["round"], r["error"]) for r in rs if "error" in r],
            "unchecked": sum(r.get("ids_match") is None for r in ok),
            "bytes": sum(r["bytes"] for r in ok),
            "tokens": sum(r["tokens"] for r in ok),
            "mismatch": bad[0] if bad else None,
            "mismatched_docs": sum(r.get("mismatched_docs", 0) for r in bad),
        }
    return out


def fmt_speed(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_ratio(x: float) -> str:
    return "— (no toknz result)" if x != x else f"{x:.2f}×"


def fmt_cell(s: dict[str, Any], text: str) -> str:
    """A speed or ratio cell; marked when some rounds crashed (median of the others)."""
    if not s["rounds_ok"]:
        return "**CRASHED**"
    if s["errors"]:
        return f"{text} ({s['rounds_ok']} of {s['rounds']} rounds)"
    return text


def fmt_mismatch(s: dict[str, Any]) -> str:
    m = s["mismatch"]
    text = f"**MISMATCH** in {s['mismatched_docs']} doc(s)"
    if m.get("minimal_input") is not None:
        text += f"; minimal input `{ascii(m['minimal_input'])}`: {m['minimal_got']} vs tiktoken {m['minimal_want']}"
    if m.get("cause"):
        text += f" ({m['cause']})"
    return text.replace("|", "\\|")


def markdown(
    header: dict[str, Any],
    inputs: dict[str, Any],
    summary: dict,
    startup: list[dict[str, Any]],
    workers: list[dict[str, Any]],
    notes: list[str],
) -> str:
    cats = [c for c in CATEGORIES if c in inputs]
    m = header["machine"]
    lines = [
        SECTION,
        "",
        "_Written by `benchmarks/encode.py`; re-running it replaces this section only._",
        "",
    ]
    if header["quick"]:
        lines += ["**`--quick` smoke run: small inputs, not numbers to quote.**", ""]
    lines += [
        f"- command: `{header['command']}` ({header['date']}, {header['elapsed_s']:.0f} s)",
        f"- machine: {m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['mem_gb']} GB RAM, {m['os']}, Python {m['python']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in header["versions"].items()),
        f"- repo: {header['git']}",
        f"- load average (1, 5, 15 min) at start: {header['load_start']}, at end: "
        f"{header['load_end']}: the machine is shared, so other processes may compete for "
        "its cores; `cpu/wall` below 1 for a one-thread call shows such contention, which "
        "alternating the contenders spreads over all of them",
        "- cores free for 2 busy threads (CPU s / wall s of a GIL-free probe; "
        f"2 on an idle machine): {header['free_cores_start']:.2f} at start, "
        f"{header['free_cores_end']:.2f} at end",
        "- inputs (MB = 10^6 UTF-8 bytes; documents of ~"
        f"{header['doc_kb']} KB cut at line ends, shuffled with seed {SEED}):",
    ]
    for cat in cats:
        v = inputs[cat]
        names = ", ".join(
            Path(f["path"]).parent.name
            if Path(f["path"]).name == "METADATA"
            else Path(f["path"]).name
            for f in v["files"]
        )
        lines.append(
            f"  - {cat}: {v['bytes'] / 1e6:.2f} MB, {v['docs']} documents from {names}; "
            f"warm-up {v['warmup_bytes'] / 1e6:.2f} MB, then {len(v['rounds'])} rounds of "
            f"~{med(v['round_bytes']) / 1e6:.2f} MB, each round on text no contender has seen"
        )
    lines += [
        f"- method: every contender is warmed up on the warm-up slice, then the contenders "
        f"alternate ({' '.join(CONTENDERS)}) on each round's fresh slice; the table gives the "
        "median MB/s over the rounds and the median over rounds of toknz's speed divided by "
        "the contender's on the same slice (below 1: toknz is slower), toknz using the API "
        "that returns the same kind of output (lists: `toknz`; NumPy arrays: `toknz-numpy`). "
        "`cpu/wall` is the "
        "process CPU time over wall time during the call: the cores actually used. Each mode "
        "runs in its own fresh process.",
        "- ids: every contender's ids are compared with tiktoken's (`encode_ordinary`) on "
        "all measured text in the same run.",
        "",
    ]
    for enc in ENCODINGS:
        for mode in MODES:
            if not any(k[0] == enc and k[1] == mode for k in summary):
                continue
            lines += [f"### {enc}, {mode_text(mode, header['doc_kb'])}", ""]
            head = ["contender", "API"]
            head += [f"{c} MB/s" for c in cats]
            head += [f"toknz ÷ it, {c}" for c in cats]  # toknz's API with the same output
            head += ["cpu/wall", "ids vs tiktoken"]
            lines.append("| " + " | ".join(head) + " |")
            lines.append(
                "|" + "|".join(["---"] * 2 + ["---:"] * (2 * len(cats) + 1) + ["---"]) + "|"
            )
            for name in CONTENDERS:
                ss = [summary.get((enc, mode, c, name)) for c in cats]
                if not any(ss):
                    continue
                mine = name.startswith("toknz")
                api = API_TEXT[mode_kind(mode)][name].format(n=mode_threads(mode))
                cells = [f"**{name}**" if mine else name, api]
                cells += [fmt_cell(s, fmt_speed(s["mb_per_s"])) if s else "—" for s in ss]
                cells += [
                    fmt_cell(s, "1" if mine else fmt_ratio(s["toknz_ratio"])) if s else "—"
                    for s in ss
                ]
                cpw = [s["cpu_per_wall"] for s in ss if s and s["rounds_ok"]]
                cells.append(f"{med(cpw):.2f}" if cpw else "—")
                verdicts = []
                for c, s in zip(cats, ss, strict=True):
                    if not s:
                        continue
                    if s["errors"]:
                        rnd, err = s["errors"][0]
                        verdicts.append(
                            f"{c}: **CRASHED** in {len(s['errors'])} of {s['rounds']} rounds "
                            f"(round {rnd}: `{err}`)".replace("|", "\\|")
                        )
                    if s["mismatch"]:
                        verdicts.append(f"{c}: {fmt_mismatch(s)}")
                    if s["unchecked"]:
                        verdicts.append(
                            f"{c}: not checked in {s['unchecked']} rounds (no reference)"
                        )
                if verdicts:
                    cells.append("; ".join(verdicts))
                else:
                    tokens = sum(s["tokens"] for s in ss if s)
                    cells.append(f"identical ({tokens:,} tokens)")
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    if startup:
        lines += [
            "### Start-up (cl100k_base)",
            "",
            "Fresh process each: import, load the local tokenizer file, `encode('hello')`; "
            f"median of {max(r['round'] for r in startup) + 1} processes per contender, "
            "alternating. tiktoken builds its `Encoding` from the local `.tiktoken` file "
            "(`TIKTOKEN_CACHE_DIR=''`); `tokenizers` loads the equivalent tokenizer.json.",
            "",
            "| contender | import+load+encode s | process wall s (incl. interpreter) | "
            "peak RSS MB | toknz ÷ it |",
            "|---|---:|---:|---:|---:|",
        ]
        rs_by = {
            n: [r for r in startup if r.get("contender") == n and "error" not in r]
            for n in STARTUP_CONTENDERS
        }
        base = med([r["import_load_encode_s"] for r in rs_by["toknz"]])
        for name in STARTUP_CONTENDERS:
            rs = rs_by[name]
            if not rs:
                errs = [r["error"] for r in startup if r.get("contender") == name and "error" in r]
                lines.append(f"| {name} | failed: {(errs or ['?'])[0]!r} | | | |")
                continue
            s = med([r["import_load_encode_s"] for r in rs])
            cells = [
                "**toknz**" if name == "toknz" else name,
                f"{s:.3f}",
                f"{med([r['process_wall_s'] for r in rs]):.3f}",
                f"{med([r['peak_rss_mb'] for r in rs]):.0f}",
                "1" if name == "toknz" else f"{base / s:.2f}×",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "`toknz ÷ it`: toknz's start-up time divided by the contender's "
            "(above 1: toknz starts slower).",
            "",
        ]
    extra = []
    for w in workers:
        sp = {c: n for c, n in w["special_token_docs"].items() if n}
        if sp:
            extra.append(
                f"{w['encoding']}/{w['mode']}: documents containing special-token text: {sp}"
            )
    if notes or extra:
        lines += ["### Notes", ""] + [f"- {n}" for n in notes + extra] + [""]
    return "\n".join(lines)


def scaling_markdown(summary: dict, cats: list[str]) -> list[str]:
    """Thread scaling: each contender's batch MB/s on 2 threads over its own on 1 thread."""
    lines = [
        "### Thread scaling: batch API, 2 threads ÷ 1 thread",
        "",
        "Each contender's median MB/s with `batch-2` divided by its own with `batch-1`, same "
        "text (2.00× is perfect scaling on 2 cores).",
        "",
        "| encoding | contender | " + " | ".join(cats) + " |",
        "|---|---|" + "---:|" * len(cats),
    ]
    for enc in ENCODINGS:
        for name in CONTENDERS:
            cells = []
            for c in cats:
                one = summary.get((enc, "batch-1", c, name))
                two = summary.get((enc, "batch-2", c, name))
                ok = one and two and one["rounds_ok"] and two["rounds_ok"]
                cells.append(f"{two['mb_per_s'] / one['mb_per_s']:.2f}×" if ok else "—")
            if any(x != "—" for x in cells):
                label = f"**{name}**" if name.startswith("toknz") else name
                lines.append(f"| {enc} | {label} | " + " | ".join(cells) + " |")
    return lines + [""]


def fastest_exact_peer(summary: dict, enc: str, mode: str, cat: str) -> tuple[str, float] | None:
    """The fastest peer (not toknz) whose ids equal tiktoken's on ``cat``, and its MB/s.

    A peer whose only difference is a document spelling a special token (its API encodes
    it as the special token) counts as exact: its BPE agrees on all the text.
    """
    best = None
    for name in CONTENDERS:
        s = summary.get((enc, mode, cat, name))
        if name.startswith("toknz") or not s or not s["rounds_ok"]:
            continue
        if s["mismatch"] and not str(s["mismatch"].get("cause", "")).startswith("special-token"):
            continue
        if best is None or s["mb_per_s"] > best[1]:
            best = (name, s["mb_per_s"])
    return best


def targets_markdown(
    summary: dict, per_call: dict[str, dict[str, float]], short_rows: list[dict[str, Any]]
) -> list[str]:
    """Issue 19's targets against this run: toknz over the fastest exact peer per workload."""
    cats = [c for c in CATEGORIES if any(k[2] == c for k in summary)]
    lines = [
        "### Targets: toknz ÷ the fastest exact peer",
        "",
        "Per workload, toknz's NumPy API (`toknz-numpy`) divided by the fastest peer whose ids "
        "equal tiktoken's on that text, from the tables above (at least 1.00× is the target; "
        "thread scaling: 1.80×; per-call overhead: 1 µs).",
        "",
        "| encoding | workload | " + " | ".join(cats) + " | target met |",
        "|---|---|" + "---:|" * len(cats) + "---|",
    ]
    for enc in ENCODINGS:
        for mode, label in (
            ("single", "4 KB documents, 1 thread"),
            ("batch-2", "batch, 2 threads"),
        ):
            cells, met = [], True
            for c in cats:
                mine = summary.get((enc, mode, c, "toknz-numpy"))
                peer = fastest_exact_peer(summary, enc, mode, c)
                if not mine or not mine["rounds_ok"] or peer is None:
                    cells.append("—")
                    continue
                ratio = mine["mb_per_s"] / peer[1]
                met = met and ratio >= 1.0
                cells.append(f"{ratio:.2f}× {peer[0]}")
            if any(x != "—" for x in cells):
                lines.append(
                    f"| {enc} | {label} | " + " | ".join(cells) + f" | {'yes' if met else 'no'} |"
                )
        cells, met = [], True
        for c in cats:
            one = summary.get((enc, "batch-1", c, "toknz-numpy"))
            two = summary.get((enc, "batch-2", c, "toknz-numpy"))
            if not (one and two and one["rounds_ok"] and two["rounds_ok"]):
                cells.append("—")
                continue
            ratio = two["mb_per_s"] / one["mb_per_s"]
            met = met and ratio >= 1.8
            cells.append(f"{ratio:.2f}×")
        if any(x != "—" for x in cells):
            lines.append(
                f"| {enc} | 2 threads ÷ 1 thread | "
                + " | ".join(cells)
                + f" | {'yes' if met else 'no'} |"
            )
    lines.append("")
    extra = []
    for enc, calls in per_call.items():
        mine = calls.get("toknz")
        if mine is not None:
            peers = {n: v for n, v in calls.items() if not n.startswith("toknz")}
            best = min(peers.items(), key=lambda kv: kv[1]) if peers else None
            vs = f" (fastest peer: {best[0]} {best[1]:.2f} µs)" if best else ""
            extra.append(
                f"- {enc}, per-call overhead: {mine:.2f} µs{vs}; target 1 µs "
                f"{'met' if mine <= 1.0 else 'not met'}"
            )
    for enc in dict.fromkeys(r["encoding"] for r in short_rows):
        rs = [r for r in short_rows if r["encoding"] == enc and "error" not in r]

        def speed(name: str, key: str, rs: list[dict[str, Any]] = rs) -> float:
            return med([r[key] for r in rs if r["contender"] == name])

        if any(r["contender"] == "gigatoken" for r in rs) and any(
            r["contender"] == "toknz" for r in rs
        ):
            ratio_all = speed("toknz", "all_mb_per_s") / speed("gigatoken", "all_mb_per_s")
            ratio_steady = speed("toknz", "steady_mb_per_s") / speed("gigatoken", "steady_mb_per_s")
            extra.append(
                f"- {enc}, {SHORT_CHARS}-character documents in a fresh process: toknz ÷ "
                f"gigatoken {ratio_all:.2f}× from the first call, {ratio_steady:.2f}× in the "
                f"steady state; target 1.00× {'met' if min(ratio_all, ratio_steady) >= 1 else 'not met'}"
            )
    return lines + extra + ([""] if extra else [])


def workload_markdown(
    summary: dict,
    workers: list[dict[str, Any]],
    short_rows: list[dict[str, Any]],
    worst_rows: list[dict[str, Any]],
) -> str:
    """The tables after the per-mode ones: scaling, per-call overhead, short texts, worst cases."""
    cats = [c for c in CATEGORIES if any(k[2] == c for k in summary)]
    per_call = {w["encoding"]: w["per_call_us"] for w in workers if w.get("per_call_us")}
    lines = targets_markdown(summary, per_call, short_rows)
    lines += scaling_markdown(summary, cats) + overhead_markdown(per_call)
    lines += short_markdown(short_rows) + worst_markdown(worst_rows)
    return "\n" + "\n".join(lines)


def plot(summary: dict, cats: list[str]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, grid = plt.subplots(
        len(ENCODINGS), len(MODES), figsize=(5 * len(MODES), 3.6 * len(ENCODINGS)), sharey=True
    )
    for row, enc in zip(grid, ENCODINGS, strict=True):
        for ax, mode in zip(row, MODES, strict=True):
            width = 0.8 / len(CONTENDERS)
            for j, name in enumerate(CONTENDERS):
                ys = [summary.get((enc, mode, c, name), {}).get("mb_per_s", 0) for c in cats]
                ax.bar([i + j * width for i in range(len(cats))], ys, width, label=name)
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cats))], cats)
            ax.set_title(f"{enc}, {mode}")
            ax.set_yscale("log")
        row[0].set_ylabel("MB/s (log)")
    grid[0][-1].legend(fontsize=7)
    fig.tight_layout()
    OUT_PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT_PNG, dpi=110)
    return str(OUT_PNG.relative_to(ROOT))


# --------------------------------------------------------------------------- #
# main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/encode.py",
        description="Encoding speed of toknz vs tiktoken, tokenizers and gigatoken "
        "(cl100k_base, o200k_base; prose, code, multilingual; 1 and 2 threads).",
    )
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 0.25 MB per category, 3 rounds, 1 start-up process each")  # fmt: skip
    parser.add_argument("--mb", type=float, default=None,
                        help="MB (10^6 bytes) of text per category, warm-up included "
                        "(default: all of corpora/; no text is ever repeated)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5, quick 3)")
    parser.add_argument("--doc-kb", type=int, default=4, help="document size in KB (default 4)")
    parser.add_argument("--short-mb", type=float, default=None,
                        help="MB of 400-character documents per fresh process (default 4, quick 0.2)")  # fmt: skip
    parser.add_argument("--worst-budget", type=float, default=None,
                        help="seconds one worst-case input may take (default 20, quick 5)")  # fmt: skip
    parser.add_argument("--no-short", action="store_true", help="skip the short-text workload")
    parser.add_argument("--no-worst", action="store_true", help="skip the worst-case inputs")
    parser.add_argument("--encodings", default=",".join(ENCODINGS), help=argparse.SUPPRESS)
    parser.add_argument("--shrink-budget", type=float, default=20.0, help=argparse.SUPPRESS)
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    parser.add_argument("--no-write", action="store_true",
                        help="print the results only: leave docs/benchmarks.md and docs/bench/ as they are")  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.quick and args.mb is None:
        args.mb = 0.25
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    if args.mb is not None and args.mb <= 0:
        parser.error("--mb must be positive")
    encodings = [e for e in args.encodings.split(",") if e]

    t_start = time.perf_counter()
    header = {
        "command": "python " + shlex.join(sys.argv if argv is None else [__file__, *argv]),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "versions": library_versions(VERSION_DISTS),
        "git": git_state(),
        "quick": args.quick,
        "load_start": load_average(),
        "free_cores_start": free_cores(),
        "doc_kb": args.doc_kb,
        "rounds": args.rounds,
    }
    header["command"] = header["command"].replace(str(ROOT) + "/", "")
    m = header["machine"]
    print(f"command : {header['command']}")
    print(f"machine : {m['cpu_model']}, {m['cores']} cores, {m['mem_gb']} GB, {m['os']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in header["versions"].items()))

    notes: list[str] = []
    inputs = load_inputs(args, notes)
    for cat, v in inputs.items():
        print(
            f"input   : {cat}: {v['bytes'] / 1e6:.2f} MB in {v['docs']} docs "
            f"({len(v['files'])} files), warm-up {v['warmup_bytes'] / 1e6:.2f} MB, "
            f"{args.rounds} rounds of ~{med(v['round_bytes']) / 1e6:.2f} MB"
        )
    for n in notes:
        note(n)
    if not inputs:
        raise SystemExit("encode.py: no input text at all")

    workers = []
    for enc in encodings:
        for mode in MODES:
            workers.append(run_worker(enc, mode, inputs, args))
    rows = [r for w in workers for r in w["rows"]]
    startup = [] if args.no_startup else measure_startup("cl100k_base", 1 if args.quick else 3)
    short_rows: list[dict[str, Any]] = []
    if not args.no_short:
        want = int((args.short_mb or (0.2 if args.quick else 4.0)) * 1e6)
        texts = [d for v in inputs.values() for r in v["rounds"] for d in r]
        docs = short_docs(texts, want)
        for enc in encodings:
            note(f"{enc}: {len(docs)} documents of {SHORT_CHARS} characters, fresh processes")
            short_rows += measure_short(
                enc, docs, available(SHORT_CONTENDERS), 1 if args.quick else 3
            )
    worst_rows: list[dict[str, Any]] = []
    if not args.no_worst:
        budget = args.worst_budget or (5.0 if args.quick else 20.0)
        for enc in encodings:
            note(f"{enc}: worst-case inputs (up to {budget:g} s each)")
            worst_rows += measure_worst(enc, available(WORST_CONTENDERS), budget)
    header["elapsed_s"] = time.perf_counter() - t_start
    header["load_end"] = load_average()
    header["free_cores_end"] = free_cores()
    if min(header["free_cores_start"], header["free_cores_end"]) < 0.8 * 2:
        notes.append(
            f"2 busy threads got only {header['free_cores_start']:.2f} (start) / "
            f"{header['free_cores_end']:.2f} (end) cores: other processes were using the machine, "
            "so the batched rows understate what 2 threads give on an idle machine"
        )

    summary = summarize(rows)
    mismatches = [k for k, s in summary.items() if s["mismatch"]]
    for k in mismatches:
        note(f"IDS MISMATCH {k}: {fmt_mismatch(summary[k])}")
    crashes = [k for k, s in summary.items() if s["errors"]]
    for k in crashes:
        note(f"CRASH {k}: {len(summary[k]['errors'])} rounds, first: {summary[k]['errors'][0]}")
    for w in workers:
        for what, err in w["warmup_errors"].items():
            notes.append(f"{w['encoding']}/{w['mode']} warm-up {what} raised `{err}`")

    # JSON lines: one per measurement, each carrying the run's header fields.
    run = {
        "run": header["date"],
        "command": header["command"],
        "quick": args.quick,
        "cpu_model": m["cpu_model"],
        "cores": m["cores"],
        "versions": header["versions"],
        "load_average": [header["load_start"], header["load_end"]],
        "free_cores": [header["free_cores_start"], header["free_cores_end"]],
    }
    lines = []
    for w in workers:
        for r in w["rows"]:
            lines.append(
                {
                    "kind": "encode",
                    **run,
                    **r,
                    "threads": mode_threads(w["mode"]),
                }
            )
    for w in workers:
        meta = {k: v for k, v in w.items() if k != "rows"}
        lines.append({"kind": "worker", **run, **meta})
    for r in startup + short_rows + worst_rows:
        lines.append({**run, **r})
    for cat, v in inputs.items():
        lines.append(
            {
                "kind": "input",
                **run,
                "category": cat,
                "bytes": v["bytes"],
                "docs": v["docs"],
                "warmup_bytes": v["warmup_bytes"],
                "round_bytes": v["round_bytes"],
                "files": v["files"],
            }
        )
    if not args.no_write:
        write_atomic(OUT_JSONL, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))

    png = None if args.no_write else plot(summary, [c for c in CATEGORIES if c in inputs])
    if png is None and not args.no_write:
        notes.append("no plot: matplotlib is not installed (optional)")
    section = markdown(header, inputs, summary, startup, workers, notes)
    section += workload_markdown(summary, workers, short_rows, worst_rows)
    if png:
        section += f"\n![encoding speed]({Path(png).relative_to('docs')})\n"
    old = OUT_MD.read_text(encoding="utf-8") if OUT_MD.exists() else f"{MD_TITLE}\n\n{MD_INTRO}"
    if not args.no_write:
        write_atomic(OUT_MD, replace_section(old, SECTION, section))
    print()
    print(section)
    if not args.no_write:
        print(f"wrote {OUT_JSONL.relative_to(ROOT)}, {OUT_MD.relative_to(ROOT)} ({SECTION!r})")
    bad_workloads = [r for r in short_rows + worst_rows if r.get("ids_match") is False]
    for r in bad_workloads:
        note(f"IDS MISMATCH {r['kind']} {r['encoding']} {r['contender']} {r.get('input', '')}")
    own = [k for k in mismatches + crashes if k[3].startswith("toknz")]
    own_workloads = [r for r in bad_workloads if r["contender"].startswith("toknz")]
    return 1 if own or own_workloads else 0


if __name__ == "__main__":
    sys.exit(main())
