"""Figures for the commands that draw one (``toknz mixture --plot``, ``toknz compare --plot``).

matplotlib is an optional dependency (``pip install 'toknz[plot]'``): these
helpers raise :class:`~toknz.errors.UsageError`, naming the path, when it is
missing or the file name has no format matplotlib writes here.
"""

from __future__ import annotations

import importlib.util
import io
import os
from typing import Any

from toknz.errors import UsageError

__all__ = ["PLOT_SUFFIXES", "check_plot_path", "pyplot", "save_figure"]

#: File name endings a plot may be written to.
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_plot_path(path: str | os.PathLike[str]) -> None:
    """Raise :class:`~toknz.errors.UsageError` unless ``path`` can be plotted to.

    It must end in ``.png``, ``.svg`` or ``.pdf``, and matplotlib must be installed.

    >>> check_plot_path("out.txt")
    Traceback (most recent call last):
    ...
    toknz.errors.UsageError: --plot out.txt: use a .png, .svg or .pdf file name
    """
    if not os.fspath(path).lower().endswith(PLOT_SUFFIXES):
        raise UsageError(f"--plot {path}: use a .png, .svg or .pdf file name")
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(f"--plot {path}: plotting needs matplotlib (pip install 'toknz[plot]')")


def pyplot(path: str | os.PathLike[str]) -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or a UsageError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError(
            f"--plot {path}: plotting needs matplotlib (pip install 'toknz[plot]')"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    """Render ``fig`` in the format of ``path``'s suffix, write it atomically and close it."""
    from toknz.formats._io import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format=os.fspath(path).rsplit(".", 1)[-1].lower(), dpi=120)
    pyplot(path).close(fig)
    atomic_write(path, buf.getvalue())
