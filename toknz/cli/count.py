"""``toknz count``: count the words of a corpus into a count shard."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import click

from toknz.cli._common import (
    _engine_options,
    _reading_options,
    _text_settings_options,
)


@click.command("count")
@click.argument("corpus", nargs=-1, required=True, metavar="CORPUS...")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the count shard (.parquet).",
)
@click.option(
    "--merge",
    is_flag=True,
    help="CORPUS arguments are count shards (or folders of them) to add up into OUTPUT.",
)
@click.option(
    "--preset",
    default=None,
    metavar="NAME|PATH.toml",
    help="Take the pattern, normalization, case and unit from a preset (see `toknz train`).",
)
@click.option(
    "--min-count",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Drop the words seen fewer times (smaller shards; the merges trained from them can "
    "differ from the exact ones).",
)
@_text_settings_options
@_reading_options
@_engine_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no summary.")
def count(
    corpus: Sequence[str],
    output: str,
    merge: bool,
    preset: str | None,
    pattern: str | None,
    normalize: str | None,
    cased: bool | None,
    unit: str | None,
    field_name: str | None,
    glob: str | None,
    skip_invalid: bool,
    threads: int | None,
    max_word_bytes: int | None,
    min_count: int,
    engine: str,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Count the words of CORPUS files or folders into a count shard (Parquet).

    The shard holds each distinct word (after the split pattern and
    normalization) with its count, and the settings in its metadata. Count
    parts of a corpus anywhere, add the shards up with --merge, and train with
    `toknz train --from-counts SHARD...`: the tokenizer is the one training on
    the whole text gives.
    """
    from toknz.errors import UsageError
    from toknz.train import shards

    start = time.perf_counter()
    if merge:
        given = {
            "--preset": preset,
            "--pattern": pattern,
            "--normalize": normalize,
            "--cased/--uncased": cased,
            "--unit": unit,
            "--field": field_name,
            "--glob": glob,
            "--skip-invalid": skip_invalid or None,
            "--threads": threads,
            "--max-word-bytes": max_word_bytes,
            "--engine": None if engine == "local" else engine,
            "--scheduler": scheduler,
        }
        for name, value in given.items():
            if value is not None:
                raise UsageError(
                    f"{name} is a counting setting; --merge takes the shards' own settings"
                )
        table, meta = shards.merge_counts(list(corpus))
    else:
        table, meta = shards.count_corpus(
            list(corpus),
            preset=preset,
            pattern=pattern,
            normalize=normalize,
            cased=cased,
            unit=unit,
            field_name=field_name,
            glob=glob,
            skip_invalid=skip_invalid,
            threads=threads,
            max_word_bytes=1024 if max_word_bytes is None else max_word_bytes,
            engine=engine,
            scheduler=scheduler,
            progress=not quiet and sys.stderr.isatty(),
        )
    pruned_before = meta.pruned_words
    meta = shards.write_counts(table, output, meta=meta, min_count=min_count)
    if not quiet:
        dropped = meta.pruned_words - pruned_before
        kept = len(table) - dropped
        what = f"{len(corpus)} shard(s)" if merge else f"{meta.input_bytes / 1e6:.1f} MB"
        click.echo(
            f"counted {kept:,} distinct words ({int(table.counts.sum()):,} in all) from {what} "
            f"in {time.perf_counter() - start:.1f} s",
            err=True,
        )
        if min_count > 1:
            click.echo(
                f"dropped {dropped:,} distinct word(s) seen fewer than {min_count} times "
                "(--min-count)",
                err=True,
            )
        if meta.words_cut:
            click.echo(
                f"cut {meta.words_cut:,} word(s) longer than {meta.max_word_bytes} bytes into "
                "pieces (--max-word-bytes)",
                err=True,
            )
        if meta.skipped_lines:
            click.echo(f"skipped {meta.skipped_lines} line(s) that were not valid UTF-8", err=True)
        click.echo(f"wrote {output}", err=True)
