"""Where can a pre-token boundary fall, whatever text comes next?

A byte-level LM reads text whose end is not known yet. Whether a pre-token
boundary falls between two known stretches of text can depend on what
follows (``\\s+(?!\\S)`` gives back its last space only when a non-space
follows; contractions, end-of-text anchors). :class:`BoundaryOracle`
answers two questions about a pre-tokenizer, for an unknown continuation:

* :meth:`BoundaryOracle.possible`: can a boundary fall at a junction, for
  *some* continuation?
* :meth:`BoundaryOracle.final_cut`: which boundary of a known text holds for
  *every* continuation, so that later questions need only the text after it?

How (and what it rests on):

1. **Character atoms, exact.** A pre-tokenizer looks at a character only
   through a few tests: membership in the character classes and escapes of
   its regexes (``[^\\r\\n\\p{L}\\p{N}]``, ``\\s``, ``\\p{Lu}``), equality with
   the literal characters of its patterns (case-folded under ``(?i``), and
   the predicates of the non-regex steps (numeric, white space,
   punctuation, the Metaspace replacement). :func:`character_tests` lists
   those tests from the pre-tokenizer's own patterns; two characters that
   pass the same tests (one *atom*) can never be told apart by it, so
   answers are computed once per sequence of atoms and cached.
2. **Probes, verified.** "Some continuation" and "every continuation" range
   over an infinite set. They are decided over the *probes*: the empty
   continuation (the text ends) and one character of every atom. This rests
   on one property of the pre-tokenizer, *probe completeness*: for every
   text ``t`` and continuation ``f``, the boundaries that fall inside ``t``
   when pre-tokenizing ``t + f`` are those of ``t + p`` for some probe
   ``p``. It holds for patterns whose decisions past a known text depend on
   one more character (runs of a class, one-character look-aheads, ``$``,
   contractions after a known apostrophe); ``tests/test_bytelevel_boundaries.py``
   checks it against long random continuations for the GPT-2, cl100k,
   o200k, Llama 3, Qwen 2, DeepSeek and SmolLM2 pre-tokenizers.
   Pre-tokenizers whose character tests cannot be listed get no atoms and
   :meth:`possible` answers True (no pruning: sound, slower).

Texts are ``str`` decoded from bytes with ``surrogateescape`` (an
undecodable byte is one character U+DC80..U+DCFF, its own atom).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import regex

from toknz.pipeline.pretokenize import (
    _WHITE_SPACE,
    PATTERNS,
    ByteLevel,
    Digits,
    Metaspace,
    NoSplit,
    PreTokenizerSequence,
    Punctuation,
    Split,
    Whitespace,
    WhitespaceSplit,
    _is_numeric,
    _is_punctuation,
    pre_tokenize,
)

#: Every character a text may hold: all code points but the surrogates, plus the
#: escapes U+DC80..U+DCFF of undecodable bytes.
_ALL_CODES = np.concatenate(
    [
        np.arange(0xD800, dtype=np.uint32),
        np.arange(0xDC80, 0xDD00, dtype=np.uint32),
        np.arange(0xE000, 0x110000, dtype=np.uint32),
    ]
)

#: A character test: a regex (matching one character) or a Python predicate.
CharTest = str | Callable[[str], bool]

_SKIP_AFTER_GROUP = regex.compile(
    r"\?(?:[aiLmsuxVfbewr0-9-]*[:)]|P?<[A-Za-z_]\w*>|[=!]|<[=!]|>|#[^)]*\))"
)
_ESCAPE = regex.compile(
    r"\\(?:[pP]\{[^}]*\}|[pP][A-Za-z]|x[0-9A-Fa-f]{2}|x\{[0-9A-Fa-f]+\}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|N\{[^}]*\}|.)",
    regex.S,
)


def _keeps_out(normalizer: Any, ch: str) -> bool:
    """Whether ``normalizer`` never puts ``ch`` in its output when ``ch`` is not in its input."""
    from toknz.pipeline.normalizers import Prepend, Replace, Strip, StripAccents

    if isinstance(normalizer, Replace):
        return ch not in normalizer.content
    if isinstance(normalizer, Prepend):
        return ch not in normalizer.prepend
    return isinstance(normalizer, Strip | StripAccents)


def _never_outputs(normalizer: Any, ch: str) -> bool:
    """Whether no text normalized by ``normalizer`` holds the character ``ch``.

    True when a literal ``Replace`` of exactly ``ch`` (by text without it)
    runs, and every later step keeps ``ch`` out; unknown steps answer False.
    """
    from toknz.pipeline.normalizers import NormalizerSequence, Replace

    steps = normalizer.normalizers if isinstance(normalizer, NormalizerSequence) else (normalizer,)
    absent = False
    for step in steps:
        if isinstance(step, Replace) and not step.is_regex and step.pattern == ch:
            absent = ch not in step.content
        elif absent:
            absent = _keeps_out(step, ch)
    return absent


def effective_pre_tokenizer(normalizer: Any, pre: Any) -> Any:
    """``pre`` without the steps that can never split text normalized by ``normalizer``.

    A literal :class:`~toknz.pipeline.pretokenize.Split` on a string holding a
    character the normalizer always replaces never matches (Gemma 3 splits on
    ``" "`` after replacing every space with ``"▁"``): it is dropped, and a
    pre-tokenizer left with no step is :class:`~toknz.pipeline.pretokenize.NoSplit`.
    Boundary questions must be asked of this pre-tokenizer, since they are
    asked about text before normalization. Anything else is returned as is.
    """
    if normalizer is None:
        return pre

    def inert(step: Any) -> bool:
        return (
            isinstance(step, Split)
            and not step.is_regex
            and not step.invert
            and any(_never_outputs(normalizer, c) for c in step.pattern)
        )

    if isinstance(pre, PreTokenizerSequence):
        kept = tuple(s for s in pre.steps if not inert(s))
        if len(kept) == len(pre.steps):
            return pre
        if not kept:
            return NoSplit(pre.byte_level)
        return kept[0] if len(kept) == 1 else PreTokenizerSequence(kept)
    return NoSplit(pre.byte_level) if inert(pre) else pre


def _class_end(pattern: str, start: int) -> int:
    """Index just past the ``]`` closing the character class opened at ``pattern[start]``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    depth = 1
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            if pattern.startswith("[:", i):
                close = pattern.find(":]", i + 2)
                if close >= 0:
                    i = close + 2
                    continue
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unclosed character class at {start}")


def regex_character_tests(pattern: str) -> list[str] | None:
    """The one-character regexes ``pattern`` tests characters with, or None if unsure.

    Character classes are kept whole (ranges and negations included),
    escapes (``\\p{..}``, ``\\s``, ``\\d``, ``\\w``, ``\\n``...) and literal
    characters one by one; ``.`` adds a newline test. Under ``(?i`` each test
    is also given case-insensitively. Group syntax, quantifiers and anchors
    test no character. None when the pattern holds syntax this reader does
    not know (back-references, ``\\X``, verbose mode).
    """
    if any(x in pattern for x in ("(?x", "(?V1", "\\X", "\\G", "(?(")) or regex.search(
        r"\\[1-9gk]", pattern
    ):
        return None
    tests: list[str] = ["\\n"]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            m = _ESCAPE.match(pattern, i)
            assert m is not None
            esc = m.group()
            if esc[1] not in "bBAZzG":  # anchors test no character
                tests.append(esc)
            i = m.end()
        elif c == "[":
            try:
                end = _class_end(pattern, i)
            except ValueError:
                return None
            tests.append(pattern[i:end])
            i = end
        elif c == "(":
            m = _SKIP_AFTER_GROUP.match(pattern, i + 1)
            i = m.end() if m is not None else i + 1
        elif c == "{":
            m = regex.match(r"\{\d*(?:,\d*)?\}", pattern[i:])
            if m is not None:
                i += m.end()
            else:
                tests.append(regex.escape(c))
                i += 1
        elif c in ".^$|)?*+":
            i += 1
        else:
            tests.append(regex.escape(c))
            i += 1
    if regex.search(r"\(\?[a-zA-Z]*i", pattern):
        tests += [f"(?i:{t})" for t in tests]
    return sorted(set(tests))


def character_tests(pre: Any) -> list[CharTest] | None:
    """The character tests of a toknz pre-tokenizer (see the module doc), or None if unknown."""
    steps = pre.steps if isinstance(pre, PreTokenizerSequence) else (pre,)
    tests: list[CharTest] = []
    for step in steps:
        if isinstance(step, NoSplit):
            continue
        if isinstance(step, Split):
            if step.is_regex:
                found = regex_character_tests(step.pattern)
                if found is None:
                    return None
                tests += found
            else:
                tests += [regex.escape(c) for c in step.pattern]
        elif isinstance(step, ByteLevel):
            tests.append(" ")
            if step.use_regex:
                found = regex_character_tests(PATTERNS["gpt2"])
                assert found is not None
                tests += found
        elif isinstance(step, Metaspace):
            tests += [" ", regex.escape(step.replacement)]
        elif isinstance(step, Digits):
            tests.append(_is_numeric)
        elif isinstance(step, WhitespaceSplit):
            tests.append(_WHITE_SPACE.__contains__)
        elif isinstance(step, Whitespace):
            tests += ["\\w", "\\s"]
        elif isinstance(step, Punctuation):
            tests.append(_is_punctuation)
        else:
            return None
    return tests


class Atoms:
    """A partition of every character by the answers to a list of character tests.

    ``table[code_point]`` is the atom id (0..n-1) of a character;
    ``representatives[a]`` one character of atom ``a`` (the smallest code point).
    """

    def __init__(self, tests: Sequence[CharTest]) -> None:
        codes = _ALL_CODES
        text = codes.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")
        columns = []
        for test in tests:
            member = np.zeros(codes.size, dtype=bool)
            if isinstance(test, str):
                runs = regex.compile(f"(?:{test})+", regex.S)
                for m in runs.finditer(text):
                    member[m.start() : m.end()] = True
            else:
                member[[i for i, ch in enumerate(text) if test(ch)]] = True
            columns.append(member)
        # One row of answers per character; equal rows are one atom.
        answers = np.stack(columns, axis=1) if columns else np.zeros((codes.size, 1), dtype=bool)
        packed = np.ascontiguousarray(np.packbits(answers, axis=1))
        rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, ids = np.unique(rows, return_index=True, return_inverse=True)
        self.table = np.zeros(0x110000, dtype=np.int32)
        self.table[codes] = ids.astype(np.int32)
        # The smallest code point of each atom; probes are whole characters, so an
        # escaped continuation byte (U+DC80..U+DCBF) is taken only if nothing else is.
        reps = []
        for atom, i in enumerate(first):
            if 0xDC80 <= codes[i] < 0xDCC0:
                other = np.nonzero((ids == atom) & ((codes < 0xDC80) | (codes >= 0xDCC0)))[0]
                i = other[0] if other.size else i
            reps.append(chr(int(codes[i])))
        self.representatives = reps

    @property
    def size(self) -> int:
        return len(self.representatives)

    def of(self, text: str) -> bytes:
        """The atom ids of ``text``'s characters, as a hashable byte string."""
        if not text:
            return b""
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        return bytes(self.table[codes].astype(np.uint16).tobytes())


_ATOMS: dict[tuple[object, ...], Atoms] = {}


def _atoms_for(tests: list[CharTest]) -> Atoms:
    key = tuple(tests)
    found = _ATOMS.get(key)
    if found is None:
        found = _ATOMS[key] = Atoms(tests)
    return found


def boundaries(pieces: Sequence[str], text: str) -> list[int] | None:
    """Offsets (characters) where each piece ends, or None when the pieces do not spell ``text``."""
    if "".join(pieces) != text:
        return None
    out = []
    at = 0
    for p in pieces:
        at += len(p)
        out.append(at)
    return out


def _incomplete_tail(data: bytes) -> int:
    """Length of a trailing UTF-8 sequence that more bytes could still complete (0..3)."""
    for k in range(1, min(3, len(data)) + 1):
        lead = data[-k]
        if lead < 0x80:
            return 0
        if lead >= 0xC0:
            width = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4 if lead < 0xF5 else 0
            if width > k:
                try:
                    (data[-k:] + b"\x80" * (width - k)).decode("utf-8")
                except UnicodeDecodeError:
                    # A prefix that no continuation can complete (overlong, surrogate
                    # range, beyond U+10FFFF) still completes with *some* bytes only if
                    # the first continuation byte is constrained; try every one.
                    if not any(
                        _decodes(data[-k:] + bytes((b,)) + b"\x80" * (width - k - 1))
                        for b in range(0x80, 0xC0)
                    ):
                        return 0
                return k
            return 0
    return 0


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_NEVER, _MAYBE, _CERTAIN = 0, 1, 2


def _first_whole_char(data: bytes) -> str | None:
    """The first character of ``data`` (an undecodable byte is one), or None while more bytes could change it."""
    for width in (1, 2, 3, 4):
        if len(data) >= width and _decodes(data[:width]):
            return data[:width].decode("utf-8")
    head = data[:4]
    if _incomplete_tail(head) == len(head):
        return None  # an unfinished character
    return text_of(data[:1])


def _whole_chars(left: bytes, right: bytes) -> bool:
    """Whether the junction of ``left`` and ``right`` falls between characters."""
    head = text_of(left)
    return text_of(left + right).startswith(head) and len(
        head.encode("utf-8", "surrogateescape")
    ) == len(left)


def text_of(data: bytes) -> str:
    """``data`` decoded as UTF-8, each undecodable byte as U+DC80+byte."""
    return data.decode("utf-8", "surrogateescape")


class BoundaryOracle:
    """Pre-token boundary questions about one pre-tokenizer (see the module doc).

    ``pre``: a toknz pre-tokenizer (``tokenizer.pre_tokenizer``). Counters
    ``calls`` (questions asked) and ``splits`` (pre-tokenizer runs) measure
    the work.
    """

    def __init__(self, pre: Any) -> None:
        self.pre = pre
        self.splits_text = not isinstance(pre, NoSplit)
        tests = character_tests(pre) if self.splits_text else None
        self.atoms = _atoms_for(tests) if tests is not None else None
        reps = self.atoms.representatives if self.atoms is not None else []
        #: The continuations tried: the text ends, or goes on with one character of each atom.
        self.probes: list[str] = ["", *reps]
        self._tails: dict[bytes, list[str]] = {}
        self._coarse_cache: dict[tuple[bool, bytes, bytes, int], int] = {}
        self._possible: dict[tuple[bool, bytes, tuple[bytes, bytes], int], bool] = {}
        self._right_atoms: dict[bytes, tuple[bytes, bytes]] = {}
        self.calls = 0
        self.splits = 0

    def _bounds(self, text: str, at_start: bool) -> list[int] | None:
        self.splits += 1
        return boundaries(pre_tokenize(self.pre, text, at_start), text)

    def possible(self, left: bytes, right: bytes, *, at_start: bool = False) -> bool:
        """Whether some continuation puts a pre-token boundary between ``left`` and ``right``.

        ``left``: the text before the junction, from a final cut
        (:meth:`final_cut`, ``at_start`` False) or from the start of the text
        (``at_start`` True); ``right``: bytes known to follow the junction.
        A junction inside a UTF-8 character is never a boundary; trailing
        bytes of ``right`` that do not finish a character are treated as
        unknown. A pre-tokenizer that does not split: False; one without
        atoms: True.
        """
        return bool(self.possible_many(left, [right], at_start=at_start)[0])

    def possible_many(
        self, left: bytes, rights: Sequence[bytes], *, at_start: bool = False
    ) -> np.ndarray:
        """:meth:`possible` for one ``left`` and many ``rights``: a bool array."""
        out = np.zeros(len(rights), dtype=bool)
        if not self.splits_text or not rights:
            return out
        self.calls += len(rights)
        if not left or self.atoms is None:
            out[:] = True
            if left and self.atoms is None:
                out &= [_whole_chars(left, r) for r in rights]
            return out
        if _incomplete_tail(left):
            # The junction may fall inside a character: decide each right alone.
            for k, r in enumerate(rights):
                out[k] = _whole_chars(left, r) and self._decide(
                    left + r, len(text_of(left)), at_start
                )
            return out
        head = text_of(left)
        head_atoms = self.atoms.of(head)
        j = len(head)
        for k, r in enumerate(rights):
            found = self._right_atoms.get(r)
            if found is None:
                cut = _incomplete_tail(r)
                found = self._right_atoms[r] = (
                    self.atoms.of(text_of(r[: len(r) - cut])),
                    r[len(r) - cut :],
                )
            key = (at_start, head_atoms, found, j)
            hit = self._possible.get(key)
            if hit is None:
                hit = self._decide(left + r, j, at_start)
                if len(self._possible) > 1 << 18:
                    self._possible.clear()
                self._possible[key] = hit
            out[k] = hit
        return out

    def group(self, rights: Sequence[bytes]) -> tuple[np.ndarray, list[bytes]]:
        """Group byte strings that :meth:`possible` cannot tell apart after a whole character.

        Returns ``(group_of, firsts)``: ``group_of[k]`` is the group of
        ``rights[k]``; ``firsts[g]`` one member of group ``g``. Two rights are
        in one group when their complete characters have the same atoms and
        their unfinished trailing bytes are equal. (After a ``left`` that ends
        inside a character the bytes themselves matter: use
        :meth:`possible_many` there.)
        """
        keys: dict[tuple[bytes, bytes], int] = {}
        group_of = np.empty(len(rights), dtype=np.int64)
        firsts: list[bytes] = []
        for k, r in enumerate(rights):
            cut = _incomplete_tail(r)
            atoms = self.atoms.of(text_of(r[: len(r) - cut])) if self.atoms is not None else r
            key = (atoms, r[len(r) - cut :])
            g = keys.get(key)
            if g is None:
                g = keys[key] = len(firsts)
                firsts.append(r)
            group_of[k] = g
        return group_of, firsts

    def possible_heads(
        self,
        left: bytes,
        heads: np.ndarray,
        rights: Sequence[bytes],
        grouping: tuple[np.ndarray, list[bytes]],
        *,
        at_start: bool = False,
    ) -> np.ndarray:
        """:meth:`possible` of ``left`` before ``rights[h]`` for each ``h`` in ``heads`` (bool array).

        ``grouping`` is :meth:`group` of ``rights``: one question is asked
        per group present, unless ``left`` ends inside a character.
        """
        if _incomplete_tail(left) or not left:
            distinct, back = np.unique(heads, return_inverse=True)
            answers = self.possible_many(
                left, [rights[h] for h in distinct.tolist()], at_start=at_start
            )
            return answers[back]
        group_of, firsts = grouping
        distinct, back = np.unique(group_of[heads], return_inverse=True)
        # First by the first character alone: no boundary before it means none before
        # any longer right (a longer right is one of its continuations), and a boundary
        # under every continuation means one before every longer right too.
        answers = np.zeros(distinct.size, dtype=bool)
        fine: list[int] = []
        if self.splits_text and self.atoms is not None:
            text = text_of(left)
            head_atoms = self.atoms.of(text)
            for k, g in enumerate(distinct.tolist()):
                c = _first_whole_char(firsts[g])
                verdict = _MAYBE if c is None else self._coarse(text, head_atoms, c, at_start)
                if verdict == _MAYBE:
                    fine.append(k)
                else:
                    answers[k] = verdict == _CERTAIN
        else:
            fine = list(range(distinct.size))
        if fine:
            answers[fine] = self.possible_many(
                left, [firsts[int(distinct[k])] for k in fine], at_start=at_start
            )
        return answers[back]

    def _coarse(self, text: str, head_atoms: bytes, c: str, at_start: bool) -> int:
        """Boundary after ``text`` when the next character is ``c``: never, maybe or certain."""
        assert self.atoms is not None
        j = len(text)
        key = (at_start, head_atoms, self.atoms.of(c), j)
        hit = self._coarse_cache.get(key)
        if hit is None:
            self.calls += 1
            seen = 0
            for probe in self.probes:
                found = self._bounds(text + c + probe, at_start)
                if found is None or j in found:
                    seen += 1
                elif seen:
                    break  # some with, some without: maybe
            hit = _NEVER if seen == 0 else _CERTAIN if seen == len(self.probes) else _MAYBE
            if len(self._coarse_cache) > 1 << 18:
                self._coarse_cache.clear()
            self._coarse_cache[key] = hit
        return hit

    def _decide(self, data: bytes, j: int, at_start: bool) -> bool:
        """Whether some continuation of ``data`` puts a boundary at character ``j``.

        Trailing bytes of ``data`` that more bytes could turn into a
        character (``tail``) are unknown. A junction before them is probed
        with every atom of the characters whose UTF-8 starts with ``tail``,
        and with ``tail`` left unfinished, each followed by a probe. A
        junction *inside* them is a boundary only if they are never finished
        (else it is inside a character), so they stay undecodable bytes and
        the probes, whole characters, never finish them.
        """
        cut = _incomplete_tail(data)
        known = text_of(data[: len(data) - cut])
        if j > len(known):
            texts = [text_of(data)]
        elif j == len(known) and cut:
            texts = [known + c for c in self._completions(data[len(data) - cut :])]
        else:
            texts = [known]
        for text in texts:
            for probe in self.probes:
                found = self._bounds(text + probe, at_start)
                if found is None or j in found:
                    return True
        return False

    def _completions(self, tail: bytes) -> list[str]:
        """One character of each atom among those whose UTF-8 starts with ``tail``, and ``tail`` unfinished."""
        found = self._tails.get(tail)
        if found is None:
            assert self.atoms is not None
            width = 2 if tail[0] < 0xE0 else 3 if tail[0] < 0xF0 else 4
            fill = width - len(tail) - 1
            firsts = [
                b for b in range(0x80, 0xC0) if _decodes(tail + bytes((b,)) + b"\x80" * fill)
            ]  # a contiguous range
            lo = ord(text_of(tail + bytes((firsts[0],)) + b"\x80" * fill))
            hi = ord(text_of(tail + bytes((firsts[-1],)) + b"\xbf" * fill))
            table = self.atoms.table[lo : hi + 1]
            _, first = np.unique(table, return_index=True)
            found = [chr(lo + int(i)) for i in first] + [text_of(tail)]
            self._tails[tail] = found
        return found

    def certain(self, data: bytes, *, at_start: bool = True) -> list[int]:
        """Byte offsets inside ``data`` where every continuation puts a pre-token boundary.

        ``data`` starts at a final cut (or the start of the text, ``at_start``).
        Offsets are strictly inside the known text (a trailing unfinished
        character is unknown), in increasing order. A token that spans one of
        them cannot be in a canonical tokenization. Without atoms: none.
        """
        if not self.splits_text or self.atoms is None or not data:
            return []
        body = data[: len(data) - _incomplete_tail(data)]
        text = text_of(body)
        common: set[int] | None = None
        for probe in self.probes:
            found = self._bounds(text + probe, at_start)
            if found is None:
                return []
            inside = {e for e in found if e < len(text)}
            common = inside if common is None else common & inside
            if not common:
                return []
        assert common is not None
        return sorted(len(text[:e].encode("utf-8", "surrogateescape")) for e in common)

    def final_cut(self, data: bytes, start: int = 0, *, at_start: bool = True) -> int:
        """A byte offset ``b >= start`` of ``data`` that is a final pre-token boundary.

        ``start`` must itself be final (0, or an earlier answer; ``at_start``
        says whether it is the start of the text). A boundary ``b`` is final
        when, for every continuation ``f``, pre-tokenizing
        ``data[start:] + f`` puts a boundary at ``b`` and the pieces after it
        are those of ``data[b:] + f`` pre-tokenized alone: questions about
        junctions after ``b`` then need only ``data[b:]``. Tries the start
        of the second-to-last piece, then earlier pieces (at most three);
        returns ``start`` when none is proven.
        """
        if not self.splits_text or self.atoms is None:
            return start
        body = data[start:]
        body = body[: len(body) - _incomplete_tail(body)]
        text = text_of(body)
        ends = self._bounds(text, at_start)
        if ends is None or len(ends) < 3:
            return start
        for k in range(len(ends) - 3, max(-1, len(ends) - 6), -1):
            at = ends[k]
            if self._final(text, at, at_start):
                return start + len(text[:at].encode("utf-8", "surrogateescape"))
        return start

    def _final(self, text: str, at: int, at_start: bool) -> bool:
        rest = text[at:]
        for probe in self.probes:
            whole = pre_tokenize(self.pre, text + probe, at_start)
            alone = pre_tokenize(self.pre, rest + probe, False)
            self.splits += 2
            ends = boundaries(whole, text + probe)
            if ends is None or at not in ends or whole[ends.index(at) + 1 :] != alone:
                return False
        return True
