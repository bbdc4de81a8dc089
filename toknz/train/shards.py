"""Count shards: the word counts of a corpus on disk, merged, and trained from.

Training is two halves: counting the words of the text (:func:`count_corpus`,
the part that grows with the corpus and splits across machines) and learning
merges from the counts (small: it grows with the distinct words). A *count
shard* is the first half written down: a Parquet file with a ``word``
(binary: the raw bytes of a pre-tokenized, normalized word) and a ``count``
(int64) column, and the settings it was counted with in the Parquet
key-value metadata under ``toknz.counts`` (JSON, :class:`CountMeta`).

- :func:`count_corpus` counts text files (as :func:`toknz.train.train` does:
  both go through :func:`toknz.train.counting.count_files`);
- :func:`write_counts` / :func:`read_counts` write and read one shard;
- :func:`merge_counts` adds shards up (with the merge code of counting,
  :class:`toknz.train.counting._Accumulator`) and refuses shards counted with
  different settings;
- ``train(from_counts=[...])`` trains from shards: the tokenizer is
  byte-identical to training on the text, because the merges depend only on
  the words and their counts (not their order).

``min_count`` drops the words seen fewer times (smaller shards, inexact
merges); :func:`pruning_cost` measures what that changes.

pyarrow is imported only when a shard is read or written; without it these
raise :class:`~toknz.errors.UsageError` (``pip install 'toknz[dask]'``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from toknz.errors import InputError, UsageError
from toknz.pipeline.pretokenize import Split, compile_pattern, resolve_pattern
from toknz.train import _normalizer, _settings
from toknz.train.counting import MAX_WORD_BYTES, UNITS, WordTable, _Accumulator, count_files
from toknz.train.inputs import InputStats, expand_paths
from toknz.train.preset import Preset

__all__ = [
    "COUNTS_KEY",
    "SETTINGS",
    "CountMeta",
    "PruningCost",
    "count_corpus",
    "merge_counts",
    "prune",
    "pruning_cost",
    "read_counts",
    "resolve_against",
    "shard_paths",
    "write_counts",
]

#: The Parquet key-value metadata key that holds a shard's :class:`CountMeta` (JSON).
COUNTS_KEY = "toknz.counts"
#: Version of the shard layout; a reader refuses a newer one.
FORMAT_VERSION = 1
#: The settings that decide which words are counted: shards merge only when all agree.
SETTINGS = ("pattern", "normalize", "cased", "unit", "max_word_bytes")

_INSTALL = "pip install 'toknz[dask]'"


def _version() -> str:
    from toknz import __version__

    return __version__


@dataclass
class CountMeta:
    """How a count shard was counted (:data:`SETTINGS`) and from what.

    ``pattern`` is the split regex itself (``cl100k`` resolved), ``normalize``
    the Unicode form's name (``none``, ``nfc``, ``nfkc``), ``cased=False``
    means lower-cased after it. ``inputs`` are the files read (sorted, for a
    merged shard). ``min_count`` is the largest pruning threshold applied (0:
    none; see :func:`prune`) and ``pruned_words``/``pruned_total`` how many
    distinct words and occurrences it dropped.
    """

    pattern: str
    normalize: str = "none"
    cased: bool = True
    unit: str = "document"
    max_word_bytes: int = MAX_WORD_BYTES
    toknz_version: str = field(default_factory=_version)
    inputs: list[str] = field(default_factory=list)
    input_files: int = 0
    input_bytes: int = 0
    skipped_lines: int = 0
    words_cut: int = 0
    min_count: int = 0
    pruned_words: int = 0
    pruned_total: int = 0

    def settings(self) -> dict[str, Any]:
        """The counting settings (:data:`SETTINGS`)."""
        return {key: getattr(self, key) for key in SETTINGS}

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT_VERSION, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> CountMeta:
        """Parse :meth:`to_json`'s output; anything malformed is an :class:`InputError` naming ``where``."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}: the {COUNTS_KEY} metadata is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{where}: the {COUNTS_KEY} metadata is not a JSON object")
        version = data.pop("format", None)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise InputError(
                f"{where}: count shard format {version!r} is not one this toknz reads "
                f"(up to {FORMAT_VERSION}); count again or upgrade toknz"
            )
        types = {
            "pattern": str,
            "normalize": str,
            "cased": bool,
            "unit": str,
            "toknz_version": str,
            "inputs": list,
        }
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue  # written by a newer toknz; nothing here depends on it
            want = types.get(key, int)
            ok = isinstance(value, want) and (want is bool or not isinstance(value, bool))
            if key == "inputs":
                ok = ok and all(isinstance(v, str) for v in value)
            if not ok:
                raise InputError(
                    f"{where}: the {COUNTS_KEY} metadata has {key}={value!r}, expected {want.__name__}"
                )
            values[key] = value
        missing = [key for key in SETTINGS if key not in values]
        if missing:
            raise InputError(
                f"{where}: the {COUNTS_KEY} metadata lacks {', '.join(missing)}; "
                "it was not written by `toknz count`"
            )
        if values["unit"] not in UNITS:
            raise InputError(f"{where}: unknown unit {values['unit']!r} in the shard metadata")
        return cls(**values)


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.compute  # noqa: F401  (pa.compute)
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"count shards are Parquet files and need pyarrow ({_INSTALL})") from None
    return pa, pq


# ------------------------------------------------------------------ counting


def count_corpus(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    pattern: str | None = None,
    normalize: str | None = None,
    cased: bool | None = None,
    unit: str | None = None,
    field_name: str | None = None,
    glob: str | None = None,
    skip_invalid: bool = False,
    threads: int | None = None,
    max_word_bytes: int = MAX_WORD_BYTES,
    preset: str | os.PathLike[str] | Preset | None = None,
    progress: bool = False,
    engine: str = "local",
    scheduler: Any = None,
) -> tuple[WordTable, CountMeta]:
    """Count the words of ``inputs`` as :func:`toknz.train.train` does; the counting half of training.

    The arguments mean what they mean to :func:`~toknz.train.train`
    (``pattern``, ``normalize``, ``cased`` and ``unit`` left at ``None`` come
    from ``preset``, else the defaults). Returns the counts and the
    :class:`CountMeta` to write beside them (:func:`write_counts`).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.txt"
    >>> _ = path.write_text("low lower low")
    >>> table, meta = count_corpus([path], pattern="gpt2", threads=1)
    >>> sorted(table.to_dict().items()), meta.input_bytes, meta.unit
    ([(b' low', 1), (b' lower', 1), (b'low', 1)], 13, 'document')
    """
    settings = _settings(
        preset, need_vocab=False, pattern=pattern, normalize=normalize, cased=cased, unit=unit
    )
    unit = settings["unit"]
    if unit not in UNITS:
        raise UsageError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}")
    regex = resolve_pattern(settings["pattern"])
    compile_pattern(regex)
    normalize = str(settings["normalize"]).lower()
    cased = bool(settings["cased"])
    normalizer = _normalizer(normalize, cased=cased)
    if engine == "dask":
        from toknz.train.distributed import expand_inputs

        paths = expand_inputs(inputs, glob)
    else:
        paths = expand_paths([str(p) for p in inputs], glob)
    stats = InputStats()
    table, words_cut = count_files(
        paths,
        Split(regex, "Isolated"),
        normalizer=normalizer,
        field_name=field_name,
        skip_invalid=skip_invalid,
        threads=threads,
        max_word_bytes=max_word_bytes,
        unit=unit,
        stats=stats,
        progress="counting" if progress else None,
        engine=engine,
        scheduler=scheduler,
    )
    meta = CountMeta(
        pattern=regex,
        normalize=normalize,
        cased=cased,
        unit=unit,
        max_word_bytes=max_word_bytes,
        inputs=paths,
        input_files=stats.files,
        input_bytes=stats.bytes,
        skipped_lines=stats.skipped_lines,
        words_cut=words_cut,
    )
    return table, meta


# ------------------------------------------------------------------ pruning


def prune(table: WordTable, min_count: int) -> tuple[WordTable, int, int]:
    """The words of ``table`` seen at least ``min_count`` times, the distinct words dropped and their total count.

    ``min_count`` 0 or 1 keeps everything. Pruning makes shards smaller and
    the merges inexact: a pair rare in every word that holds it can still be
    frequent over all of them (:func:`pruning_cost` measures it).

    >>> kept, dropped, total = prune(WordTable.from_counts({b"a": 3, b"bc": 1, b"d": 2}), 2)
    >>> kept.to_dict(), dropped, total
    ({b'a': 3, b'd': 2}, 1, 1)
    """
    if min_count <= 1:
        return table, 0, 0
    counts = np.asarray(table.counts, dtype=np.int64)
    keep = np.flatnonzero(counts >= min_count)
    dropped = len(table) - int(keep.shape[0])
    dropped_total = int(counts.sum()) - int(counts[keep].sum())
    if not dropped:
        return table, 0, 0
    starts = np.asarray(table.offsets[:-1], dtype=np.int64)[keep]
    lengths = np.asarray(table.offsets[1:], dtype=np.int64)[keep] - starts
    offsets = np.zeros(keep.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
    arena = np.ascontiguousarray(table.arena[gather], dtype=np.uint8)
    return WordTable(arena, offsets, counts[keep].copy()), dropped, dropped_total


def _pruned(table: WordTable, meta: CountMeta, min_count: int) -> tuple[WordTable, CountMeta]:
    if min_count <= 1:
        return table, meta
    table, dropped, dropped_total = prune(table, min_count)
    return table, replace(
        meta,
        min_count=max(meta.min_count, min_count),
        pruned_words=meta.pruned_words + dropped,
        pruned_total=meta.pruned_total + dropped_total,
    )


@dataclass
class PruningCost:
    """What ``min_count`` pruning changes in the merges learned (:func:`pruning_cost`)."""

    min_count: int
    vocab_size: int
    words: int
    words_kept: int
    merges: int  # learned from all words
    merges_pruned: int  # learned from the kept words
    #: Index of the first merge that differs (or that one run lacks); ``None``: identical lists.
    first_difference: int | None
    #: Positions ``i`` where the two lists' merge ``i`` differs (a missing one counts).
    differing: int
    #: Merges of the exact run that the pruned run never learns.
    missing: int

    @property
    def exact(self) -> bool:
        return self.first_difference is None


def pruning_cost(
    table: WordTable,
    vocab_size: int,
    min_count: int,
    *,
    special_tokens: Sequence[str] = (),
    min_frequency: int = 0,
    max_token_length: int | None = None,
    max_token_chars: int | None = None,
) -> PruningCost:
    """Learn merges from ``table`` with and without dropping words seen fewer than ``min_count`` times.

    Merges are compared as pairs of byte strings, so ids need not agree.

    >>> words = WordTable.from_counts({b"hello": 9, b"help": 1, b"yelp": 1})
    >>> cost = pruning_cost(words, 262, 2)
    >>> cost.words_kept, cost.first_difference is not None
    (1, True)
    """
    from toknz.train.trainer import learn_merges

    kept, _, _ = prune(table, min_count)
    options: dict[str, Any] = {
        "special_tokens": special_tokens,
        "min_frequency": min_frequency,
        "max_token_length": max_token_length,
        "max_token_chars": max_token_chars,
    }

    def pairs(words: WordTable) -> list[tuple[bytes, bytes]]:
        if not len(words):
            return []
        result = learn_merges(words, vocab_size, **options)
        return [(result.tokens[a], result.tokens[b]) for a, b, _ in result.merges]

    exact = pairs(table)
    approx = pairs(kept)
    longest = max(len(exact), len(approx))
    differ = [
        i for i in range(longest) if i >= len(exact) or i >= len(approx) or exact[i] != approx[i]
    ]
    return PruningCost(
        min_count=min_count,
        vocab_size=vocab_size,
        words=len(table),
        words_kept=len(kept),
        merges=len(exact),
        merges_pruned=len(approx),
        first_difference=differ[0] if differ else None,
        differing=len(differ),
        missing=len(set(exact) - set(approx)),
    )


# ------------------------------------------------------------------ reading and writing


def write_counts(
    table: WordTable,
    path: str | os.PathLike[str],
    *,
    meta: CountMeta,
    min_count: int = 0,
) -> CountMeta:
    """Write ``table`` as a count shard at ``path``, atomically; return the metadata written.

    Words are sorted by their bytes, so the file depends only on the words,
    their counts and ``meta``. ``min_count`` drops the words seen fewer times
    first (:func:`prune`), and ``meta`` records it.
    """
    pa, pq = _pyarrow()
    table, meta = _pruned(table, meta, min_count)
    n = len(table)
    offsets = np.asarray(table.offsets, dtype=np.int64)
    arena = np.ascontiguousarray(table.arena, dtype=np.uint8)
    small = int(offsets[-1]) < 2**31
    kind = pa.binary() if small else pa.large_binary()
    offs: np.ndarray = offsets.astype(np.int32) if small else offsets
    words = pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offs), pa.py_buffer(arena)])
    counts = pa.array(np.asarray(table.counts, dtype=np.int64), type=pa.int64())
    order = pa.compute.sort_indices(words) if n > 1 else None
    if order is not None:
        words, counts = words.take(order), counts.take(order)
    schema = pa.schema(
        [pa.field("word", kind, nullable=False), pa.field("count", pa.int64(), nullable=False)],
        metadata={COUNTS_KEY: meta.to_json()},
    )
    data = pa.Table.from_arrays([words, counts], schema=schema)
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would stay on the shard, which other
    # machines and users are meant to read; "x" creates it with the umask's mode.
    tmp = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as f:
            pq.write_table(data, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return meta


def read_counts(path: str | os.PathLike[str]) -> tuple[WordTable, CountMeta]:
    """Read a count shard written by :func:`write_counts`.

    A missing file, a file that is not Parquet, one without the ``word`` and
    ``count`` columns or the ``toknz.counts`` metadata, or with a null or a
    negative count is an :class:`~toknz.errors.InputError` naming the file.
    The words come in the file's order; a word written twice (not by
    :func:`write_counts`) stays twice, and :func:`merge_counts` adds its counts.
    """
    pa, pq = _pyarrow()
    where = str(path)
    if not os.path.exists(path):
        raise InputError(f"{where}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{where}: is a folder, expected a count shard (.parquet)")
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except Exception as exc:
        raise InputError(
            f"{where}: not a count shard: not a readable Parquet file ({exc}); "
            "make one with `toknz count`"
        ) from None
    raw_meta = (schema.metadata or {}).get(COUNTS_KEY.encode())
    if raw_meta is None:
        raise InputError(
            f"{where}: not a count shard: no {COUNTS_KEY} metadata (the counting settings); "
            "make one with `toknz count`"
        )
    meta = CountMeta.from_json(raw_meta, where)
    for name in ("word", "count"):
        if name not in schema.names:
            raise InputError(
                f"{where}: no column {name!r} (columns: {', '.join(schema.names) or 'none'}); "
                "a count shard has 'word' and 'count'"
            )
    word_type, count_type = schema.field("word").type, schema.field("count").type
    if not (
        pa.types.is_binary(word_type)
        or pa.types.is_large_binary(word_type)
        or pa.types.is_string(word_type)
        or pa.types.is_large_string(word_type)
    ):
        raise InputError(f"{where}: column 'word' is {word_type}, expected binary")
    if not pa.types.is_integer(count_type):
        raise InputError(f"{where}: column 'count' is {count_type}, expected an integer type")
    try:
        data = pf.read(columns=["word", "count"])
    except Exception as exc:
        raise InputError(f"{where}: cannot read the counts ({exc})") from None
    words = data.column("word").cast(pa.large_binary()).combine_chunks()
    count_col = data.column("count")
    if words.null_count or count_col.null_count:
        raise InputError(f"{where}: a null word or count; a count shard has none")
    if pa.types.is_unsigned_integer(count_type) and len(count_col):
        top = pa.compute.max(count_col).as_py()
        if top is not None and top >= 2**63:
            raise InputError(f"{where}: a count of {top} does not fit in 64 bits")
    counts = count_col.cast(pa.int64()).to_numpy().astype(np.int64, copy=True)
    if counts.shape[0] and int(counts.min()) < 0:
        i = int(np.argmin(counts))
        raise InputError(
            f"{where}: row {i} has a negative count ({int(counts[i])}); counts are never negative"
        )
    n = len(words)
    _, off_buf, data_buf = words.buffers()
    if off_buf is None:
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        offsets = np.frombuffer(off_buf, dtype=np.int64)[words.offset : words.offset + n + 1]
    offsets = offsets.astype(np.int64, copy=True)
    start, end = int(offsets[0]), int(offsets[-1])
    arena = (
        np.frombuffer(data_buf, dtype=np.uint8)[start:end].copy()
        if data_buf is not None and end > start
        else np.zeros(0, dtype=np.uint8)
    )
    offsets -= start
    return WordTable(arena, offsets, counts), meta


def shard_paths(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Shard files: each path as given, a folder replaced by its ``*.parquet`` files (sorted)."""
    if not paths:
        raise UsageError("no count shards given")
    out: list[str] = []
    for item in paths:
        if os.path.isdir(item):
            out.extend(expand_paths([str(item)], "*.parquet"))
        else:
            out.append(str(item))
    return out


def merge_counts(
    paths: Sequence[str | os.PathLike[str]], *, min_count: int = 0
) -> tuple[WordTable, CountMeta]:
    """Add up the count shards ``paths`` (files, or folders of ``*.parquet``).

    The result does not depend on the order of the shards: the same words
    with the same counts (:func:`write_counts` sorts them), and metadata with
    the inputs sorted and the sizes summed. Shards counted with different
    :data:`SETTINGS` are a :class:`~toknz.errors.UsageError` naming both
    files. ``min_count`` prunes the sum (:func:`prune`).
    """
    files = shard_paths(paths)
    total = _Accumulator()
    first: tuple[str, CountMeta] | None = None
    metas: list[CountMeta] = []
    for path in files:
        table, meta = read_counts(path)
        if first is None:
            first = (path, meta)
        else:
            theirs, mine = first[1].settings(), meta.settings()
            for key in SETTINGS:
                if theirs[key] != mine[key]:
                    raise UsageError(
                        f"count shards {first[0]} and {path} were counted with different "
                        f"{key} ({theirs[key]!r} and {mine[key]!r}); count them with the same "
                        "settings to merge them"
                    )
        metas.append(meta)
        total.add(table)
        del table
    assert first is not None
    base = first[1]
    merged = replace(
        base,
        toknz_version=", ".join(sorted({m.toknz_version for m in metas})),
        inputs=sorted(p for m in metas for p in m.inputs),
        input_files=sum(m.input_files for m in metas),
        input_bytes=sum(m.input_bytes for m in metas),
        skipped_lines=sum(m.skipped_lines for m in metas),
        words_cut=sum(m.words_cut for m in metas),
        min_count=max(m.min_count for m in metas),
        pruned_words=sum(m.pruned_words for m in metas),
        pruned_total=sum(m.pruned_total for m in metas),
    )
    return _pruned(total.result(), merged, min_count)


def resolve_against(
    meta: CountMeta,
    shards: Sequence[str],
    *,
    preset: Preset | None,
    max_word_bytes: int = MAX_WORD_BYTES,
    **given: Any,
) -> dict[str, Any]:
    """The counting settings to train with from shards: ``meta``'s, checked against the caller's.

    ``given`` holds ``pattern``, ``normalize``, ``cased`` and ``unit`` as the
    caller passed them (``None``: not given). A value given, or set by
    ``preset``, that differs from the shards' is a
    :class:`~toknz.errors.UsageError`; so is a ``max_word_bytes`` other than
    the default that differs.
    """
    named = ", ".join(shards[:3]) + ("..." if len(shards) > 3 else "")
    theirs = meta.settings()

    def same(key: str, value: Any) -> bool:
        if key == "pattern":
            return bool(resolve_pattern(value) == theirs["pattern"])
        if key == "normalize":
            return bool(str(value).lower() == theirs["normalize"])
        if key == "cased":
            return bool(value) == theirs["cased"]
        return bool(value == theirs[key])

    for key in ("pattern", "normalize", "cased", "unit"):
        value = given.get(key)
        source = f"{key} {value!r} was given"
        if value is None and preset is not None and getattr(preset, key) is not None:
            value = getattr(preset, key)
            source = f"preset {preset.name} sets {key} {value!r}"
        if value is not None and not same(key, value):
            raise UsageError(
                f"{source}, but the count shards ({named}) were counted with {key} "
                f"{theirs[key]!r}; leave it out to train with the shards' settings, or count again"
            )
    if max_word_bytes != MAX_WORD_BYTES and max_word_bytes != meta.max_word_bytes:
        raise UsageError(
            f"max_word_bytes {max_word_bytes} was given, but the count shards ({named}) were "
            f"counted with {meta.max_word_bytes}"
        )
    return theirs
