"""The compiled pre-tokenizers split exactly as ``regex.findall`` does, every time.

The reference is ``regex.findall(PATTERNS[name], text)`` itself. Text is drawn
from every Unicode general category (as ``regex`` classifies code points, which
is newer Unicode than :mod:`unicodedata`), every whitespace character, digits of
every kind, apostrophes and case variants of the contraction letters, title
case, combining marks in every position, CR/LF mixes, trailing whitespace and
long runs; plus every ``corpora/**/*.txt`` file whole. Any disagreement fails.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import regex
import strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toknz_core import pretok
from toknz_core.unicode_classes import (
    FOLD_SHIFT,
    LOWERISH,
    TABLE_SIZE,
    UPPERISH,
    WS,
    L,
    N,
    utf8_error_offset,
)

from toknz.errors import InputError
from toknz.pipeline import unicode_tables
from toknz.pipeline.fast_pretokenize import (
    compiled_splitter,
    kind_of,
    split_bytes,
    split_bytes_batch,
)
from toknz.pipeline.pretokenize import PATTERNS

REPO = Path(__file__).resolve().parents[1]
NAMES = ["gpt2", "r50k", "p50k", "cl100k", "o200k", "llama3", "qwen"]
DISTINCT = ["gpt2", "r50k", "cl100k", "o200k", "llama3", "qwen"]  # p50k is r50k's regex

CATEGORIES = [
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No",
    "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So",
    "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn",
]  # fmt: skip

#: Every character that is ``\s`` somewhere (Python's str.isspace, Unicode White_Space)
#: and the lookalikes that are not.
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u180e\ufeff"
)
APOSTROPHES = ["'", "\u2019", "\u02bc", "\uff07"]
CONTRACTION_TAILS = [
    "s", "S", "\u017f", "t", "T", "d", "D", "m", "M", "ll", "LL", "lL", "Ll", "l",
    "ve", "VE", "vE", "re", "RE", "Re", "r", "v", "e", "k", "\u212a", "\u017ft", "st", "",
]  # fmt: skip
MARKS = ["\u0301", "\u0308\u0323", "\u20dd", "\u0903", "\u0e31", "\U0001e4ef", "\ufe0f"]
TITLE_AND_CASE = [
    "\u01c5", "\u01c4", "\u01c6", "\u1f88", "\u1fbc", "A", "a", "\u00df", "\u1e9e",
    "\u0130", "\u0131", "\u03a3", "\u03c2", "\u02b0", "\u3005", "\u02bb", "\u00aa",
]  # fmt: skip
DIGITS = (
    "0123456789\u0660\u0669\u06f0\u0966\u09e6\uff10\uff19\U0001d7ce\U0001fbf0"  # Nd
    "\u2160\u216b\u3007\u3021\U00010140\u16ee"  # Nl
    "\u00b2\u00b3\u00b9\u00bc\u00bd\u00be\u2070\u2074\u2079\u2080\u2155\u2460\u2474\u2cfd"  # No
)
BREAKS = ["\r\n", "\n", "\r", "\n\r", "\r\r\n", "\n\n", " \n", "\n ", " \r\n ", "\t\n", "\u2028"]


@functools.cache
def _by_category() -> dict[str, list[int]]:
    """Code points of each general category, as ``regex`` (not unicodedata) classifies them."""
    alternatives = "|".join(f"(?P<{c}>\\p{{{c}}}+)" for c in CATEGORIES)
    found: dict[str, list[int]] = {c: [] for c in CATEGORIES}
    for m in regex.finditer(alternatives, unicode_tables._all_code_points()):
        cat = m.lastgroup
        assert cat is not None
        found[cat].extend(range(m.start(), m.end()))
    return found


@st.composite
def _char_of_category(draw: st.DrawFn) -> str:
    cats = _by_category()
    cat = draw(st.sampled_from(CATEGORIES))
    points = cats[cat]
    return chr(points[draw(st.integers(0, len(points) - 1))])


def _category_chars(max_size: int = 6) -> st.SearchStrategy[str]:
    return st.lists(_char_of_category(), min_size=1, max_size=max_size).map("".join)


_blocks = st.one_of(
    _category_chars(),
    _category_chars(),
    st.text(alphabet=SPACES, min_size=1, max_size=6),
    st.sampled_from(BREAKS),
    st.text(alphabet=DIGITS, min_size=1, max_size=8),
    st.builds(lambda a, t: a + t, st.sampled_from(APOSTROPHES), st.sampled_from(CONTRACTION_TAILS)),
    st.sampled_from(MARKS),
    st.sampled_from(TITLE_AND_CASE),
    st.sampled_from(strategies.WORDS),
    st.sampled_from(strategies.PUNCT),
    st.sampled_from(strategies.EMOJI),
    st.sampled_from(strategies.COMBINING),
    st.text(alphabet="aA \n'.1", max_size=8),
    st.builds(
        lambda c, n: c * n,
        st.sampled_from([" ", "\n", "a", "A", "1", ".", "\u0301", "\u4e00", "\u00a0", "'"]),
        st.integers(1, 40),
    ),
)


def texts(max_blocks: int = 16) -> st.SearchStrategy[str]:
    """Blocks glued together, sometimes after a leading mark or before trailing whitespace."""
    body = st.lists(_blocks, max_size=max_blocks).map("".join)
    return st.one_of(
        body,
        st.builds(lambda m, b: m + b, st.sampled_from(MARKS), body),
        st.builds(lambda b, s: b + s, body, st.text(alphabet=SPACES, min_size=1, max_size=4)),
        strategies.texts(),
    )


def _check(name: str, text: str) -> None:
    expected = regex.findall(PATTERNS[name], text)
    split = compiled_splitter(PATTERNS[name])
    assert split is not None
    got = split(text)
    assert got == expected, f"{name}: {text!r}"
    # The byte layer gives the same pieces.
    raw, offsets = split_bytes(
        PATTERNS[name], text.encode("utf-8", "surrogatepass"), validate=False
    )
    pieces = [
        raw[offsets[i] : offsets[i + 1]].decode("utf-8", "surrogatepass")
        for i in range(len(offsets) - 1)
    ]
    assert pieces == expected, f"{name} (bytes): {text!r}"


EXAMPLES = [
    "",
    " ",
    "a",
    "Hello world's  THE end!!\n\n  x",
    "a\n  ",
    "x  \n",
    "\n\n\n",
    "  \n  \n  ",
    "\r\n\r\n\t \r\n  foo",
    "'S 'll 'LL 'lL '\u017f '\u017ft 'K '\u212a 'ſ",
    "don't I'M we'Re they'VE it's'",
    "''s'''",
    "123456 1234567 \u00bd\u00b2 \u2160\u2161 12a34",
    "\u0301A.",
    "\u0301",
    " \u0301",
    "\u0301\u0301x",
    "a\u0301b \u0301'S",
    "\u65e5\u672c\u8a9eabc HELLO World\u2019s WORLD's \u01c5a \u01c5",
    " \u00a0hello\r\n\r\n  \t",
    "foo/\nbar //\n/x !\r\n/\r",
    "\u3000\u3000x\u2028\u2029y\x0b\x0c\x1c\x1d z\x85",
    "CamelCaseWORDs and_snake x86_64 HTTPServer\u0301s",
    "\U0001f468\u200d\U0001f469 \U0001f44d\U0001f3fd!",
    "\ud800 lone \udfff surrogates",
    "trailing spaces   ",
    "trailing newline\n",
    "  \n",
]


@pytest.mark.parametrize("name", NAMES)
def test_examples_match_regex(name: str) -> None:
    for text in EXAMPLES:
        _check(name, text)


def test_text_holding_the_separators() -> None:
    """Text that holds the join separators (or all of them: the slicing path) splits the same."""
    every = "".join(chr(c) for c in (*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F))
    for text in ["a\x00b c", "x " + every + " y's\n", every * 3 + "\u00e9t\u00e9 \U0001f600"]:
        for name in DISTINCT:
            _check(name, text)


@pytest.mark.parametrize("name", DISTINCT)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts())
def test_hypothesis_matches_regex(name: str, text: str) -> None:
    _check(name, text)


@pytest.mark.slow
@pytest.mark.parametrize("name", DISTINCT)
@settings(max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts(max_blocks=48))
def test_hypothesis_matches_regex_long(name: str, text: str) -> None:
    _check(name, text)


CONTEXTS = [("", " "), (" ", "a"), ("'", "\u0301"), ("A", "'S"), ("\u0301", "1")]


def _code_point_texts(stride: int) -> list[str]:
    """One text per context, with code points ``i = k (mod stride)`` for context ``k``.

    Each code point sits after the context's ``before`` string and the pieces
    are joined with its ``after`` string.
    """
    everything = unicode_tables._all_code_points()
    return [
        after.join(before + everything[i : i + 1] for i in range(k % stride, TABLE_SIZE, stride))
        for k, (before, after) in enumerate(CONTEXTS)
    ]


@pytest.mark.parametrize("name", ["r50k", "cl100k", "o200k", "llama3", "qwen"])
def test_code_points_in_contexts(name: str) -> None:
    """A sixteenth of all code points per context (surrogates too), split as regex does."""
    split = compiled_splitter(PATTERNS[name])
    assert split is not None
    for text, context in zip(_code_point_texts(16), CONTEXTS, strict=True):
        assert split(text) == regex.findall(PATTERNS[name], text), context


@pytest.mark.slow
@pytest.mark.parametrize("name", ["r50k", "cl100k", "o200k", "llama3", "qwen"])
def test_every_code_point_in_every_context(name: str) -> None:
    """Every code point in every context, split as regex does."""
    split = compiled_splitter(PATTERNS[name])
    assert split is not None
    for text, context in zip(_code_point_texts(1), CONTEXTS, strict=True):
        assert split(text) == regex.findall(PATTERNS[name], text), context


def _corpus_files() -> list[Path]:
    return sorted((REPO / "corpora").glob("**/*.txt"))


@pytest.mark.parametrize("name", DISTINCT)
def test_corpora_match_regex(name: str) -> None:
    files = _corpus_files()
    assert files, "no corpora/**/*.txt files"
    split = compiled_splitter(PATTERNS[name])
    assert split is not None
    for path in files:
        text = path.read_text(encoding="utf-8")
        got = split(text)
        expected = regex.findall(PATTERNS[name], text)
        if got != expected:
            first = next(
                (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                min(len(got), len(expected)),
            )
            pytest.fail(
                f"{name} on {path.relative_to(REPO)}: piece {first} differs: "
                f"{got[first : first + 3]!r} vs regex {expected[first : first + 3]!r}"
            )


# Code points first assigned in each Unicode version (checked against unicodedata where
# Python's data is new enough).
SENTINELS = {
    "13.0.0": 0x10E80,  # YEZIDI LETTER ELIF
    "14.0.0": 0x10570,  # VITHKUQI CAPITAL LETTER A
    "15.0.0": 0x11F04,  # KAWI LETTER A
    "15.1.0": 0x2EBF0,  # CJK UNIFIED IDEOGRAPH-2EBF0 (extension I)
    "16.0.0": 0x11BC0,  # SUNUWAR LETTER DEVI
    "17.0.0": 0x1E6C0,  # TAI YO LETTER LOW KO
}


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def test_unicode_version_is_what_regex_behaves_as() -> None:
    version = unicode_tables.unicode_version()
    if version.startswith("unknown"):
        # A `regex` release newer than the versions listed: it must know more
        # characters than the newest of them, and then passes all its sentinels.
        assigned = int(version.split("(")[1].split()[0])
        assert assigned > max(unicode_tables.UNICODE_TOTALS), version
        version = max(unicode_tables.UNICODE_TOTALS.values(), key=_version_key)
    else:
        assert version in unicode_tables.UNICODE_TOTALS.values(), version
    table = unicode_tables.load_table()
    for v, cp in SENTINELS.items():
        assigned = regex.match(r"\p{Cn}", chr(cp)) is None
        new_enough = _version_key(v) <= _version_key(version)
        assert assigned == new_enough, (v, hex(cp))
        assert bool(table[cp] & L) == new_enough, (v, hex(cp))
        if _version_key(v) <= _version_key(unicodedata.unidata_version):
            assert unicodedata.category(chr(cp)) != "Cn"
        else:
            assert unicodedata.category(chr(cp)) == "Cn"
    if regex.__version__ == "2026.5.9":
        # What this environment's regex uses (Python 3.11's unicodedata is 14.0.0).
        assert version == "17.0.0"


def test_table_matches_regex_classes() -> None:
    table = unicode_tables.load_table()
    rng = np.random.default_rng(0)
    sample = np.unique(np.concatenate([np.arange(0x800), rng.integers(0, TABLE_SIZE, 4_000)]))
    classes = {
        L: regex.compile(r"\p{L}"),
        N: regex.compile(r"\p{N}"),
        WS: regex.compile(r"\s"),
        UPPERISH: regex.compile(r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"),
        LOWERISH: regex.compile(r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"),
    }
    for cp in sample.tolist():
        c = chr(cp)
        for bit, pat in classes.items():
            assert bool(table[cp] & bit) == (pat.match(c) is not None), (hex(cp), int(bit))
        fold = int(table[cp]) >> FOLD_SHIFT
        for letter in "sdmtlvre":
            assert (fold == ord(letter)) == (regex.match(f"(?i:{letter})", c) is not None), hex(cp)
    # \s in regex is White_Space: not Python's str.isspace (which adds \x1c-\x1f).
    assert not table[0x1C] & WS and table[0x85] & WS and not table[0x200B] & WS
    assert int(table[0x17F]) >> FOLD_SHIFT == ord("s")


def test_table_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKNZ_CACHE", str(tmp_path))
    built, meta = unicode_tables.build_table()
    unicode_tables._load.cache_clear()
    try:
        first = unicode_tables.load_table()
        files = sorted(p.name for p in (tmp_path / "unicode").iterdir())
        assert files == [
            f"{unicode_tables._cache_stem()}.json",
            f"{unicode_tables._cache_stem()}.npy",
        ]
        unicode_tables._load.cache_clear()
        second = unicode_tables.load_table()
        assert np.array_equal(first, built) and np.array_equal(second, built)
        assert unicode_tables.table_info() == meta
        assert not second.flags.writeable
    finally:
        unicode_tables._load.cache_clear()


def test_supported_patterns_only() -> None:
    for name in NAMES:
        assert kind_of(PATTERNS[name]) is not None
        assert compiled_splitter(name) is None  # a name is not a regex
    assert compiled_splitter(r"\w+|\s+") is None
    assert compiled_splitter(PATTERNS["cl100k"] + "|x") is None
    with pytest.raises(ValueError):
        split_bytes(r"\w+", b"abc")


def test_split_bytes_offsets_and_errors() -> None:
    raw, offsets = split_bytes(PATTERNS["cl100k"], b"Hello world\n")
    assert raw == b"Hello world\n"
    assert offsets.dtype == np.int64 and offsets.tolist() == [0, 5, 11, 12]
    raw, offsets = split_bytes(PATTERNS["cl100k"], b"")
    assert offsets.tolist() == [0]
    with pytest.raises(InputError, match="byte offset 3"):
        split_bytes(PATTERNS["o200k"], b"abc\xff def")
    with pytest.raises(InputError, match="byte offset 1"):
        split_bytes(PATTERNS["o200k"], b"a\xed\xa0\x80")  # an encoded surrogate
    # Without validation, invalid input still splits into pieces that cover it.
    raw, offsets = split_bytes(PATTERNS["o200k"], b"ab\xf4\xff\xff\xff\xc3", validate=False)
    assert offsets[0] == 0 and offsets[-1] == len(raw) and np.all(np.diff(offsets) > 0)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40) | st.text(max_size=20).map(lambda s: s.encode()))
def test_utf8_validator_agrees_with_python(data: bytes) -> None:
    arr = np.frombuffer(data, dtype=np.uint8)
    bad = int(utf8_error_offset(arr))
    try:
        data.decode("utf-8")
        assert bad == -1
    except UnicodeDecodeError as exc:
        assert bad == exc.start


@pytest.mark.parametrize("name", ["r50k", "cl100k", "o200k", "llama3", "qwen"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(texts(max_blocks=6), max_size=8))
def test_batch_equals_one_by_one(name: str, docs: list[str]) -> None:
    encoded = [d.encode("utf-8", "surrogatepass") for d in docs]
    doc_offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    doc_offsets[1:] = np.cumsum([len(e) for e in encoded])
    data = b"".join(encoded)
    ends, piece_offsets = split_bytes_batch(PATTERNS[name], data, doc_offsets, validate=False)
    assert piece_offsets.shape == (len(docs) + 1,)
    for d, text in enumerate(docs):
        start = int(doc_offsets[d])
        doc_ends = ends[piece_offsets[d] : piece_offsets[d + 1]].tolist()
        starts = [start, *doc_ends][: len(doc_ends)]
        pieces = [
            data[s:e].decode("utf-8", "surrogatepass")
            for s, e in zip(starts, doc_ends, strict=True)
        ]
        assert pieces == regex.findall(PATTERNS[name], text)


def test_batch_rejects_bad_input() -> None:
    data = "a\u00e9b".encode()
    with pytest.raises(InputError, match="byte offset 2"):
        split_bytes_batch(PATTERNS["cl100k"], data, np.array([0, 2, len(data)]))
    with pytest.raises(ValueError):
        split_bytes_batch(PATTERNS["cl100k"], data, np.array([0, 3, 2]))


def test_kernel_dtypes() -> None:
    table = unicode_tables.load_table()
    data = np.frombuffer(b"one two", dtype=np.uint8)
    ends = pretok.split_cl100k(data, table)
    assert ends.dtype == np.int64 and ends.tolist() == [3, 7]
    assert pretok.split_o200k(data, table).tolist() == [3, 7]
    assert pretok.split_r50k(data, table).tolist() == [3, 7]
    assert pretok.split_gpt2(data, table).tolist() == [3, 7]
    assert pretok.split_llama3(data, table).tolist() == [3, 7]
    assert pretok.split_qwen(data, table).tolist() == [3, 7]
