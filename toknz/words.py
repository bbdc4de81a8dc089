"""Splitting text into words for hierarchical byte/word models (needs no torch).

    >>> from toknz.words import split_words, word_boundaries
    >>> split_words("  Hello, world!\\n\\tBye", rule="whitespace")
    ['  ', 'Hello,', ' world!', '\\n\\tBye']
    >>> word_boundaries("ab cd").tolist()
    [0, 2, 5]
    >>> split_words("éééé", max_word_bytes=4)
    ['éé', 'éé']

Rules:

- ``"whitespace"`` (Learn Your Tokens): a word is a run of non-whitespace characters with the
  whitespace before it attached; leading whitespace is a word of its own (see
  :mod:`toknz_core.wordsplit` for the exact definition).

``max_word_bytes`` cuts longer words into pieces of at most that many UTF-8 bytes, only
between characters: the pieces always concatenate back to the text, and no piece holds half a
character. The kernels are compiled on first use (cached on disk afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toknz.errors import UsageError

#: The rules :func:`split_words` knows.
RULES = ("whitespace",)


def _check(rule: str, max_word_bytes: int | None) -> int:
    """Validate the options; return the cap for the kernel (0 = none)."""
    if rule not in RULES:
        raise UsageError(f"unknown word-splitting rule {rule!r}; known: {', '.join(RULES)}")
    if max_word_bytes is None:
        return 0
    if isinstance(max_word_bytes, bool) or not isinstance(max_word_bytes, int):
        raise UsageError(f"max_word_bytes must be an integer, not {max_word_bytes!r}")
    if max_word_bytes < 4:
        raise UsageError(
            f"max_word_bytes must be at least 4 (one UTF-8 character can take 4 bytes), "
            f"not {max_word_bytes}"
        )
    return max_word_bytes


def _as_bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8", "surrogatepass")
    raise UsageError(f"expected str or bytes, not {type(text).__name__}")


def word_boundaries(
    text: str | bytes, rule: str = "whitespace", max_word_bytes: int | None = None
) -> np.ndarray:
    """Byte offsets where the words of ``text`` start, then its UTF-8 length (``int64``).

    ``text`` may be bytes (invalid UTF-8 is split without losing a byte: each invalid byte
    counts as a non-whitespace character). An empty text gives ``[0]``. Raises
    :class:`~toknz.errors.UsageError` for an unknown rule or a cap below 4 bytes.
    """
    cap = _check(rule, max_word_bytes)
    from toknz_core.wordsplit import word_starts

    from toknz.unicode_tables import load_table

    data = np.frombuffer(_as_bytes(text), dtype=np.uint8)
    return word_starts(data, load_table(), cap)


def word_boundaries_batch(
    texts: Sequence[str | bytes], rule: str = "whitespace", max_word_bytes: int | None = None
) -> list[np.ndarray]:
    """:func:`word_boundaries` of each text, in one kernel call."""
    cap = _check(rule, max_word_bytes)
    from toknz_core.wordsplit import word_starts_batch

    from toknz.unicode_tables import load_table

    blobs = [_as_bytes(t) for t in texts]
    doc_offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blobs], out=doc_offsets[1:])
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    starts, offsets = word_starts_batch(data, doc_offsets, load_table(), cap)
    return [starts[offsets[d] : offsets[d + 1]] for d in range(len(blobs))]


def _cut(text: str, bounds: np.ndarray) -> list[str]:
    data = text.encode("utf-8", "surrogatepass")
    cuts = bounds.tolist()
    return [
        data[cuts[i] : cuts[i + 1]].decode("utf-8", "surrogatepass") for i in range(len(cuts) - 1)
    ]


def split_words(
    text: str, rule: str = "whitespace", max_word_bytes: int | None = None
) -> list[str]:
    """The words of ``text`` under ``rule``; their concatenation is ``text``."""
    return _cut(text, word_boundaries(text, rule, max_word_bytes))


def split_words_batch(
    texts: Sequence[str], rule: str = "whitespace", max_word_bytes: int | None = None
) -> list[list[str]]:
    """:func:`split_words` of each text, with one kernel call for the batch."""
    bounds = word_boundaries_batch(texts, rule, max_word_bytes)
    return [_cut(t, b) for t, b in zip(texts, bounds, strict=True)]
