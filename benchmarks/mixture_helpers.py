"""Known mixtures of the shipped corpora for the mixture-inference tests and benchmark.

Each category's text is cut into blocks of about ``block`` characters at line
ends; even blocks go to the training side, odd ones to the sample side, so
the LP never sees the text the tokenizer was trained on but sees text of the
same kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CATEGORY_FILES = {
    "en": "corpora/en/austen_emma.txt",
    "python": "corpora/code/python_stdlib.txt",
    "go": "corpora/code/go_stdlib.txt",
    "de": "corpora/multi/de.txt",
    "ru": "corpora/multi/ru.txt",
    "ja": "corpora/multi/ja.txt",
    "el": "corpora/multi/el.txt",
    "ko": "corpora/multi/ko.txt",
}


def blocks_of(text: str, block: int = 2000) -> list[str]:
    """``text`` cut into blocks of about ``block`` characters, each ending after a newline."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        current.append(line)
        size += len(line)
        if size >= block:
            out.append("".join(current))
            current, size = [], 0
    if current:
        out.append("".join(current))
    return out


def split_blocks(text: str, block: int = 2000) -> tuple[str, str]:
    """Alternate blocks of about ``block`` characters (cut after a newline) into two texts."""
    parts = blocks_of(text, block)
    return "".join(parts[0::2]), "".join(parts[1::2])


def take_bytes(text: str, n: int) -> str:
    """The longest prefix of ``text`` of at most ``n`` UTF-8 bytes."""
    return text.encode("utf-8")[:n].decode("utf-8", "ignore")


def spread_bytes(text: str, n: int, block: int = 2000) -> str:
    """About ``n`` UTF-8 bytes of ``text`` taken as evenly spaced blocks across all of it.

    A prefix would hold only the first documents of a file that concatenates
    many; evenly spaced blocks follow the whole file, like the sample side.
    """
    parts = blocks_of(text, block)
    total = len(text.encode("utf-8"))
    if n >= total or not parts:
        return text
    m = max(1, round(len(parts) * n / total))
    picks = sorted({int(k * len(parts) / m) for k in range(m)})
    return "".join(parts[j] for j in picks)


def known_mixture(
    train_texts: dict[str, str],
    weights: np.ndarray,
    total: int | None = None,
    *,
    spread: bool = False,
) -> tuple[str, np.ndarray]:
    """Concatenate ``weights[i]`` of ``total`` bytes from each category (default: as large as possible).

    ``spread``: take each category's bytes as evenly spaced blocks
    (:func:`spread_bytes`) instead of a prefix. Returns the mixture text and
    the actual byte shares.
    """
    names = list(train_texts)
    sizes = np.array([len(train_texts[n].encode("utf-8")) for n in names], dtype=np.float64)
    if total is None:
        total = int(min(sizes[i] / weights[i] for i in range(len(names)) if weights[i] > 0))
    take = spread_bytes if spread else take_bytes
    parts = [take(train_texts[n], int(weights[i] * total)) for i, n in enumerate(names)]
    actual = np.array([len(p.encode("utf-8")) for p in parts], dtype=np.float64)
    return "".join(parts), actual / actual.sum()
