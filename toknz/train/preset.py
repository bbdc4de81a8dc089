"""Training presets: small TOML files of settings for :func:`toknz.train.train`.

A preset is data, never a code path: it only fills in the arguments of
:func:`~toknz.train.train` that the caller leaves unset, and any argument
given explicitly (a command-line option) wins. The presets shipped with
toknz live in ``toknz/train/presets/``: ``legal``, ``financial``, ``code``,
``char-4k``, ``char-8k`` and ``char-16k`` (:func:`preset_names`). A user
passes their own as a path to a ``.toml`` file.

Keys (all optional except that a training run needs a ``vocab_size`` from
somewhere):

- ``name``, ``description``: text;
- ``vocab_size`` (tokens: special tokens + 256 bytes + merges),
  ``min_frequency``, ``max_token_length`` (bytes), ``max_token_chars``
  (Unicode characters: character-level BPE), ``superwords_at`` (tokens after
  which merges may cross spaces, :mod:`toknz.train.superword`): integers;
- ``pattern``: ``gpt2``, ``cl100k``, ``o200k`` or a regex;
- ``normalize``: ``none``, ``nfc`` or ``nfkc``; ``cased``: ``false`` lower-cases
  the text (after ``normalize``) when training and encoding;
- ``unit``: ``document`` or ``line``;
- ``required_tokens``: a file of terms, one per line, relative to the preset
  file; each term is made one token through merges
  (:mod:`toknz.train.required`);
- ``[special_tokens]``: groups of special tokens (``documents``, ``sections``,
  ``chat``, ``fim``, ``padding``, ``masking``, or any other name), each a list
  of strings; the tokens take ids ``0, 1, 2...`` in file order.

An unknown key or a value of the wrong type is a
:class:`~toknz.errors.UsageError` naming the file and key; a file that is not
valid TOML is an :class:`~toknz.errors.InputError` with its line and column.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from toknz.errors import InputError, UsageError
from toknz.validate import check_token_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Preset", "load_preset", "preset_names", "read_terms"]

_INT_KEYS = (
    "vocab_size",
    "min_frequency",
    "max_token_length",
    "max_token_chars",
    "superwords_at",
)
_STR_KEYS = ("name", "description", "pattern", "normalize", "unit", "required_tokens")
_BOOL_KEYS = ("cased",)
_KEYS = (*_INT_KEYS, *_STR_KEYS, *_BOOL_KEYS, "special_tokens")


@dataclass(frozen=True)
class Preset:
    """The settings of one preset file; ``None`` means "not set by the preset"."""

    name: str
    path: str
    description: str = ""
    vocab_size: int | None = None
    pattern: str | None = None
    normalize: str | None = None
    cased: bool | None = None
    min_frequency: int | None = None
    max_token_length: int | None = None
    max_token_chars: int | None = None
    superwords_at: int | None = None
    unit: str | None = None
    required_tokens: str | None = None  # a resolved path
    special_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def special_tokens(self) -> list[str]:
        """All special tokens, groups in file order, a repeat kept once."""
        return list(dict.fromkeys(t for group in self.special_groups.values() for t in group))

    def required_terms(self) -> list[str]:
        """The terms of ``required_tokens`` (one per line, blank lines skipped), or ``[]``."""
        if self.required_tokens is None:
            return []
        return read_terms(Path(self.required_tokens))


def _presets_dir() -> Path:
    return Path(str(resources.files("toknz.train").joinpath("presets")))


def preset_names() -> list[str]:
    """The names of the presets shipped with toknz.

    >>> preset_names()
    ['char-16k', 'char-4k', 'char-8k', 'code', 'financial', 'legal']
    """
    return sorted(p.stem for p in _presets_dir().glob("*.toml"))


def read_terms(path: Path) -> list[str]:
    """The terms of a required-token file: one per line, blank lines skipped, ``\\r`` dropped.

    Raises :class:`~toknz.errors.InputError` naming the file (and the byte
    offset of invalid UTF-8).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the required-token list ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}, byte offset {exc.start}: invalid UTF-8 ({exc.reason})") from None
    return [line.strip("\r") for line in text.split("\n") if line.strip()]


def load_preset(name_or_path: str | os.PathLike[str]) -> Preset:
    """Read a shipped preset by name, or a preset file by path.

    Raises :class:`~toknz.errors.UsageError` for an unknown name, an unknown
    key or a wrong type, and :class:`~toknz.errors.InputError` for a file
    that cannot be read or is not valid TOML.

    >>> p = load_preset("char-4k")
    >>> p.vocab_size, p.max_token_chars, p.special_tokens
    (4096, 3, ['<|endoftext|>', '<|pad|>', '<|mask|>'])
    """
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(text)
    else:
        path = _presets_dir() / f"{text}.toml"
        if not path.is_file():
            raise UsageError(
                f"unknown preset {text!r}; shipped presets: {', '.join(preset_names())} "
                "(or pass a path to a .toml file)"
            )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read preset ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}, byte offset {exc.start}: invalid UTF-8 ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    return _from_dict(data, path)


def _from_dict(data: dict[str, Any], path: Path) -> Preset:
    where = str(path)
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise UsageError(
            f"{where}: unknown preset key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(_KEYS)}"
        )
    values: dict[str, Any] = {}
    for key in _INT_KEYS:
        if key in data:
            v = data[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise UsageError(f"{where}: {key} must be a non-negative integer, got {v!r}")
            values[key] = v
    for key in _STR_KEYS:
        if key in data:
            if not isinstance(data[key], str):
                raise UsageError(f"{where}: {key} must be a string, got {data[key]!r}")
            values[key] = data[key]
    if "cased" in data:
        if not isinstance(data["cased"], bool):
            raise UsageError(f"{where}: cased must be true or false, got {data['cased']!r}")
        values["cased"] = data["cased"]
    groups: dict[str, tuple[str, ...]] = {}
    specials = data.get("special_tokens", {})
    if not isinstance(specials, dict):
        raise UsageError(f"{where}: [special_tokens] must be a table of lists of strings")
    for group, tokens in specials.items():
        if not isinstance(tokens, list):
            raise UsageError(
                f"{where}: special_tokens.{group} must be a list of non-empty strings, got {tokens!r}"
            )
        groups[group] = tuple(
            check_token_text(
                t, f"{where}: special_tokens.{group}[{i}]", what="a special token", error=UsageError
            )
            for i, t in enumerate(tokens)
        )
    required = values.pop("required_tokens", None)
    if required is not None:
        req_path = (path.parent / required).resolve()
        if not req_path.is_file():
            raise InputError(f"{where}: required_tokens file {str(req_path)!r} does not exist")
        required = str(req_path)
    name = values.pop("name", None) or path.stem
    return Preset(
        name=name,
        path=where,
        required_tokens=required,
        special_groups=groups,
        **values,
    )
