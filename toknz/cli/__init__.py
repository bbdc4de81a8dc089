"""The ``toknz`` command: a thin layer over the library.

Errors print on one line (``toknz: error: ...``) and exit 1 for bad data, 2
for bad usage; ``--debug`` shows the traceback instead. Heavy modules are
imported inside commands so ``toknz --help`` starts fast.

This package holds the click group :func:`main`; each command is a module of
its own (``toknz/cli/encode.py``, ``toknz/cli/train.py``...) that parses its
options, calls the library and prints. The option decorators and helpers they
share are in :mod:`toknz.cli._common`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

__all__ = ["ToknzGroup", "main"]

#: Each command's module in this package. A module is imported when its command is looked
#: up (to run it, or for the list in ``toknz --help``), so ``import toknz.cli`` and a
#: command's start import only what that command needs.
_COMMAND_MODULES = {
    "compare": "compare",
    "count": "count",
    "decode": "decode",
    "dynamic": "dynamic",
    "encode": "encode",
    "fetch": "fetch",
    "inspect": "inspect_cmd",
    "mixture": "mixture",
    "sample": "sample",
    "train": "train",
    "train-lm": "train_lm",
}


class ToknzGroup(click.Group):
    """A click group that turns :class:`toknz.errors.ToknzError` into one-line errors.

    Standard output is flushed before the command returns, and a write that
    fails anywhere (a full disk, ``/dev/full``, a read-only folder) is one line
    and exit code 1, never a traceback or a truncated output with exit code 0.

    Commands come from the modules of :data:`_COMMAND_MODULES`, imported on first use.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            # An unknown name loads them all: click's "Did you mean" picks from the loaded ones.
            for name in [cmd_name] if cmd_name in _COMMAND_MODULES else _COMMAND_MODULES:
                if name not in self.commands:
                    module = importlib.import_module(f"{__name__}.{_COMMAND_MODULES[name]}")
                    self.add_command(getattr(module, name.replace("-", "_")), name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        from toknz.cli._common import _drop_stdout, _flush_stdout
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
