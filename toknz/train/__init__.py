"""BPE training: corpus files -> word counts -> merges (Numba) -> a :class:`~toknz.Tokenizer`.

- :mod:`toknz.train.inputs` streams text out of files, folders, stdin, JSON
  lines, Parquet and compressed files;
- :mod:`toknz.train.counting` counts pre-tokenized words on several processes;
- :mod:`toknz.train.trainer` runs the merge kernel (``toknz_core.train``).

:func:`train` does all three and :func:`save_trained` writes the tokenizer
and a JSON report atomically.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toknz.errors import InputError, UsageError
from toknz.formats._io import atomic_write
from toknz.pipeline.added_tokens import AddedToken
from toknz.pipeline.bpe import BPE
from toknz.pipeline.decoders import ByteLevelDecoder
from toknz.pipeline.normalizers import Lowercase, Normalizer, NormalizerSequence, UnicodeForm
from toknz.pipeline.pretokenize import (
    ByteLevel,
    PreTokenizerSequence,
    Split,
    compile_pattern,
    resolve_pattern,
)
from toknz.tokenizer import Tokenizer
from toknz.train.counting import MAX_WORD_BYTES, count_files
from toknz.train.preset import Preset, load_preset, preset_names, read_terms
from toknz.train.required import RequiredToken, add_required_merges
from toknz.train.superword import superword_merges, superword_pattern
from toknz.train.trainer import MergeResult, learn_merges
from toknz.validate import check_token_text

if TYPE_CHECKING:
    from toknz.train.counting import WordTable
    from toknz.train.shards import CountMeta

__all__ = [
    "Preset",
    "TrainReport",
    "load_preset",
    "preset_names",
    "save_trained",
    "tokenizer_from_merges",
    "train",
    "train_from_counts",
]


@dataclass
class TrainReport:
    """What a training run read, made and spent; written beside the tokenizer as JSON."""

    inputs: list[str] = field(default_factory=list)
    input_files: int = 0
    input_bytes: int = 0
    skipped_lines: int = 0
    distinct_words: int = 0
    words_cut: int = 0
    max_word_bytes: int = 0
    total_words: int = 0
    vocab_size: int = 0
    merges: int = 0
    pattern: str = ""
    normalize: str = "none"
    special_tokens: list[str] = field(default_factory=list)
    min_frequency: int = 0
    max_token_length: int | None = None
    max_token_chars: int | None = None
    superwords_at: int | None = None
    unit: str = "document"
    cased: bool = True
    # Count shards trained from (train(from_counts=...)); then ``inputs`` are the
    # files those shards counted.
    from_counts: list[str] = field(default_factory=list)
    # The largest min_count those shards were pruned with (0: exact counts, exact merges).
    counts_min_count: int = 0
    preset: str | None = None
    preset_path: str | None = None
    # Required tokens (toknz.train.required): the list's file, what became of each
    # term, the merges appended for them and the trained merges dropped to make room.
    required_tokens_file: str | None = None
    required_tokens: list[dict[str, Any]] = field(default_factory=list)
    required_merges: int = 0
    trained_merges_dropped: int = 0
    threads: int = 1
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)


def _normalizer(name: str, *, cased: bool = True) -> Normalizer | None:
    key = name.lower()
    if key == "none":
        form: Normalizer | None = None
    elif key in ("nfc", "nfkc", "nfd", "nfkd"):
        form = UnicodeForm(key.upper())
    else:
        raise UsageError(f"unknown normalization {name!r}; expected nfc, nfkc or none")
    if cased:
        return form
    if form is None:
        return Lowercase()
    return NormalizerSequence((form, Lowercase()))


#: What :func:`train` uses for an argument that neither the caller nor the preset sets.
_DEFAULTS: dict[str, Any] = {
    "vocab_size": None,
    "pattern": "cl100k",
    "normalize": "none",
    "special_tokens": (),
    "min_frequency": 0,
    "max_token_length": None,
    "max_token_chars": None,
    "cased": True,
    "unit": "document",
    "superwords_at": None,
}


def _settings(
    preset: str | os.PathLike[str] | Preset | None, *, need_vocab: bool = True, **given: Any
) -> dict[str, Any]:
    """Explicit arguments, else the preset's values, else :data:`_DEFAULTS`; plus ``"preset"``.

    ``need_vocab``: a missing ``vocab_size`` is a :class:`UsageError` (counting needs none).
    """
    loaded = preset if isinstance(preset, Preset) or preset is None else load_preset(preset)
    out: dict[str, Any] = {"preset": loaded}
    for key, default in _DEFAULTS.items():
        value = given.get(key)
        if value is None and loaded is not None:
            value = loaded.special_tokens if key == "special_tokens" else getattr(loaded, key)
            if key == "special_tokens" and not loaded.special_groups:
                value = None
        out[key] = default if value is None else value
    if need_vocab and out["vocab_size"] is None:
        raise UsageError(
            "vocab_size is required (--vocab-size), unless the preset sets it"
            + (f" ({loaded.path} does not)" if loaded is not None else "")
        )
    return out


def _required_terms(
    given: str | os.PathLike[str] | Sequence[str] | None, preset: Preset | None
) -> tuple[list[str], str | None]:
    """The required terms and the file they came from: ``given`` (a file or terms), else the preset's."""
    if given is None:
        if preset is None or preset.required_tokens is None:
            return [], None
        return preset.required_terms(), preset.required_tokens
    if isinstance(given, (str, os.PathLike)):
        return read_terms(Path(given)), str(given)
    return list(given), None


def _peak_rss_mb() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1024 * 1024)
    return max(usage, children) * scale


def tokenizer_from_merges(
    result: MergeResult,
    pattern: str,
    normalizer: Normalizer | None = None,
    *,
    name: str = "trained",
) -> Tokenizer:
    """Build the tokenizer a training run made: byte-level BPE, ``Split(pattern)`` + ByteLevel."""
    names = list(result.specials or [])
    vocab, merges = result.spelled()
    model = BPE(vocab=vocab, merges=merges, byte_level=True, merge_rule="merges")
    specials = [AddedToken(names[i], i, special=True) for i in range(len(names))]
    pre = PreTokenizerSequence(
        (Split(pattern, "Isolated"), ByteLevel(add_prefix_space=False, use_regex=False))
    )
    return Tokenizer(
        model,
        pre,
        normalizer=normalizer,
        added_tokens=specials,
        decoder=ByteLevelDecoder(),
        name=name,
        pattern=pattern,
    )


def train_from_counts(
    word_counts: Mapping[bytes, int],
    *,
    vocab_size: int,
    pattern: str = "cl100k",
    normalize: str = "none",
    special_tokens: Sequence[str] = (),
    min_frequency: int = 0,
    max_token_length: int | None = None,
    max_token_chars: int | None = None,
    required_tokens: Sequence[str] = (),
    progress: bool = False,
) -> Tokenizer:
    """Train from already counted words (raw bytes -> count); see :func:`train`."""
    regex = resolve_pattern(pattern)
    compile_pattern(regex)
    bar = _merge_bar(vocab_size, progress)
    result = learn_merges(
        word_counts,
        vocab_size,
        special_tokens=special_tokens,
        min_frequency=min_frequency,
        max_token_length=max_token_length,
        max_token_chars=max_token_chars,
        on_progress=bar,
    )
    tok, _ = _build(
        result,
        regex,
        _normalizer(normalize),
        vocab_size,
        list(required_tokens),
        max_token_length,
        max_token_chars,
    )
    return tok


def _build(
    result: MergeResult,
    regex: str,
    normalizer: Normalizer | None,
    vocab_size: int,
    terms: list[str],
    max_token_length: int | None,
    max_token_chars: int | None,
) -> tuple[Tokenizer, list[RequiredToken]]:
    """The tokenizer of a training result, with merges appended for the required ``terms``."""
    outcome: list[RequiredToken] = []
    if terms:
        result, outcome = add_required_merges(
            result,
            terms,
            pattern=regex,
            vocab_size=vocab_size,
            normalizer=normalizer,
            max_token_length=max_token_length,
            max_token_chars=max_token_chars,
        )
    tok = tokenizer_from_merges(result, regex, normalizer)
    for item in outcome:
        item.check(tok)
    return tok, outcome


def _merge_bar(vocab_size: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    bar = tqdm(total=vocab_size, desc="merging", unit="tok", leave=False, disable=None)

    def update(n: int) -> None:
        bar.n = n
        bar.refresh()
        if n >= vocab_size:
            bar.close()

    return update


def _check_arguments(
    inputs: Sequence[str | os.PathLike[str]],
    vocab_size: int,
    special_tokens: Sequence[str],
    max_token_chars: int | None,
    superwords_at: int | None,
    *,
    from_counts: Sequence[str | os.PathLike[str]] | None,
    field_name: str | None,
    glob: str | None,
    skip_invalid: bool,
) -> None:
    """:func:`train`'s checks of its resolved arguments, before any reading.

    Raises :class:`~toknz.errors.UsageError` naming the argument.
    """
    if from_counts is not None:
        if len(inputs):
            raise UsageError("train on text inputs or on count shards (from_counts), not both")
        for name, value in (("field_name", field_name), ("glob", glob)):
            if value is not None:
                raise UsageError(
                    f"{name} is for reading text; count shards were read when they were "
                    "counted (toknz count)"
                )
        if skip_invalid:
            raise UsageError(
                "skip_invalid is for reading text; give it to `toknz count`, not with count shards"
            )
        if superwords_at is not None:
            raise UsageError(
                "superwords_at counts the text a second time (with the superword split), so "
                "it cannot train from count shards; train on the text"
            )
    for i, token in enumerate(special_tokens):
        check_token_text(
            token, f"special_tokens[{i}]", what="a special token (--special)", error=UsageError
        )
    if vocab_size < 256 + len(dict.fromkeys(special_tokens)):
        raise UsageError(
            f"vocab_size {vocab_size} is smaller than the byte alphabet (256) plus "
            f"{len(dict.fromkeys(special_tokens))} special token(s)"
        )
    if superwords_at is not None and not 256 + len(special_tokens) < superwords_at < vocab_size:
        raise UsageError(
            f"superwords_at {superwords_at} must lie between the byte alphabet plus special "
            f"tokens ({256 + len(special_tokens)}) and vocab_size {vocab_size}"
        )
    if superwords_at is not None and max_token_chars is not None:
        raise UsageError("superwords_at and max_token_chars do not go together")


def _fill_report(
    report: TrainReport,
    meta: CountMeta,
    counts: WordTable,
    tok: Tokenizer,
    result: MergeResult,
    outcome: list[RequiredToken],
    settings: dict[str, Any],
    *,
    pattern: str,
    shards: list[str],
    terms_file: str | None,
    threads: int | None,
    seconds: dict[str, float],
) -> None:
    """Write what a :func:`train` run read, made and took into ``report``."""
    report.inputs = list(meta.inputs)
    report.from_counts = shards
    report.counts_min_count = meta.min_count
    report.input_files = meta.input_files
    report.input_bytes = meta.input_bytes
    report.skipped_lines = meta.skipped_lines
    report.distinct_words = len(counts)
    report.words_cut = meta.words_cut
    report.max_word_bytes = meta.max_word_bytes
    report.total_words = int(counts.counts.sum())
    report.vocab_size = tok.n_vocab
    report.merges = len(tok.model.merges)
    report.pattern = pattern
    report.normalize = meta.normalize
    report.special_tokens = list(settings["special_tokens"])
    report.min_frequency = settings["min_frequency"]
    report.max_token_length = settings["max_token_length"]
    report.max_token_chars = settings["max_token_chars"]
    report.unit = meta.unit
    report.cased = meta.cased
    resolved = settings["preset"]
    if resolved is not None:
        report.preset = resolved.name
        report.preset_path = resolved.path
    report.required_tokens_file = terms_file
    report.required_tokens = [item.to_json() for item in outcome]
    report.required_merges = sum(f.merges_added for item in outcome for f in item.forms)
    report.trained_merges_dropped = len(result.merges) - report.merges + report.required_merges
    report.threads = threads or os.cpu_count() or 1
    report.superwords_at = settings["superwords_at"]
    report.seconds = seconds
    report.peak_rss_mb = round(_peak_rss_mb(), 1)


def train(
    inputs: Sequence[str | os.PathLike[str]] = (),
    *,
    vocab_size: int | None = None,
    pattern: str | None = None,
    normalize: str | None = None,
    special_tokens: Sequence[str] | None = None,
    min_frequency: int | None = None,
    max_token_length: int | None = None,
    max_token_chars: int | None = None,
    cased: bool | None = None,
    field_name: str | None = None,
    glob: str | None = None,
    skip_invalid: bool = False,
    threads: int | None = None,
    max_word_bytes: int = MAX_WORD_BYTES,
    unit: str | None = None,
    preset: str | os.PathLike[str] | Preset | None = None,
    required_tokens: str | os.PathLike[str] | Sequence[str] | None = None,
    superwords_at: int | None = None,
    from_counts: Sequence[str | os.PathLike[str]] | None = None,
    engine: str = "local",
    scheduler: Any = None,
    progress: bool = False,
    report: TrainReport | None = None,
) -> Tokenizer:
    r"""Train a byte-level BPE tokenizer on text files.

    ``inputs``: files, folders (recursive, files matching ``glob``) or ``"-"``
    for stdin; ``.jsonl``/``.parquet`` need ``field_name``; ``.gz``/``.zst`` are
    decompressed. ``pattern``: ``gpt2``, ``cl100k`` (default), ``o200k`` or a
    regex. ``vocab_size`` (required, here or from the preset) counts special
    tokens and the 256 bytes. ``normalize``: ``none`` (default), ``nfc`` or
    ``nfkc``; ``cased=False`` lower-cases after it. Merges are those
    the ``tokenizers`` ``BpeTrainer`` learns from the same words. Invalid
    UTF-8 raises :class:`~toknz.errors.InputError` (file and byte offset)
    unless ``skip_invalid``. Words longer than ``max_word_bytes`` (text with
    no split point: DNA, minified code) are cut into pieces of at most that
    many bytes, which keeps memory and time bounded; ``tokenizers`` would keep
    them whole, so only inputs with such words can train differently.

    ``unit``: ``"document"`` (default) pre-tokenizes each text file (in
    chunks cut where no split pattern joins words), each JSON-lines record and
    each Parquet value as one text; ``"line"`` cuts every text into lines
    first, just after each ``"\n"`` (kept at the end of its line; ``"\r"``
    alone does not end a line), and pre-tokenizes each line on its own, as
    ``tokenizers``' ``Tokenizer.train(files)`` does: then the merges and the
    vocabulary equal ``tokenizers``' for the same files and pre-tokenizer
    (a line longer than 4 MiB is cut into pieces, in both units, to bound
    memory). An unknown ``unit`` is a :class:`~toknz.errors.UsageError`.

    ``max_token_length`` caps tokens in bytes. ``max_token_chars`` makes it
    character-level BPE: no token longer than that many Unicode characters,
    and a merge either builds one character from its bytes or joins whole
    characters of one class (letters with combining marks, numbers,
    punctuation with symbols, whitespace; :mod:`toknz.train.chars`), so no
    token crosses whitespace or a letter/digit/punctuation boundary; the 256
    bytes stay in the vocabulary, so every byte encodes and decodes.

    ``preset``: a shipped preset name (``legal``, ``financial``, ``code``,
    ``char-4k``, ``char-8k``, ``char-16k``), a path to a preset ``.toml`` or a
    :class:`~toknz.train.preset.Preset`; it fills in every argument above
    left at ``None``, and an argument given explicitly wins (``special_tokens``
    replaces the preset's list). See :mod:`toknz.train.preset`.

    ``required_tokens``: terms that must each encode as one token, in running
    text (after a space) and at the start of a text: a file (one term per
    line) or a list of terms; ``None`` takes the preset's list, ``[]`` none.
    They are made reachable by merges appended after the trained ones (the
    last trained merges make room, so ``vocab_size`` holds);
    :mod:`toknz.train.required`. A term the split pattern cuts (``U.S.C.``)
    cannot be one token; ``report.required_tokens`` says which and why.

    ``superwords_at``: train ordinary (stage 1) merges up to this many tokens,
    then go on to ``vocab_size`` with merges across the spaces between words
    (SuperBPE's curriculum; :mod:`toknz.train.superword`). The tokenizer then
    splits text with :func:`~toknz.train.superword.superword_pattern` of
    ``pattern``. It must be at least the stage-1 minimum and below
    ``vocab_size``; not with ``max_token_chars`` or ``unit="line"`` ... see the module.

    ``from_counts``: count shards (Parquet files written by ``toknz count`` /
    :func:`toknz.train.shards.write_counts`, or folders of them) to train from
    instead of ``inputs``; they are added up (:func:`~toknz.train.shards.merge_counts`)
    and the tokenizer is byte-identical to training on the text they counted.
    ``pattern``, ``normalize``, ``cased``, ``unit`` and ``max_word_bytes`` come
    from the shards; one given (or set by the preset) that differs is a
    :class:`~toknz.errors.UsageError`, and so are ``field_name``, ``glob``,
    ``skip_invalid`` and ``superwords_at`` (which needs the text itself).

    ``engine="dask"`` counts the words on a Dask cluster (``pip install
    'toknz[dask]'``; :mod:`toknz.train.distributed`): ``scheduler`` is a
    ``distributed.Client``, a scheduler address or None (a local cluster);
    inputs may then be any path fsspec opens. The merges run here, and the
    tokenizer is the same as with ``engine="local"``.
    ``report``, when given, is filled in.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.txt"
    >>> _ = path.write_text("low lower lowest\nnewer newest\n" * 50)
    >>> tok = train([path], vocab_size=270, unit="line", threads=1)
    >>> tok.decode(tok.encode("lowest newer"))
    'lowest newer'
    >>> tok = train([path], preset="char-4k", vocab_size=300, threads=1)
    >>> max(len(tok.decode([i])) for i in range(259, tok.n_vocab)) <= 3
    True
    >>> tok = train([path], vocab_size=270, required_tokens=["newest"], threads=1)
    >>> [tok.decode([i]) for i in tok.encode("so newest")], len(tok.encode("newest"))
    (['s', 'o', ' newest'], 1)
    """
    settings = _settings(
        preset,
        vocab_size=vocab_size,
        pattern=pattern,
        normalize=normalize,
        special_tokens=special_tokens,
        min_frequency=min_frequency,
        max_token_length=max_token_length,
        max_token_chars=max_token_chars,
        cased=cased,
        unit=unit,
        superwords_at=superwords_at,
    )
    vocab_size = settings["vocab_size"]
    special_tokens = settings["special_tokens"]
    min_frequency = settings["min_frequency"]
    max_token_length = settings["max_token_length"]
    max_token_chars = settings["max_token_chars"]
    superwords_at = settings["superwords_at"]
    assert vocab_size is not None and special_tokens is not None and min_frequency is not None
    report = report if report is not None else TrainReport()
    _check_arguments(
        inputs,
        vocab_size,
        special_tokens,
        max_token_chars,
        superwords_at,
        from_counts=from_counts,
        field_name=field_name,
        glob=glob,
        skip_invalid=skip_invalid,
    )
    t0 = time.perf_counter()
    second_count = 0.0
    if from_counts is not None:
        from toknz.train.shards import merge_counts, resolve_against, shard_paths

        shards = shard_paths(from_counts)
        counts, meta = merge_counts(shards)
        resolve_against(
            meta,
            shards,
            preset=settings["preset"],
            max_word_bytes=max_word_bytes,
            pattern=pattern,
            normalize=normalize,
            cased=cased,
            unit=unit,
        )
        where = f"count shards {', '.join(shards[:3])}{'...' if len(shards) > 3 else ''}"
    else:
        from toknz.train.shards import count_corpus

        shards = []
        counts, meta = count_corpus(
            inputs,
            pattern=settings["pattern"],
            normalize=settings["normalize"],
            cased=settings["cased"],
            unit=settings["unit"],
            field_name=field_name,
            glob=glob,
            skip_invalid=skip_invalid,
            threads=threads,
            max_word_bytes=max_word_bytes,
            progress=progress,
            engine=engine,
            scheduler=scheduler,
        )
        where = f"{', '.join(meta.inputs[:3])}{'...' if len(meta.inputs) > 3 else ''}"
    regex = meta.pattern
    normalize = meta.normalize
    cased = meta.cased
    normalizer = _normalizer(normalize, cased=cased)
    t1 = time.perf_counter()
    if not len(counts):
        raise InputError(f"{where}: the corpus holds no text to train on")
    # The merges do not depend on the order of the words (ties are broken by
    # token ids), so the order in which workers returned their counts is moot,
    # and count shards (sorted by word) train to the same tokenizer.
    t2 = time.perf_counter()
    merge_bar = _merge_bar(vocab_size, progress)
    result = learn_merges(
        counts,
        superwords_at or vocab_size,
        special_tokens=special_tokens,
        min_frequency=min_frequency,
        max_token_length=max_token_length,
        max_token_chars=max_token_chars,
        on_progress=merge_bar,
    )
    if superwords_at is not None:
        paths = meta.inputs
        if "-" in paths:
            raise UsageError("superwords_at reads the input twice, so it cannot read stdin (-)")
        regex = superword_pattern(regex)
        compile_pattern(regex)
        t_count = time.perf_counter()
        pieces, _ = count_files(
            paths,
            Split(regex, "Isolated"),
            normalizer=normalizer,
            field_name=field_name,
            skip_invalid=skip_invalid,
            threads=threads,
            max_word_bytes=meta.max_word_bytes,
            unit=meta.unit,
            progress="counting superwords" if progress else None,
            engine=engine,
            scheduler=scheduler,
        )
        second_count = time.perf_counter() - t_count
        result = superword_merges(
            result,
            pieces,
            vocab_size,
            pattern=regex,
            min_frequency=min_frequency,
            max_token_length=max_token_length,
            on_progress=merge_bar,
        )
    terms, terms_file = _required_terms(required_tokens, settings["preset"])
    tok, outcome = _build(
        result, regex, normalizer, vocab_size, terms, max_token_length, max_token_chars
    )
    t3 = time.perf_counter()

    _fill_report(
        report,
        meta,
        counts,
        tok,
        result,
        outcome,
        settings,
        pattern=regex,
        shards=shards,
        terms_file=terms_file,
        threads=threads,
        seconds={
            "counting": round(t1 - t0 + second_count, 3),
            "merging": round(t3 - t2 - second_count, 3),
        },
    )
    return tok


def save_trained(
    tok: Tokenizer,
    out: str | os.PathLike[str],
    *,
    format: str = "json",
    report: TrainReport | None = None,
) -> list[Path]:
    """Write the tokenizer (``json`` or ``tiktoken``) and ``<out>.report.json``, each atomically.

    The old report goes first, so a run killed at any point leaves a tokenizer and
    a report that belong together, or a tokenizer with no report: never a new
    tokenizer beside an old report.
    """
    out_path = Path(out)
    start = time.perf_counter()
    report_path = out_path.with_name(out_path.name + ".report.json")
    if report is not None:
        try:
            report_path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            from toknz.formats._io import write_error

            raise write_error(report_path, exc) from None
    tok.save(out_path, format=format)
    written = [out_path]
    if report is not None:
        report.seconds["writing"] = round(time.perf_counter() - start, 3)
        report.seconds["total"] = round(
            sum(v for k, v in report.seconds.items() if k != "total"), 3
        )
        atomic_write(report_path, report.to_json().encode("utf-8"))
        written.append(report_path)
    return written
