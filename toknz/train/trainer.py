"""Learn a byte-level BPE tokenizer from word counts with the Numba kernel.

:func:`train_from_counts` takes distinct pre-tokenized words (bytes) and their
counts and returns a :class:`~toknz.Tokenizer`. Ids follow the ``tokenizers``
``BpeTrainer``: special tokens first, then the 256 bytes in the code-point
order of their byte-level characters, then merged tokens in creation order,
so the vocabulary and merges are identical to what ``tokenizers`` trains from
the same words with ``initial_alphabet=ByteLevel.alphabet()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from toknz.errors import UsageError
from toknz.pipeline.byte_alphabet import byte_to_char, bytes_to_chars, chars_to_bytes

if TYPE_CHECKING:
    from toknz.train.counting import WordTable

#: No token limit: larger than any word.
UNLIMITED = 2**62


@dataclass
class MergeResult:
    """The kernel's output in bytes: merges in order and every token's bytes by id."""

    merges: list[tuple[int, int, int]]  # (left id, right id, new id)
    counts: list[int]  # the count of each merge's pair when it was chosen
    tokens: list[
        bytes
    ]  # id -> bytes (special tokens: their bytes if spelled in the byte alphabet, else UTF-8)
    n_special: int
    seconds: float
    specials: list[str] | None = None  # the special tokens, ids 0..n_special-1
    work: dict[str, int] | None = (
        None  # kernel counters: stale entries, words visited, symbols scanned
    )

    def spelled(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """``(vocab, merges)`` as a tokenizer.json spells them.

        Tokens in the GPT-2 byte alphabet, special tokens by name; a spelling
        that repeats keeps its first id.

        >>> r = learn_merges({b"ab": 5}, 258, special_tokens=["<s>"])
        >>> vocab, merges = r.spelled()
        >>> merges, vocab["<s>"], vocab["ab"]
        ([('a', 'b')], 0, 257)
        """
        names = list(self.specials or [])
        spelled = [
            names[i] if i < len(names) else bytes_to_chars(t) for i, t in enumerate(self.tokens)
        ]
        vocab: dict[str, int] = {}
        for i, key in enumerate(spelled):
            vocab.setdefault(key, i)
        return vocab, [(spelled[a], spelled[b]) for a, b, _ in self.merges]


def byte_alphabet_order() -> list[int]:
    """Byte values in the order ``tokenizers`` numbers them: by code point of their byte-level character."""
    chars = byte_to_char()
    return sorted(range(256), key=lambda b: ord(chars[b]))


def learn_merges(
    word_counts: Mapping[bytes, int] | WordTable,
    vocab_size: int,
    *,
    special_tokens: Sequence[str] = (),
    min_frequency: int = 0,
    max_token_length: int | None = None,
    max_token_chars: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> MergeResult:
    """Run the merge kernel on ``word_counts`` (bytes -> count, or a counted :class:`WordTable`).

    ``vocab_size`` counts special tokens, the 256 bytes and merged tokens; it
    must be at least ``256 + len(special_tokens)``. ``max_token_length`` (bytes,
    at least 2) caps the length of merged tokens. ``max_token_chars``
    (Unicode characters, at least 1) makes it character-level BPE: a merge
    either builds one character out of its bytes or joins whole characters
    of one class (:mod:`toknz.train.chars`: letters with marks, numbers,
    punctuation with symbols, whitespace), never more than
    ``max_token_chars`` characters; ``None`` (default) keeps the
    ``tokenizers`` ``BpeTrainer`` behaviour exactly. ``on_progress(n_merges)``
    is called about ten times a second from this thread while the kernel runs.
    Bad sizes raise :class:`~toknz.errors.UsageError`.

    >>> r = learn_merges({b"hello": 5, b"1999": 3}, 300, max_token_chars=2)
    >>> max(len(t.decode()) for t in r.tokens[256:])
    2
    """
    specials = list(dict.fromkeys(special_tokens))
    n_special = len(specials)
    if vocab_size < 256 + n_special:
        raise UsageError(
            f"vocab_size {vocab_size} is smaller than the byte alphabet (256) plus "
            f"{n_special} special token(s); use at least {256 + n_special}"
        )
    if max_token_length is not None and max_token_length < 2:
        raise UsageError(f"max_token_length must be at least 2 bytes, got {max_token_length}")
    if min_frequency < 0:
        raise UsageError(f"min_frequency must be >= 0, got {min_frequency}")
    if max_token_chars is not None and max_token_chars < 1:
        raise UsageError(f"max_token_chars must be at least 1 character, got {max_token_chars}")
    cp_class = None
    if max_token_chars is not None:
        from toknz.train.chars import char_class_table

        cp_class = char_class_table()

    # Ids as tokenizers assigns them: special tokens, then each byte's
    # character in code-point order unless a special token already spells it.
    chars = byte_to_char()
    spelled: list[str] = list(specials)
    index = {t: i for i, t in enumerate(spelled)}
    byte_id = np.empty(256, dtype=np.int32)
    for b in byte_alphabet_order():
        c = chars[b]
        if c not in index:
            index[c] = len(spelled)
            spelled.append(c)
        byte_id[b] = index[c]
    # A special token spelled in the byte alphabet can be re-made by merges
    # (tokenizers then reuses its id); give it its bytes so the kernel sees that.
    init_tokens = [chars_to_bytes(t) or b"" for t in spelled]
    init_bytes = np.frombuffer(b"".join(init_tokens), dtype=np.uint8).copy()
    init_offsets = np.zeros(len(init_tokens) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in init_tokens], out=init_offsets[1:])

    from toknz.train.counting import WordTable

    table = (
        word_counts
        if isinstance(word_counts, WordTable)
        else WordTable.from_counts({w: c for w, c in word_counts.items() if c > 0 and len(w) > 0})
    )
    counts = np.ascontiguousarray(table.counts, dtype=np.int64)
    offsets = np.ascontiguousarray(table.offsets, dtype=np.int64)
    symbols = (
        byte_id[table.arena] if table.arena.size else np.empty(0, dtype=np.int32)
    )  # int32, merged in place

    return run_kernel(
        symbols,
        offsets,
        counts,
        init_bytes,
        init_offsets,
        vocab_size,
        specials,
        min_frequency=min_frequency,
        max_token_length=max_token_length,
        max_token_chars=max_token_chars,
        cp_class=cp_class,
        on_progress=on_progress,
    )


def run_kernel(
    symbols: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    init_bytes: np.ndarray,
    init_offsets: np.ndarray,
    vocab_size: int,
    specials: list[str],
    *,
    min_frequency: int = 0,
    max_token_length: int | None = None,
    max_token_chars: int | None = None,
    cp_class: np.ndarray | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> MergeResult:
    """Run the merge kernel on a thread (so ``on_progress`` sees it) and wrap what it returns.

    ``symbols``/``offsets``/``counts``: the words as initial token ids (merged in place);
    ``init_bytes``/``init_offsets``: the bytes of the initial tokens, ids ``0..n-1`` (the
    first ``len(specials)`` are the special tokens, with no bytes). The kernel's own
    arguments are documented in :func:`toknz_core.train.train_bpe`.
    """
    from toknz_core.train import train_bpe, train_bpe_chars

    progress = np.zeros(4, dtype=np.int64)
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            args = (
                symbols,
                offsets,
                counts,
                init_bytes,
                init_offsets,
                vocab_size,
                min_frequency,
                UNLIMITED if max_token_length is None else max_token_length,
                progress,
                np.empty(offsets.shape[0] - 1, dtype=np.int64),
            )
            if cp_class is None:
                result.append(train_bpe(*args))
            else:
                assert max_token_chars is not None
                result.append(train_bpe_chars(*args, max_token_chars, cp_class))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    start = time.perf_counter()
    worker = threading.Thread(target=run, name="toknz-merge", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if on_progress is not None:
            on_progress(int(progress[0]))
    if errors:
        raise errors[0]
    left, right, new, merge_counts, tok_bytes, tok_off, n_tokens = result[0]
    raw = tok_bytes.tobytes()
    offs = tok_off.tolist()
    tokens = [raw[offs[i] : offs[i + 1]] for i in range(int(n_tokens))]
    for i, special in enumerate(specials):
        if not tokens[i]:
            tokens[i] = special.encode("utf-8")
    merges = list(zip(left.tolist(), right.tolist(), new.tolist(), strict=True))
    if on_progress is not None:
        on_progress(len(merges))
    return MergeResult(
        merges,
        merge_counts.tolist(),
        tokens,
        len(specials),
        time.perf_counter() - start,
        specials,
        {
            "stale_entries": int(progress[1]),
            "words_visited": int(progress[2]),
            "symbols_scanned": int(progress[3]),
        },
    )
