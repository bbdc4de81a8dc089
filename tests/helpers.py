"""Test helpers: corpus chunks and id comparisons that fail with a small, readable diff."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TIKTOKEN_NAMES = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base"]
JSON_NAMES = [
    "llama3",
    "llama3_1",
    "qwen3",
    "gpt4o",
    "gpt35turbo",
    "gptoss",
    "deepseek_v3",
    "claude",
    "llama2",
    "gemma3",
]
ALL_NAMES = [*TIKTOKEN_NAMES, "gpt2-hf", *JSON_NAMES]

#: Source files of this repository used as code text, besides the corpora.
CODE_FILES = [
    "toknz/tokenizer.py",
    "toknz/pipeline/pretokenize.py",
    "rust-free-core/toknz_core/encode.py",
    "tests/strategies.py",
]

CHUNK_CHARS = 4096


def corpus_files() -> list[Path]:
    """Every ``corpora/**/*.txt`` (at call time: the corpora may still be growing) and some code."""
    found = sorted(
        p
        for p in (REPO / "corpora").glob("**/*.txt")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(REPO).parts)
    )
    return found + [REPO / f for f in CODE_FILES if (REPO / f).is_file()]


def corpus_ids() -> list[str]:
    return [str(p.relative_to(REPO)) for p in corpus_files()]


def chunks(text: str, size: int = CHUNK_CHARS) -> list[tuple[int, str]]:
    """Cut ``text`` into ``(character offset, piece)`` of about ``size`` characters, at newlines when possible."""
    out: list[tuple[int, str]] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            nl = text.rfind("\n", start + size // 2, end)
            if nl >= 0:
                end = nl + 1
        out.append((start, text[start:end]))
        start = end
    return out


def sample_chunks(path: Path, limit: int | None) -> list[tuple[int, str]]:
    """The chunks of a file, or ``limit`` of them spread evenly over it (first and last included)."""
    parts = chunks(path.read_text(encoding="utf-8"))
    if limit is None or len(parts) <= limit:
        return parts
    if limit == 1:
        return parts[:1]
    step = (len(parts) - 1) / (limit - 1)
    return [parts[round(i * step)] for i in range(limit)]


def first_difference(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def diff_message(
    got: Sequence[int],
    want: Sequence[int],
    token_bytes: Callable[[int], bytes],
    text: str,
    where: str,
) -> str:
    """Describe where two id lists part: the text there and a few tokens of each side."""
    i = first_difference(got, want)
    prefix = b"".join(token_bytes(t) for t in want[:i])
    # Character position of the split point in ``text`` (the prefix may end inside a character).
    char_pos = len(prefix.decode("utf-8", errors="ignore"))

    def show(ids: Sequence[int]) -> str:
        return " ".join(f"{t}:{token_bytes(t)!r}" for t in ids[i : i + 6])

    return (
        f"{where}: ids differ at token {i} (text position ~{char_pos}; "
        f"toknz {len(got)} tokens, reference {len(want)})\n"
        f"  text there: {text[max(0, char_pos - 20) : char_pos + 60]!r}\n"
        f"  toknz:     {show(got)}\n"
        f"  reference: {show(want)}"
    )


def assert_same_ids(
    got: Sequence[int],
    want: Sequence[int],
    token_bytes: Callable[[int], bytes],
    text: str,
    where: str = "",
) -> None:
    got, want = list(got), list(want)
    if got != want:
        raise AssertionError(diff_message(got, want, token_bytes, text, where))
