"""Compare tokenizers on corpora: token counts, compression, word fragmentation, domain terms.

:func:`compare_tokenizers` encodes every corpus with every tokenizer (batch encoding, all
cores) and returns a :class:`CompareReport` with one :class:`CompareRow` per tokenizer and
corpus. What it counts, exactly:

- **documents**: a whole file (or JSON-lines record / Parquet value) with ``unit="document"``;
  with ``unit="line"`` each line, cut just after each ``"\\n"`` (kept, as ``toknz train
  --unit line`` cuts them), where a line holding nothing but its line break is skipped. Empty
  documents are skipped. Files are read as training reads them (:mod:`toknz.train.inputs`:
  folders recursively, ``.gz``/``.zst``, ``.jsonl``/``.parquet`` with ``field_name``);
  invalid UTF-8 is an :class:`~toknz.errors.InputError` naming the file and byte offset.
- **tokens**: the ids of each document encoded as plain text (special-token strings are
  ordinary text; no BOS/EOS is added), summed: ``len(tok.encode(doc, disallowed_special=()))``.
- **bytes / characters per token**: UTF-8 bytes and Unicode code points of the documents over
  tokens; **tokens per character** is the inverse of the latter.
- **words split into ≥ 3 pieces**: a *word* is a maximal run of non-whitespace characters
  (``\\s`` as the ``regex`` package matches it: the non-whitespace part of each
  :func:`toknz.split_words` ``rule="whitespace"`` word) holding at least one letter
  (``\\p{L}``); runs never cross documents. A word's *pieces* are the tokens of the
  document's encoding whose bytes overlap the word's bytes, found from the token byte spans
  (each token's bytes after the per-token decoder, laid end to end). So ``" world!"`` in
  ``"hello world!"`` is one word; with ``cl100k_base`` its pieces are ``" world"`` and
  ``"!"`` (2). The spans are exact when the tokens spell the document, which holds for
  byte-level tokenizers without a normalizer; spaces a tokenizer adds at the front
  (SentencePiece's prefix ``"▁"``, Llama 2) are allowed for. A document whose tokens spell
  something else (a normalizer changed it: NFKC, lower-casing) has its words measured
  alone instead: the tokens of ``" " + word``, not counting tokens that are only
  whitespace. ``CompareRow.words_measured_alone`` counts such words.
- **% fewer tokens than the baseline**: ``100 * (1 - tokens / baseline_tokens)`` on the
  same corpus (negative: more tokens). The baseline is the first tokenizer unless named.
- **tokens per domain term** (``terms``): each term is measured as it appears in running
  text, preceded by a space: the pieces of the term (as for a word) in the text
  ``" " + term``; the mean over the distinct terms, and each term's count.

:func:`format_compare` renders the terminal table, :func:`write_plot` a grouped bar chart
(needs matplotlib: ``pip install 'toknz[plot]'``).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from toknz.errors import InputError, UsageError
from toknz.plotting import check_plot_path, pyplot, save_figure

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

__all__ = [
    "PLOT_METRICS",
    "SPLIT_PIECES",
    "UNITS",
    "CompareReport",
    "CompareRow",
    "CorpusInfo",
    "TermResult",
    "compare_tokenizers",
    "format_compare",
    "read_documents",
    "read_terms",
    "write_plot",
]

#: What a document is: a whole file (record), or each non-empty line.
UNITS = ("document", "line")

#: A word counts as fragmented when it overlaps at least this many tokens.
SPLIT_PIECES = 3

#: What :func:`write_plot` can draw per corpus and tokenizer.
PLOT_METRICS = ("tokens_per_char", "vs_baseline")

_RECORD_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet")

#: Characters per slice when locating words (bounds the temporary arrays on huge documents).
_WORD_SLICE_CHARS = 1 << 22

#: Tokens per block when spelling an encoding out as bytes.
_DECODE_BLOCK = 1 << 20


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class CorpusInfo:
    """One corpus: its name (the path as given), files, and what it holds."""

    name: str
    files: list[str]
    documents: int
    bytes: int
    chars: int
    words: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "files": list(self.files),
            "documents": self.documents,
            "bytes": self.bytes,
            "chars": self.chars,
            "words": self.words,
        }


@dataclass(frozen=True)
class CompareRow:
    """The measurements of one tokenizer on one corpus (see the module docstring)."""

    tokenizer: str
    corpus: str
    documents: int
    tokens: int
    bytes: int
    chars: int
    words: int
    words_split: int
    words_measured_alone: int
    baseline_tokens: int

    @property
    def tokens_per_document(self) -> float:
        return self.tokens / self.documents

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else float("nan")

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else float("nan")

    @property
    def tokens_per_char(self) -> float:
        return self.tokens / self.chars

    @property
    def share_split(self) -> float | None:
        """Share of words split into at least :data:`SPLIT_PIECES` tokens (None: no words)."""
        return self.words_split / self.words if self.words else None

    @property
    def fewer_than_baseline(self) -> float:
        """``1 - tokens / baseline_tokens``: 0.1 is 10 % fewer tokens than the baseline."""
        return 1.0 - self.tokens / self.baseline_tokens if self.baseline_tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer,
            "corpus": self.corpus,
            "documents": self.documents,
            "tokens": self.tokens,
            "bytes": self.bytes,
            "chars": self.chars,
            "tokens_per_document": self.tokens_per_document,
            "bytes_per_token": self.bytes_per_token,
            "chars_per_token": self.chars_per_token,
            "tokens_per_char": self.tokens_per_char,
            "words": self.words,
            "words_split_3plus": self.words_split,
            "share_words_split_3plus": self.share_split,
            "words_measured_alone": self.words_measured_alone,
            "baseline_tokens": self.baseline_tokens,
            "pct_fewer_tokens_than_baseline": 100.0 * self.fewer_than_baseline,
        }


@dataclass(frozen=True)
class TermResult:
    """Tokens per domain term for one tokenizer: one count per term of the report."""

    tokenizer: str
    tokens: list[int]
    measured_alone: int = 0

    @property
    def mean(self) -> float:
        return sum(self.tokens) / len(self.tokens) if self.tokens else float("nan")


@dataclass
class CompareReport:
    """What :func:`compare_tokenizers` measured: rows by tokenizer, then corpus."""

    tokenizers: list[str]
    baseline: str
    unit: str
    corpora: list[CorpusInfo]
    rows: list[CompareRow]
    tokenizer_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    terms: list[str] | None = None
    term_results: list[TermResult] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, tokenizer: str, corpus: str) -> CompareRow:
        """The row of ``tokenizer`` (its label) on ``corpus`` (its name)."""
        for r in self.rows:
            if r.tokenizer == tokenizer and r.corpus == corpus:
                return r
        raise KeyError((tokenizer, corpus))

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (NaN, which only an empty encoding gives, is null)."""
        out: dict[str, Any] = {
            "unit": self.unit,
            "baseline": self.baseline,
            "tokenizers": [{"label": t, **self.tokenizer_info.get(t, {})} for t in self.tokenizers],
            "corpora": [c.to_dict() for c in self.corpora],
            "rows": [r.to_dict() for r in self.rows],
            "definitions": {
                "word": "maximal run of non-whitespace characters holding a letter (\\p{L})",
                "words_split_3plus": f"words overlapping at least {SPLIT_PIECES} tokens",
                "pct_fewer_tokens_than_baseline": "100 * (1 - tokens / baseline tokens), same corpus",
                "term_tokens": "tokens overlapping the term in the text ' ' + term",
            },
            "seconds": round(self.seconds, 3),
        }
        if self.terms is not None:
            out["terms"] = {
                "count": len(self.terms),
                "by_tokenizer": [
                    {
                        "tokenizer": t.tokenizer,
                        "mean_tokens_per_term": t.mean,
                        "measured_alone": t.measured_alone,
                        "tokens": dict(zip(self.terms, t.tokens, strict=True)),
                    }
                    for t in self.term_results
                ],
            }
        return _nan_to_none(out)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


# ------------------------------------------------------------------ reading


def _lines(text: str) -> list[str]:
    """``text`` cut just after each ``"\\n"``; lines holding only their line break are dropped."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1] if p and p != "\r"]
    if parts[-1]:
        out.append(parts[-1])
    return out


def read_documents(
    path: str | os.PathLike[str],
    *,
    unit: str = "document",
    field_name: str | None = None,
    glob: str | None = None,
    skip_invalid: bool = False,
) -> tuple[list[str], list[str]]:
    r"""The documents of a corpus path (a file, a folder, or ``-``) and the files read.

    A text file is one document (``unit="document"``) or one per non-empty line
    (``unit="line"``, each keeping its ``"\n"``); JSON-lines records and Parquet values are a
    document each (or split into lines). Invalid UTF-8 is an
    :class:`~toknz.errors.InputError` naming the file and byte offset, unless
    ``skip_invalid`` (then the bad lines are dropped).

        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> _ = p.write_text("one\n\ntwo\n")
        >>> read_documents(p, unit="line")[0]
        ['one\n', 'two\n']
    """
    from toknz.train.inputs import _logical_name, expand_paths, iter_chunks

    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    files = expand_paths([os.fspath(path)], glob)
    docs: list[str] = []
    for name in files:
        chunks = iter_chunks([name], field_name=field_name, skip_invalid=skip_invalid)
        if _logical_name(name).endswith(_RECORD_SUFFIXES):
            texts: Sequence[str] = list(chunks)
        else:
            texts = ["".join(chunks)]
        for text in texts:
            if unit == "line":
                docs.extend(_lines(text))
            elif text:
                docs.append(text)
    return docs, files


def read_terms(path: str | os.PathLike[str]) -> list[str]:
    r"""Domain terms from a UTF-8 file, one per line (stripped; blank lines and repeats skipped).

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "terms.txt"
    >>> _ = p.write_text("angiogenesis\n\n  tachycardia \nangiogenesis\n")
    >>> read_terms(p)
    ['angiogenesis', 'tachycardia']
    """
    from toknz.formats._io import decode_utf8, read_file_bytes

    terms = _clean_terms(decode_utf8(read_file_bytes(path), path).split("\n"))
    if not terms:
        raise InputError(f"{path}: holds no terms (one term per line)")
    return terms


def _clean_terms(terms: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in terms if t.strip()))


# ------------------------------------------------------------------ measuring


@dataclass
class _Text:
    """Documents laid end to end as UTF-8, with the byte spans of their words."""

    docs: list[str]
    data: bytes
    starts: np.ndarray  # int64: byte offset of each document, then len(data)
    chars: int
    word_start: np.ndarray  # int64 byte offsets in data
    word_end: np.ndarray
    word_doc: np.ndarray  # the document of each word

    @classmethod
    def from_docs(
        cls, docs: list[str], spans: tuple[np.ndarray, np.ndarray] | None = None
    ) -> _Text:
        """``spans``: the words' byte spans, when given; else the words of the documents."""
        text = "".join(docs)
        data = text.encode("utf-8", "surrogatepass")
        sizes = np.fromiter(
            (len(d.encode("utf-8", "surrogatepass")) for d in docs), dtype=np.int64, count=len(docs)
        )
        starts = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(sizes, out=starts[1:])
        if spans is None:
            char_starts = np.zeros(len(docs), dtype=np.int64)
            np.cumsum([len(d) for d in docs[:-1]], out=char_starts[1:])
            spans = _word_spans(text, char_starts)
        word_doc = np.searchsorted(starts, spans[0], side="right") - 1
        return cls(docs, data, starts, len(text), spans[0], spans[1], word_doc)


def _word_spans(text: str, doc_chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Byte spans of the words of ``text`` (runs of non-``\\s`` holding a ``\\p{L}``).

    ``doc_chars``: the character offsets where documents start; no word crosses one.
    """
    import regex
    from toknz_core.unicode_classes import WS, L

    from toknz.pipeline.unicode_tables import load_table

    table = load_table()
    space = regex.compile(r"\s")
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    pos = 0
    byte_base = 0
    n = len(text)
    while pos < n:
        stop = min(n, pos + _WORD_SLICE_CHARS)
        if stop < n:  # cut before a whitespace character, so that no word is cut
            m = space.search(text, stop)
            stop = m.start() if m else n
        cps = np.frombuffer(text[pos:stop].encode("utf-32-le", "surrogatepass"), dtype="<u4")
        cls = table[cps]
        word = (cls & WS) == 0
        letters = np.zeros(cps.shape[0] + 1, dtype=np.int64)
        np.cumsum((cls & L) != 0, out=letters[1:])
        nbytes = 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)
        bpos = np.zeros(cps.shape[0] + 1, dtype=np.int64)
        np.cumsum(nbytes, out=bpos[1:])
        brk = np.zeros(cps.shape[0] + 1, dtype=bool)
        inside = doc_chars[(doc_chars > pos) & (doc_chars < stop)] - pos
        brk[inside] = True
        before = np.concatenate(([False], word[:-1]))
        after = np.concatenate((word[1:], [False]))
        first = np.flatnonzero(word & (~before | brk[:-1]))
        last = np.flatnonzero(word & (~after | brk[1:])) + 1
        keep = letters[last] > letters[first]
        starts.append(byte_base + bpos[first[keep]])
        ends.append(byte_base + bpos[last[keep]])
        byte_base += int(bpos[-1])
        pos = stop
    if not starts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(starts), np.concatenate(ends)


@dataclass
class _Measured:
    tokens_per_doc: np.ndarray
    pieces: np.ndarray  # tokens overlapping each word
    alone: int  # words measured alone (their document's tokens do not spell it)


class _Encoder:
    """A tokenizer with its per-token bytes, for :meth:`measure`."""

    def __init__(self, tok: Tokenizer, threads: int | None) -> None:
        self.tok = tok
        self.threads = threads
        self.pieces = tok.decode_tokens_bytes(range(tok.n_vocab))
        self.lengths = np.fromiter(map(len, self.pieces), dtype=np.int64, count=len(self.pieces))
        self.flat = np.frombuffer(b"".join(self.pieces), dtype=np.uint8)
        self.first = np.zeros(len(self.pieces), dtype=np.int64)  # where each token's bytes start
        np.cumsum(self.lengths[:-1], out=self.first[1:])

    def _decoded(self, ids: np.ndarray, cum: np.ndarray) -> np.ndarray:
        """The bytes of the tokens ``ids`` laid end to end (``cum``: their cumulative lengths)."""
        out = np.empty(int(cum[-1]), dtype=np.uint8)
        for a in range(0, ids.shape[0], _DECODE_BLOCK):  # bounds the index arrays' memory
            b = min(ids.shape[0], a + _DECODE_BLOCK)
            lens = self.lengths[ids[a:b]]
            index = np.repeat(self.first[ids[a:b]] - cum[a:b], lens)
            index += np.arange(cum[a], cum[b], dtype=np.int64)
            out[cum[a] : cum[b]] = self.flat[index]
        return out

    def measure(self, text: _Text) -> _Measured:
        ids, offsets = self.tok.encode_batch_to_numpy(
            text.docs, num_threads=self.threads, disallowed_special=()
        )
        counts = np.diff(offsets)
        cum = np.zeros(ids.shape[0] + 1, dtype=np.int64)
        np.cumsum(self.lengths[ids], out=cum[1:])
        dec_start = cum[offsets[:-1]]
        dec_len = cum[offsets[1:]] - dec_start
        doc_len = np.diff(text.starts)
        extra = dec_len - doc_len  # spaces added at the front (SentencePiece's prefix)
        decoded = self._decoded(ids, cum)
        if not extra.any() and np.array_equal(decoded, np.frombuffer(text.data, dtype=np.uint8)):
            # The tokens spell the text: their spans are their cumulative lengths.
            t_start, t_end = cum[:-1], cum[1:]
            aligned = np.ones(len(text.docs), dtype=bool)
        else:
            spelled = decoded.tobytes()
            aligned = np.zeros(len(text.docs), dtype=bool)
            data = text.data
            for d, (a, n, e) in enumerate(
                zip(dec_start.tolist(), dec_len.tolist(), extra.tolist(), strict=True)
            ):
                if e >= 0 and not spelled[a : a + e].strip(b" "):
                    aligned[d] = spelled[a + e : a + n] == data[text.starts[d] : text.starts[d + 1]]
            # Token byte spans in text.data, for the documents whose tokens spell them.
            tdoc = np.repeat(np.arange(len(text.docs)), counts)
            keep = aligned[tdoc]
            base = (dec_start + extra)[tdoc][keep]
            at = text.starts[:-1][tdoc][keep]
            t_start = np.maximum(cum[:-1][keep] - base, 0) + at
            t_end = np.maximum(cum[1:][keep] - base, 0) + at
        pieces = np.zeros(text.word_start.shape[0], dtype=np.int64)
        inside = aligned[text.word_doc]
        pieces[inside] = np.searchsorted(
            t_start, text.word_end[inside], side="left"
        ) - np.searchsorted(t_end, text.word_start[inside], side="right")
        alone = np.flatnonzero(~inside)
        if alone.size:
            pieces[alone] = self._alone(text, alone)
        return _Measured(counts, pieces, int(alone.size))

    def _alone(self, text: _Text, which: np.ndarray) -> list[int]:
        """Tokens of ``" " + word`` that are not only whitespace, for the words ``which``."""
        words = [
            text.data[a:b].decode("utf-8", "surrogatepass")
            for a, b in zip(
                text.word_start[which].tolist(), text.word_end[which].tolist(), strict=True
            )
        ]
        distinct = list(Counter(words))
        encoded = self.tok.encode_batch(
            [" " + w for w in distinct], num_threads=self.threads, disallowed_special=()
        )
        count = {
            w: sum(1 for i in ids if self.pieces[i].strip())
            for w, ids in zip(distinct, encoded, strict=True)
        }
        return [count[w] for w in words]


def _label(item: str | os.PathLike[str] | Tokenizer) -> str:
    from toknz.tokenizer import Tokenizer

    return item.name if isinstance(item, Tokenizer) else os.fspath(item)


def compare_tokenizers(
    tokenizers: Sequence[str | os.PathLike[str] | Tokenizer],
    corpora: Sequence[str | os.PathLike[str]] | Mapping[str, Sequence[str]],
    terms: Sequence[str] | None = None,
    *,
    baseline: str | None = None,
    unit: str = "document",
    field_name: str | None = None,
    glob: str | None = None,
    skip_invalid: bool = False,
    threads: int | None = None,
) -> CompareReport:
    """Measure each tokenizer on each corpus (see the module docstring for the definitions).

    ``tokenizers``: known names (``"o200k_base"``, ``"llama3"``...), tokenizer files
    (``tokenizer.json`` from toknz or Hugging Face, ``.tiktoken``) as for :func:`toknz.load`,
    or :class:`~toknz.Tokenizer` objects (labelled by their ``name``). ``corpora``: paths
    (files or folders, read by :func:`read_documents`; each path is one corpus, named as
    given) or a mapping of corpus name to its documents. ``terms``: domain terms for tokens
    per term. ``baseline``: the label of the tokenizer the others are compared with (default:
    the first). ``threads``: encoding threads (default: all cores).

        >>> import toknz
        >>> code = "def f(x):\\n        return x  # antidisestablishmentarian\\n"
        >>> report = compare_tokenizers(
        ...     ["gpt2", toknz.load("cl100k_base")], {"tiny": [code]}, terms=["angiogenesis"]
        ... )
        >>> row = report.row("cl100k_base", "tiny")
        >>> row.tokens, row.words, row.words_split  # "f(x):" is " f", "(x", "):\\n"
        (15, 5, 2)
        >>> round(100 * row.fewer_than_baseline, 1)  # gpt2 needs 22 tokens
        31.8
        >>> [t.tokens for t in report.term_results]  # " ang" "i" "ogenesis"; " angi" "ogenesis"
        [[3], [2]]

    Raises :class:`~toknz.errors.UsageError` for an unknown tokenizer, a repeated label or
    corpus, an unknown baseline or unit; :class:`~toknz.errors.InputError` for unreadable
    input or a corpus with no text.
    """
    import toknz
    from toknz.tokenizer import Tokenizer

    began = time.perf_counter()
    if not tokenizers:
        raise UsageError("give at least one tokenizer")
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    labels = [_label(t) for t in tokenizers]
    for label in labels:
        if labels.count(label) > 1:
            raise UsageError(f"the tokenizer {label!r} is given twice")
    base = labels[0] if baseline is None else baseline
    if base not in labels:
        raise UsageError(f"--baseline {base!r} is not one of the tokenizers ({', '.join(labels)})")
    toks = [t if isinstance(t, Tokenizer) else toknz.load(t) for t in tokenizers]

    named: list[tuple[str, list[str], list[str]]] = []  # (name, files, documents)
    if isinstance(corpora, Mapping):
        for name, docs in corpora.items():
            named.append((str(name), [], [d for d in docs if d]))
    else:
        seen: set[str] = set()
        for path in corpora:
            name = os.fspath(path)
            if name in seen:
                raise UsageError(f"the corpus {name!r} is given twice")
            seen.add(name)
            docs, files = read_documents(
                path, unit=unit, field_name=field_name, glob=glob, skip_invalid=skip_invalid
            )
            named.append((name, files, docs))
    if not named:
        raise UsageError("give at least one corpus")
    texts: list[_Text] = []
    infos: list[CorpusInfo] = []
    for name, files, docs in named:
        if not docs:
            raise InputError(f"{name}: holds no text to compare on")
        text = _Text.from_docs(docs)
        texts.append(text)
        infos.append(
            CorpusInfo(name, files, len(docs), len(text.data), text.chars, len(text.word_start))
        )

    term_list = _clean_terms(terms) if terms is not None else None
    term_text = None
    if term_list:
        docs = [" " + t for t in term_list]
        sizes = np.array([len(d.encode("utf-8", "surrogatepass")) for d in docs], dtype=np.int64)
        ends = np.cumsum(sizes)
        term_text = _Text.from_docs(docs, spans=(ends - sizes + 1, ends))

    measured: dict[str, list[_Measured]] = {}
    term_results: list[TermResult] = []
    for label, tok in zip(labels, toks, strict=True):
        encoder = _Encoder(tok, threads)
        measured[label] = [encoder.measure(t) for t in texts]
        if term_text is not None:
            m = encoder.measure(term_text)
            term_results.append(TermResult(label, m.pieces.tolist(), m.alone))
    rows: list[CompareRow] = []
    for label in labels:
        for c, (info, m) in enumerate(zip(infos, measured[label], strict=True)):
            rows.append(
                CompareRow(
                    tokenizer=label,
                    corpus=info.name,
                    documents=info.documents,
                    tokens=int(m.tokens_per_doc.sum()),
                    bytes=info.bytes,
                    chars=info.chars,
                    words=info.words,
                    words_split=int((m.pieces >= SPLIT_PIECES).sum()),
                    words_measured_alone=m.alone,
                    baseline_tokens=int(measured[base][c].tokens_per_doc.sum()),
                )
            )
    return CompareReport(
        tokenizers=labels,
        baseline=base,
        unit=unit,
        corpora=infos,
        rows=rows,
        tokenizer_info={
            label: {"name": tok.name, "n_vocab": tok.n_vocab}
            for label, tok in zip(labels, toks, strict=True)
        },
        terms=term_list,
        term_results=term_results,
        seconds=time.perf_counter() - began,
    )


# ------------------------------------------------------------------ output


def _fmt(value: float | None, spec: str) -> str:
    if value is None or value != value:
        return "-"
    return format(value, spec)


def format_compare(report: CompareReport) -> str:
    """A terminal table of ``report``: one row per tokenizer and corpus (then the terms).

    ``split≥3`` is the share of words split into at least 3 tokens; the last column is
    ``% fewer tokens`` than the baseline (negative: more).
    """
    header = (
        "tokenizer",
        "corpus",
        "docs",
        "tokens",
        "tok/doc",
        "bytes/tok",
        "chars/tok",
        "tok/char",
        "split≥3",
        f"fewer than {report.baseline}",
    )
    body: list[tuple[str, ...]] = []
    for r in report.rows:
        share = r.share_split
        body.append(
            (
                r.tokenizer,
                r.corpus,
                f"{r.documents:,}",
                f"{r.tokens:,}",
                _fmt(r.tokens_per_document, ",.1f"),
                _fmt(r.bytes_per_token, ".3f"),
                _fmt(r.chars_per_token, ".3f"),
                _fmt(r.tokens_per_char, ".4f"),
                "-" if share is None else f"{100 * share:.1f}%",
                "(baseline)"
                if r.tokenizer == report.baseline
                else f"{100 * r.fewer_than_baseline:+.1f}%",
            )
        )
    lines = _align(header, body, left=2)
    if report.terms is not None:
        lines.append("")
        term_rows = [
            (t.tokenizer, f"{len(t.tokens):,}", _fmt(t.mean, ".2f")) for t in report.term_results
        ]
        lines.extend(_align(("tokenizer", "terms", "tokens/term"), term_rows, left=1))
    return "\n".join(lines)


def _align(header: tuple[str, ...], body: Sequence[tuple[str, ...]], left: int) -> list[str]:
    """Columns padded to their widest cell: the first ``left`` flush left, the rest right."""
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header)] + [line(row) for row in body]


def write_plot(
    report: CompareReport, path: str | os.PathLike[str], metric: str = "tokens_per_char"
) -> None:
    """A grouped bar chart of ``report``: one group per corpus, one bar per tokenizer.

    ``metric``: ``"tokens_per_char"`` (lower is better) or ``"vs_baseline"`` (% fewer tokens
    than the baseline; the baseline's bars, all zero, are left out). Written atomically as
    ``.png``, ``.svg`` or ``.pdf``; needs matplotlib.
    """
    if metric not in PLOT_METRICS:
        raise UsageError(
            f"unknown plot metric {metric!r}; expected one of {', '.join(PLOT_METRICS)}"
        )
    check_plot_path(path)
    plt = pyplot(path)
    names = report.tokenizers
    if metric == "vs_baseline":
        names = [t for t in names if t != report.baseline] or names
    corpora = [c.name for c in report.corpora]
    short = [os.path.basename(c.rstrip("/\\")) or c for c in corpora]
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 + len(corpora) * (0.5 + 0.35 * len(names))), 4.5))
    x = np.arange(len(corpora))
    for k, name in enumerate(names):
        values = [
            report.row(name, c).tokens_per_char
            if metric == "tokens_per_char"
            else 100 * report.row(name, c).fewer_than_baseline
            for c in corpora
        ]
        ax.bar(x + (k - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(
        short, rotation=20 if len(corpora) > 3 else 0, ha="right" if len(corpora) > 3 else "center"
    )
    if metric == "tokens_per_char":
        ax.set_ylabel("tokens per character (lower is better)")
        ax.set_title("tokens per character by corpus")
    else:
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel(f"% fewer tokens than {report.baseline}")
        ax.set_title(f"token count against {report.baseline} by corpus")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
