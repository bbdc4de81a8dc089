"""``toknz dynamic``: dynamic tokenization of batches, and the length reduction."""

from __future__ import annotations

import json

import click

from toknz.cli._common import (
    _load,
    _pattern_option,
    _read_text,
    _tokenizer_option,
)


@click.command("dynamic")
@_tokenizer_option
@_pattern_option
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Documents (non-empty lines) merged together.",
)
@click.option(
    "--budget",
    type=click.IntRange(min=0),
    default=None,
    help="New tokens per batch at most (default: until no pair reaches --min-count).",
)
@click.option(
    "--min-count",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Never merge a pair occurring fewer times in the batch.",
)
@click.option(
    "--boundary",
    type=click.Choice(["pretoken", "word", "word+hyphen"]),
    default="pretoken",
    show_default=True,
    help="What a merged token may not cross.",
)
@click.option("-o", "--output", default=None, metavar="PATH", help="Write the results as JSON.")
def dynamic(
    tokenizer_name: str,
    pattern: str | None,
    files: tuple[str, ...],
    batch_size: int,
    budget: int | None,
    min_count: int,
    boundary: str,
    output: str | None,
) -> None:
    """Merge frequent token pairs within batches of each FILE and report the length reduction.

    Each non-empty line is a document; documents are merged --batch-size at a
    time (dynamic tokenization, see toknz.dynamic).
    """
    texts = {path: _read_text(path) for path in files}  # read all first: errors before work
    tok = _load(tokenizer_name, pattern)
    from toknz.dynamic import DynamicOptions

    opts = DynamicOptions(budget=budget, min_count=min_count, boundary=boundary)
    results = []
    for path, text in texts.items():
        docs = [line for line in text.split("\n") if line.strip()]
        before = after = merges = 0
        for i in range(0, len(docs), batch_size):
            batch = tok.encode_batch(docs[i : i + batch_size], dynamic=opts)
            before += batch.n_before
            after += batch.n_after
            merges += len(batch.merges)
        reduction = 1.0 - after / before if before else 0.0
        click.echo(
            f"{path}: {len(docs)} documents, {before} tokens -> {after} "
            f"({100 * reduction:.1f} % fewer, {merges} merges)"
        )
        results.append(
            {
                "file": path,
                "documents": len(docs),
                "tokens_before": before,
                "tokens_after": after,
                "reduction": round(reduction, 6),
                "merges": merges,
            }
        )
    if output is not None:
        from toknz.formats._io import atomic_write

        report = {
            "tokenizer": tokenizer_name,
            "batch_size": batch_size,
            "budget": budget,
            "min_count": min_count,
            "boundary": boundary,
            "files": results,
        }
        atomic_write(output, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
