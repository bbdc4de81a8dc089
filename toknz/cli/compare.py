"""``toknz compare``: compare tokenizers on corpora."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click


def _spread_greedy(args: Sequence[str], names: tuple[str, ...]) -> list[str]:
    """``--corpus A B --json x`` -> ``--corpus A --corpus B --json x``: a greedy option takes
    every following argument up to the next option (``-`` counts as a value)."""
    out: list[str] = []
    current: str | None = None
    taken = 0
    for i, arg in enumerate(args):
        if arg == "--":
            out.extend(args[i:])
            break
        flag = arg.split("=", 1)[0]
        if flag in names:
            current, taken = flag, int("=" in arg)
            out.append(arg)
        elif current is not None and (arg == "-" or not arg.startswith("-")):
            if taken:
                out.append(current)
            out.append(arg)
            taken += 1
        else:
            current = None
            out.append(arg)
    return out


class _GreedyCommand(click.Command):
    """A command whose ``--corpus`` takes every path that follows it, up to the next option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _spread_greedy(args, ("--corpus",)))


@click.command("compare", cls=_GreedyCommand)
@click.argument("tokenizers", nargs=-1, required=True, metavar="TOKENIZER...")
@click.option(
    "--corpus",
    "corpora",
    multiple=True,
    required=True,
    metavar="PATH...",
    help="Text files or folders, one corpus each; takes every path up to the next option.",
)
@click.option(
    "--terms",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Domain terms, one per line: report tokens per term (each as ' ' + term).",
)
@click.option(
    "--baseline",
    default=None,
    metavar="TOKENIZER",
    help="The tokenizer the others are compared with [default: the first].",
)
@click.option(
    "--unit",
    type=click.Choice(["document", "line"]),
    default="document",
    show_default=True,
    help="A document is a whole file (or JSON record), or each non-empty line.",
)
@click.option(
    "--field", "field_name", default=None, help="Text field of .jsonl records / Parquet column."
)
@click.option(
    "--glob", default=None, help="Files to take from folders (default: all), e.g. '*.txt'."
)
@click.option(
    "--skip-invalid", is_flag=True, help="Drop lines that are not valid UTF-8 instead of failing."
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="OUT.json",
    help="Write every measurement (and each term's tokens) as JSON.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="OUT.png",
    help="Write a grouped bar chart per corpus (.png, .svg or .pdf; needs matplotlib).",
)
@click.option(
    "--plot-metric",
    type=click.Choice(["tokens-per-char", "vs-baseline"]),
    default="tokens-per-char",
    show_default=True,
    help="What --plot draws: tokens per character, or % fewer tokens than the baseline.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Encoding threads (default: all cores).",
)
@click.option("--quiet", "-q", is_flag=True, help="Only the table.")
def compare(
    tokenizers: Sequence[str],
    corpora: Sequence[str],
    terms: str | None,
    baseline: str | None,
    unit: str,
    field_name: str | None,
    glob: str | None,
    skip_invalid: bool,
    json_out: str | None,
    plot: str | None,
    plot_metric: str,
    threads: int | None,
    quiet: bool,
) -> None:
    """Compare tokenizers on corpora: tokens, bytes and characters per token, words split
    into 3+ tokens, % fewer tokens than the baseline, and tokens per domain term.

    TOKENIZER is a known name (see `toknz fetch --list`) or a tokenizer file
    (tokenizer.json from toknz or Hugging Face, .tiktoken). Example:
    `toknz compare o200k_base cl100k_base my.json --corpus en.txt code/ --terms terms.txt`.
    Prints one row per tokenizer and corpus (docs/compare.md defines each column).
    """
    from toknz.analysis.compare import (
        compare_tokenizers,
        format_compare,
        read_terms,
        write_plot,
    )
    from toknz.plotting import check_plot_path

    if plot is not None:
        check_plot_path(plot)
    report = compare_tokenizers(
        list(tokenizers),
        list(corpora),
        read_terms(terms) if terms is not None else None,
        baseline=baseline,
        unit=unit,
        field_name=field_name,
        glob=glob,
        skip_invalid=skip_invalid,
        threads=threads,
    )
    click.echo(format_compare(report))
    if json_out is not None:
        from toknz.formats._io import atomic_write

        atomic_write(
            json_out,
            (json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        )
    if plot is not None:
        write_plot(report, plot, metric=plot_metric.replace("-", "_"))
    if not quiet:
        size = sum(c.bytes for c in report.corpora)
        click.echo(
            f"compared {len(report.tokenizers)} tokenizer(s) on {len(report.corpora)} corpus(es) "
            f"({size / 1e6:.1f} MB, unit: {report.unit}) in {report.seconds:.1f} s",
            err=True,
        )
        for path in (json_out, plot):
            if path is not None:
                click.echo(f"wrote {path}", err=True)
