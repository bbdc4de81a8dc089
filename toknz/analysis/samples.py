"""Category samples: text -> the tokenizer's words -> distinct words as initial symbol ids.

A sample (files, folders, or text given directly) is normalized and
pre-tokenized exactly as the target tokenizer does it — its own normalizer
and pre-tokenizer, taken from the tokenizer file — and counted once into
distinct words with the trainer's counting (:func:`toknz.train.counting.count_words`,
which uses the compiled scanner for the GPT split patterns). Each distinct
word then becomes initial symbols: byte ids for byte-level models, character
ids for SentencePiece-style ones.

SentencePiece-style models (Llama 2, Gemma: character-level BPE with a
``▁`` normalizer and no real pre-tokenizer) encode a whole text as one word,
but their training cut text into pieces that start at ``▁``, with digits
alone and punctuation apart; :data:`SENTENCEPIECE_WORD` approximates those
pieces, and characters with no token of their own (byte fallback) end a
word, since training never merged them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import regex

from toknz.errors import InputError, UsageError
from toknz.pipeline.byte_alphabet import byte_to_char
from toknz.pipeline.pretokenize import (
    PATTERNS,
    ByteLevel,
    PreTokenizer,
    PreTokenizerSequence,
    Split,
)

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer
    from toknz.train.counting import WordTable

#: Training-time words of SentencePiece-style BPE: a run of ``▁`` before a
#: word, a word of letters (and marks), a run of other symbols, one digit, a
#: run of ``▁``, one other whitespace character.
SENTENCEPIECE_WORD = (
    r"\u2581+(?=\u2581[^\u2581\s\p{N}])"
    r"|\u2581?[\p{L}\p{M}]+"
    r"|\u2581?[^\u2581\s\p{L}\p{M}\p{N}]+"
    r"|\p{N}"
    r"|\u2581+"
    r"|\s"
)

#: Text given to :func:`count_sample` is cut into chunks of about this many characters.
TEXT_CHUNK = 1 << 20


@dataclass(frozen=True)
class Text:
    """Sample text given directly (not a path): ``Text("...")``."""

    text: str


#: What a category's sample can be: a path, several paths, or :class:`Text`.
CategoryInput = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Text


class PipelineWords:
    """A word splitter made of a tokenizer's pre-tokenizer (and, optionally, a regex after it).

    Has the attributes :func:`toknz.train.counting.count_words` reads from a
    :class:`~toknz.pipeline.pretokenize.Split`, so the trainer's counting can use it;
    it never takes the compiled path (``is_regex`` is False).
    """

    is_regex = False
    invert = False
    behavior = "Isolated"
    pattern = ""

    def __init__(self, pre: PreTokenizer | None, then: str | None = None) -> None:
        self.pre = pre
        self.then = then
        self._compiled: regex.Pattern[str] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"pre": self.pre, "then": self.then}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["pre"], state["then"])  # type: ignore[misc]

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        """Split text pieces into words (text, not byte-level spelling)."""
        if self.pre is not None:
            pieces = self.pre.split(pieces, at_start)
        if self.then is None:
            return [p for p in pieces if p]
        if self._compiled is None:
            self._compiled = regex.compile(self.then)
        out: list[str] = []
        for p in pieces:
            out.extend(self._compiled.findall(p))
        return out


def _steps(pre: PreTokenizer) -> tuple[PreTokenizer, ...]:
    return pre.steps if isinstance(pre, PreTokenizerSequence) else (pre,)


def word_splitter(tok: Tokenizer) -> Split | PipelineWords:
    """The splitter that cuts normalized text into the words ``tok``'s training counted.

    A GPT-style pipeline (one regex split, then byte-level) gives that
    :class:`~toknz.pipeline.pretokenize.Split`, which the counting runs compiled when
    the pattern has a scanner; other byte-level pipelines give their own
    pre-tokenizer; SentencePiece-style models add :data:`SENTENCEPIECE_WORD`.
    """
    pre = tok.pre_tokenizer
    steps = _steps(pre)
    if tok.model.byte_level:
        if (
            len(steps) == 2
            and isinstance(steps[0], Split)
            and steps[0].is_regex
            and (steps[0].behavior, steps[0].invert) in (("Removed", True), ("Isolated", False))
            and isinstance(steps[1], ByteLevel)
            and not steps[1].use_regex
            and not steps[1].add_prefix_space
        ):
            return Split(steps[0].pattern, "Isolated")
        if len(steps) == 1 and isinstance(steps[0], ByteLevel) and not steps[0].add_prefix_space:
            return Split(PATTERNS["gpt2"], "Isolated")
        return PipelineWords(pre)
    return PipelineWords(pre, SENTENCEPIECE_WORD)


@dataclass
class CategorySample:
    """One category's sample as distinct words of initial symbol ids (CSR) with counts.

    ``bytes`` is the size of the sample text (UTF-8, before normalization);
    ``words`` the total number of words; ``table`` the counted words (raw
    UTF-8 of the normalized words), kept for resampling.
    """

    name: str
    symbols: np.ndarray  # int32
    offsets: np.ndarray  # int64, n + 1
    counts: np.ndarray  # int64, n
    bytes: int
    table: WordTable
    sources: list[str]

    @property
    def words(self) -> int:
        return int(self.counts.sum())

    @property
    def pairs(self) -> int:
        """Adjacent symbol pairs in the sample, counted with multiplicity."""
        lengths = np.diff(self.offsets)
        return int((np.maximum(lengths - 1, 0) * self.counts).sum())


def _text_chunks(text: str, size: int = TEXT_CHUNK) -> Iterator[str]:
    """Cut text at a newline followed by a non-space character, about every ``size`` characters."""
    start = 0
    n = len(text)
    while start < n:
        end = min(n, start + size)
        while end < n and not (text[end - 1] == "\n" and not text[end].isspace()):
            end += 1
        yield text[start:end]
        start = end


def _sources(name: str, data: CategoryInput) -> tuple[list[str], Text | None]:
    if isinstance(data, Text):
        return ["<text>"], data
    if isinstance(data, str | os.PathLike):
        return [os.fspath(data)], None
    if isinstance(data, Sequence) and not isinstance(data, bytes):
        paths = [os.fspath(p) for p in data]
        if not paths:
            raise UsageError(f"category {name!r}: no sample files given")
        return paths, None
    raise UsageError(
        f"category {name!r}: give a path, a list of paths or toknz.analysis.Text, "
        f"not {type(data).__name__}"
    )


def count_sample(
    tok: Tokenizer,
    name: str,
    data: CategoryInput,
    *,
    threads: int | None = None,
    splitter: Split | PipelineWords | None = None,
    engine: str = "local",
    scheduler: Any = None,
    unit: str = "document",
) -> tuple[WordTable, int, list[str]]:
    """Count a category's sample into distinct words: ``(table, sample bytes, sources)``.

    Paths may be files or folders (every file inside, recursively), plain
    text or the trainer's other inputs; files are read and counted by the
    trainer's one counting function (:func:`toknz.train.counting.count_files`),
    so ``engine="dask"`` counts them on a Dask cluster (``scheduler``: a
    client, an address or None for a local cluster) for tokenizers whose
    pre-tokenizer is one split. Raises :class:`~toknz.errors.InputError` for
    a missing or unreadable file, invalid UTF-8 (with the byte offset) or a
    sample with no words. ``unit="line"`` splits each line on its own, as
    ``tokenizers``' ``train(files)`` does (see :func:`~toknz.train.counting.count_words`).
    """
    from toknz.train.counting import count_files, count_words
    from toknz.train.inputs import InputStats, expand_paths

    sources, text = _sources(name, data)
    splitter = splitter if splitter is not None else word_splitter(tok)
    if engine != "local" and not isinstance(splitter, Split):
        raise UsageError(
            f"engine {engine!r} counts with one split pattern; {tok.name}'s pre-tokenizer is "
            "not one (count this tokenizer's samples with engine='local')"
        )
    if text is not None:
        size = len(text.text.encode("utf-8"))
        # count_words reads only .split and the attributes PipelineWords has.
        table, _cut = count_words(
            _text_chunks(text.text),
            cast(Split, splitter),
            normalizer=tok.normalizer,
            threads=threads,
            unit=unit,
        )
    else:
        stats = InputStats()
        sources = expand_paths(sources)
        table, _cut = count_files(
            sources,
            cast(Split, splitter),
            normalizer=tok.normalizer,
            threads=threads,
            stats=stats,
            unit=unit,
            engine=engine,
            scheduler=scheduler,
        )
        size = stats.bytes
    if len(table) == 0:
        where = ", ".join(sources[:3])
        raise InputError(f"category {name!r} ({where}): the sample holds no text")
    return table, size, sources


def symbol_table(tok: Tokenizer) -> tuple[np.ndarray | None, dict[str, int]]:
    """Initial symbol ids: a 256-entry byte -> id array (byte-level; -1 for no token) and char -> id."""
    vocab = tok.model.vocab
    if tok.model.byte_level:
        chars = byte_to_char()
        return np.array([vocab.get(chars[b], -1) for b in range(256)], dtype=np.int32), {}
    return None, {t: i for t, i in vocab.items() if len(t) == 1}


def words_to_symbols(
    table: WordTable, byte_ids: np.ndarray | None, char_ids: Mapping[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn counted words into CSR initial symbols ``(symbols, offsets, counts)``.

    A byte or character with no token ends the word there and is dropped
    (training could not merge it); words of fewer than two symbols are
    dropped (they hold no pair).
    """
    if byte_ids is not None and bool((byte_ids >= 0).all()):
        symbols = byte_ids[table.arena]
        lengths = np.diff(table.offsets)
        keep = lengths >= 2
        if bool(keep.all()):
            return symbols.astype(np.int32), table.offsets.astype(np.int64), table.counts.copy()
        starts = table.offsets[:-1][keep]
        kept_lengths = lengths[keep]
        offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(kept_lengths, out=offsets[1:])
        index = np.repeat(starts - offsets[:-1], kept_lengths) + np.arange(offsets[-1])
        return symbols[index].astype(np.int32), offsets, table.counts[keep].copy()
    raw = table.arena.tobytes()
    offs = table.offsets.tolist()
    out: list[int] = []
    bounds = [0]
    counts: list[int] = []
    for w, c in enumerate(table.counts.tolist()):
        word = raw[offs[w] : offs[w + 1]]
        if byte_ids is not None:
            ids = [int(byte_ids[x]) for x in word]
        else:
            ids = [char_ids.get(ch, -1) for ch in word.decode("utf-8", "replace")]
        run: list[int] = []
        for i in [*ids, -1]:
            if i >= 0:
                run.append(i)
                continue
            if len(run) >= 2:
                out.extend(run)
                bounds.append(len(out))
                counts.append(c)
            run = []
    return (
        np.array(out, dtype=np.int32),
        np.array(bounds, dtype=np.int64),
        np.array(counts, dtype=np.int64),
    )


def sample_from_table(
    tok: Tokenizer, name: str, table: WordTable, size: int, sources: list[str]
) -> CategorySample:
    """A :class:`CategorySample` from counted words."""
    byte_ids, char_ids = symbol_table(tok)
    symbols, offsets, counts = words_to_symbols(table, byte_ids, char_ids)
    return CategorySample(name, symbols, offsets, counts, size, table, sources)


def load_sample(
    tok: Tokenizer,
    name: str,
    data: CategoryInput,
    *,
    threads: int | None = None,
    engine: str = "local",
    scheduler: Any = None,
) -> CategorySample:
    """Count and convert one category's sample (see :func:`count_sample`)."""
    table, size, sources = count_sample(
        tok, name, data, threads=threads, engine=engine, scheduler=scheduler
    )
    return sample_from_table(tok, name, table, size, sources)


__all__ = [
    "SENTENCEPIECE_WORD",
    "CategoryInput",
    "CategorySample",
    "PipelineWords",
    "Text",
    "count_sample",
    "load_sample",
    "sample_from_table",
    "symbol_table",
    "word_splitter",
    "words_to_symbols",
]
