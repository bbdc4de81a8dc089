"""A slow, literal, pure-Python twin of the ``tokenizers`` library's ``BpeTrainer``.

This is the test reference for toknz's Numba trainer: it reproduces the merges
(same pairs, same order) and the vocabulary ids that ``tokenizers`` (0.23) writes
to ``tokenizer.json`` when it trains a byte-level BPE with
``initial_alphabet=pre_tokenizers.ByteLevel.alphabet()`` on pre-tokenized words.
It is written for reading, not speed: every step is spelled out as the Rust
trainer (``tokenizers/src/models/bpe/trainer.rs`` and ``word.rs``) does it.

The algorithm, step by step:

1. Ids: the special tokens first, in the order given (a repeat is skipped), then
   the 256 byte-level characters sorted by Unicode code point of the character
   (not by byte value; a character already taken by a special token is skipped),
   then each new token in the order it is created.
2. Every word is a list of single-character ids; ``pair_counts[pair]`` is the
   sum over all words of (occurrences of the adjacent pair x word count), and
   ``where[pair]`` the set of words holding it. One heap entry
   ``(count, pair, words)`` is pushed per pair.
3. The heap pops the largest count first, then the smallest pair ``(left_id,
   right_id)``. Lazy update: if the popped count is not the current
   ``pair_counts[pair]``, the entry is pushed back with the current count and
   nothing else happens. Training stops when the vocabulary reaches
   ``vocab_size``, the heap is empty, or the popped (current) count is < 1 or
   < ``min_frequency``.
4. The new token is ``left + right`` (strings); if that string is already in the
   vocabulary its id is reused: the merge is still recorded, the vocabulary does
   not grow. The merge is applied *only* to the words of the popped entry, with a
   left-to-right scan that reports, for each occurrence, the pairs it destroys
   (-1) and the pairs it forms (+1; a formed pair only when its two parts
   together are at most ``max_token_length`` bytes). ``pair_counts`` moves by
   change x word count. The merged pair's own occurrences are not subtracted (its
   count is never reset), so another entry for it would be merged again (see below).
5. Each pair that gained (+1) in this step is pushed as a *new* entry holding the
   words where it gained, if its total count is > 0; so one pair could have
   several entries with different word sets (see below).

Differences from the Rust code, on purpose:

* Counts are Python ints (exact). The Rust trainer sums them in ``i32`` and
  would wrap past 2**31 - 1; no test corpus comes near that.
* Two heap entries with the same count *and* the same pair would be popped
  oldest first (push order); in Rust their order depends on the heap's layout,
  which depends on hash-map iteration order (randomly seeded per process).
* ``tokenizer.json`` stores merges in a map keyed by pair, so a pair merged
  twice would appear once, at the rank of its *last* merge; :func:`reference_train`
  returns that list and :func:`reference_train_raw` every step.

Character-level BPE (``max_token_chars``, toknz's own option, not in
``tokenizers``): a pair ``(x, y)`` is counted, and formed by a merge, only
when :func:`chars_allow` says so: ``y`` starts inside a UTF-8 character
(the merge stays inside that character), or ``x`` and ``y`` are both whole
characters of one class (letter or mark, number, punctuation or symbol,
whitespace; see :func:`char_class`) with at most ``max_token_chars``
characters together. Everything else is as above; with ``max_token_chars=None``
nothing changes.

Neither of the last two can happen here. A pair has two heap entries only if
some token id is produced by two merges (new pairs always involve the step's new
id). That needs one string made by two different merges, which cannot happen
without ``continuing_subword_prefix``/``end_of_word_suffix``: a span of a word
with token boundaries at both ends is merged exactly as the same bytes would be
on their own, so when ``x + y`` is first made, every span spelling it is ``[x][y]``
and is merged then. A special token that equals a merge result (say ``"ab"``)
lends its id to that merge, once. The tests check this property.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import regex

from toknz.pipeline.byte_alphabet import byte_to_char, bytes_to_chars, chars_to_bytes

Pair = tuple[int, int]

__all__ = [
    "RawTraining",
    "char_class",
    "chars_allow",
    "initial_tokens",
    "json_merges",
    "merge_word",
    "reference_train",
    "reference_train_raw",
]


@dataclass(frozen=True)
class RawTraining:
    """Everything one training run produced, by id.

    ``tokens[i]`` is the byte-level spelling of id ``i``; ``steps`` holds one
    ``(left_id, right_id, new_id)`` per merge step, in order, repeats included.
    """

    tokens: list[str]
    steps: list[tuple[int, int, int]]


def initial_tokens(special_tokens: Sequence[str] = ()) -> list[str]:
    """Special tokens (first occurrence of each, in order), then the 256 byte-level characters by code point."""
    tokens: list[str] = []
    for token in [*special_tokens, *sorted(byte_to_char())]:
        if token not in tokens:
            tokens.append(token)
    return tokens


_CLASSES = (
    ("whitespace", regex.compile(r"\s")),
    ("letter", regex.compile(r"[\p{L}\p{M}]")),
    ("number", regex.compile(r"\p{N}")),
    ("punctuation", regex.compile(r"[\p{P}\p{S}]")),
)
_MERGEABLE = {"whitespace", "letter", "number", "punctuation"}


def char_class(c: str) -> str:
    """The class of one character: the first of whitespace, letter, number, punctuation that matches, else other."""
    for name, rx in _CLASSES:
        if rx.fullmatch(c):
            return name
    return "other"


def char_props(raw: bytes) -> tuple[str, int, bool]:
    """``(class, characters, starts inside a character)``; a part of a character is "fragment"."""
    starts_inside = bool(raw) and (raw[0] & 0xC0) == 0x80
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "fragment", 0, starts_inside
    if not text:
        return "fragment", 0, starts_inside
    classes = {char_class(c) for c in text}
    return (classes.pop() if len(classes) == 1 else "mixed"), len(text), starts_inside


def chars_allow(left: bytes, right: bytes, max_token_chars: int | None) -> bool:
    """May ``left`` and ``right`` merge in character-level BPE (``None``: always)?"""
    if max_token_chars is None:
        return True
    cls_l, n_l, _ = char_props(left)
    cls_r, n_r, inside = char_props(right)
    if inside:
        return True
    return cls_l in _MERGEABLE and cls_l == cls_r and n_l + n_r <= max_token_chars


def merge_word(
    symbols: list[int],
    left: int,
    right: int,
    new: int,
    token_len: Sequence[int],
    max_token_length: int | None,
    allow: Callable[[int, int], bool] | None = None,
) -> list[tuple[Pair, int]]:
    """Merge every ``(left, right)`` in ``symbols`` in place, scanning left to right.

    Returns the list of ``(pair, +1 or -1)`` changes, in the order ``Word::merge``
    reports them. ``token_len[id]`` is the length of token ``id`` in bytes. A pair
    formed by the merge is reported (+1) only when its two parts together are at
    most ``max_token_length`` bytes (``None``: no limit); destroyed pairs are
    always reported (-1), even ones that were never counted because they were too
    long. ``allow(a, b)``, when given, must also hold for a formed pair to be
    reported (the character rules). The occurrence of ``(left, right)`` itself
    is not reported.
    """

    def short_enough(a: int, b: int) -> bool:
        if allow is not None and not allow(a, b):
            return False
        return max_token_length is None or token_len[a] + token_len[b] <= max_token_length

    changes: list[tuple[Pair, int]] = []
    i = 0
    while i < len(symbols):
        if symbols[i] == left and i + 1 < len(symbols) and symbols[i + 1] == right:
            if i > 0:
                before = symbols[i - 1]  # may itself be a `new` made one step back
                changes.append(((before, left), -1))
                if short_enough(before, new):
                    changes.append(((before, new), +1))
            symbols[i : i + 2] = [new]
            if i + 1 < len(symbols):
                after = symbols[i + 1]
                changes.append(((right, after), -1))
                if short_enough(new, after):
                    changes.append(((new, after), +1))
        i += 1
    return changes


def _check_arguments(
    word_counts: Mapping[bytes, int],
    vocab_size: int,
    min_frequency: int,
    max_token_length: int | None,
) -> None:
    if vocab_size < 0:
        raise ValueError(f"vocab_size must be >= 0, got {vocab_size}")
    if min_frequency < 0:
        raise ValueError(f"min_frequency must be >= 0, got {min_frequency}")
    if max_token_length is not None and max_token_length < 2:
        raise ValueError(
            f"max_token_length is in bytes and must be >= 2 (or None), got {max_token_length}"
        )
    for word, count in word_counts.items():
        if not isinstance(word, bytes):
            raise TypeError(f"words must be bytes, got {type(word).__name__}: {word!r}")
        if count < 0:
            raise ValueError(f"word counts must be >= 0, got {count} for {word!r}")


def reference_train_raw(
    word_counts: Mapping[bytes, int],
    vocab_size: int,
    *,
    min_frequency: int = 0,
    special_tokens: Sequence[str] = (),
    max_token_length: int | None = None,
    max_token_chars: int | None = None,
) -> RawTraining:
    """Train byte-level BPE exactly as ``tokenizers``' ``BpeTrainer`` does; return every step by id.

    ``word_counts`` maps each pre-tokenized word (raw bytes, any bytes) to its
    count; ``vocab_size`` counts tokens (special tokens and the 256 byte tokens
    included); ``max_token_length`` is in bytes (>= 2) and means "no new token
    longer than that" (``tokenizers``' ``max_token_length=N + 1``). Raises
    ``ValueError``/``TypeError`` on a negative size or count, a ``max_token_length``
    below 2, or a word that is not ``bytes``. ``max_token_chars`` (characters,
    >= 1) turns on the character rules (module docstring). See the module
    docstring for the algorithm.
    """
    _check_arguments(word_counts, vocab_size, min_frequency, max_token_length)
    if max_token_chars is not None and max_token_chars < 1:
        raise ValueError(f"max_token_chars must be >= 1 (or None), got {max_token_chars}")

    tokens = initial_tokens(special_tokens)
    token_id = {token: i for i, token in enumerate(tokens)}
    token_len = [len(token) for token in tokens]  # one byte-level character per byte

    def raw_of(i: int) -> bytes:
        return chars_to_bytes(tokens[i]) or b""  # a special token not in the alphabet: no bytes

    def allow(a: int, b: int) -> bool:
        return chars_allow(raw_of(a), raw_of(b), max_token_chars)

    words = [[token_id[c] for c in bytes_to_chars(word)] for word in word_counts]
    counts = list(word_counts.values())

    pair_counts: dict[Pair, int] = {}
    where: dict[Pair, set[int]] = {}
    for w, symbols in enumerate(words):
        for i in range(len(symbols) - 1):
            pair = (symbols[i], symbols[i + 1])
            if not allow(*pair):
                continue
            pair_counts[pair] = pair_counts.get(pair, 0) + counts[w]
            where.setdefault(pair, set()).add(w)

    # Heap entries: (-count, pair, push number, word set). heapq is a min-heap, so
    # the largest count pops first, then the smallest pair, then the oldest entry.
    heap: list[tuple[int, Pair, int, set[int]]] = []
    push_number = itertools.count()

    def push_gainers() -> None:
        for pair in sorted(where):
            if pair_counts[pair] > 0:
                heapq.heappush(heap, (-pair_counts[pair], pair, next(push_number), where[pair]))
        where.clear()

    push_gainers()

    steps: list[tuple[int, int, int]] = []
    while len(tokens) < vocab_size and heap:
        minus_count, pair, _, positions = heapq.heappop(heap)
        count = -minus_count
        current = pair_counts[pair]
        # Counts of pairs that have heap entries never go negative (only pairs too
        # long to be counted do); Rust would read a negative count as a huge u64.
        assert current >= 0, (pair, current)
        if count != current:
            heapq.heappush(heap, (-current, pair, next(push_number), positions))
            continue
        if count < 1 or count < min_frequency:
            break

        left, right = pair
        new_token = tokens[left] + tokens[right]
        if new_token not in token_id:
            token_id[new_token] = len(tokens)
            tokens.append(new_token)
            token_len.append(len(new_token))
        new = token_id[new_token]
        steps.append((left, right, new))

        for w in sorted(positions):
            for changed, change in merge_word(
                words[w],
                left,
                right,
                new,
                token_len,
                max_token_length,
                allow if max_token_chars is not None else None,
            ):
                pair_counts[changed] = pair_counts.get(changed, 0) + change * counts[w]
                if change > 0:
                    where.setdefault(changed, set()).add(w)
        push_gainers()

    return RawTraining(tokens=tokens, steps=steps)


def json_merges(raw: RawTraining) -> list[tuple[str, str]]:
    """The merges as ``tokenizer.json`` lists them: a repeated pair once, at the rank of its last step."""
    last_rank: dict[Pair, int] = {}
    for rank, (left, right, _new) in enumerate(raw.steps):
        last_rank[(left, right)] = rank
    ordered = sorted(last_rank, key=last_rank.__getitem__)
    return [(raw.tokens[left], raw.tokens[right]) for left, right in ordered]


def reference_train(
    word_counts: Mapping[bytes, int],
    vocab_size: int,
    *,
    min_frequency: int = 0,
    special_tokens: Sequence[str] = (),
    max_token_length: int | None = None,
    max_token_chars: int | None = None,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train like ``tokenizers``' ``BpeTrainer``; return ``(vocab, merges)`` as ``tokenizer.json`` has them.

    ``vocab`` maps the byte-level spelling of each token to its id; ``merges`` is
    the ordered list of ``(left, right)`` spellings, a pair merged more than once
    listed once at its last rank. Arguments as in :func:`reference_train_raw`.
    """
    raw = reference_train_raw(
        word_counts,
        vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        max_token_length=max_token_length,
        max_token_chars=max_token_chars,
    )
    vocab = {token: i for i, token in enumerate(raw.tokens)}
    return vocab, json_merges(raw)


def kernel_train(
    corpus: Mapping[bytes, int], vocab_size: int, **options: object
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """toknz's own trainer (``learn_merges``) on ``corpus``, spelled as :func:`reference_train`
    returns it: ``(vocab, merges)`` in the GPT-2 alphabet, special tokens by name."""
    from toknz.train.trainer import learn_merges

    return learn_merges(corpus, vocab_size, **options).spelled()  # type: ignore[arg-type]
