"""``toknz sample``: sample text byte by byte from a language model (or score a file)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from toknz.cli._common import (
    _arg_bytes,
    _file_bytes,
    _quiet_transformers,
)


@click.command("sample")
@click.argument("model_name", metavar="MODEL")
@click.argument("prompt", required=False, default=None, metavar="[PROMPT]")
@click.option(
    "--prompt-file",
    default=None,
    metavar="FILE",
    help="Read the prompt from FILE (`-` is stdin) instead of PROMPT.",
)
@click.option(
    "--bytes",
    "raw",
    is_flag=True,
    help="Take prompt, suffix, stop strings and --score file as raw bytes (no UTF-8 check) "
    "and write the output as raw bytes.",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(0),
    default=256,
    show_default=True,
    help="Stop after this many bytes.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(0.0),
    default=1.0,
    show_default=True,
    help="0 is greedy.",
)
@click.option(
    "--top-k", type=click.IntRange(1), default=None, help="Keep the K most likely next bytes."
)
@click.option(
    "--top-p",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help="Keep the smallest set of next bytes whose probability reaches P.",
)
@click.option("--seed", type=click.IntRange(0), default=None, help="Seed for reproducible samples.")
@click.option(
    "--stop",
    "stops",
    multiple=True,
    metavar="STR",
    help="Stop once the output ends with STR (kept; repeatable).",
)
@click.option(
    "--fim-suffix",
    default=None,
    metavar="TEXT",
    help="Fill in the middle: the prompt is the prefix, TEXT the suffix; prints the middle. "
    "Needs a model with FIM tokens.",
)
@click.option(
    "--fim-suffix-file", default=None, metavar="FILE", help="As --fim-suffix, read from FILE."
)
@click.option(
    "--fim-join",
    is_flag=True,
    default=False,
    help="With --fim-suffix: the middle must end with the suffix's first pre-token, so it can "
    "end inside a token (toknz.bytelevel.fim with suffix_backoff='pretoken').",
)
@click.option(
    "--ensemble",
    "ensemble",
    multiple=True,
    metavar="MODEL",
    help="Another model to combine byte by byte with MODEL (repeatable; any vocabulary).",
)
@click.option(
    "--weight",
    "weights",
    multiple=True,
    type=float,
    metavar="W",
    help="Ensemble weights in model order: MODEL's first, then one per --ensemble "
    "(give all or none; default equal).",
)
@click.option(
    "--mode",
    type=click.Choice(["mixture", "product"]),
    default=None,
    help="How --ensemble combines next-byte distributions (default: mixture).",
)
@click.option(
    "--score",
    "score_file",
    default=None,
    metavar="FILE",
    help="Print the bits per byte of FILE (end of text included) instead of sampling.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "auto"]),
    default="float32",
    show_default=True,
    help="Weights' dtype.",
)
@click.option(
    "--device", default="cpu", show_default=True, help="Torch device (cpu, cuda, cuda:1...)."
)
@click.option(
    "--stats",
    is_flag=True,
    help="Print load time, model evaluations and seconds per byte to stderr.",
)
def sample(
    model_name: str,
    prompt: str | None,
    prompt_file: str | None,
    raw: bool,
    max_bytes: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    stops: Sequence[str],
    fim_suffix: str | None,
    fim_suffix_file: str | None,
    fim_join: bool,
    ensemble: Sequence[str],
    weights: Sequence[float],
    mode: str | None,
    score_file: str | None,
    dtype: str,
    device: str,
    stats: bool,
) -> None:
    """Sample text byte by byte from a language model, exactly (or score a file).

    MODEL is a transformers folder (config.json, weights, tokenizer.json), a
    GGUF file, or a model fetched by `toknz fetch NAME`
    (smollm2-135m, gemma3-270m, qwen2.5-coder-0.5b). Prints the continuation
    of PROMPT (not the prompt), as it is sampled. Prompts must be UTF-8
    unless --bytes.

    With --ensemble, the next-byte distributions of MODEL and each --ensemble
    model are mixed (or multiplied, --mode product) byte by byte; --weight
    gives one weight per model, MODEL's first.
    """

    from toknz.errors import UsageError

    if prompt is not None and prompt_file is not None:
        raise UsageError("give the prompt as PROMPT or --prompt-file, not both")
    if fim_suffix is not None and fim_suffix_file is not None:
        raise UsageError("give --fim-suffix or --fim-suffix-file, not both")
    fim = fim_suffix is not None or fim_suffix_file is not None
    if fim_join and not fim:
        raise UsageError("--fim-join joins the suffix to the middle: give --fim-suffix too")
    if score_file is not None and (prompt is not None or prompt_file is not None or fim):
        raise UsageError("--score scores a whole file: it takes no prompt and no --fim-suffix")
    if fim and ensemble:
        raise UsageError("--fim-suffix works with one model: drop --ensemble")
    if not ensemble and (weights or mode is not None):
        raise UsageError("--weight and --mode combine models: give --ensemble MODEL too")
    n_models = 1 + len(ensemble)
    if weights and len(weights) != n_models:
        raise UsageError(
            f"got {len(weights)} --weight for {n_models} models: give one per model "
            "(MODEL's first, then each --ensemble in order), or none for equal weights"
        )
    # Read every input before loading models (that takes seconds).
    prompt_bytes = b""
    if prompt is not None:
        prompt_bytes = _arg_bytes(prompt, "the PROMPT argument", raw)
    elif prompt_file is not None:
        prompt_bytes = _file_bytes(prompt_file, raw)
    suffix = b""
    if fim_suffix is not None:
        suffix = _arg_bytes(fim_suffix, "--fim-suffix", raw)
    elif fim_suffix_file is not None:
        suffix = _file_bytes(fim_suffix_file, raw)
    stop_bytes = [_arg_bytes(s, "--stop", raw) for s in stops]
    score_text = _file_bytes(score_file, raw) if score_file is not None else None
    if score_text is not None and not score_text:
        raise UsageError(f"--score {score_file}: the file is empty (bits per byte needs bytes)")

    from toknz.bytelevel.loading import load_model
    from toknz.bytelevel.sampling import stream_sample

    t0 = time.perf_counter()
    with _quiet_transformers(progress=sys.stderr.isatty()):
        loaded = [load_model(m, dtype=dtype, device=device) for m in (model_name, *ensemble)]
    t_load = time.perf_counter() - t0

    model: Any
    if fim:
        from toknz.bytelevel.fim import fim_source, fim_tokens

        main_model = loaded[0]
        try:
            toks = fim_tokens(main_model.tokenizer)
        except UsageError:
            raise UsageError(
                f"{model_name}: --fim-suffix needs a model with FIM tokens "
                "(<|fim_prefix|>/<|fim_suffix|>/<|fim_middle|> or another known family); "
                f"{main_model.name}'s tokenizer has none"
            ) from None
        try:
            model, prompt_bytes = fim_source(
                main_model.context_lm,
                main_model.tokenizer,
                prompt_bytes,
                suffix,
                temperature,
                tokens=toks,
                suffix_backoff="pretoken" if fim_join else "none",
            )
        except UsageError as err:
            raise UsageError(f"{model_name}: {err}") from None
    else:
        members = [m.byte_lm() for m in loaded]
        if ensemble:
            from toknz.bytelevel.ensemble import ByteEnsemble

            model = ByteEnsemble(members, list(weights) or None, mode=mode or "mixture")
        else:
            model = members[0]

    t1 = time.perf_counter()
    n_out = 0
    if score_text is not None:
        from toknz.bytelevel.ensemble import bits_per_byte

        bpb = bits_per_byte(model, score_text)
        n_out = len(score_text)
        click.echo(f"{bpb:.6f} bits/byte\t{n_out} bytes\t{score_file}")
    else:
        pieces = stream_sample(
            model, prompt_bytes, max_bytes, temperature, top_k, top_p, seed, stop_bytes
        )
        last = b""
        if raw:
            out = sys.stdout.buffer
            for b in pieces:
                out.write(bytes((b,)))
                out.flush()
                n_out += 1
                last = bytes((b,))
        else:
            import codecs

            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            for b in pieces:
                text = decoder.decode(bytes((b,)))
                n_out += 1
                last = bytes((b,))
                if text:
                    sys.stdout.write(text)
                    sys.stdout.flush()
            tail_text = decoder.decode(b"", final=True)
            if tail_text:
                sys.stdout.write(tail_text)
        if sys.stdout.isatty() and last != b"\n":
            sys.stdout.write("\n")
        sys.stdout.flush()
    if stats:
        secs = time.perf_counter() - t1
        evals = sum(m.n_evals for m in loaded)
        calls = sum(m.n_calls for m in loaded)
        what = "scored" if score_text is not None else "sampled"
        click.echo(
            f"{', '.join(m.name for m in loaded)}: loaded in {t_load:.1f} s; {what} {n_out} bytes "
            f"in {secs:.2f} s ({secs / max(n_out, 1):.3f} s/byte); {evals} model evaluations "
            f"({evals / max(n_out, 1):.2f}/byte) in {calls} forward passes",
            err=True,
        )
