#!/usr/bin/env python3
"""Train rustbpe on every ``*.txt`` of a folder, streaming ~1 MB text chunks; print a JSON summary.

    /usr/bin/time -v python benchmarks/rustbpe_folder.py FOLDER 32768 --buffer-size 64

The peer run of docs/training-at-scale.md. Files are read in name order, 1 MiB at a
time, and cut where no cl100k word can span the cut (a newline followed by printable
ASCII or a letter, as ``benchmarks/train.py`` cuts them), so rustbpe counts the words
``toknz train --pattern cl100k`` counts. ``--buffer-size`` is rustbpe's count of chunks
kept waiting (its default, 8192, would hold a 2 GB corpus of 1 MB chunks in memory).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import time
from collections.abc import Iterator
from pathlib import Path

from toknz.pipeline.pretokenize import PATTERNS

ROOT = Path(__file__).resolve().parent.parent

CUT = re.compile(r"\n(?=[!-~]|[^\W\d_])")
TARGET = 1 << 20


def chunks(paths: list[str]) -> Iterator[str]:
    """The files' text in chunks of about ``TARGET`` characters, cut at safe newlines."""
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            buf = ""
            while True:
                block = f.read(TARGET)
                buf += block
                if not block:
                    if buf:
                        yield buf
                    break
                while len(buf) > TARGET:
                    m = CUT.search(buf, TARGET)
                    if not m:
                        break
                    yield buf[: m.end()]
                    buf = buf[m.end() :]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("vocab_size", type=int)
    ap.add_argument("--buffer-size", type=int, default=64)
    args = ap.parse_args()
    import rustbpe

    paths = sorted(str(p) for p in Path(args.folder).glob("*.txt"))
    t0 = time.perf_counter()
    tok = rustbpe.Tokenizer()
    tok.train_from_iterator(
        chunks(paths), args.vocab_size, buffer_size=args.buffer_size, pattern=PATTERNS["cl100k"]
    )
    seconds = time.perf_counter() - t0
    ranks = tok.get_mergeable_ranks()
    summary = {
        "files": len(paths),
        "bytes": sum(Path(p).stat().st_size for p in paths),
        "train_s": round(seconds, 2),
        "tokens": len(ranks),
        "buffer_size": args.buffer_size,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
