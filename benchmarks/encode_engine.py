"""Time the BPE merge engine's callers with cold caches: for before/after checks across checkouts.

    python benchmarks/encode_engine.py                  # this checkout
    git worktree add /tmp/before REV && \\
      PYTHONPATH=/tmp/before:/tmp/before/rust-free-core python benchmarks/encode_engine.py

For cl100k_base and o200k_base, over the text of ``corpora/`` (every ``*.txt``), prints the
best of five runs of

- ``doc``: ``encode_batch_to_numpy`` on one thread with empty word caches, so every
  distinct piece is merged once per run by the whole-document kernel;
- ``words``: ``toknz_core.encode.merge_words`` over the distinct pieces (the general
  path's kernel), no whole-token shortcut;
- ``derived``: ``BPE.derived_merges`` (``merge_words_below`` over every token),

with a checksum of each output, so two checkouts can be checked to agree. Run both
checkouts alternately on a quiet machine and compare the best times; ``uptime`` says how
quiet it was. Prints only (writes nothing).
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import regex
import toknz_core
from kernel_times import best_of

import toknz
from toknz.pipeline.pretokenize import PATTERNS

ROOT = Path(__file__).resolve().parent.parent
ENCODINGS = ("cl100k_base", "o200k_base")


def checksum(arrays: object) -> str:
    parts = arrays if isinstance(arrays, tuple) else (arrays,)
    crc = 0
    for a in parts:
        crc = zlib.crc32(np.ascontiguousarray(a).tobytes(), crc)
    return f"{crc:08x}"


def measure(name: str, texts: list[str], total: int) -> str:
    """One line of timings for the encoding ``name``."""
    from toknz_core.encode import merge_words

    tok = toknz.load(name)
    model = tok.model
    tok.encode_batch_to_numpy(texts[:1], num_threads=1, disallowed_special=())  # load, build

    def doc() -> object:
        model._free_works.clear()  # empty word caches: every distinct piece merged
        return tok.encode_batch_to_numpy(texts, num_threads=1, disallowed_special=())

    t_doc, ids = best_of(doc)
    pattern = PATTERNS["cl100k" if name == "cl100k_base" else "o200k"]
    pieces = sorted({p.encode("utf-8") for t in texts for p in regex.findall(pattern, t)})
    words = [model._byte_ids[np.frombuffer(p, dtype=np.uint8)] for p in pieces]
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in words], out=offsets[1:])
    symbols = np.concatenate(words).astype(np.int32)
    table = model.table
    t_words, merged = best_of(lambda: merge_words(symbols, offsets, *table))
    t_derived, derived = best_of(model.derived_merges, runs=3)
    return (
        f"{name}: doc {total / 1e6 / t_doc:.1f} MB/s ({t_doc:.3f} s, ids {checksum(ids)}); "
        f"words {len(pieces):,} distinct pieces {t_words:.3f} s ({checksum(merged)}); "
        f"derived {len(derived):,} merges {t_derived:.3f} s "
        f"({zlib.crc32(repr(derived).encode()):08x})"
    )


def main() -> None:
    texts = [p.read_text(encoding="utf-8") for p in sorted(ROOT.glob("corpora/**/*.txt"))]
    total = sum(len(t.encode("utf-8")) for t in texts)
    print(f"kernels from {Path(toknz_core.__file__).parent}", file=sys.stderr)
    print(f"text: {len(texts)} files of corpora/, {total / 1e6:.2f} MB")
    for name in ENCODINGS:
        print(measure(name, texts, total), flush=True)


if __name__ == "__main__":
    main()
