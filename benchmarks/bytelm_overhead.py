"""ByteLM's own work per byte, without a model: does it stay flat as the text grows?

A ByteLM over a real tokenizer and a free token LM (every token equally
likely, so no cover is dropped for lack of probability) reads a held-out
text byte by byte (``next_byte_logprobs`` at every byte). For each
tokenizer it reports the milliseconds per byte in the first and the second
half of the text (flat if the work does not grow with the text), open covers
per byte, and the boundary oracle's questions and pre-tokenizer runs per
byte (``toknz.bytelevel.boundaries``). The text is the same for every
tokenizer: English prose, Go code and Chinese from the corpora builder's
cache, concatenated.

    python benchmarks/bytelm_overhead.py                 # 3 x 600 bytes, 6 tokenizers
    python benchmarks/bytelm_overhead.py --bytes 2000 --names gpt2 o200k_base

Writes the section "ByteLM overhead" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _common import describe_machine, git_state, load_average, machine_info, write_section

ROOT = Path(__file__).resolve().parent.parent

CORPUS = Path(os.environ.get("TOKNZ_CACHE", Path.home() / ".cache" / "toknz")) / "corpora"
SOURCES = ("austen-000.txt", "go-000.txt", "zh-cn-000.txt")
NAMES = ("gpt2", "cl100k_base", "o200k_base", "llama3", "qwen3", "deepseek_v3", "gemma3")


def held_out(n: int, corpus: Path) -> bytes:
    """``n`` bytes from the middle of each source file, cut at character boundaries."""
    out = b""
    for name in SOURCES:
        data = (corpus / name).read_bytes()
        start = len(data) // 2
        start = data.index(b"\n", start) + 1
        piece = data[start : start + n].decode("utf-8", "ignore").encode()
        out += piece
    return out


class FreeLM:
    """Every token equally likely; counts calls."""

    def __init__(self, n_vocab: int) -> None:
        self.row = np.full(n_vocab, -np.log(n_vocab))
        self.n_calls = 0

    def next_token_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        self.n_calls += 1
        return np.tile(self.row, (len(prefixes), 1))


def measure(name: str, text: bytes) -> dict[str, float]:
    import toknz
    from toknz.bytelevel import ByteLM

    tok = toknz.load(name)
    lm = FreeLM(tok.n_vocab)
    blm = ByteLM(lm, tok)
    blm.next_byte_logprobs(b"")  # builds the trie, the merge tables and the atoms
    oracle = blm.canon.boundaries
    oracle.calls = oracle.splits = 0
    half = len(text) // 2
    times, nodes = [], []
    for i in range(1, len(text) + 1):
        t0 = time.perf_counter()
        blm.next_byte_logprobs(text[:i])
        times.append(time.perf_counter() - t0)
        nodes.append(len(blm.state(text[:i]).nodes))
    return {
        "ms_first": 1000 * float(np.mean(times[:half])),
        "ms_second": 1000 * float(np.mean(times[half:])),
        "nodes": float(np.mean(nodes)),
        "max_nodes": float(np.max(nodes)),
        "questions": oracle.calls / len(text),
        "splits": oracle.splits / len(text),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bytes", type=int, default=600, help="bytes taken from each source")
    ap.add_argument("--names", nargs="+", default=list(NAMES))
    ap.add_argument("--corpus", type=Path, default=CORPUS / "mixed-2100mb")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    text = held_out(args.bytes, args.corpus)
    rows = []
    for name in args.names:
        r = measure(name, text)
        rows.append((name, r))
        print(name, {k: round(v, 2) for k, v in r.items()}, flush=True)
    lines = [
        f"`python benchmarks/bytelm_overhead.py --bytes {args.bytes}` — {len(text)} bytes "
        f"({', '.join(SOURCES)}, {args.bytes} bytes each), a token LM that costs nothing "
        "(every token equally likely), `next_byte_logprobs` at every byte. "
        f"Machine: {describe_machine(machine_info())}; load {load_average()}; {git_state()}.",
        "",
        "| tokenizer | ms/byte, first half | ms/byte, second half | open covers (mean / max) "
        "| boundary questions / byte | pre-tokenizer runs / byte |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['ms_first']:.1f} | {r['ms_second']:.1f} | "
            f"{r['nodes']:.1f} / {r['max_nodes']:.0f} | {r['questions']:.0f} | {r['splits']:.0f} |"
        )
    if not args.no_write:
        write_section("## ByteLM overhead", "## ByteLM overhead\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
