"""``toknz mixture``: infer the data mixture a BPE tokenizer was trained on."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from toknz.cli._common import (
    _engine_options,
    _load,
    _parse_categories,
    _pattern_option,
    _tokenizer_option,
)


def _bar(share: float, width: int = 40) -> str:
    cells = share * width
    full = int(cells)
    part = " ▏▎▍▌▋▊▉"[int((cells - full) * 8)]
    return ("█" * full + (part if full < width else "")).rstrip()


def _write_plot(path: str, result: Any) -> None:
    from toknz.plotting import pyplot, save_figure

    plt = pyplot(path)
    ranked = result.ranked()
    names = [n for n, _ in ranked][::-1]
    shares = [100 * w for _, w in ranked][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    xerr = None
    if result.intervals:
        xerr = [
            [
                max(0.0, s - 100 * result.intervals[n][0])
                for n, s in zip(names, shares, strict=True)
            ],
            [
                max(0.0, 100 * result.intervals[n][1] - s)
                for n, s in zip(names, shares, strict=True)
            ],
        ]
    ax.barh(names, shares, xerr=xerr, color="#4c72b0", capsize=3)
    ax.set_xlabel("share of training bytes (%)")
    ax.set_title(f"inferred mixture of {result.tokenizer} ({result.merges_used:,} merges)")
    fig.tight_layout()
    save_figure(fig, path)


@click.command("mixture")
@_tokenizer_option
@_pattern_option
@click.option(
    "--category",
    "categories",
    multiple=True,
    required=True,
    metavar="NAME=PATH",
    help="A category and its sample text: a file or folder (repeatable; at least two).",
)
@click.option(
    "--merges",
    type=int,
    default=None,
    help="How many merges to use (default: the first 3,000, or all when fewer; "
    "the LP grows with this: 30,000 on noisy samples is far slower).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the result as JSON (weights by bytes, slack, constraints, time, skipped merges).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a bar chart (.png, .svg or .pdf).",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Resample each category's words N times for a 95% sampling interval per weight "
    "(it does not cover the error when the training text differs from the samples: see the "
    "fit warning).",
)
@click.option(
    "--method",
    type=click.Choice(["plain", "tokens", "early", "supported", "trimmed", "mass"]),
    default="plain",
    show_default=True,
    help="How the weights are estimated: plain is the paper's LP; the others (a merge "
    "competing only with pairs that make a token, early merges only, merges the samples "
    "support, trimmed, mass) are compared under shift in docs/mixture.md.",
)
@click.option(
    "--unit",
    type=click.Choice(["document", "line", "auto"]),
    default="document",
    show_default=True,
    help="Count the samples as whole documents, or each line on its own as `tokenizers` "
    "Tokenizer.train(files) does; auto: both, keeping the better-fitting one.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --bootstrap.")
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Threads or processes for counting words (default: all cores).",
)
@_engine_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no summary.")
def mixture(
    tokenizer_name: str,
    pattern: str | None,
    categories: Sequence[str],
    merges: int | None,
    output: str | None,
    plot: str | None,
    bootstrap: int,
    seed: int,
    method: str,
    unit: str,
    threads: int | None,
    engine: str,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Infer the data mixture a BPE tokenizer was trained on, from sample text per category.

    Replays the tokenizer's merges over each category's sample (normalized and
    pre-tokenized as the tokenizer does) and solves a linear program for the
    categories' shares (Hayase et al., 2024). Prints the shares of training
    bytes, largest first, and a one-line warning when the samples do not
    explain the merges (the fit diagnostic): then the training text likely
    came from other sources than the samples, and the shares can be far off
    however tight the --bootstrap intervals, which only measure sampling noise.
    """
    from toknz.analysis import infer_mixture
    from toknz.errors import UsageError

    parsed = _parse_categories(categories)
    if len(parsed) < 2:
        raise UsageError(
            f"give at least two categories with --category NAME=PATH (got {len(parsed)})"
        )
    if merges is not None and merges < 1:
        raise UsageError(f"--merges must be at least 1, got {merges}")
    if plot is not None and not plot.lower().endswith((".png", ".svg", ".pdf")):
        raise UsageError(f"--plot {plot}: use a .png, .svg or .pdf file name")
    tok = _load(tokenizer_name, pattern)
    result = infer_mixture(
        tok,
        parsed,
        merges=merges,
        threads=threads,
        bootstrap=bootstrap,
        seed=seed,
        method=method,
        unit=unit,
        engine=engine,
        scheduler=scheduler,
        progress=not quiet and sys.stderr.isatty(),
    )
    width = max(len(n) for n in parsed)
    for name, share in result.ranked():
        interval = ""
        if result.intervals:
            lo, hi = result.intervals[name]
            interval = f"  sampling [{100 * lo:5.1f}, {100 * hi:5.1f}]"
        click.echo(f"{name:<{width}}  {100 * share:6.2f}%{interval}  {_bar(share)}")
    if result.warning:
        click.echo(result.warning, err=True)
    if output is not None:
        from toknz.formats._io import atomic_write

        atomic_write(
            output,
            (json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        )
    if plot is not None:
        _write_plot(plot, result)
    if not quiet:
        skipped = result.merge_report["skipped"]
        click.echo(
            f"{result.tokenizer}: {result.merges_used:,} merges ({result.steps_active:,} seen in the samples), "
            f"method {result.method}, unit {result.unit}, fit score {result.fit['score']:.3f} "
            f"(warns above {result.fit['threshold']:.2f}), "
            f"slack {result.slack:.3g}, {result.constraints:,} constraints in {result.rounds} rounds, "
            f"{result.seconds['total']:.1f} s"
            + (
                f"; skipped merges: {', '.join(f'{k} {v:,}' for k, v in skipped.items())}"
                if skipped
                else ""
            ),
            err=True,
        )
        if not result.converged:
            click.echo("warning: the LP stopped before every constraint held", err=True)
        if result.intervals:
            click.echo(
                "intervals: 95% bootstrap intervals of sampling noise only; they do not cover "
                "a difference between the training text and the samples (distribution shift)",
                err=True,
            )
        for path in (output, plot):
            if path is not None:
                click.echo(f"wrote {path}", err=True)
