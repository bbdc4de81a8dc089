"""``toknz train``: train a byte-level BPE tokenizer."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from toknz.cli._common import (
    _engine_options,
    _reading_options,
    _text_settings_options,
)


@click.command("train")
@click.argument("corpus", nargs=-1, required=True, metavar="CORPUS...")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the tokenizer.",
)
@click.option(
    "--preset",
    default=None,
    metavar="NAME|PATH.toml",
    help="Settings from a preset (legal, financial, code, char-4k, char-8k, char-16k, or a "
    ".toml file); options given here override the preset's values.",
)
@click.option(
    "--vocab-size",
    default=None,
    type=click.IntRange(1, 2**31 - 1),
    help="Total size: special tokens + 256 bytes + merges (required unless the preset sets it).",
)
@click.option(
    "--special",
    multiple=True,
    metavar="TOKEN",
    help="A special token (repeatable); ids 0, 1, ... in order. Replaces the preset's list.",
)
@click.option(
    "--min-frequency",
    type=click.IntRange(0),
    default=None,
    help="Stop when the best pair is rarer than this [default: 0, or the preset's].",
)
@click.option(
    "--max-token-length", type=click.IntRange(2), default=None, help="Longest token, in bytes."
)
@click.option(
    "--max-token-chars",
    type=click.IntRange(1),
    default=None,
    help="Character-level BPE: longest token in Unicode characters; merges never cross "
    "whitespace or a letter/number/punctuation boundary.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "tiktoken"]), default="json", show_default=True
)
@click.option(
    "--superwords-at",
    type=click.IntRange(257),
    default=None,
    metavar="N",
    help="Train ordinary merges up to N tokens, then merges across the spaces between words "
    "(multi-word tokens, SuperBPE) up to --vocab-size [default: off, or the preset's].",
)
@click.option(
    "--required-tokens",
    default=None,
    metavar="FILE|none",
    help="Terms (one per line) that must each encode as one token, made reachable by merges "
    "[default: the preset's list]; `none` turns the preset's list off.",
)
@click.option(
    "--from-counts",
    is_flag=True,
    help="CORPUS arguments are count shards (.parquet from `toknz count`, or folders of them), "
    "added up; the split pattern, normalization, case and unit come from the shards. The "
    "tokenizer is the same as training on the text they counted.",
)
@_text_settings_options
@_reading_options
@_engine_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no summary.")
def train(
    corpus: Sequence[str],
    output: str,
    preset: str | None,
    vocab_size: int | None,
    pattern: str | None,
    normalize: str | None,
    cased: bool | None,
    special: Sequence[str],
    min_frequency: int | None,
    max_token_length: int | None,
    max_token_chars: int | None,
    fmt: str,
    field_name: str | None,
    glob: str | None,
    skip_invalid: bool,
    threads: int | None,
    max_word_bytes: int | None,
    unit: str | None,
    superwords_at: int | None,
    required_tokens: str | None,
    from_counts: bool,
    engine: str,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Train a byte-level BPE tokenizer on CORPUS files or folders (`-` is stdin).

    The merges are those the `tokenizers` BpeTrainer learns from the same
    words. Writes OUTPUT (tokenizer.json or .tiktoken) and OUTPUT.report.json.
    --preset fills in the options not given. Each required token (--required-tokens,
    or the preset's list) encodes as one token through merges appended to the
    trained ones; the summary and the report name the terms the split pattern
    cuts, which no token can hold. With --from-counts, CORPUS are count shards
    written by `toknz count`.
    """
    from toknz.train import TrainReport, save_trained
    from toknz.train import train as run_training

    report = TrainReport()
    tok = run_training(
        [] if from_counts else list(corpus),
        from_counts=list(corpus) if from_counts else None,
        preset=preset,
        vocab_size=vocab_size,
        pattern=pattern,
        normalize=normalize,
        cased=cased,
        special_tokens=list(special) or None,
        min_frequency=min_frequency,
        max_token_length=max_token_length,
        max_token_chars=max_token_chars,
        field_name=field_name,
        glob=glob,
        skip_invalid=skip_invalid,
        threads=threads,
        max_word_bytes=1024 if max_word_bytes is None else max_word_bytes,
        unit=unit,
        required_tokens=[] if required_tokens == "none" else required_tokens,
        engine=engine,
        scheduler=scheduler,
        superwords_at=superwords_at,
        progress=not quiet and sys.stderr.isatty(),
        report=report,
    )
    written = save_trained(tok, output, format=fmt, report=report)
    if not quiet:
        secs = report.seconds
        click.echo(
            f"trained {report.vocab_size:,} tokens ({report.merges:,} merges) on {report.input_bytes / 1e6:.1f} MB "
            f"({report.distinct_words:,} distinct words) in {secs.get('total', 0):.1f} s "
            f"(counting {secs['counting']:.1f} s, merging {secs['merging']:.1f} s); peak RSS {report.peak_rss_mb:.0f} MB",
            err=True,
        )
        if report.words_cut:
            click.echo(
                f"cut {report.words_cut:,} word(s) longer than {report.max_word_bytes} bytes into pieces "
                "(--max-word-bytes)",
                err=True,
            )
        if report.skipped_lines:
            click.echo(
                f"skipped {report.skipped_lines} line(s) that were not valid UTF-8", err=True
            )
        if report.counts_min_count > 1:
            click.echo(
                f"the count shards were pruned (--min-count {report.counts_min_count}): the "
                "merges can differ from training on the text",
                err=True,
            )
        if report.superwords_at:
            click.echo(
                f"superwords from {report.superwords_at:,} tokens on (merges across spaces)",
                err=True,
            )
        if report.required_tokens:
            click.echo(_required_summary(report), err=True)
        longest = sorted(
            range(tok.model.n_vocab), key=lambda i: -len(tok.model.token_bytes(i) or b"")
        )[:5]
        shown = ", ".join(
            repr((tok.model.token_bytes(i) or b"").decode("utf-8", "replace")) for i in longest
        )
        click.echo(f"longest tokens: {shown}", err=True)
        for path in written:
            click.echo(f"wrote {path}", err=True)


def _required_summary(report: Any) -> str:
    """A few lines on the required tokens of a training report."""
    items = report.required_tokens
    whole = [t for t in items if t["one_token"]]
    lines = [
        f"required tokens: {len(whole)} of {len(items)} encode as one token "
        f"({report.required_merges} merge(s) appended, {report.trained_merges_dropped} "
        "trained merge(s) dropped to make room)"
    ]
    for item in items:
        for form in item["forms"]:
            if form["status"] == "unreachable":
                lines.append(f"  {form['text']!r} cannot be one token: {form['reason']}")
    return "\n".join(lines)
