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


def split_blocks(text: str, block: int = 2000) -> tuple[str, str]:
    """Alternate blocks of about ``block`` characters (cut after a newline) into two texts."""
    sides: tuple[list[str], list[str]] = ([], [])
    current: list[str] = []
    size = 0
    k = 0
    for line in text.splitlines(keepends=True):
        current.append(line)
        size += len(line)
        if size >= block:
            sides[k % 2].extend(current)
            current, size, k = [], 0, k + 1
    sides[k % 2].extend(current)
    return "".join(sides[0]), "".join(sides[1])


def take_bytes(text: str, n: int) -> str:
    """The longest prefix of ``text`` of at most ``n`` UTF-8 bytes."""
    return text.encode("utf-8")[:n].decode("utf-8", "ignore")


def known_mixture(
    train_texts: dict[str, str], weights: np.ndarray, total: int | None = None
) -> tuple[str, np.ndarray]:
    """Concatenate ``weights[i]`` of ``total`` bytes from each category (default: as large as possible).

    Returns the mixture text and the actual byte shares.
    """
    names = list(train_texts)
    sizes = np.array([len(train_texts[n].encode("utf-8")) for n in names], dtype=np.float64)
    if total is None:
        total = int(min(sizes[i] / weights[i] for i in range(len(names)) if weights[i] > 0))
    parts = [take_bytes(train_texts[n], int(weights[i] * total)) for i, n in enumerate(names)]
    actual = np.array([len(p.encode("utf-8")) for p in parts], dtype=np.float64)
    return "".join(parts), actual / actual.sum()
