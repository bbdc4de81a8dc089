"""Character classes for character-level BPE (``max_token_chars``).

Each code point U+0000..U+10FFFF gets one class, from the Unicode data of
the ``regex`` package (the same data the split patterns use), tested in
this order:

1. ``SPACE`` (4): ``\\s`` (``White_Space``: space, tab, line breaks, U+0085,
   U+00A0, U+2028, the Zs spaces...);
2. ``LETTER`` (1): ``\\p{L}`` letters and ``\\p{M}`` combining marks (so that
   a base letter and its accents, or an Indic consonant and its vowel sign,
   may merge);
3. ``NUMBER`` (2): ``\\p{N}`` (Nd, Nl, No);
4. ``PUNCT`` (3): ``\\p{P}`` punctuation and ``\\p{S}`` symbols;
5. ``OTHER`` (5): everything else: controls that are not whitespace,
   format characters (ZWJ...), private use, surrogates, unassigned.

A merged token holds whole characters of one class among 1-4, or part of
one character; an ``OTHER`` character is never merged with another.
"""

from __future__ import annotations

import functools

import numpy as np
import regex
from toknz_core.train import LETTER, NUMBER, OTHER, PUNCT, SPACE

__all__ = ["CLASS_NAMES", "char_class_table", "class_of", "may_merge"]

#: Class number -> name.
CLASS_NAMES = {
    LETTER: "letter",
    NUMBER: "number",
    PUNCT: "punctuation",
    SPACE: "whitespace",
    OTHER: "other",
}

_ORDER = (
    (PUNCT, r"[\p{P}\p{S}]"),
    (NUMBER, r"\p{N}"),
    (LETTER, r"[\p{L}\p{M}]"),
    (SPACE, r"\s"),
)


@functools.lru_cache(maxsize=1)
def char_class_table() -> np.ndarray:
    """The class of every code point: a read-only ``int8`` array of 0x110000 entries.

    Built once per process (about half a second).

    >>> t = char_class_table()
    >>> [int(t[ord(c)]) for c in "a1. \\x00\\u0301"]
    [1, 2, 3, 4, 5, 1]
    """
    table = np.full(0x110000, OTHER, dtype=np.int8)
    text = "".join(map(chr, range(0x110000)))
    # Later classes overwrite earlier ones: whitespace wins, then letters, numbers, punctuation.
    for cls, pattern in _ORDER:
        starts = [m.start() for m in regex.finditer(pattern, text)]
        table[np.array(starts, dtype=np.int64)] = cls
    table.flags.writeable = False
    return table


def class_of(char: str) -> str:
    """The class name of one character: letter, number, punctuation, whitespace or other.

    >>> class_of("é"), class_of("٣"), class_of("§"), class_of("\\u2028"), class_of("\\u200d")
    ('letter', 'number', 'punctuation', 'whitespace', 'other')
    """
    return CLASS_NAMES[int(char_class_table()[ord(char)])]


def may_merge(left: bytes, right: bytes, max_chars: int) -> bool:
    """May the tokens ``left`` and ``right`` (in that order) merge in character-level BPE?

    The trainer's own rule (``toknz_core.train.chars_ok``), for one pair:
    yes when ``right`` starts inside a character (the merge builds that
    character), else only when both are whole characters of one class and
    hold at most ``max_chars`` characters together.

    >>> may_merge(b"ab", b"c", 3), may_merge(b"ab", b"cd", 3), may_merge(b"a", b"1", 3)
    (True, False, False)
    >>> may_merge(b"\\xc3", b"\\xa9", 1)
    True
    """
    from toknz_core.train import char_props, chars_ok

    table = char_class_table()
    data = np.frombuffer(left + right, dtype=np.uint8)
    props = [char_props(data, 0, len(left), table), char_props(data, len(left), len(data), table)]
    tcls = np.array([p[0] for p in props], dtype=np.int8)
    tnch = np.array([p[1] for p in props], dtype=np.int64)
    tcont = np.array([p[2] for p in props], dtype=np.int8)
    return bool(chars_ok(0, 1, tcls, tnch, tcont, max_chars))
