"""Superword tokens: a second training stage whose merges cross the spaces between words.

BPE tokenizers split text into pre-tokens (words with their leading space,
number groups, punctuation runs) and never merge across them, so a text can
never take fewer tokens than it has pre-tokens. On held-out legal text that
floor is only 6.6 % below o200k_base's count (``docs/domain.md``). Following
SuperBPE (Liu et al., 2025), training can go on in a second stage on coarser
pieces, so frequent phrases (``" pursuant to"``, ``" of the"``) become tokens:

1. stage 1 is ordinary training with the split pattern up to ``superwords_at``
   tokens;
2. the text is split again with :func:`superword_pattern`: runs of words
   (letters, marks, digits, an apostrophe suffix) joined by single spaces
   become one piece; everything else is split as the original pattern splits it
   (so ``"-transferable"`` or ``"\\n\\n"`` stay what they were);
3. every piece is encoded with the stage-1 merges, and the merge kernel goes on
   from those tokens to ``vocab_size``.

The tokenizer is byte-level BPE with ``Split(superword_pattern(pattern))``
and the merges of both stages in order: ``tokenizers`` and tiktoken encode it
the same way (the tests check it). Stage-1 merges applied to a whole phrase
may split a word differently from stage 1 alone, which is why stage 2 counts
pairs on exactly what the finished tokenizer produces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from toknz.train.counting import WordTable
from toknz.train.trainer import MergeResult, run_kernel

__all__ = ["superword_pattern", "superword_merges"]

#: A run of words joined by single spaces: the superword piece.
_WORD = r"[\p{L}\p{M}\p{N}]+(?:['\u2019][\p{L}\p{M}]+)?"
_RUN = rf" ?{_WORD}(?: {_WORD})*"


def superword_pattern(pattern: str) -> str:
    """The stage-2 split: word runs joined by single spaces, else ``pattern``'s own pieces.

    >>> import regex
    >>> from toknz.pipeline.pretokenize import PATTERNS
    >>> regex.findall(superword_pattern(PATTERNS["o200k"]), "Pursuant to 42 U.S.C., non-transferable")
    ['Pursuant to 42 U', '.S', '.C', '.,', ' non', '-transferable']
    """
    return f"{_RUN}|{pattern}"


def _encode_words(
    stage1: MergeResult, words: WordTable, pattern: str
) -> tuple[np.ndarray, np.ndarray]:
    """The pieces of ``words`` as stage-1 token ids, CSR over ``words.offsets`` (int32)."""
    from toknz.pipeline.bpe import _kernels
    from toknz.train import tokenizer_from_merges

    model = tokenizer_from_merges(stage1, pattern).model
    id_of = {t: i for i, t in enumerate(stage1.tokens) if i >= stage1.n_special}
    byte_id = np.array([id_of[bytes([b])] for b in range(256)], dtype=np.int32)
    symbols = byte_id[words.arena] if words.arena.size else np.empty(0, dtype=np.int32)
    merged, out_offsets = _kernels().merge_words(symbols, words.offsets, *model.table)
    return merged, out_offsets


def superword_merges(
    stage1: MergeResult,
    words: WordTable,
    vocab_size: int,
    *,
    pattern: str,
    min_frequency: int = 0,
    max_token_length: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> MergeResult:
    """Stage 2: learn merges on ``words`` (pieces of :func:`superword_pattern`) after ``stage1``.

    ``stage1``: the stage-1 training result; ``words``: the counted stage-2
    pieces (raw bytes, after normalization); ``pattern``: the stage-2 split
    (used to build the stage-1 encoder). Returns one result whose merges are
    stage 1's followed by the new ones, up to ``vocab_size`` tokens.
    """
    symbols, offsets = _encode_words(stage1, words, pattern)
    n_special = stage1.n_special
    init = [b"" if i < n_special else t for i, t in enumerate(stage1.tokens)]
    init_bytes = np.frombuffer(b"".join(init), dtype=np.uint8).copy()
    init_offsets = np.zeros(len(init) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in init], out=init_offsets[1:])
    base = len(stage1.merges)
    stage2 = run_kernel(
        np.ascontiguousarray(symbols, dtype=np.int32),
        np.ascontiguousarray(offsets, dtype=np.int64),
        np.ascontiguousarray(words.counts, dtype=np.int64),
        init_bytes,
        init_offsets,
        vocab_size,
        list(stage1.specials or []),
        min_frequency=min_frequency,
        max_token_length=max_token_length,
        on_progress=(lambda n: on_progress(base + n)) if on_progress else None,
    )
    return MergeResult(
        stage1.merges + stage2.merges,
        stage1.counts + stage2.counts,
        stage2.tokens,
        n_special,
        stage1.seconds + stage2.seconds,
        stage1.specials,
        stage2.work,
    )
