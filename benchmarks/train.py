#!/usr/bin/env python3
"""BPE training speed and memory of toknz against `tokenizers`, rustbpe, bpeasy,
sentencepiece and gigatoken, end to end, in one run.

    python benchmarks/train.py                      # ~50 MB mixed corpus, vocab 8192,32768,100000
    python benchmarks/train.py --quick              # corpora/ (~4.6 MB), vocab 8192, 3 rounds
    python benchmarks/train.py --corpus-mb 20 --vocab 8192,32768 --rounds 2

What it does:

- Corpus: a ``mixed`` corpus (English prose, code in six languages, fourteen other
  languages) of ``--corpus-mb`` MB built by ``corpora/build.py`` into
  ``~/.cache/toknz/corpora/mixed-<N>mb`` (built first when missing); ``--quick`` uses the
  ``.txt`` files listed in ``corpora/MANIFEST``. All files are read once before timing so
  that every contender finds them in the page cache.
- Contenders, each end to end from the files on disk to a tokenizer written to disk, each
  run in a fresh process, timed by wall clock in this (parent) process, CPU time and peak
  RSS from ``os.wait4`` (the largest process of the child's tree), and the summed RSS of
  the child's whole process tree sampled every 0.1 s:

  - toknz: the CLI, ``toknz train FILES -o OUT.json --vocab-size N --pattern cl100k
    --threads 2 --quiet``; its counting/sorting/merging/writing split comes from the
    ``OUT.json.report.json`` it writes;
  - tokenizers: ``BpeTrainer`` with ``Split(llama3 pattern, isolated) + ByteLevel`` fed by
    ``train_from_iterator`` from a generator that reads the files and yields ~1 MB chunks
    cut before a line that starts with a non-space character, where no cl100k word can
    span the cut, so the words are exactly those toknz counts (``Tokenizer.train(files)``
    feeds lines one by one, which turns ``"\\n\\n"`` into two words ``"\\n"``: that variant
    runs as ``tokenizers (train(files))`` at the smallest vocabulary, for its speed);
  - rustbpe: ``Tokenizer.train_from_iterator(chunks, N, pattern=<tiktoken cl100k>)``, ranks
    written as a ``.tiktoken`` file;
  - bpeasy: ``train_bpe(chunks, <tiktoken cl100k>, max_token_length=2**20, N)``, written
    with ``save_vocab_to_tiktoken``;
  - sentencepiece: ``SentencePieceTrainer.train(model_type="bpe", byte_fallback=True,
    num_threads=2)`` on the files: its own normalization and pre-tokenization (whitespace
    as ``▁``, pieces of at most 16 characters), so it does different work;
  - gigatoken: ``train_bpe(TextFileSource(files), N, [])``: its own fixed split (the GPT-2
    pattern), ranks written as a ``.tiktoken`` file.

  Threads: 2 everywhere (``--threads 2``, ``RAYON_NUM_THREADS=2``, ``num_threads=2``).
- Rounds: for each round, each vocabulary, the contenders run in turn A B C ..., then
  again in the next round; the table gives the median wall time over rounds.
- Merges: every contender whose output is byte-level BPE on the cl100k split is compared
  with `tokenizers`' output of the same round: toknz's ``tokenizer.json`` merges and vocab
  exactly; rustbpe, bpeasy and gigatoken (no merge list written) by their tokens in rank
  order against `tokenizers`' tokens in id order. A toknz mismatch is a bug and is printed
  loudly, with the first differing merge.
- A profile run (in-process, untimed by the table) splits toknz's phases into reading,
  regex splitting, counting, kernel and writing, to show what bounds each.

Outputs: ``docs/bench/train.jsonl`` (one JSON line per run, replaced each time), the
"## Training" section of ``docs/benchmarks.md`` (other sections are kept) and, when
matplotlib is installed, ``docs/bench/train.png``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
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

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "corpora"
DOCS = ROOT / "docs"
OUT_JSONL = DOCS / "bench" / "train.jsonl"
OUT_PNG = DOCS / "bench" / "train.png"
OUT_MD = DOCS / "benchmarks.md"
SECTION = "## Training"
MD_TITLE = "# toknz benchmarks"
MD_INTRO = (
    "Measured by the scripts in `benchmarks/` (each script's docstring says how): ratios taken side by\n"
    "side in one run, on the same input and machine. Each section is written by one script\n"
    "and replaced when that script is re-run.\n"
)

THREADS = 2
CHUNK_CHARS = 1 << 20
DEFAULT_VOCABS = (8192, 32768, 100_000)
CONTENDERS = ("toknz", "tokenizers", "rustbpe", "bpeasy", "sentencepiece", "gigatoken")
EXTRA_FILES_VARIANT = "tokenizers (train(files))"
REFERENCE = "tokenizers"
# Contenders that count exactly the words `tokenizers` counts (same split, same text).
SAME_WORDS = ("toknz", "rustbpe", "bpeasy")
# Contenders whose output is comparable with `tokenizers`' merges, and how.
COMPARE = {
    "toknz": "merges+vocab",
    "rustbpe": "tokens",
    "bpeasy": "tokens",
    "gigatoken": "tokens",
    EXTRA_FILES_VARIANT: "merges+vocab",
}
SPLIT_TEXT = {
    "toknz": "cl100k (`--pattern cl100k`)",
    "tokenizers": "cl100k in Oniguruma form (toknz `PATTERNS['llama3']`)",
    EXTRA_FILES_VARIANT: "cl100k in Oniguruma form, line by line",
    "rustbpe": "cl100k (tiktoken's pattern)",
    "bpeasy": "cl100k (tiktoken's pattern)",
    "sentencepiece": "its own (whitespace → ▁, NFKC)",
    "gigatoken": "its own fixed split (GPT-2 pattern)",
}
THREAD_ENV = {
    "RAYON_NUM_THREADS": str(THREADS),
    "NUMBA_NUM_THREADS": str(THREADS),
    "OMP_NUM_THREADS": str(THREADS),
    "TOKENIZERS_PARALLELISM": "true",
}
VERSION_DISTS = (
    "toknz",
    "tokenizers",
    "rustbpe",
    "bpeasy",
    "sentencepiece",
    "gigatoken",
    "numba",
    "numpy",
    "regex",
)


def note(msg: str) -> None:
    print(f"train.py: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# machine and versions


# --------------------------------------------------------------------------- #
# corpus


def cache_root() -> Path:
    env = os.environ.get("TOKNZ_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "toknz") / "corpora"


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of corpora/MANIFEST: tab-separated, a header line, '#' comment lines."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and ln[0] != "#"]
    if not lines:
        return []
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"), strict=False)) for ln in lines[1:]]


def repo_corpus(notes: list[str]) -> dict[str, Any]:
    """The .txt files shipped in corpora/ (from corpora/MANIFEST, else the folders)."""
    manifest = CORPORA / "MANIFEST"
    files: list[dict[str, Any]] = []
    if manifest.exists():
        for row in read_manifest(manifest):
            path = CORPORA / row.get("path", "")
            if path.is_file():
                files.append({"path": str(path), "category": row.get("category", "")})
            else:
                notes.append(f"corpora/MANIFEST lists {row.get('path')} but the file is missing")
    else:
        for path in sorted(CORPORA.glob("*/*.txt")):
            files.append({"path": str(path), "category": path.parent.name})
    return {"where": "corpora/ (the files listed in corpora/MANIFEST)", "files": files}


def built_corpus(size_mb: float, build_timeout: float, notes: list[str]) -> dict[str, Any]:
    """The ``mixed`` corpus of ``size_mb`` MB from corpora/build.py, built when missing.

    When the build fails or times out, the largest ``mixed`` corpus already built is used
    and the note says so.
    """
    label = f"{size_mb:g}".replace(".", "_")
    outdir = cache_root() / f"mixed-{label}mb"
    if not (outdir / "manifest.json").exists():
        cmd = [sys.executable, str(CORPORA / "build.py"), "--kind", "mixed"]
        cmd += ["--size-mb", f"{size_mb:g}"]
        note(f"building the corpus: {shlex.join(cmd)} (timeout {build_timeout:.0f} s)")
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, timeout=build_timeout)
            ok = proc.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        took = time.perf_counter() - t
        if ok:
            notes.append(f"built the corpus with `{shlex.join(cmd[1:])}` in {took:.0f} s")
        else:
            notes.append(
                f"building a {size_mb:g} MB corpus failed or took over {build_timeout:.0f} s"
            )
    if not (outdir / "manifest.json").exists():
        best = None
        for m in sorted(cache_root().glob("mixed-*mb/manifest.json")):
            data = json.loads(m.read_text(encoding="utf-8"))
            if best is None or data.get("bytes", 0) > best[1].get("bytes", 0):
                best = (m.parent, data)
        if best is None:
            raise SystemExit("train.py: no mixed corpus could be built; try --quick")
        outdir = best[0]
        notes.append(f"using the largest mixed corpus already built instead: {outdir}")
    data = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
    files = [
        {
            "path": str(outdir / f["path"]),
            "category": f.get("category", ""),
            "language": f.get("language", ""),
            "sha256_manifest": f.get("sha256"),
        }
        for f in data.get("files", [])
    ]
    return {"where": str(outdir).replace(str(Path.home()), "~"), "files": files}


def describe_corpus(corpus: dict[str, Any], notes: list[str]) -> None:
    """Fill in sizes and hashes, and read every file once (page cache)."""
    total = 0
    by_cat: dict[str, int] = {}
    for f in corpus["files"]:
        data = Path(f["path"]).read_bytes()
        f["bytes"] = len(data)
        digest = hashlib.sha256(data).hexdigest()
        if f.get("sha256_manifest") and f["sha256_manifest"] != digest:
            notes.append(f"{f['path']}: sha256 differs from its manifest (file changed?)")
        f["sha256"] = digest
        total += len(data)
        by_cat[f.get("category") or "?"] = by_cat.get(f.get("category") or "?", 0) + len(data)
    corpus["bytes"] = total
    corpus["by_category"] = by_cat


_CUT = re.compile(r"\n(?=[!-~]|[^\W\d_])")


def text_chunks(paths: Sequence[str], target: int = CHUNK_CHARS) -> Iterator[str]:
    """Each file's text (strict UTF-8) in chunks of about ``target`` characters.

    A chunk ends with a newline that is followed by a printable ASCII character or a
    letter: no word of the cl100k split can span such a cut (a word holding a newline
    ends there or goes on with whitespace only), so the words of the chunks are the
    words of the whole file. A file with no such place is one chunk.
    """
    for path in paths:
        text = Path(path).read_bytes().decode("utf-8")
        start, n = 0, len(text)
        while start < n:
            m = _CUT.search(text, start + target) if n - start > target else None
            end = m.end() if m else n
            yield text[start:end]
            start = end


# --------------------------------------------------------------------------- #
# the workers: one contender, one vocabulary, a fresh process


def byte_to_char() -> dict[int, str]:
    """GPT-2's byte-level alphabet: byte -> the printable character that stands for it."""
    keep = list(range(ord("!"), ord("~") + 1))
    keep += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


def write_ranks(path: str, ranked: Sequence[tuple[bytes, int]]) -> None:
    """A tiktoken rank file: ``base64(token) rank`` per line, in rank order."""
    with open(path, "wb") as f:
        for tok, rank in sorted(ranked, key=lambda x: x[1]):
            f.write(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n")


def hf_pattern() -> str:
    from toknz.pipeline.pretokenize import PATTERNS

    return PATTERNS["llama3"]


def tiktoken_cl100k() -> str:
    from toknz.pipeline.pretokenize import PATTERNS

    return PATTERNS["cl100k"]


def worker(spec_path: str) -> int:
    """Train one contender as the spec says; report in-process timings as JSON."""
    t_start = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    name, files, vocab, out = spec["contender"], spec["files"], spec["vocab"], spec["out"]
    info: dict[str, Any] = {}
    if name in ("tokenizers", EXTRA_FILES_VARIANT):
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

        t0 = time.perf_counter()
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(spec["hf_pattern"]), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        if name == "tokenizers":
            tok.train_from_iterator(text_chunks(files), trainer)
        else:
            tok.train(files, trainer)
        t1 = time.perf_counter()
        tok.save(out)
    elif name == "rustbpe":
        import rustbpe

        t0 = time.perf_counter()
        rt = rustbpe.Tokenizer()
        rt.train_from_iterator(text_chunks(files), vocab, pattern=spec["cl100k"])
        t1 = time.perf_counter()
        write_ranks(out, rt.get_mergeable_ranks())
        info["pattern"] = rt.get_pattern()
    elif name == "bpeasy":
        import bpeasy

        t0 = time.perf_counter()
        ranks = bpeasy.train_bpe(text_chunks(files), spec["cl100k"], 1 << 20, vocab)
        t1 = time.perf_counter()
        bpeasy.save_vocab_to_tiktoken(ranks, out)
    elif name == "sentencepiece":
        import sentencepiece as spm

        t0 = time.perf_counter()
        spm.SentencePieceTrainer.train(
            input=list(files),
            model_prefix=str(Path(out).with_suffix("")),
            model_type="bpe",
            vocab_size=vocab,
            byte_fallback=True,
            num_threads=THREADS,
            input_sentence_size=0,
            max_sentence_length=spec["max_line_bytes"],
            minloglevel=2,
        )
        t1 = t2 = time.perf_counter()  # it writes the model itself
    elif name == "gigatoken":
        import gigatoken

        t0 = time.perf_counter()
        gvocab, merges = gigatoken.train_bpe(gigatoken.TextFileSource(list(files)), vocab, [])
        t1 = time.perf_counter()
        write_ranks(out, [(tok, i) for i, tok in gvocab.items()])
        info["merges"] = len(merges)
    else:
        raise SystemExit(f"unknown contender {name!r}")
    t2 = time.perf_counter()
    info.update(import_s=t0 - t_start, train_s=t1 - t0, write_s=t2 - t1)
    Path(spec["result"]).write_text(json.dumps(info), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- #
# running one contender in a child process, measured from here


def tree_rss_kb(pid: int) -> int:
    """Summed RSS (KB) of ``pid`` and its descendants (pages shared after fork count twice)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (OSError, ValueError):
            continue
    return total


def numba_cache_state() -> dict[str, int]:
    """Numba's cache index files of toknz_core and their mtimes (a change = a compile)."""
    cache = ROOT / "rust-free-core" / "toknz_core" / "__pycache__"
    try:
        return {p.name: p.stat().st_mtime_ns for p in cache.glob("*.nbi")}
    except OSError:
        return {}


def toknz_command() -> list[str]:
    exe = Path(sys.executable).parent / "toknz"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("toknz")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from toknz.cli import main; sys.exit(main())"]


def run_one(name: str, vocab: int, rnd: int, corpus: dict[str, Any], ctx: dict[str, Any]) -> dict:
    """Train ``name`` once in a fresh process; wall, CPU, RSS, phases, output path."""
    files = [f["path"] for f in corpus["files"]]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    rundir = Path(ctx["tmp"]) / f"{slug}-{vocab}-r{rnd}"
    rundir.mkdir(parents=True, exist_ok=True)
    ext = {"toknz": ".json", "sentencepiece": ".model"}.get(name, ".tiktoken")
    if name in ("tokenizers", EXTRA_FILES_VARIANT):
        ext = ".json"
    out = rundir / f"tokenizer{ext}"
    env = dict(os.environ, **THREAD_ENV)
    if name == "toknz":
        cmd = toknz_command() + ["train", *files, "-o", str(out), "--vocab-size", str(vocab)]
        cmd += ["--pattern", "cl100k", "--threads", str(THREADS), "--quiet"]
    else:
        spec = {
            "contender": name,
            "files": files,
            "vocab": vocab,
            "out": str(out),
            "result": str(rundir / "result.json"),
            "hf_pattern": ctx["hf_pattern"],
            "cl100k": ctx["cl100k"],
            "max_line_bytes": ctx["max_line_bytes"],
        }
        (rundir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        cmd = [sys.executable, __file__, "--worker", str(rundir / "spec.json")]
    row: dict[str, Any] = {"kind": "train", "contender": name, "vocab": vocab, "round": rnd}
    row["threads"] = THREADS
    log = open(rundir / "log.txt", "wb")  # noqa: SIM115
    row["started"] = dt.datetime.now(dt.timezone.utc).strftime("%H:%M:%S")
    cache_before = numba_cache_state() if name == "toknz" else {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    peak_tree = [0]
    done = threading.Event()
    timed_out = [False]

    def sample() -> None:
        while not done.wait(0.1):
            peak_tree[0] = max(peak_tree[0], tree_rss_kb(proc.pid))

    def kill() -> None:
        timed_out[0] = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(ctx["timeout"], kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    timer.cancel()
    done.set()
    sampler.join()
    log.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:  # forked helpers the contender left behind
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    row.update(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        tree_rss_mb=peak_tree[0] / 1024,
        contender_command=shlex.join(cmd)
        .replace(str(ctx["tmp"]), "$TMP")
        .replace(str(ROOT) + "/", "")
        .replace(str(Path.home()), "~"),
    )
    row["cpu_per_wall"] = row["cpu_s"] / wall
    if name == "toknz":
        after = numba_cache_state()
        written = sorted(k for k, v in after.items() if cache_before.get(k) != v)
        if written:
            row["numba_cache_written"] = written
    tail = (rundir / "log.txt").read_bytes()[-2000:].decode("utf-8", "replace").strip()
    if timed_out[0]:
        row["error"] = f"timed out after {ctx['timeout']:.0f} s"
    elif proc.returncode != 0 or not out.exists():
        last = [ln for ln in tail.splitlines() if ln.strip()][-3:]
        row["error"] = f"exit {proc.returncode}: " + " / ".join(last)[-400:]
    if "error" in row:
        note(f"{name} vocab {vocab} round {rnd}: {row['error']}")
        return row
    row["out"] = str(out)
    row["out_bytes"] = out.stat().st_size
    if name == "toknz":
        rep = json.loads(Path(str(out) + ".report.json").read_text(encoding="utf-8"))
        row["phases"] = rep.get("seconds", {})
        row["toknz_report"] = {
            k: rep.get(k)
            for k in (
                "input_bytes",
                "distinct_words",
                "total_words",
                "merges",
                "words_cut",
                "max_word_bytes",
                "peak_rss_mb",
            )
        }
        row["train_s"] = sum(row["phases"].get(k, 0) for k in ("counting", "sorting", "merging"))
        row["write_s"] = row["phases"].get("writing")
    else:
        res = json.loads((rundir / "result.json").read_text(encoding="utf-8"))
        row.update(res)
    return row


# --------------------------------------------------------------------------- #
# reading the outputs and comparing merges


def load_hf_json(path: str) -> dict[str, Any]:
    """Merges as byte pairs and the vocab (token bytes by id) of a tokenizer.json."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    model = data["model"]
    dec = {c: b for b, c in byte_to_char().items()}

    def to_bytes(s: str) -> bytes:
        return bytes(dec[c] for c in s)

    raw = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    merges = [(to_bytes(a), to_bytes(b)) for a, b in raw]
    by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    return {
        "raw_merges": raw,
        "merges": merges,
        "vocab": model["vocab"],
        "tokens": [to_bytes(t) for t, _ in by_id],
    }


def load_ranks(path: str) -> list[bytes]:
    out = []
    for line in Path(path).read_bytes().splitlines():
        if line.strip():
            tok, rank = line.split()
            out.append((int(rank), base64.b64decode(tok)))
    return [t for _, t in sorted(out)]


def show(b: bytes) -> str:
    """A token for people: its text when it is whole UTF-8, else its bytes (b'\\xe3')."""
    try:
        return repr(b.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(b)


def first_diff(a: Sequence[Any], b: Sequence[Any]) -> int | None:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if i is None and len(a) != len(b):
        i = min(len(a), len(b))
    return i


def compare(name: str, row: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """``name``'s output against `tokenizers`' of the same round and vocabulary."""
    how = COMPARE[name]
    if how == "merges+vocab":
        got = load_hf_json(row["out"])
        i = first_diff(got["raw_merges"], ref["raw_merges"])
        res: dict[str, Any] = {
            "how": how,
            "n": len(got["raw_merges"]),
            "n_ref": len(ref["raw_merges"]),
        }
        if i is not None:
            g = got["merges"][i] if i < len(got["merges"]) else None
            w = ref["merges"][i] if i < len(ref["merges"]) else None
            res.update(equal=False, first_diff=i, got=_pair(g), want=_pair(w))
            res.update(got_hex=(g[0] + g[1]).hex() if g else None)
            res.update(want_hex=(w[0] + w[1]).hex() if w else None)
            return res
        if got["vocab"] != ref["vocab"]:
            keys = sorted(
                set(got["vocab"]) | set(ref["vocab"]), key=lambda k: ref["vocab"].get(k, -1)
            )
            bad = [k for k in keys if got["vocab"].get(k) != ref["vocab"].get(k)]
            res.update(
                equal=False, vocab_equal=False, vocab_diffs=len(bad), first_vocab_diff=bad[0]
            )
            return res
        res.update(equal=True, vocab_equal=True)
        return res
    # Rank files: the tokens made by merges, in rank order, against `tokenizers`' tokens
    # in id order (after the 256 bytes, whose ids are numbered differently).
    tokens = load_ranks(row["out"])
    mine, theirs = tokens[256:], ref["tokens"][256:]
    res = {"how": how, "n": len(mine), "n_ref": len(theirs)}
    bytes_ok = sorted(tokens[:256]) == [bytes([b]) for b in range(256)]
    if not bytes_ok:
        res["note"] = "the first 256 ranks are not the 256 single bytes"
    i = first_diff(mine, theirs)
    if i is None:
        res.update(equal=True)
    else:
        res.update(
            equal=False,
            first_diff=i,
            got=show(mine[i]) if i < len(mine) else None,
            want=show(theirs[i]) if i < len(theirs) else None,
            got_hex=mine[i].hex() if i < len(mine) else None,
            want_hex=theirs[i].hex() if i < len(theirs) else None,
            common_tokens=len(set(mine) & set(theirs)),
        )
    return res


def cl100k_word_counts(paths: Sequence[str]) -> dict[bytes, int]:
    """The cl100k words of the files and their counts, with the `regex` module (slow, exact)."""
    import regex

    from toknz.pipeline.pretokenize import PATTERNS

    pat = regex.compile(PATTERNS["cl100k"])
    counts: dict[bytes, int] = {}
    for chunk in text_chunks(paths):
        for w in pat.findall(chunk):
            b = w.encode("utf-8")
            counts[b] = counts.get(b, 0) + 1
    return counts


def pair_counts_after(
    words: dict[bytes, int], merges: Sequence[tuple[bytes, bytes]], n: int
) -> dict[tuple[bytes, bytes], int]:
    """Counts of adjacent token pairs once the first ``n`` merges are applied to ``words``."""
    ranks = {m: r for r, m in enumerate(merges[:n])}
    pairs: dict[tuple[bytes, bytes], int] = {}
    for word, count in words.items():
        toks = [word[i : i + 1] for i in range(len(word))]
        while len(toks) > 1:
            best, at = None, -1
            for k in range(len(toks) - 1):
                r = ranks.get((toks[k], toks[k + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, k
            if best is None:
                break
            toks[at : at + 2] = [toks[at] + toks[at + 1]]
        for k in range(len(toks) - 1):
            key = (toks[k], toks[k + 1])
            pairs[key] = pairs.get(key, 0) + count
    return pairs


def explain_ties(
    rows: list[dict[str, Any]], ref_merges: Sequence[tuple[bytes, bytes]], words: dict[bytes, int]
) -> None:
    """At each first difference, the counts of `tokenizers`' pair and the contender's.

    Only for contenders that count the same words (toknz, rustbpe, bpeasy). Equal counts
    mean the two differ only in how they break ties between pairs of equal count.
    """
    cache: dict[int, dict[tuple[bytes, bytes], int]] = {}
    for r in rows:
        c = r.get("merges_check") or {}
        if r["contender"] not in SAME_WORDS or "first_diff" not in c or not c.get("got_hex"):
            continue
        i = c["first_diff"]
        if i >= len(ref_merges):
            continue
        if i not in cache:
            cache[i] = pair_counts_after(words, ref_merges, i)
        pairs = cache[i]
        want = ref_merges[i]
        got_tok = bytes.fromhex(c["got_hex"])
        got = [(n, pr) for pr, n in pairs.items() if pr[0] + pr[1] == got_tok]
        n_want = pairs.get(want, 0)
        c["count_want"] = n_want
        c["count_max"] = max(pairs.values(), default=0)
        if not got:
            c["tie"] = None
            c["tie_note"] = (
                f"its token is no adjacent pair there (`tokenizers`' pair: count {n_want:,})"
            )
            continue
        n_got, pr = max(got)
        c["count_got"] = n_got
        c["tie"] = n_got == n_want
        c["tie_note"] = (
            f"a tie: both pairs occur {n_want:,} times there, the most of any pair"
            if n_got == n_want == c["count_max"]
            else f"not a tie: {_pair(pr)} occurs {n_got:,} times, `tokenizers`' pair {n_want:,}"
        )


def _pair(p: tuple[bytes, bytes] | None) -> str | None:
    return None if p is None else f"({show(p[0])}, {show(p[1])})"


def output_stats(name: str, row: dict[str, Any]) -> dict[str, Any]:
    """Vocabulary actually produced (and, for sentencepiece, what it holds)."""
    try:
        if name in ("toknz", "tokenizers", EXTRA_FILES_VARIANT):
            d = load_hf_json(row["out"])
            return {"vocab_out": len(d["vocab"]), "merges_out": len(d["merges"])}
        if name == "sentencepiece":
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=row["out"])
            n = sp.get_piece_size()
            n_byte = sum(sp.is_byte(i) for i in range(n))
            n_ctrl = sum(sp.is_control(i) or sp.is_unknown(i) for i in range(n))
            pieces = [sp.id_to_piece(i) for i in range(n)]
            singles = sum(
                1
                for i, p in enumerate(pieces)
                if not sp.is_byte(i)
                and not sp.is_control(i)
                and not sp.is_unknown(i)
                and len(p) == 1
            )
            return {
                "vocab_out": n,
                "merges_out": n - n_byte - n_ctrl - singles,
                "spm_bytes": n_byte,
                "spm_control": n_ctrl,
                "spm_chars": singles,
            }
        toks = load_ranks(row["out"])
        return {"vocab_out": len(toks), "merges_out": len(toks) - 256}
    except Exception as exc:  # a broken output file is reported, not fatal
        return {"vocab_out": None, "output_error": f"{type(exc).__name__}: {exc}"[:200]}


# --------------------------------------------------------------------------- #
# profile of toknz's phases (in process, one core)


def profile_worker(spec_path: str) -> int:
    """toknz's phases at 1 and 2 threads, a cProfile of the 1-thread run, scanner speed.

    Only toknz's public training API is used (``toknz.train.train``, ``save_trained``),
    so the profile follows whatever toknz does inside; the compiled scanner is timed
    when ``toknz.pipeline.fast_pretokenize`` has it.
    """
    import cProfile
    import pstats

    t_import = time.perf_counter()
    from toknz.train import TrainReport, save_trained, train

    import_s = time.perf_counter() - t_import
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    files, vocab = spec["files"], spec["vocab"]
    info: dict[str, Any] = {"vocab": vocab, "runs": {}}
    # Warm up first (imports, Numba's cache, lazy tables) on the smallest file, untimed.
    smallest = min(files, key=lambda f: Path(f).stat().st_size)
    warm: dict[str, float] = {"import toknz.train": import_s}
    for threads in (1, THREADS):
        t = time.perf_counter()
        train([smallest], vocab_size=300, pattern="cl100k", threads=threads)
        warm[f"first tiny training, {threads} thread(s)"] = time.perf_counter() - t
    info["warmup_s"] = warm
    info["warmup_bytes"] = Path(smallest).stat().st_size
    prof = cProfile.Profile()
    for threads in (1, THREADS):
        rep = TrainReport()
        if threads == 1:
            prof.enable()
        t = time.perf_counter()
        tok = train(files, vocab_size=vocab, pattern="cl100k", threads=threads, report=rep)
        save_trained(tok, spec["out"], report=rep)
        wall = time.perf_counter() - t
        if threads == 1:
            prof.disable()
        info["runs"][str(threads)] = {"seconds": rep.seconds, "wall_s": wall}
        info["distinct_words"] = rep.distinct_words
        info["total_words"] = rep.total_words
        info["merges"] = rep.merges
        info["words_cut"] = getattr(rep, "words_cut", None)
    stats = pstats.Stats(prof)
    total = getattr(stats, "total_tt", 0.0) or 1.0
    top = []
    for (path, line, func), (_cc, nc, tt, ct, _callers) in sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: -kv[1][2],
    )[:12]:
        where = func if path == "~" else f"{func} ({_short_path(path)}:{line})"
        top.append({"function": where, "calls": nc, "tottime_s": tt, "cumtime_s": ct})
    info["top"] = top
    info["profiled_s"] = total
    # The split alone: the compiled scanner (when there is one) and `regex`, same text.
    data = [Path(f).read_bytes() for f in files]
    n_bytes = sum(map(len, data))
    info["bytes"] = n_bytes
    try:
        from toknz.pipeline.fast_pretokenize import split_bytes
        from toknz.pipeline.pretokenize import PATTERNS

        t = time.perf_counter()
        for d in data:
            split_bytes(PATTERNS["cl100k"], d, validate=False)
        info["scanner_mb_per_s"] = n_bytes / (time.perf_counter() - t) / 1e6
    except Exception as exc:  # toknz without a compiled scanner: regex only
        info["scanner_error"] = f"{type(exc).__name__}: {exc}"[:200]
    import regex

    from toknz.pipeline.pretokenize import PATTERNS as PATS

    pat = regex.compile(PATS["cl100k"])
    sample = b"".join(data)[:5_000_000].decode("utf-8", "ignore")
    t = time.perf_counter()
    pat.findall(sample)
    info["regex_mb_per_s"] = len(sample.encode("utf-8")) / (time.perf_counter() - t) / 1e6
    Path(spec["result"]).write_text(json.dumps(info), encoding="utf-8")
    return 0


def _short_path(path: str) -> str:
    """A source path from its package folder on (site-packages/x/y.py -> x/y.py)."""
    parts = Path(path).parts
    for anchor in ("site-packages", "toknz", "toknz_core"):
        if anchor in parts:
            k = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[k + (anchor == "site-packages") :])
    return Path(path).name


def run_profile(corpus: dict[str, Any], vocab: int, ctx: dict[str, Any]) -> dict[str, Any]:
    rundir = Path(ctx["tmp"]) / f"profile-{vocab}"
    rundir.mkdir(parents=True, exist_ok=True)
    spec = {
        "files": [f["path"] for f in corpus["files"]],
        "vocab": vocab,
        "out": str(rundir / "tokenizer.json"),
        "result": str(rundir / "result.json"),
    }
    (rundir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ, **THREAD_ENV)
    proc = subprocess.run(
        [sys.executable, __file__, "--profile-worker", str(rundir / "spec.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=ctx["timeout"],
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-400:]}
    return json.loads((rundir / "result.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- #
# summary, Markdown, plot


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    toknz_wall = {
        (r["vocab"], r["round"]): r["wall_s"]
        for r in rows
        if r["contender"] == "toknz" and "error" not in r and not r.get("discarded")
    }
    rows = [r for r in rows if not r.get("discarded")]
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["contender"], r["vocab"]), []).append(r)
    out = {}
    for key, rs in by.items():
        ok = [r for r in rs if "error" not in r]
        ratios = [
            toknz_wall[(r["vocab"], r["round"])] / r["wall_s"]
            for r in ok
            if (r["vocab"], r["round"]) in toknz_wall
        ]
        phases: dict[str, float] = {}
        for k in ("counting", "sorting", "merging", "writing"):
            vals = [r["phases"][k] for r in ok if k in r.get("phases", {})]
            if vals:
                phases[k] = med(vals)
        checks = [r["merges_check"] for r in ok if "merges_check" in r]
        out[key] = {
            "runs": len(rs),
            "ok": len(ok),
            "errors": [r["error"] for r in rs if "error" in r],
            "wall_s": med([r["wall_s"] for r in ok]),
            "walls": [round(r["wall_s"], 2) for r in ok],
            "train_s": med([r["train_s"] for r in ok if r.get("train_s") is not None]),
            "cpu_per_wall": med([r["cpu_per_wall"] for r in ok]),
            "peak_rss_mb": max([r["peak_rss_mb"] for r in ok], default=float("nan")),
            "tree_rss_mb": max([r["tree_rss_mb"] for r in ok], default=float("nan")),
            "toknz_ratio": med(ratios),
            "phases": phases,
            "check": checks[-1] if checks else None,
            "checks_equal": [c.get("equal") for c in checks],
            "vocab_out": ok[-1].get("vocab_out") if ok else None,
            "merges_out": ok[-1].get("merges_out") if ok else None,
            "extra": {
                k: ok[-1][k]
                for k in ("spm_bytes", "spm_chars", "spm_control")
                if ok and k in ok[-1]
            },
        }
    return out


def fmt_s(x: float | None) -> str:
    if x is None or x != x:
        return "—"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def fmt_check(name: str, s: dict[str, Any]) -> str:
    if name == REFERENCE:
        return "(reference)"
    if name not in COMPARE:
        return "not comparable (own pre-tokenization and model)"
    c = s["check"]
    if c is None:
        return "not checked (no `tokenizers` output this round)"
    how = "merges and vocab" if c["how"] == "merges+vocab" else "tokens in rank order"
    if c.get("equal"):
        n = len(s["checks_equal"])
        return f"**yes**: {how} identical ({c['n']:,} merges{', all ' + str(n) + ' rounds' if n > 1 else ''})"
    if "first_diff" in c:
        what = f"#{c['first_diff']:,}: {c['got']} vs {c['want']}"
        tail = " (GPT-2 split: not expected to match)" if name == "gigatoken" else ""
        loud = "**MISMATCH**" if name == "toknz" else "no"
        tie = f"; {c['tie_note']}" if c.get("tie_note") else ""
        kind = "merge" if c["how"] == "merges+vocab" else "token"
        return f"{loud}, first differing {kind} {what}{tie}{tail}".replace("|", "\\|")
    return f"**MISMATCH**: merges equal, vocab differs in {c.get('vocab_diffs')} entries (first {c.get('first_vocab_diff')!r})"


def markdown(
    header: dict[str, Any],
    corpus: dict[str, Any],
    summary: dict[tuple[str, int], dict[str, Any]],
    order: list[str],
    vocabs: list[int],
    profile: dict[str, Any] | None,
    notes: list[str],
) -> str:
    m = header["machine"]
    rounds = header["rounds"]
    lines = [
        SECTION,
        "",
        "_Written by `benchmarks/train.py`; re-running it replaces this section only._",
        "",
    ]
    if header["quick"]:
        lines += ["**`--quick` smoke run: small corpus, not numbers to quote.**", ""]
    cats = ", ".join(f"{c} {b / 1e6:.1f} MB" for c, b in corpus["by_category"].items())
    lines += [
        f"- command: `{header['command']}` ({header['date']}, {header['elapsed_s'] / 60:.1f} min)",
        f"- machine: {m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['mem_gb']} GB RAM, {m['os']}, Python {m['python']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in header["versions"].items()),
        f"- repo: {header['git']}",
        f"- load average (1, 5, 15 min) at start: {header['load_start']}, at end: "
        f"{header['load_end']}; cores free for {THREADS} busy threads (CPU s / wall s of a "
        f"GIL-free probe, {THREADS} on an idle machine): {header['free_cores_start']:.2f} at "
        f"start, {header['free_cores_end']:.2f} at end. The machine is shared: other "
        "processes compete for its cores, which slows every contender; alternating them "
        "spreads that over all",
        f"- corpus: {corpus['bytes'] / 1e6:.1f} MB (10^6 bytes of UTF-8) in "
        f"{len(corpus['files'])} files from `{corpus['where']}` ({cats})",
        f"- wall s: {'median of ' + str(rounds) + ' runs' if rounds > 1 else '1 run'} per "
        "contender and vocabulary, each a fresh process from files on disk to the tokenizer "
        f"written to disk (interpreter start-up and imports included); contenders alternate "
        f"({' '.join(order)}) within each round. `toknz ÷ it`: toknz's wall time over the "
        "contender's in the same round (median; below 1: toknz is faster)",
        "- counting / merging s: the phases toknz reports (`OUT.report.json`; merging "
        "includes building the tokenizer, writing is separate). `train call s`: for the "
        "peers, the library's training call measured inside the process (no import, no "
        "writing); for toknz, the sum of the phases it reports before writing",
        "- peak RSS: the largest single process of the contender's tree (`os.wait4`); "
        "`all procs`: the summed RSS of the whole process tree, sampled every 0.1 s (it "
        "differs only for a contender that forks worker processes; pages shared after "
        "fork count twice)",
        f"- threads: {THREADS} for every contender (toknz `--threads {THREADS}` counting "
        f"workers, then its single-threaded Numba merge kernel; "
        f"`RAYON_NUM_THREADS={THREADS}` for the Rust trainers; sentencepiece "
        f"`num_threads={THREADS}`). `cpu/wall`: CPU time over wall time of the tree, the "
        "cores actually used",
        "- vocabulary sizes: N counts the 256 byte tokens for every byte-level trainer "
        "(toknz `--vocab-size N`; tokenizers `vocab_size=N` with the 256-character "
        "`initial_alphabet`; rustbpe `vocab_size=N` = 256 + merges; bpeasy and gigatoken "
        "return N tokens), so each makes N − 256 merges. sentencepiece `vocab_size=N` "
        "counts `<unk>`, `<s>`, `</s>`, the 256 byte-fallback pieces and every character it "
        "keeps (character coverage 0.9995), so it makes fewer merges; `vocab out` shows "
        "what each wrote",
        "- same words: toknz reads the files itself; `tokenizers`, rustbpe and bpeasy get "
        "the files' text from one Python generator in ~1 MB chunks cut only where no "
        "cl100k word can span the cut, so all four count the same words. sentencepiece "
        "reads the files itself (one sentence per line; `max_sentence_length` raised to the "
        "longest line so that no line is dropped) and gigatoken reads them with its "
        "`TextFileSource` (one document per file)",
        "- merges: compared with `tokenizers`' of the same round and vocabulary: toknz's "
        "`tokenizer.json` merge list and vocab exactly; rustbpe, bpeasy and gigatoken write "
        "no merge list, so their tokens in rank order are compared with `tokenizers`' "
        "tokens in id order (the 256 bytes left out: they are numbered differently). The "
        "index is the merge number (0 = first merge)",
        "",
    ]
    head = [
        "contender",
        "split",
        "vocab",
        "wall s",
        "toknz ÷ it",
        "counting s",
        "merging s",
        "train call s",
        "peak RSS MB",
        "all procs MB",
        "threads",
        "cpu/wall",
        "vocab out",
        "merges equal to `tokenizers`? (first diff)",
    ]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * 11 + ["---"]) + "|")
    for vocab in vocabs:
        for name in order:
            s = summary.get((name, vocab))
            if s is None:
                continue
            label = "**toknz**" if name == "toknz" else name
            if not s["ok"]:
                err = (s["errors"] or ["?"])[0].replace("|", "\\|")
                lines.append(
                    f"| {label} | {SPLIT_TEXT[name]} | {vocab:,} | **failed** | | | | | | | "
                    f"{THREADS} | | | {err} |"
                )
                continue
            wall = fmt_s(s["wall_s"])
            if s["errors"]:
                wall += f" ({s['ok']} of {s['runs']} runs; {s['errors'][0]})"
            ph = s["phases"]
            vout = f"{s['vocab_out']:,}" if s["vocab_out"] else "—"
            if s["extra"]:
                e = s["extra"]
                vout += (
                    f" ({s['merges_out']:,} merged, {e['spm_chars']:,} chars, "
                    f"{e['spm_bytes']} bytes, {e['spm_control']} control)"
                )
            ratio = (
                "1"
                if name == "toknz"
                else ("—" if s["toknz_ratio"] != s["toknz_ratio"] else f"{s['toknz_ratio']:.2f}")
            )
            cells = [
                label,
                SPLIT_TEXT[name],
                f"{vocab:,}",
                wall,
                ratio,
                fmt_s(ph.get("counting")),
                fmt_s(ph.get("merging")),
                fmt_s(s["train_s"]),
                f"{s['peak_rss_mb']:.0f}",
                f"{s['tree_rss_mb']:.0f}",
                str(THREADS),
                f"{s['cpu_per_wall']:.2f}",
                vout,
                fmt_check(name, s),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if rounds > 1:
        lines += ["Wall times of every run (s), in round order:", ""]
        for vocab in vocabs:
            parts = [f"{n} {summary[(n, vocab)]['walls']}" for n in order if (n, vocab) in summary]
            lines.append(f"- {vocab:,}: " + "; ".join(parts))
        lines.append("")
    if profile:
        lines += profile_markdown(profile, summary)
    if notes:
        lines += ["### Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def profile_markdown(profile: dict[str, Any], summary: dict) -> list[str]:
    title = "### What bounds toknz's phases"
    if "error" in profile:
        return [title, "", f"Profile run failed: `{profile['error']}`", ""]
    runs = profile["runs"]
    mb = profile["bytes"] / 1e6
    lines = [
        title,
        "",
        f"toknz's training API (`toknz.train.train` + `save_trained`) in one process on the "
        f"same corpus, vocabulary {profile['vocab']:,} ({profile['total_words']:,} words, "
        f"{profile['distinct_words']:,} distinct, {profile['merges']:,} merges"
        + (f", {profile['words_cut']:,} words cut" if profile.get("words_cut") else "")
        + "), seconds from its report:",
        "",
        "| threads | counting s | counting MB/s | merging s | writing s | wall s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for th, r in runs.items():
        sec = r["seconds"]
        cnt = sec.get("counting")
        lines.append(
            f"| {th} | {fmt_s(cnt)} | {mb / cnt:.1f} | {fmt_s(sec.get('merging'))} | "
            f"{fmt_s(sec.get('writing'))} | {fmt_s(r['wall_s'])} |"
            if cnt
            else f"| {th} | {sec} | | | | {fmt_s(r['wall_s'])} |"
        )
    lines.append("")
    split = [f"the `regex` module's `findall` {profile['regex_mb_per_s']:.1f} MB/s (first 5 MB)"]
    if "scanner_mb_per_s" in profile:
        split.insert(0, f"toknz's compiled scanner {profile['scanner_mb_per_s']:.0f} MB/s")
    lines += [
        "The cl100k split alone, one thread, same text: " + ", ".join(split) + ".",
        "",
        "Functions of the 1-thread run by own time (cProfile of the main thread: a Numba "
        "kernel's time is charged to the Python function that calls it; the merge kernel "
        "runs in a helper thread, so the main thread's wait for it shows as a lock's "
        "`acquire` or a thread's `join`):",
        "",
        "| function | calls | own s | share | cumulative s |",
        "|---|---:|---:|---:|---:|",
    ]
    total = profile["profiled_s"] or 1.0
    for f in profile["top"][:10]:
        lines.append(
            f"| `{f['function']}` | {f['calls']:,} | {fmt_s(f['tottime_s'])} | "
            f"{100 * f['tottime_s'] / total:.0f} % | {fmt_s(f['cumtime_s'])} |"
        )
    lines.append("")
    warm = profile.get("warmup_s") or {}
    if warm:
        parts = ", ".join(f"{k} {fmt_s(v)} s" for k, v in warm.items())
        lines += [
            f"Start-up in a fresh process, before the runs above (untimed there): {parts} "
            f"(a {profile['warmup_bytes'] / 1e3:.0f} KB file, vocabulary 300: mostly loading "
            "the Numba kernels from their on-disk cache). The CLI runs in the main table "
            "pay this inside their counting and merging phases.",
            "",
        ]
    one, two = runs.get("1", {}).get("seconds", {}), runs.get(str(THREADS), {}).get("seconds", {})
    if one.get("counting") and two.get("counting"):
        lines += [
            f"Counting ran at {mb / one['counting']:.1f} MB/s on one thread and "
            f"{mb / two['counting']:.1f} MB/s on {THREADS} "
            f"({one['counting'] / two['counting']:.2f}×); merging took "
            f"{fmt_s(one.get('merging'))} s and {fmt_s(two.get('merging'))} s (its kernel is "
            "single-threaded, so the second thread does not help it).",
            "",
        ]
    return lines


def plot(summary: dict, order: list[str], vocabs: list[int]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / max(1, len(order))
    for j, name in enumerate(order):
        xs = [i + j * width for i in range(len(vocabs))]
        walls = [summary.get((name, v), {}).get("wall_s", 0) or 0 for v in vocabs]
        rss = [summary.get((name, v), {}).get("tree_rss_mb", 0) or 0 for v in vocabs]
        axes[0].bar(xs, [w if w == w else 0 for w in walls], width, label=name)
        axes[1].bar(xs, [r if r == r else 0 for r in rss], width, label=name)
    for ax, title in zip(axes, ("wall s (end to end)", "peak RSS MB (all processes)"), strict=True):
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(vocabs))], [f"{v:,}" for v in vocabs])
        ax.set_xlabel("vocabulary size")
        ax.set_title(title)
    axes[0].set_yscale("log")
    axes[0].set_ylim(bottom=1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(7, len(order)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    OUT_PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT_PNG, dpi=110)
    plt.close(fig)
    return str(OUT_PNG.relative_to(ROOT))


# --------------------------------------------------------------------------- #
# main


def warm_toknz(corpus: dict[str, Any], ctx: dict[str, Any]) -> float:
    """One small untimed toknz training, so that Numba's on-disk cache is filled."""
    smallest = min(corpus["files"], key=lambda f: f["bytes"])["path"]
    out = Path(ctx["tmp"]) / "warmup.json"
    cmd = toknz_command() + ["train", smallest, "-o", str(out), "--vocab-size", "300"]
    cmd += ["--threads", "1", "--quiet"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        note(f"toknz warm-up failed: {proc.stderr.strip()[-300:]}")
    return time.perf_counter() - t


def kernel_sources_state() -> tuple[tuple[str, int, int], ...]:
    """(name, mtime, size) of toknz_core's sources: Numba's cache is keyed on them."""
    core = ROOT / "rust-free-core" / "toknz_core"
    return tuple(
        (p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(core.glob("*.py"))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/train.py",
        description="BPE training of toknz vs tokenizers, rustbpe, bpeasy, sentencepiece and "
        "gigatoken: wall time, peak RSS and merge equality, end to end.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: corpora/ (~4.6 MB), vocab 8192, 3 rounds")  # fmt: skip
    parser.add_argument("--corpus-mb", type=float, default=50.0,
                        help="size of the mixed corpus built by corpora/build.py (default 50)")  # fmt: skip
    parser.add_argument("--vocab", default=None,
                        help="comma-separated vocabulary sizes (default 8192,32768,100000; quick 8192)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 1, quick 3)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds one training run may take (default 900, quick 300)")  # fmt: skip
    parser.add_argument("--build-timeout", type=float, default=1800.0,
                        help="seconds the corpus build may take (default 1800)")  # fmt: skip
    parser.add_argument("--no-files-variant", action="store_true",
                        help="skip `tokenizers` trained with Tokenizer.train(files)")  # fmt: skip
    parser.add_argument("--no-profile", action="store_true", help="skip toknz's phase profile")
    parser.add_argument("--no-ties", action="store_true",
                        help="skip counting the pairs at the first differing merge")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the trained files (printed)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.profile_worker:
        return profile_worker(args.profile_worker)
    vocabs = (
        [int(v) for v in args.vocab.split(",") if v]
        if args.vocab
        else ([8192] if args.quick else list(DEFAULT_VOCABS))
    )
    if any(v < 257 for v in vocabs):
        parser.error("--vocab sizes must be above 256")
    rounds = args.rounds or (3 if args.quick else 1)
    timeout = args.timeout or (300.0 if args.quick else 900.0)
    order = [c for c in args.contenders.split(",") if c]
    unknown = [c for c in order if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {unknown}; choose from {CONTENDERS}")

    t_start = time.perf_counter()
    header: dict[str, Any] = {
        "command": "python " + shlex.join(sys.argv if argv is None else [__file__, *argv]),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "versions": library_versions(VERSION_DISTS),
        "git": git_state(),
        "quick": args.quick,
        "rounds": rounds,
        "vocabs": vocabs,
        "load_start": load_average(),
        "free_cores_start": free_cores(),
    }
    header["command"] = header["command"].replace(str(ROOT) + "/", "")
    m = header["machine"]
    print(f"command : {header['command']}")
    print(
        f"machine : {m['cpu_model']}, {m['cores']} cores, {m['mem_gb']} GB, load {header['load_start']}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in header["versions"].items()))

    notes: list[str] = []
    corpus = (
        repo_corpus(notes)
        if args.quick
        else built_corpus(args.corpus_mb, args.build_timeout, notes)
    )
    describe_corpus(corpus, notes)
    if not corpus["files"]:
        raise SystemExit("train.py: no corpus files")
    if not args.quick and abs(corpus["bytes"] / 1e6 - args.corpus_mb) > 0.1 * args.corpus_mb:
        notes.append(
            f"asked for {args.corpus_mb:g} MB, the corpus holds {corpus['bytes'] / 1e6:.1f} MB"
        )
    print(
        f"corpus  : {corpus['bytes'] / 1e6:.1f} MB in {len(corpus['files'])} files from {corpus['where']}"
    )
    max_line = max(
        max((len(ln) for ln in Path(f["path"]).read_bytes().split(b"\n")), default=0)
        for f in corpus["files"]
    )
    tmp = Path(tempfile.mkdtemp(prefix="toknz-bench-train-"))
    ctx = {
        "tmp": tmp,
        "timeout": timeout,
        "hf_pattern": hf_pattern(),
        "cl100k": tiktoken_cl100k(),
        "max_line_bytes": max(4192, max_line + 16),
    }
    kernel_state = kernel_sources_state()
    if "toknz" in order:
        warm = warm_toknz(corpus, ctx)
        note(f"toknz warm-up (Numba cache) {warm:.1f} s")
        if warm > 20:
            notes.append(
                f"the untimed toknz warm-up took {warm:.0f} s: Numba compiled the kernels "
                "(its on-disk cache was cold); the timed runs load them from the cache"
            )

    rows: list[dict[str, Any]] = []
    files_variant = not args.no_files_variant and "tokenizers" in order
    for rnd in range(rounds):
        for vocab in vocabs:
            names = list(order)
            if files_variant and vocab == min(vocabs) and rnd == 0:
                names.append(EXTRA_FILES_VARIANT)
            got: dict[str, dict[str, Any]] = {}
            for name in names:
                if name == "toknz" and kernel_sources_state() != kernel_state:
                    # Someone edited toknz_core meanwhile: Numba would recompile inside
                    # the timed run. Warm it again first, and say so.
                    kernel_state = kernel_sources_state()
                    warm = warm_toknz(corpus, ctx)
                    notes.append(
                        f"toknz_core's sources changed during the run (round {rnd}, vocab "
                        f"{vocab:,}): toknz was warmed up again ({warm:.0f} s) before its "
                        "timed run, which measures the edited code"
                    )
                row = run_one(name, vocab, rnd, corpus, ctx)
                if row.get("numba_cache_written") and "error" not in row:
                    # Numba compiled inside the timed run (its cache was stale: the
                    # kernels were edited, or another process rewrote the cache). Keep
                    # the row in the JSON lines as discarded and measure again, warm.
                    row["discarded"] = "Numba compiled during the run"
                    rows.append(row)
                    note(
                        f"toknz vocab {vocab} round {rnd}: Numba wrote its cache during the "
                        f"run ({', '.join(row['numba_cache_written'][:3])}...), "
                        f"{row['wall_s']:.1f} s discarded; running it again"
                    )
                    notes.append(
                        f"toknz, vocab {vocab:,}, round {rnd}: Numba compiled inside the timed "
                        f"run ({row['wall_s']:.0f} s, merging {row['phases'].get('merging', 0):.0f} s; "
                        "the kernel sources were edited meanwhile or another process rewrote "
                        "the cache); that run was discarded and measured again right after"
                    )
                    row = run_one(name, vocab, rnd, corpus, ctx)
                rows.append(row)
                got[name] = row
                if "error" not in row:
                    row.update(output_stats(name, row))
                    extra = (
                        f", counting {row['phases'].get('counting', 0):.1f} s, merging {row['phases'].get('merging', 0):.1f} s"
                        if "phases" in row
                        else ""
                    )
                    note(
                        f"round {rnd} vocab {vocab:>6} {name:<14} {row['wall_s']:7.1f} s wall"
                        f"{extra}, peak RSS {row['peak_rss_mb']:.0f} MB "
                        f"(all procs {row['tree_rss_mb']:.0f} MB), cpu/wall {row['cpu_per_wall']:.2f}"
                    )
            ref_row = got.get(REFERENCE)
            if ref_row and "error" not in ref_row:
                ref = load_hf_json(ref_row["out"])
                for name, row in got.items():
                    if name in COMPARE and "error" not in row:
                        try:
                            row["merges_check"] = compare(name, row, ref)
                        except Exception as exc:  # a broken output is a finding
                            row["merges_check"] = {
                                "how": COMPARE[name],
                                "equal": False,
                                "error": f"{type(exc).__name__}: {exc}"[:300],
                            }
                        c = row["merges_check"]
                        if name == "toknz" and not c.get("equal"):
                            note("!" * 70)
                            note(
                                f"TOKNZ MERGES DIFFER from tokenizers (vocab {vocab}, round {rnd}): {json.dumps(c, ensure_ascii=False)}"
                            )
                            note(
                                f"reproduce: {row['contender_command']}  vs  the tokenizers worker in {tmp}"
                            )
                            note("!" * 70)
                        elif not c.get("equal"):
                            note(
                                f"{name} vocab {vocab}: differs from tokenizers at {c.get('first_diff')}: {c.get('got')} vs {c.get('want')}"
                            )
    profile = None
    if not args.no_profile and "toknz" in order:
        note(f"profiling toknz's phases in process at vocab {max(vocabs)}")
        try:
            profile = run_profile(corpus, max(vocabs), ctx)
        except subprocess.TimeoutExpired:
            profile = {"error": f"timed out after {timeout:.0f} s"}
    ref_rows = [r for r in rows if r["contender"] == REFERENCE and "error" not in r]
    if (
        not args.no_ties
        and ref_rows
        and any(
            "first_diff" in (r.get("merges_check") or {}) and r["contender"] in SAME_WORDS
            for r in rows
        )
    ):
        note("counting pair frequencies at the first differences (regex, Python)")
        t = time.perf_counter()
        biggest = max(ref_rows, key=lambda r: r["vocab"])
        ref_merges = load_hf_json(biggest["out"])["merges"]
        explain_ties(rows, ref_merges, cl100k_word_counts([f["path"] for f in corpus["files"]]))
        note(f"tie check took {time.perf_counter() - t:.0f} s")
    header["elapsed_s"] = time.perf_counter() - t_start
    header["load_end"] = load_average()
    header["free_cores_end"] = free_cores()
    if min(header["free_cores_start"], header["free_cores_end"]) < 0.8 * THREADS:
        notes.append(
            f"{THREADS} busy threads got only {header['free_cores_start']:.2f} (start) / "
            f"{header['free_cores_end']:.2f} (end) cores: other processes were using the "
            "machine, so every wall time here is longer than on an idle machine"
        )
    if files_variant:
        notes.append(
            "`tokenizers (train(files))` (smallest vocabulary, first round only) is "
            "`Tokenizer.train(files)`: it feeds the files line by line, so a blank line "
            'becomes its own `"\\n"` word instead of part of `"\\n\\n"`; its words '
            "differ from the other contenders' and a difference in its merges is expected"
        )

    cut = [r for r in rows if (r.get("toknz_report") or {}).get("words_cut")]
    if cut:
        r = cut[0]["toknz_report"]
        notes.append(
            f"toknz cut {r['words_cut']:,} words longer than {r['max_word_bytes']:,} bytes "
            "(`--max-word-bytes`) into pieces; `tokenizers` keeps such words whole, so its "
            "merges may differ from toknz's because of them"
        )
    summary = summarize(rows)
    row_order = order + ([EXTRA_FILES_VARIANT] if files_variant else [])

    run = {
        "run": header["date"],
        "command": header["command"],
        "quick": args.quick,
        "cpu_model": m["cpu_model"],
        "cores": m["cores"],
        "versions": header["versions"],
        "load_average": [header["load_start"], header["load_end"]],
        "free_cores": [header["free_cores_start"], header["free_cores_end"]],
        "corpus_bytes": corpus["bytes"],
    }
    out_lines = []
    for r in rows:
        r = {k: v for k, v in r.items() if k != "out"}
        out_lines.append({**run, **r})
    out_lines.append({"kind": "corpus", **run, "where": corpus["where"], "files": corpus["files"]})
    if profile:
        out_lines.append({"kind": "profile", **run, **profile})
    write_atomic(OUT_JSONL, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in out_lines))

    png = plot(summary, row_order, vocabs)
    if png is None:
        notes.append("no plot: matplotlib is not installed (optional)")
    section = markdown(header, corpus, summary, row_order, vocabs, profile, notes)
    if png:
        section += f"\n![training wall time and memory]({Path(png).relative_to('docs')})\n"
    old = OUT_MD.read_text(encoding="utf-8") if OUT_MD.exists() else f"{MD_TITLE}\n\n{MD_INTRO}"
    write_atomic(OUT_MD, replace_section(old, SECTION, section))
    print()
    print(section)
    print(f"wrote {OUT_JSONL.relative_to(ROOT)}, {OUT_MD.relative_to(ROOT)} ({SECTION!r})")
    bad = [
        r
        for r in rows
        if r["contender"] == "toknz"
        and ("error" in r or not r.get("merges_check", {}).get("equal", True))
    ]
    if args.keep or bad:
        print(f"trained files kept in {tmp} (each run's folder holds its spec, log and output)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
