"""Shared pieces of the command modules: option decorators, tokenizer loading,
reading arguments and files, and flushing standard output.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

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
