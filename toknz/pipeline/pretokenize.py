"""Pre-tokenizers: split normalized text into "words" that BPE never merges across.

Each pre-tokenizer maps a list of pieces to a finer list of pieces with
``split(pieces, at_start)``; :func:`pre_tokenize` runs one on a whole string.
Pieces stay in the text's own alphabet: a byte-level pre-tokenizer does not
spell them in the GPT-2 byte alphabet, it sets ``byte_level`` so that the BPE
model receives each piece's UTF-8 bytes (which is the same thing, cheaper).

The stages and their JSON spelling follow the ``tokenizers`` library. The
named split patterns (``gpt2``, ``r50k``, ``p50k``, ``cl100k``, ``o200k`` and
the Llama 3 / Qwen / DeepSeek variants) are in :data:`PATTERNS`. Patterns run
through the ``regex`` package here; a later compiled scanner replaces the
common ones.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from typing import Any, Protocol

import regex

from toknz.errors import FormatError, PatternTimeoutError, UnsupportedFeatureError, UsageError
from toknz.pipeline.normalizers import pattern_from_json
from toknz.pipeline.regex_dialect import python_to_onig

#: The split patterns of well-known tokenizers, by name.
PATTERNS: dict[str, str] = {
    # GPT-2 as released, and the faster equivalent tiktoken uses for r50k/p50k.
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "r50k": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
    "cl100k": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
    # Llama 3 (and GPT-3.5/4 as spelled in tokenizer.json files).
    "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    # Qwen 2/2.5/3: as Llama 3 but single digits.
    "qwen": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
PATTERNS["p50k"] = PATTERNS["r50k"]
PATTERNS["gpt4"] = PATTERNS["cl100k"]
PATTERNS["gpt4o"] = PATTERNS["o200k"]

_CACHE: dict[str, regex.Pattern[str]] = {}


def resolve_pattern(name_or_regex: str) -> str:
    """Return the regex for a pattern name in :data:`PATTERNS`, or the argument itself.

    An empty pattern is refused: it matches only empty strings, so every text would
    encode to no ids at all.
    """
    if not name_or_regex:
        raise UsageError(
            "empty split pattern: it matches nothing, so every text would encode to []; "
            f"name one of {', '.join(sorted(PATTERNS))}, or give a regex"
        )
    return PATTERNS.get(name_or_regex, name_or_regex)


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile a split regex once (cached); a bad regex is a ``UsageError``."""
    compiled = _CACHE.get(pattern)
    if compiled is None:
        try:
            compiled = regex.compile(pattern)
        except regex.error as exc:
            raise UsageError(f"invalid split pattern {pattern!r}: {exc}") from None
        _CACHE[pattern] = compiled
    return compiled


# Characters with the Unicode White_Space property (what Rust's char::is_whitespace tests).
_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _is_numeric(c: str) -> bool:
    return unicodedata.category(c) in ("Nd", "Nl", "No")


def _is_punctuation(c: str) -> bool:
    return (
        c.isascii() and not c.isalnum() and c.isprintable() and c != " "
    ) or unicodedata.category(c).startswith("P")


class PreTokenizer(Protocol):
    @property
    def byte_level(self) -> bool: ...

    def split(self, pieces: list[str], at_start: bool) -> list[str]: ...

    def to_json(self) -> dict[str, Any]: ...


BEHAVIORS = ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")


def apply_behavior(text: str, spans: list[tuple[int, int, bool]], behavior: str) -> list[str]:
    """Turn ``(start, end, is_match)`` spans covering ``text`` into pieces, as ``tokenizers`` does."""
    out: list[list[int]] = []  # [start, end] pairs
    if behavior == "Removed":
        out = [[s, e] for s, e, m in spans if not m]
    elif behavior == "Isolated":
        out = [[s, e] for s, e, _ in spans]
    elif behavior == "MergedWithPrevious":
        prev_match = False
        for s, e, m in spans:
            if m and not prev_match and out:
                out[-1][1] = e
            else:
                out.append([s, e])
            prev_match = m
    elif behavior == "MergedWithNext":
        prev_match = False
        for s, e, m in reversed(spans):
            if m and not prev_match and out:
                out[-1][0] = s
            else:
                out.append([s, e])
            prev_match = m
        out.reverse()
    elif behavior == "Contiguous":
        prev_match = False
        for s, e, m in spans:
            if m == prev_match and out:
                out[-1][1] = e
            else:
                out.append([s, e])
            prev_match = m
    else:
        raise UsageError(
            f"unknown split behavior {behavior!r}; expected one of {', '.join(BEHAVIORS)}"
        )
    return [text[s:e] for s, e in out if e > s]


#: Seconds a split regex may take per million characters of a piece (at least one million):
#: ``$TOKNZ_REGEX_TIMEOUT``, default 10. The built-in GPT patterns run in a few milliseconds
#: per megabyte; only a pattern that backtracks catastrophically comes near the bound.
REGEX_TIMEOUT_ENV = "TOKNZ_REGEX_TIMEOUT"
DEFAULT_REGEX_TIMEOUT = 10.0


def regex_timeout_per_mb() -> float:
    """The time bound of split regexes, in seconds per million characters (see above)."""
    raw = os.environ.get(REGEX_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_REGEX_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(
            f"{REGEX_TIMEOUT_ENV}={raw!r}: expected a positive number of seconds per million characters"
        )
    return value


def _timeout(per_mb: float, n_chars: int) -> float:
    return per_mb * max(1.0, n_chars / 1e6)


def _timed_out(pattern: str, pieces: list[str], index: int, per_mb: float) -> PatternTimeoutError:
    piece = pieces[index]
    offset = sum(map(len, pieces[:index]))
    shown = pattern if len(pattern) <= 60 else pattern[:57] + "..."
    return PatternTimeoutError(
        f"the split pattern {shown!r} took more than {_timeout(per_mb, len(piece)):g} s on a piece "
        f"of {len(piece):,} characters at character offset {offset:,} (starting {piece[:20]!r}): "
        "it backtracks catastrophically; fix the pattern, or raise the bound with "
        f"{REGEX_TIMEOUT_ENV} (seconds per million characters, now {per_mb:g})"
    )


def _regex_spans(
    compiled: regex.Pattern[str], text: str, invert: bool, timeout: float | None = None
) -> list[tuple[int, int, bool]]:
    spans: list[tuple[int, int, bool]] = []
    prev = 0
    for m in compiled.finditer(text, timeout=timeout):
        s, e = m.span()
        if s != prev:
            spans.append((prev, s, invert))
        spans.append((s, e, not invert))
        prev = e
    if prev != len(text):
        spans.append((prev, len(text), invert))
    return spans


def _predicate_spans(text: str, pred: Any) -> list[tuple[int, int, bool]]:
    return [(i, i + 1, bool(pred(c))) for i, c in enumerate(text)]


@dataclass(frozen=True)
class Split:
    """Split on a regex or literal string with a ``tokenizers`` split behavior.

    With ``behavior="Removed", invert=True`` the matches are the pieces (what
    tiktoken's ``findall`` does); with ``"Isolated"`` matches and the gaps
    between them are both pieces.
    """

    pattern: str
    behavior: str = "Isolated"
    invert: bool = False
    is_regex: bool = True
    byte_level: bool = False

    def __post_init__(self) -> None:
        if self.behavior not in BEHAVIORS:
            raise UsageError(
                f"unknown split behavior {self.behavior!r}; expected one of {', '.join(BEHAVIORS)}"
            )

    @property
    def compiled(self) -> regex.Pattern[str]:
        return compile_pattern(self.pattern if self.is_regex else regex.escape(self.pattern))

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        per_mb = regex_timeout_per_mb()
        at = [0]
        try:
            return self._split(pieces, per_mb, at)
        except TimeoutError:
            raise _timed_out(self.pattern, pieces, at[0], per_mb) from None

    def _split(self, pieces: list[str], per_mb: float, at: list[int]) -> list[str]:
        """:meth:`split`, each regex call bounded in time; ``at[0]`` is the piece being split."""
        compiled = self.compiled
        if self.behavior == "Removed" and self.invert:
            out: list[str] = []
            if compiled.groups == 0:
                # findall is the fastest way through `regex`; concurrent=True
                # releases the GIL so batch threads overlap.
                for i, p in enumerate(pieces):
                    at[0] = i
                    out.extend(
                        filter(
                            None,
                            compiled.findall(p, concurrent=True, timeout=_timeout(per_mb, len(p))),
                        )
                    )
                return out
            for i, p in enumerate(pieces):
                at[0] = i
                out.extend(
                    m.group()
                    for m in compiled.finditer(p, concurrent=True, timeout=_timeout(per_mb, len(p)))
                    if m.end() > m.start()
                )
            return out
        result: list[str] = []
        fast = self.behavior == "Isolated" and not self.invert and compiled.groups == 0
        for i, p in enumerate(pieces):
            at[0] = i
            timeout = _timeout(per_mb, len(p))
            if fast:
                # When the matches cover the whole piece (true of the GPT
                # patterns), Isolated is just the list of matches.
                found = compiled.findall(p, concurrent=True, timeout=timeout)
                if sum(map(len, found)) == len(p):
                    result.extend(filter(None, found))
                    continue
            result.extend(
                apply_behavior(p, _regex_spans(compiled, p, self.invert, timeout), self.behavior)
            )
        return result

    def to_json(self) -> dict[str, Any]:
        # Written for Oniguruma, the engine tokenizers reads the pattern with.
        pattern = (
            {"Regex": python_to_onig(self.pattern)} if self.is_regex else {"String": self.pattern}
        )
        return {
            "type": "Split",
            "pattern": pattern,
            "behavior": self.behavior,
            "invert": self.invert,
        }


@dataclass(frozen=True)
class ByteLevel:
    """GPT-2 byte-level pre-tokenization: optional prefix space, optional GPT-2 regex split.

    Pieces reach the model as UTF-8 bytes (``byte_level`` is True).
    """

    add_prefix_space: bool = False
    use_regex: bool = True
    trim_offsets: bool = True
    byte_level: bool = True

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        if self.add_prefix_space:
            pieces = [p if p.startswith(" ") else " " + p for p in pieces]
        if self.use_regex:
            return Split(PATTERNS["gpt2"], "Isolated").split(pieces)
        return pieces

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "ByteLevel",
            "add_prefix_space": self.add_prefix_space,
            "trim_offsets": self.trim_offsets,
            "use_regex": self.use_regex,
        }


@dataclass(frozen=True)
class Metaspace:
    """SentencePiece-style: spaces become ``replacement`` (``▁``), optionally prepended, then split."""

    replacement: str = "\u2581"
    prepend_scheme: str = "always"
    split_pieces: bool = True
    byte_level: bool = False

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        out: list[str] = []
        for i, p in enumerate(pieces):
            p = p.replace(" ", self.replacement)
            first = at_start and i == 0
            if (
                self.prepend_scheme == "always" or (self.prepend_scheme == "first" and first)
            ) and not p.startswith(self.replacement):
                p = self.replacement + p
            if self.split_pieces:
                spans = _predicate_spans(p, lambda c: c == self.replacement)
                out.extend(apply_behavior(p, spans, "MergedWithNext"))
            elif p:
                out.append(p)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "Metaspace",
            "replacement": self.replacement,
            "prepend_scheme": self.prepend_scheme,
            "split": self.split_pieces,
        }


@dataclass(frozen=True)
class Digits:
    """Isolate numeric characters, one per piece or in runs."""

    individual_digits: bool = False
    byte_level: bool = False

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        behavior = "Isolated" if self.individual_digits else "Contiguous"
        out: list[str] = []
        for p in pieces:
            out.extend(apply_behavior(p, _predicate_spans(p, _is_numeric), behavior))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"type": "Digits", "individual_digits": self.individual_digits}


@dataclass(frozen=True)
class WhitespaceSplit:
    """Split on Unicode whitespace, dropping it."""

    byte_level: bool = False

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        out: list[str] = []
        for p in pieces:
            out.extend(apply_behavior(p, _predicate_spans(p, _WHITE_SPACE.__contains__), "Removed"))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"type": "WhitespaceSplit"}


@dataclass(frozen=True)
class Whitespace:
    """Keep runs of word characters and runs of other non-space characters (``\\w+|[^\\w\\s]+``)."""

    byte_level: bool = False

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        return Split(r"\w+|[^\w\s]+", "Removed", invert=True).split(pieces)

    def to_json(self) -> dict[str, Any]:
        return {"type": "Whitespace"}


@dataclass(frozen=True)
class Punctuation:
    """Split on punctuation characters with a split behavior (default Isolated)."""

    behavior: str = "Isolated"
    byte_level: bool = False

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        out: list[str] = []
        for p in pieces:
            out.extend(apply_behavior(p, _predicate_spans(p, _is_punctuation), self.behavior))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"type": "Punctuation", "behavior": self.behavior}


@dataclass(frozen=True)
class PreTokenizerSequence:
    """Apply pre-tokenizers in order, each on the pieces of the previous one."""

    steps: tuple[PreTokenizer, ...]

    @property
    def byte_level(self) -> bool:
        return any(s.byte_level for s in self.steps)

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        for step in self.steps:
            pieces = step.split(pieces, at_start)
        return pieces

    def to_json(self) -> dict[str, Any]:
        return {"type": "Sequence", "pretokenizers": [s.to_json() for s in self.steps]}


@dataclass(frozen=True)
class NoSplit:
    """The identity: the whole text is one piece (a file with ``"pre_tokenizer": null``)."""

    byte_level: bool = False

    def split(self, pieces: list[str], at_start: bool = True) -> list[str]:
        return [p for p in pieces if p]

    def to_json(self) -> dict[str, Any]:
        return {}


def pre_tokenize(pre: PreTokenizer, text: str, at_start: bool = True) -> list[str]:
    """Split ``text`` into pieces with ``pre``; empty text gives no pieces."""
    if not text:
        return []
    return pre.split([text], at_start)


def pretokenizer_from_json(obj: Any, where: str = "pre_tokenizer") -> PreTokenizer:
    """Build a pre-tokenizer from its ``tokenizer.json`` object (``None`` -> :class:`NoSplit`).

    A byte-level step followed by a step that splits text would see byte-level
    characters in ``tokenizers``; toknz refuses that order rather than guess.
    """
    if obj is None:
        return NoSplit()
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise FormatError(f"{where}: expected an object with a 'type', got {obj!r}")
    kind = obj["type"]
    try:
        if kind == "Split":
            pattern, is_regex = pattern_from_json(obj["pattern"], f"{where}.pattern")
            behavior = obj["behavior"]
            if behavior not in BEHAVIORS:
                raise FormatError(f"{where}: unknown split behavior {behavior!r}")
            return Split(pattern, behavior, bool(obj.get("invert", False)), is_regex)
        if kind == "ByteLevel":
            return ByteLevel(
                bool(obj.get("add_prefix_space", True)),
                bool(obj.get("use_regex", True)),
                bool(obj.get("trim_offsets", True)),
            )
        if kind == "Metaspace":
            scheme = obj.get("prepend_scheme")
            if scheme is None:
                scheme = "always" if obj.get("add_prefix_space", True) else "never"
            if scheme not in ("always", "first", "never"):
                raise FormatError(f"{where}: unknown prepend_scheme {scheme!r}")
            return Metaspace(
                str(obj.get("replacement", "\u2581")), scheme, bool(obj.get("split", True))
            )
        if kind == "Digits":
            return Digits(bool(obj.get("individual_digits", False)))
        if kind == "WhitespaceSplit":
            return WhitespaceSplit()
        if kind == "Whitespace":
            return Whitespace()
        if kind == "Punctuation":
            return Punctuation(str(obj.get("behavior", "Isolated")))
        if kind == "Sequence":
            items = obj["pretokenizers"]
            if not isinstance(items, list):
                raise FormatError(f"{where}.pretokenizers must be a list")
            steps = tuple(
                pretokenizer_from_json(o, f"{where}.pretokenizers[{i}]")
                for i, o in enumerate(items)
            )
            seen_byte_level = False
            for i, step in enumerate(steps):
                if seen_byte_level and not (
                    isinstance(step, ByteLevel) and not step.use_regex and not step.add_prefix_space
                ):
                    raise UnsupportedFeatureError(
                        f"{where}.pretokenizers[{i}]: a {step.to_json().get('type')} step after a ByteLevel step "
                        "(it would split byte-level characters) is not supported by toknz"
                    )
                seen_byte_level = seen_byte_level or step.byte_level
            return PreTokenizerSequence(steps)
    except KeyError as exc:
        raise FormatError(
            f"{where}: {kind} pre-tokenizer lacks the field {exc.args[0]!r}"
        ) from None
    raise UnsupportedFeatureError(
        f"{where}: the {kind!r} pre-tokenizer is not supported by toknz (supported: Split, ByteLevel, "
        "Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, Sequence)"
    )
