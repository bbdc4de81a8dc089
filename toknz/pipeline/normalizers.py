"""Normalizers: text -> text, applied before pre-tokenization.

The stages and their JSON spelling follow the ``tokenizers`` library so that a
``tokenizer.json`` loads unchanged. Each normalizer is a small frozen object
with ``normalize(text) -> str`` and ``to_json() -> dict``. Unknown or
unsupported normalizers are refused by :func:`normalizer_from_json` with an
:class:`~toknz.errors.UnsupportedFeatureError`, never approximated.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import numpy as np
import regex

from toknz.errors import FormatError, UnsupportedFeatureError
from toknz.pipeline.regex_dialect import onig_to_python, python_to_onig


class Normalizer(Protocol):
    def normalize(self, text: str) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


# Code points whose normalization the ``tokenizers`` library does not know: its
# tables are Unicode 9.0, Python's are newer (14.0 in 3.11). Each range holds
# characters assigned later that decompose, have a non-zero combining class, or
# compose with a preceding character (found by comparing Python 3.11 with
# tokenizers 0.23 per character, plus the ``regex`` module's Unicode 17 data for
# what Python 3.11 does not know yet). ``tokenizers`` treats them as unassigned:
# left as they are, and a barrier to reordering and composition. So toknz
# normalizes the text between them and keeps them, which gives its exact output.
# fmt: off
_NEWER_THAN_TOKENIZERS = (
    (0x07FD, 0x07FD), (0x0897, 0x089F), (0x08CA, 0x08D3), (0x09FE, 0x09FE), (0x0C3C, 0x0C3C),
    (0x0D3B, 0x0D3C), (0x0EBA, 0x0EBA), (0x1715, 0x1715), (0x1ABF, 0x1ADD), (0x1AE0, 0x1AEB),
    (0x1DF6, 0x1DFA), (0x32FF, 0x32FF), (0xA7F1, 0xA7F4), (0xA82C, 0xA82C), (0xAB69, 0xAB69),
    (0x105C9, 0x105C9), (0x105E4, 0x105E4), (0x10781, 0x10785), (0x10787, 0x107B0),
    (0x107B2, 0x107BA), (0x10D24, 0x10D27), (0x10D69, 0x10D6D), (0x10EAB, 0x10EAC),
    (0x10EFA, 0x10EFB), (0x10EFD, 0x10EFF), (0x10F46, 0x10F50), (0x10F82, 0x10F85),
    (0x11070, 0x11070), (0x1133B, 0x1133B), (0x11383, 0x11383), (0x11385, 0x11385),
    (0x1138E, 0x1138E), (0x11391, 0x11391), (0x113B8, 0x113B8), (0x113BB, 0x113BB),
    (0x113C2, 0x113C2), (0x113C5, 0x113C5), (0x113C7, 0x113C9), (0x113CE, 0x113D0),
    (0x1145E, 0x1145E), (0x11839, 0x1183A), (0x11930, 0x11930), (0x11938, 0x11938),
    (0x1193D, 0x1193E), (0x11943, 0x11943), (0x119E0, 0x119E0), (0x11A34, 0x11A34),
    (0x11A47, 0x11A47), (0x11A99, 0x11A99), (0x11D42, 0x11D42), (0x11D44, 0x11D45),
    (0x11D97, 0x11D97), (0x11F41, 0x11F42), (0x1611E, 0x16129), (0x1612F, 0x1612F),
    (0x16D67, 0x16D6A), (0x16FF0, 0x16FF1), (0x1CCD6, 0x1CCF9), (0x1E030, 0x1E06D),
    (0x1E08F, 0x1E08F), (0x1E130, 0x1E136), (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF),
    (0x1E4EC, 0x1E4EF), (0x1E5EE, 0x1E5EF), (0x1E6E3, 0x1E6E3), (0x1E6E6, 0x1E6E6),
    (0x1E6EE, 0x1E6EF), (0x1E6F5, 0x1E6F5), (0x1F16C, 0x1F16C), (0x1FBF0, 0x1FBF9),
)
# fmt: on
_UNKNOWN_TO_TOKENIZERS = regex.compile(
    "([" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _NEWER_THAN_TOKENIZERS) + "])"
)


@functools.lru_cache(maxsize=1)
def _newer_table() -> np.ndarray:
    """True for each code point in ``_NEWER_THAN_TOKENIZERS`` (one bool per code point)."""
    table = np.zeros(0x110000, dtype=np.bool_)
    for a, b in _NEWER_THAN_TOKENIZERS:
        table[a : b + 1] = True
    return table


def _has_newer_characters(text: str) -> bool:
    """Does ``text`` hold a character that ``tokenizers``' Unicode data does not know?

    A table look-up over the code points: about a hundred times faster than
    scanning with the ``_UNKNOWN_TO_TOKENIZERS`` character class.
    """
    return bool(
        _newer_table()[
            np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ].any()
    )


@dataclass(frozen=True)
class UnicodeForm:
    """NFC, NFD, NFKC or NFKD as the ``tokenizers`` library applies them.

    Python's ``unicodedata`` does the work; characters newer than the Unicode
    version of ``tokenizers`` (see ``_NEWER_THAN_TOKENIZERS``) are kept as they are.
    """

    form: str

    def normalize(self, text: str) -> str:
        form = cast(Literal["NFC", "NFD", "NFKC", "NFKD"], self.form)
        if text.isascii() or unicodedata.is_normalized(form, text):
            # Already in the form: so is every part of it, so the steps below change nothing.
            return text
        if not _has_newer_characters(text):
            return unicodedata.normalize(form, text)
        parts = _UNKNOWN_TO_TOKENIZERS.split(text)
        # Odd indices are the kept characters (the pattern's one group).
        return "".join(p if i % 2 else unicodedata.normalize(form, p) for i, p in enumerate(parts))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.form}


@dataclass(frozen=True)
class Lowercase:
    """Full Unicode lower-casing (``str.lower``)."""

    def normalize(self, text: str) -> str:
        return text.lower()

    def to_json(self) -> dict[str, Any]:
        return {"type": "Lowercase"}


@dataclass(frozen=True)
class Replace:
    """Replace every match of a literal string or a regex with ``content``."""

    pattern: str
    content: str
    is_regex: bool = False

    def normalize(self, text: str) -> str:
        if self.is_regex:
            from toknz.pipeline.pretokenize import _timeout, regex_timeout_per_mb

            per_mb = regex_timeout_per_mb()
            try:
                return _compile(self.pattern).sub(
                    lambda _m: self.content, text, timeout=_timeout(per_mb, len(text))
                )
            except TimeoutError:
                from toknz.errors import PatternTimeoutError
                from toknz.pipeline.pretokenize import REGEX_TIMEOUT_ENV

                shown = self.pattern if len(self.pattern) <= 60 else self.pattern[:57] + "..."
                raise PatternTimeoutError(
                    f"the Replace normalizer's pattern {shown!r} took more than "
                    f"{_timeout(per_mb, len(text)):g} s on a text of {len(text):,} characters "
                    f"(starting {text[:20]!r}): it backtracks catastrophically; fix the pattern, "
                    f"or raise the bound with {REGEX_TIMEOUT_ENV} (seconds per million "
                    f"characters, now {per_mb:g})"
                ) from None
        if not self.pattern:
            return text
        return text.replace(self.pattern, self.content)

    def to_json(self) -> dict[str, Any]:
        if self.is_regex:
            return {
                "type": "Replace",
                "pattern": {"Regex": python_to_onig(self.pattern)},
                "content": self.content,
            }
        return {"type": "Replace", "pattern": {"String": self.pattern}, "content": self.content}


@dataclass(frozen=True)
class Prepend:
    """Prepend ``prepend`` to non-empty text."""

    prepend: str

    def normalize(self, text: str) -> str:
        return self.prepend + text if text else text

    def to_json(self) -> dict[str, Any]:
        return {"type": "Prepend", "prepend": self.prepend}


@dataclass(frozen=True)
class Strip:
    """Strip whitespace on the left and/or right."""

    left: bool = True
    right: bool = True

    def normalize(self, text: str) -> str:
        if self.left:
            text = text.lstrip()
        if self.right:
            text = text.rstrip()
        return text

    def to_json(self) -> dict[str, Any]:
        return {"type": "Strip", "strip_left": self.left, "strip_right": self.right}


@dataclass(frozen=True)
class StripAccents:
    """Remove non-spacing combining marks (general category Mn)."""

    def normalize(self, text: str) -> str:
        return "".join(c for c in text if unicodedata.category(c) != "Mn")

    def to_json(self) -> dict[str, Any]:
        return {"type": "StripAccents"}


@dataclass(frozen=True)
class NormalizerSequence:
    """Apply normalizers in order."""

    normalizers: tuple[Normalizer, ...]

    def normalize(self, text: str) -> str:
        for n in self.normalizers:
            text = n.normalize(text)
        return text

    def to_json(self) -> dict[str, Any]:
        return {"type": "Sequence", "normalizers": [n.to_json() for n in self.normalizers]}


_REGEX_CACHE: dict[str, regex.Pattern[str]] = {}


def _compile(pattern: str) -> regex.Pattern[str]:
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        try:
            compiled = regex.compile(pattern)
        except regex.error as exc:
            raise FormatError(f"invalid regex {pattern!r}: {exc}") from None
        _REGEX_CACHE[pattern] = compiled
    return compiled


def pattern_from_json(obj: Any, where: str) -> tuple[str, bool]:
    """Read a ``{"String": s}`` or ``{"Regex": r}`` object; return ``(pattern, is_regex)``."""
    if isinstance(obj, dict) and len(obj) == 1:
        if "String" in obj and isinstance(obj["String"], str):
            return obj["String"], False
        if "Regex" in obj and isinstance(obj["Regex"], str):
            # tokenizers reads patterns with Oniguruma; give them the same meaning here.
            pattern = onig_to_python(obj["Regex"])
            try:
                _compile(pattern)
            except FormatError as exc:
                raise FormatError(f"{where}: {exc}") from None
            return pattern, True
    raise FormatError(
        f"{where}: pattern must be {{'String': ...}} or {{'Regex': ...}}, got {obj!r}"
    )


def normalizer_from_json(obj: Any, where: str = "normalizer") -> Normalizer | None:
    """Build a normalizer from its ``tokenizer.json`` object (``None`` stays ``None``).

    Raises ``UnsupportedFeatureError`` for a type toknz does not implement and
    ``FormatError`` for a malformed object.
    """
    if obj is None:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise FormatError(f"{where}: expected an object with a 'type', got {obj!r}")
    kind = obj["type"]
    try:
        if kind in ("NFC", "NFD", "NFKC", "NFKD"):
            return UnicodeForm(kind)
        if kind == "Lowercase":
            return Lowercase()
        if kind == "Replace":
            pattern, is_regex = pattern_from_json(obj["pattern"], f"{where}.pattern")
            return Replace(pattern, str(obj["content"]), is_regex)
        if kind == "Prepend":
            return Prepend(str(obj["prepend"]))
        if kind == "Strip":
            return Strip(bool(obj.get("strip_left", True)), bool(obj.get("strip_right", True)))
        if kind == "StripAccents":
            return StripAccents()
        if kind == "Sequence":
            items = obj["normalizers"]
            if not isinstance(items, list):
                raise FormatError(f"{where}.normalizers must be a list")
            parts = [
                normalizer_from_json(o, f"{where}.normalizers[{i}]") for i, o in enumerate(items)
            ]
            return NormalizerSequence(tuple(p for p in parts if p is not None))
    except KeyError as exc:
        raise FormatError(f"{where}: {kind} normalizer lacks the field {exc.args[0]!r}") from None
    raise UnsupportedFeatureError(
        f"{where}: the {kind!r} normalizer is not supported by toknz "
        "(supported: NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip, StripAccents, Sequence)"
    )
