"""A tokenizer's ordered merge list as ids, cleaned of merges plain BPE training would not make.

:func:`merge_list` reads the merges of a :class:`~toknz.Tokenizer` (the
``tokenizer.json`` merge list, or for a tiktoken rank file the merges
derived from its ranks) and keeps those that BPE training over the
tokenizer's own pre-tokenized words could have learned, in order. What it
leaves out, and why, is counted in :attr:`MergeList.skipped`:

``not_in_vocab``
    a part or the result is not a vocabulary token;
``added_token``
    the result is an added or special token;
``parts_not_produced``
    a part is neither an initial symbol nor made by an earlier kept merge,
    and no other listed split makes the token;
``redundant_split``
    another split of the same token is kept (it comes earlier, or it is the
    one BPE with the earlier merges makes, or this one's parts come later): lists converted from SentencePiece (Llama 2, Gemma) hold every
    split ``(l, r)`` of a token; the one kept is the split that BPE with the
    earlier merges produces from the token's symbols;
``hand_added_whitespace`` / ``hand_added_digits`` / ``crosses_pretoken``
    the result spans more than one pre-tokenized word (runs of spaces,
    newlines or digits added by hand, as in Gemma), so training could not
    have counted its pair; for SentencePiece-style lists the leading block of
    whitespace-only merges is also taken as added by hand.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from toknz.errors import UsageError
from toknz.pipeline.bpe_reference import bpe_merge, table_pair
from toknz.pipeline.byte_alphabet import byte_to_char, chars_to_bytes

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

#: Characters that make a SentencePiece-style token "whitespace only".
_SP_SPACE = frozenset("\u2581 \t\n\r\x0b\x0c")
#: How many examples of each skip reason are kept for the report.
EXAMPLES = 5


@dataclass
class MergeList:
    """Kept merges as ids, in order: ``(left[t], right[t]) -> new[t]``.

    ``ranks[t]`` is the merge's index in the tokenizer's own list;
    ``examined`` how many merges of that list were looked at;
    ``skipped`` counts per reason (see the module docstring) with a few
    ``examples``; ``notes`` says what else the caller should know
    (``ignore_merges``, merges derived from ranks). ``symbol_bytes(id)`` is
    the text a token id stands for, as bytes (UTF-8 of the model spelling
    for SentencePiece-style models).
    """

    left: np.ndarray
    right: np.ndarray
    new: np.ndarray
    ranks: np.ndarray
    examined: int
    total: int
    byte_level: bool
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    symbol_bytes: Callable[[int], bytes] = field(default=lambda i: b"", repr=False)

    def __len__(self) -> int:
        return int(self.left.shape[0])

    def truncated(self, k: int) -> MergeList:
        """The first ``k`` kept merges (``skipped`` still counts the whole examined prefix)."""
        return MergeList(
            self.left[:k],
            self.right[:k],
            self.new[:k],
            self.ranks[:k],
            self.examined,
            self.total,
            self.byte_level,
            dict(self.skipped),
            {k2: list(v) for k2, v in self.examples.items()},
            list(self.notes),
            self.symbol_bytes,
        )

    def pair_bytes(self, t: int) -> tuple[bytes, bytes]:
        """The bytes of the two parts of kept merge ``t``."""
        return self.symbol_bytes(int(self.left[t])), self.symbol_bytes(int(self.right[t]))

    def report(self) -> dict[str, Any]:
        """A JSON-ready summary: kept, examined, skipped per reason, examples, notes."""
        return {
            "kept": len(self),
            "examined": self.examined,
            "total": self.total,
            "skipped": dict(self.skipped),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "notes": list(self.notes),
        }


def initial_symbol_ids(tok: Tokenizer) -> dict[str, int]:
    """Model spellings of the initial symbols -> ids: the 256 byte characters, or every single character."""
    vocab = tok.model.vocab
    if tok.model.byte_level:
        return {c: vocab[c] for c in byte_to_char() if c in vocab}
    return {t: i for t, i in vocab.items() if len(t) == 1}


def _is_sp_space(text: str) -> bool:
    return bool(text) and all(c in _SP_SPACE for c in text)


def _raw_merges(tok: Tokenizer) -> tuple[list[tuple[str, str]], list[str]]:
    model = tok.model
    notes: list[str] = []
    if model.merge_rule == "ranks":
        merges = model.derived_merges()
        multi = sum(1 for t in model.vocab if len(chars_to_bytes(t) or b"") > 1)
        notes.append(
            f"merges derived from the ranks ({len(merges):,} of {multi:,} multi-byte tokens "
            "are reachable by merging)"
        )
    else:
        merges = list(model.merges)
    if model.ignore_merges:
        notes.append(
            "ignore_merges: a word that is itself a token skips the merges when encoding; "
            "the replay follows the merge list, as training did"
        )
    return merges, notes


def merge_list(
    tok: Tokenizer,
    limit: int | None = None,
    *,
    splits_word: Callable[[str], bool] | None = None,
) -> MergeList:
    """The cleaned merges of ``tok``, in order, stopping after ``limit`` kept merges (None: all).

    ``splits_word(text)`` says whether the tokenizer's (training-time)
    pre-tokenizer cuts ``text`` into more than one word; a merge whose result
    it cuts is skipped (default: :func:`toknz.analysis.samples.word_splitter`).
    Raises :class:`~toknz.errors.UsageError` when the tokenizer has no merges.
    """
    from toknz.analysis.samples import word_splitter

    model = tok.model
    raw, notes = _raw_merges(tok)
    if not raw:
        raise UsageError(f"{tok.name}: the tokenizer has no merges to analyse")
    if splits_word is None:
        splitter = word_splitter(tok)

        def splits_word(text: str) -> bool:
            return len(splitter.split([text])) > 1

    vocab = model.vocab
    prefix_len = len(model.continuing_subword_prefix or "")
    added = {t.id for t in tok.added_tokens}
    produced: set[int] = set(initial_symbol_ids(tok).values())
    byte_level = model.byte_level
    char_ids = initial_symbol_ids(tok)

    def spelled(i: int) -> str:
        t = model.id_to_token[i] if 0 <= i < model.n_vocab else None
        return t if t is not None else f"<id {i}>"

    def symbol_bytes(i: int) -> bytes:
        if byte_level:
            b = model.token_bytes(i)
            return b if b is not None else spelled(i).encode("utf-8")
        return spelled(i).encode("utf-8")

    def text_of(i: int) -> str | None:
        return symbol_bytes(i).decode("utf-8") if byte_level else spelled(i)

    # How many listed splits each result token has (more than one: SentencePiece-style),
    # and where each split is listed.
    n_splits: Counter[str] = Counter()
    position: dict[tuple[str, str], int] = {}
    for idx, (a, b) in enumerate(raw):
        n_splits[a + b[prefix_len:]] += 1
        position.setdefault((a, b), idx)

    rank: dict[tuple[int, int], tuple[int, int]] = {}
    inconsistent = 0
    left: list[int] = []
    right: list[int] = []
    new: list[int] = []
    ranks: list[int] = []
    skipped: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    leading_space_block = not byte_level
    examined = 0
    unproduced: list[tuple[str, str, int]] = []

    def skip(reason: str, a: str, b: str) -> None:
        skipped[reason] += 1
        if len(examples[reason]) < EXAMPLES:
            examples[reason].append(f"{a!r} + {b!r}")

    for idx, (a, b) in enumerate(raw):
        if limit is not None and len(left) >= limit:
            break
        examined += 1
        merged = a + b[prefix_len:]
        ia, ib, ic = vocab.get(a), vocab.get(b), vocab.get(merged)
        if ia is None or ib is None or ic is None:
            skip("not_in_vocab", a, b)
            continue
        if leading_space_block:
            if _is_sp_space(merged):
                skip("hand_added_whitespace", a, b)
                continue
            leading_space_block = False
        if ic in added:
            skip("added_token", a, b)
            continue
        if ic in produced:
            skip("redundant_split", a, b)
            continue
        if ia not in produced or ib not in produced:
            if not byte_level and _is_sp_space(merged):
                skip("hand_added_whitespace", a, b)
            else:
                # Decided at the end: redundant if another split makes the token.
                unproduced.append((a, b, ic))
            continue
        try:
            text = text_of(ic)
        except UnicodeDecodeError:
            text = None  # part of a UTF-8 sequence: a single word by construction
        if text is not None and splits_word(text):
            stripped = text.replace("\u2581", " ")
            if stripped.isspace():
                reason = "hand_added_whitespace"
            elif stripped.strip().isdigit():
                reason = "hand_added_digits"
            else:
                reason = "crosses_pretoken"
            skip(reason, a, b)
            continue
        if n_splits[merged] > 1:
            # Several listed splits of one token: keep the one BPE with the earlier merges makes.
            if byte_level:
                chars = byte_to_char()
                symbols = [char_ids.get(chars[x], -1) for x in model.token_bytes(ic) or b""]
            else:
                symbols = [char_ids.get(c, -1) for c in merged]
            parts = bpe_merge(symbols, table_pair(rank))
            if len(parts) == 2 and (parts[0], parts[1]) != (ia, ib):
                later = position.get((spelled(parts[0]), spelled(parts[1])), -1)
                if later > idx:
                    skip("redundant_split", a, b)
                    continue
            if len(parts) != 2 or (parts[0], parts[1]) != (ia, ib):
                inconsistent += 1
        rank[(ia, ib)] = (len(left), ic)
        produced.add(ic)
        left.append(ia)
        right.append(ib)
        new.append(ic)
        ranks.append(idx)

    for a, b, ic in unproduced:
        skip("redundant_split" if ic in produced else "parts_not_produced", a, b)
    if inconsistent:
        notes.append(
            f"{inconsistent} token(s) listed with several splits, none of them the split that "
            "BPE with the earlier merges makes; the first listed split was kept"
        )
    if skipped.get("hand_added_whitespace") and not byte_level:
        notes.append(
            "leading whitespace-only merges of a SentencePiece-style list taken as added by hand"
        )
    return MergeList(
        np.array(left, dtype=np.int32),
        np.array(right, dtype=np.int32),
        np.array(new, dtype=np.int32),
        np.array(ranks, dtype=np.int64),
        examined,
        len(raw),
        byte_level,
        dict(skipped),
        dict(examples),
        notes,
        symbol_bytes,
    )


__all__ = ["MergeList", "initial_symbol_ids", "merge_list"]
