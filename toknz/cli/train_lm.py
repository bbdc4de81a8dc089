"""``toknz train-lm``: train a language model and report held-out bits per byte."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from toknz.cli._common import (
    _quiet_transformers,
)

_DEFAULT_LM_PARAMS = 5_000_000


@click.command("train-lm")
@click.argument("corpus", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--arch",
    type=click.Choice(["hierarchical", "bpe", "bytes"]),
    required=True,
    help="hierarchical (bytes/words), bpe (BPE ids) or bytes (one byte a position).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder: checkpoint/ (the model and trainer state) and log.json.",
)
@click.option(
    "--glob", default=None, help="Files to take from folders (default: all), e.g. '*.txt'."
)
@click.option(
    "--field", "field_name", default=None, help="Text field of .jsonl records / Parquet column."
)
@click.option(
    "--params",
    type=click.IntRange(1),
    default=None,
    help=f"Trainable parameters to size the model to [default: {_DEFAULT_LM_PARAMS:,}].",
)
@click.option(
    "--minutes",
    type=click.FloatRange(0.0, min_open=True),
    default=None,
    help="Stop after M minutes spent in training steps (evaluation and checkpoints not "
    "counted; the total over resumes).",
)
@click.option(
    "--steps",
    type=click.IntRange(1),
    default=None,
    help="Stop after S optimizer steps (the total over resumes).",
)
@click.option(
    "--batch-size", type=click.IntRange(1), default=16, show_default=True, help="Windows a step."
)
@click.option(
    "--seq-bytes",
    type=click.IntRange(1),
    default=512,
    show_default=True,
    help="UTF-8 bytes a window (cut at character boundaries).",
)
@click.option("--lr", type=click.FloatRange(0.0, min_open=True), default=1e-3, show_default=True)
@click.option(
    "--warmup-steps", type=click.IntRange(0), default=100, show_default=True, help="Linear warmup."
)
@click.option(
    "--eval-every",
    type=click.IntRange(0),
    default=200,
    show_default=True,
    help="Held-out evaluation every N steps (0: at the end only).",
)
@click.option(
    "--eval-windows",
    type=click.IntRange(1),
    default=None,
    help="Evaluate on the first N held-out windows only (default: all).",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(0),
    default=500,
    show_default=True,
    help="Checkpoint every N steps (0: at the end only).",
)
@click.option(
    "--heldout",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
    help="Fraction of each file's windows, from its end, held out (never trained on).",
)
@click.option("--resume", is_flag=True, help="Continue the checkpoint in the output folder.")
@click.option(
    "--backbone",
    default=None,
    metavar="MODEL_DIR",
    help="hierarchical: start the word backbone from this transformers causal LM folder.",
)
@click.option(
    "--backbone-layers",
    type=click.IntRange(1),
    default=None,
    help="Keep only the backbone's first N layers.",
)
@click.option(
    "--vocab-size",
    type=click.IntRange(257),
    default=4096,
    show_default=True,
    help="bpe: size of the tokenizer trained on the training windows.",
)
@click.option(
    "--gate-layer",
    type=click.IntRange(1),
    default=None,
    help="bytes: an MrT5 delete gate after this many layers.",
)
@click.option(
    "--target-deletion",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=None,
    help="bytes: the deletion rate the gate's controller holds (needs --gate-layer).",
)
@click.option(
    "--symmetric-controller",
    is_flag=True,
    help="bytes: let the gate's controller also pull the deletion rate down (not MrT5's).",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1... or auto.")
@click.option("--compile", "use_compile", is_flag=True, help="Run the model through torch.compile.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def train_lm(
    corpus: Sequence[str],
    arch: str,
    output: str,
    glob: str | None,
    field_name: str | None,
    params: int | None,
    minutes: float | None,
    steps: int | None,
    batch_size: int,
    seq_bytes: int,
    lr: float,
    warmup_steps: int,
    eval_every: int,
    eval_windows: int | None,
    checkpoint_every: int,
    heldout: float,
    resume: bool,
    backbone: str | None,
    backbone_layers: int | None,
    vocab_size: int,
    gate_layer: int | None,
    target_deletion: float | None,
    symmetric_controller: bool,
    device: str,
    use_compile: bool,
    seed: int,
    quiet: bool,
) -> None:
    """Train a language model on PATH files or folders and report held-out bits per byte.

    Every architecture reads the same windows of --seq-bytes UTF-8 bytes; the
    last --heldout fraction of each file's windows is held out and never
    trained on. Models are sized to --params trainable parameters, so runs of
    the three architectures with the same --params and --minutes compare.
    A killed run continues from its last checkpoint with --resume (same data
    options; the model comes from the checkpoint). Prints `BPB bits/byte`,
    the architecture, parameters, steps and training seconds on one line.
    """
    if backbone is None and params is None:
        params = _DEFAULT_LM_PARAMS

    from toknz.torch.lm_training import TrainLMOptions
    from toknz.torch.lm_training import train_lm as run_training

    options = TrainLMOptions(
        arch=arch,
        params=params,
        steps=steps,
        minutes=minutes,
        batch_size=batch_size,
        seq_bytes=seq_bytes,
        lr=lr,
        warmup_steps=warmup_steps,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        heldout=heldout,
        vocab_size=vocab_size,
        backbone=backbone,
        backbone_layers=backbone_layers,
        device=device,
        seed=seed,
        compile=use_compile,
        eval_windows=eval_windows,
        glob=glob,
        field_name=field_name,
        gate_layer=gate_layer,
        target_deletion=target_deletion,
        symmetric_controller=symmetric_controller,
    )

    def started(info: dict[str, Any]) -> None:
        if quiet:
            return
        click.echo(
            f"{arch}: {info['model_class']} with {info['params']:,} trainable parameters on "
            f"{info['device']}; training on {info['train_windows']:,} windows "
            f"({info['train_bytes'] / 1e6:.2f} MB), holding out {info['heldout_windows']:,} "
            f"({info['heldout_bytes'] / 1e6:.2f} MB)",
            err=True,
        )

    with _quiet_transformers(progress=not quiet and sys.stderr.isatty()):
        result = run_training(
            list(corpus),
            output,
            options,
            resume=resume,
            progress=not quiet and sys.stderr.isatty(),
            on_start=started,
        )
    click.echo(
        f"{result.heldout_bpb:.6f} bits/byte\t{arch}\t{result.params} params\t"
        f"{result.step} steps\t{result.seconds:.1f} s"
    )
    if not quiet:
        click.echo(f"wrote {output}/checkpoint and {output}/log.json", err=True)
