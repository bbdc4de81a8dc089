"""The error types toknz raises.

Every error a user can cause (a bad file, a bad option, text that holds a
special token) is a :class:`ToknzError`. Messages name the file and the place
(line, byte offset) and say what to do. The CLI prints them on one line and
exits with ``exit_code``: 2 for usage errors, 1 for data errors.
"""

from __future__ import annotations


class ToknzError(Exception):
    """Base class of every error toknz raises on purpose."""

    exit_code: int = 1


class UsageError(ToknzError):
    """An option or argument that cannot work (unknown name, bad value)."""

    exit_code = 2


class FormatError(ToknzError):
    """A tokenizer or data file that is truncated, malformed or inconsistent."""


class UnsupportedFeatureError(FormatError):
    """A tokenizer file uses a feature toknz does not implement.

    Raised instead of encoding differently from the reference library.
    """


class SpecialTokenError(ToknzError):
    """Text contains a special token that the caller did not allow."""


class InputError(ToknzError):
    """Input text that cannot be read: invalid UTF-8, unreadable file."""


class PatternTimeoutError(InputError):
    """A split regex took longer than its time bound on some text (catastrophic backtracking)."""


class OutputError(ToknzError):
    """Output that cannot be written: a full disk, a read-only folder, a closed pipe."""


class FetchError(ToknzError):
    """A real tokenizer file could not be fetched or is not in the cache."""


def describe_position(path: object, *, line: int | None = None, offset: int | None = None) -> str:
    """Return ``"path, line L, byte offset O"`` with whichever parts are known."""
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}")
    if offset is not None:
        parts.append(f"byte offset {offset}")
    return ", ".join(parts)
