"""Hypothesis strategies for text that stresses tokenizers.

:func:`texts` mixes arbitrary Unicode (surrogates excluded: they cannot be
UTF-8) with building blocks that are known to be hard for split regexes, BPE
and normalizers: whitespace runs of every kind, digits of several scripts,
contractions with several apostrophes, emoji sequences, combining marks,
mixed scripts, title-case letters, special-token strings and long runs of one
character.
"""

from __future__ import annotations

import unicodedata

import regex
from hypothesis import strategies as st

#: Whitespace characters and sequences (Unicode White_Space, CR LF, and lookalikes that are not).
WHITESPACE = [
    " ",
    "  ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "\u00a0",  # no-break space
    "\u3000",  # ideographic space
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
    "\x0b",
    "\x0c",
    "\x85",
    "\u2009",  # thin space
    "\u202f",
    "\u1680",
    "\u200b",  # zero-width space: NOT whitespace
    "\ufeff",  # BOM: NOT whitespace
]

#: Ten digits of several scripts, and other numeric characters (Nl, No).
DIGIT_SETS = [
    "0123456789",
    "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",  # Arabic-Indic
    "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9",  # Extended Arabic-Indic
    "\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e\u096f",  # Devanagari
    "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",  # fullwidth
    "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079",  # superscripts
    "\u2160\u2161\u216b\u00bd\u2155\u2460\u2461\u3007",  # Roman numerals, fractions, circled
]

CONTRACTIONS = [
    "'s",
    "'S",
    "\u2019s",
    "'ll",
    "'LL",
    "'Re",
    "'t",
    "'T",
    "'d",
    "'m",
    "'ve",
    "'VE",
    "\u02bcs",
    "''s",
    "'",
]

EMOJI = [
    "\U0001f600",
    "\U0001f44d",
    "\U0001f44d\U0001f3fd",  # skin tone
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # family (ZWJ)
    "\U0001f9d1\U0001f3ff\u200d\U0001f4bb",  # technologist, skin tone, ZWJ
    "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag
    "\U0001f1fa\U0001f1f8",  # flag US
    "\U0001f1ef\U0001f1f5",  # flag JP
    "\u2764\ufe0f",
    "\u263a",
    "\U0001f9e0",
    "1\ufe0f\u20e3",  # keycap
]

COMBINING = [
    "e\u0301",
    "a\u0308\u0323",
    "\u0301",  # a combining mark with nothing to combine with
    "n\u0303o",
    "\u1100\u1161\u11a8",  # decomposed Hangul syllable (NFC composes it)
    "\u0915\u094d\u0937",  # Devanagari conjunct
    "\u05e9\u05c1",  # Hebrew with point
    "i\u0307",
    "\u00c5",
    "A\u030a",  # decomposed Å
    "\ufb01",  # ﬁ ligature (NFKC changes it)
    "\u2126",  # Ohm sign (NFC changes it)
]

WORDS = [
    "hello",
    "Hello",
    "HELLO",
    "world",
    "tokenizer",
    "the",
    "The",
    "\u041f\u0440\u0438\u0432\u0435\u0442",  # Cyrillic
    "\u043c\u0438\u0440",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",  # Greek
    "\u4e2d\u6587\u5b57\u7b26",  # CJK
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",  # Japanese
    "\uff76\uff80\uff76\uff85",  # halfwidth katakana
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",  # Arabic
    "\u05e2\u05d1\u05e8\u05d9\u05ea",  # Hebrew
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",  # Thai
    "\u0939\u093f\u0928\u094d\u0926\u0940",  # Devanagari
    "\ud55c\uad6d\uc5b4",  # Hangul
    "\u00fcn\u00efc\u00f8d\u00e9",
    "stra\u00dfe",
    "\u0130stanbul",
    "\u01c5",  # title case letters
    "\u01c8",
    "\u01cb",
    "\u01f2",
    "\u1f88",
    "\u01c5abc",
    "mIxEd",
    "CamelCase",
    "snake_case",
    "x86_64",
    "\u2581word",  # SentencePiece metaspace spelled in the text
    "\u0120token",  # GPT-2 byte alphabet characters in the text
]

PUNCT = [
    ".",
    ",",
    "!",
    "?",
    "...",
    "\u2026",
    "--",
    "\u2014",
    "()",
    "{",
    "}",
    "[",
    "]",
    "=>",
    "==",
    "!=",
    "//",
    "/*",
    "*/",
    "#",
    "\\",
    "`",
    "```",
    "@",
    "$",
    "%",
    "&&",
    "||",
    "<",
    ">",
    "|",
    "<|",
    "|>",
    '"',
    "\u00ab",
    "\u00bb",
    "\u3002",
    "\uff0c",
    "\u00bf",
    "/",
    ":\n",
    ";\r\n",
]

SPECIAL_STRINGS = [
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|endofprompt|>",
    "<s>",
    "</s>",
    "<unk>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|im_start|>",
    "<|im_end|>",
    "<think>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<EOT>",
    "<|startoftext|>",
    "<|return|>",
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
    "<|endoftext",  # almost special
    "|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "<<|endoftext|>>",
]

LONG_RUN_CHARS = [
    " ",
    "a",
    "\n",
    "\t",
    "!",
    "1",
    "\u00e9",
    "\u4e2d",
    "\u2581",
    "\U0001f600",
    "-",
    "=",
]

_UNASSIGNED = regex.compile(r"\p{Cn}")


def version_stable(c: str) -> bool:
    """False for a code point that Python's Unicode database calls unassigned but ``regex`` knows.

    Those are the characters of Unicode versions newer than Python's (15.0 and
    later for Python 3.11). Split regexes classify them by the Unicode tables
    of their engine, and the engines of toknz (``regex``), tiktoken and
    ``tokenizers`` ship different Unicode versions; see
    ``test_tiktoken_equality.py::test_newest_unicode_letters``.
    """
    return unicodedata.category(c) != "Cn" or _UNASSIGNED.match(c) is not None


#: Every code point except surrogates (not encodable as UTF-8), newest Unicode included.
ANY_CHAR_ALL_VERSIONS = st.characters(exclude_categories=("Cs",))
# Broad Unicode: every code point except surrogates and the newest assignments.
_ANY_CHAR = ANY_CHAR_ALL_VERSIONS.filter(version_stable)
# Assigned, non-control characters, most scripts.
_PRINTABLE = st.characters(exclude_categories=("Cs", "Co", "Cn", "Cc"))
_ASCII = st.characters(min_codepoint=0, max_codepoint=127)
_LATIN1 = st.characters(min_codepoint=0, max_codepoint=0x24F, exclude_categories=("Cs",))


def _join(parts: list[str]) -> str:
    return "".join(parts)


whitespace_runs = st.lists(st.sampled_from(WHITESPACE), min_size=1, max_size=6).map(_join)
digit_runs = st.sampled_from(DIGIT_SETS).flatmap(
    lambda ds: st.text(alphabet=ds, min_size=1, max_size=12)
)
long_runs = st.builds(lambda c, n: c * n, st.sampled_from(LONG_RUN_CHARS), st.integers(40, 400))

building_block = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(WORDS).map(lambda w: " " + w),
    whitespace_runs,
    whitespace_runs,
    digit_runs,
    st.sampled_from(CONTRACTIONS),
    st.sampled_from(EMOJI),
    st.sampled_from(COMBINING),
    st.sampled_from(PUNCT),
    st.sampled_from(SPECIAL_STRINGS),
    st.text(alphabet=_ASCII, min_size=1, max_size=8),
    st.text(alphabet=_LATIN1, min_size=1, max_size=4),
    st.text(alphabet=_PRINTABLE, min_size=1, max_size=4),
)

#: Text built from the hard building blocks (plus an occasional long run).
block_texts = st.lists(
    st.one_of(building_block, building_block, building_block, building_block, long_runs),
    max_size=24,
).map(_join)

#: Arbitrary Unicode strings, all of it (controls, unassigned, private use).
any_texts = st.text(alphabet=_ANY_CHAR, max_size=60)


def texts(*, max_blocks: int = 24) -> st.SearchStrategy[str]:
    """Text for equality tests: arbitrary Unicode, biased towards hard building blocks."""
    blocks = st.lists(
        st.one_of(building_block, building_block, building_block, building_block, long_runs),
        max_size=max_blocks,
    ).map(_join)
    return st.one_of(
        any_texts,
        st.text(alphabet=_PRINTABLE, max_size=40),
        blocks,
        blocks,
        blocks,
        # arbitrary characters glued between building blocks
        st.lists(
            st.one_of(building_block, st.text(alphabet=_ANY_CHAR, max_size=3)), max_size=16
        ).map(_join),
    )


def texts_without(forbidden: list[str], **kwargs: int) -> st.SearchStrategy[str]:
    """:func:`texts` with every occurrence of the ``forbidden`` strings cut out (one pass each)."""

    def strip(s: str) -> str:
        for _ in range(3):
            for f in forbidden:
                s = s.replace(f, "")
        return s

    return texts(**kwargs).map(strip).filter(lambda s: not any(f in s for f in forbidden))
