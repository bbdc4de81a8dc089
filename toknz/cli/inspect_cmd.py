"""``toknz inspect``: describe a tokenizer, its merges, or check its vocabulary."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from toknz.cli._common import (
    _load,
    _parse_categories,
    _pattern_option,
)


@click.command("inspect")
@click.argument("tokenizer_name", metavar="NAME|PATH")
@_pattern_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--top",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="How many longest tokens to list.",
)
@click.option(
    "--merge-stats",
    is_flag=True,
    help="Add merge-list statistics: share of merges that are digits, whitespace, code "
    "punctuation or each script, and what cleaning the list skipped.",
)
@click.option(
    "--merges",
    "merge_limit",
    type=click.IntRange(1),
    default=None,
    help="Analyse only the first K (cleaned) merges (default: all).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="NAME=PATH",
    help="Sample text of a category (repeatable): report where it first becomes frequent "
    "in the merge order. Implies --merge-stats.",
)
@click.option(
    "--diff",
    "diff_name",
    default=None,
    metavar="NAME|PATH",
    help="Compare the merge list with another tokenizer's: shared prefix, first divergence, "
    "merges unique to each. Implies --merge-stats.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Vocabulary hygiene instead of the description: unreachable tokens, bytes that cannot "
    "be encoded, duplicate byte strings, holes in the id range, padding entries. Exits 1 "
    "when it finds a defect.",
)
def inspect(
    tokenizer_name: str,
    pattern: str | None,
    as_json: bool,
    top: int,
    merge_stats: bool,
    merge_limit: int | None,
    categories: Sequence[str],
    diff_name: str | None,
    check: bool,
) -> None:
    """Describe a tokenizer: sizes, pipeline, special tokens, longest tokens, byte and script statistics."""
    from toknz.describe import describe_merges, describe_tokenizer, format_merges, format_report

    if check:
        from toknz.analysis.hygiene import check_vocabulary, format_hygiene

        hygiene = check_vocabulary(_load(tokenizer_name, pattern))
        if as_json:
            click.echo(json.dumps(hygiene.to_dict(), ensure_ascii=False, indent=2))
        else:
            click.echo(format_hygiene(hygiene))
        if not hygiene.ok:
            raise SystemExit(1)  # defects found: a failing exit, as a linter's
        return
    parsed = _parse_categories(categories) if categories else {}
    tok = _load(tokenizer_name, pattern)
    report = describe_tokenizer(tok, top=top)
    if merge_stats or parsed or diff_name or merge_limit:
        other = _load(diff_name, None) if diff_name else None
        report["merges_report"] = describe_merges(
            tok, merges=merge_limit, categories=parsed or None, diff=other
        )
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo(format_report(report))
        if "merges_report" in report:
            click.echo(format_merges(report["merges_report"]))
