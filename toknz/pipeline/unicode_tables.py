"""The code-point class table of the compiled pre-tokenizers, made from the ``regex`` package.

The compiled scanners (:mod:`toknz_core.pretok`) must split exactly as
``regex.findall`` does, so their character classes come from ``regex``
itself, not from :mod:`unicodedata` (Python 3.11's is Unicode 14.0; ``regex``
ships its own, newer data). :func:`build_table` runs ``regex`` over every code
point, one pass per class; :func:`load_table` caches the result as ``.npy``
under ``$TOKNZ_CACHE/unicode/`` (default ``~/.cache/toknz/unicode/``), keyed by
``regex.__version__`` and the table layout version, so later runs load it in
about a millisecond. The layout is documented in :mod:`toknz_core.unicode_classes`.

The hat word splitter (:mod:`toknz_core.wordsplit`) needs a second table, the UAX #29
Word_Break property plus Extended_Pictographic, ``\\p{P}``, ``\\p{Ll}``, ``\\p{Lu}`` and
``\\s``: :func:`load_word_break_table` builds it the same way (``regex`` has
``\\p{Word_Break=...}``, which :mod:`unicodedata` lacks) and caches it next to the first.

:func:`unicode_version` says which Unicode version ``regex``'s data is. ``regex``
has no ``Age`` property and no version attribute; the number of assigned
characters (every code point outside Cn, Co, Cs and Cc) identifies the version,
since each version's total is published (17.0.0: 159,801).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import regex
from toknz_core.unicode_classes import (
    CONTRACTION_LETTERS,
    LAYOUT_VERSION,
    TABLE_SIZE,
    as_table,
    pack_table,
)
from toknz_core.wordsplit import (
    WB_EXTPICT,
    WB_LAYOUT_VERSION,
    WB_LL,
    WB_LU,
    WB_NAMES,
    WB_PUNCT,
    WB_WHITE,
)

from toknz.errors import ToknzError

#: Published totals of assigned characters (graphic, format; no controls, private use,
#: surrogates, noncharacters) per Unicode version.
UNICODE_TOTALS: dict[int, str] = {
    143_859: "13.0.0",
    144_697: "14.0.0",
    149_186: "15.0.0",
    149_813: "15.1.0",
    154_998: "16.0.0",
    159_801: "17.0.0",
}

#: The class patterns, exactly as the split patterns spell them.
CLASS_PATTERNS: dict[str, str] = {
    "letter": r"\p{L}",
    "number": r"\p{N}",
    "space": r"\s",
    "upperish": r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]",
    "lowerish": r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]",
}


class UnicodeTableError(ToknzError):
    """The class table could not be built or does not match what ``regex`` does."""


def cache_dir() -> Path:
    """Folder of the cached tables: ``$TOKNZ_CACHE/unicode`` or ``~/.cache/toknz/unicode``."""
    env = os.environ.get("TOKNZ_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "toknz"
    return root / "unicode"


def _cache_stem() -> str:
    return f"classes-layout{LAYOUT_VERSION}-regex{regex.__version__}"


@functools.cache
def _all_code_points() -> str:
    # Surrogates included: a str may hold them and regex classifies them (Cs).
    return "".join(map(chr, range(TABLE_SIZE)))


def class_mask(pattern: str) -> np.ndarray:
    """Boolean mask over every code point: does ``regex`` match ``pattern`` on that character."""
    mask = np.zeros(TABLE_SIZE, dtype=np.bool_)
    for m in regex.finditer(f"(?:{pattern})+", _all_code_points()):
        mask[m.start() : m.end()] = True
    return mask


def _assigned_count() -> int:
    unassigned = class_mask(r"[\p{Cn}\p{Co}\p{Cs}\p{Cc}]")
    return int(TABLE_SIZE - np.count_nonzero(unassigned))


def build_table() -> tuple[np.ndarray, dict[str, Any]]:
    """Build the class table with ``regex`` (a few seconds) and its metadata.

    Returns the read-only ``uint16`` table and a dict with ``regex_version``,
    ``layout_version``, ``assigned`` (the count of assigned characters) and
    ``unicode_version`` (a version string, or ``"unknown (N assigned)"``).
    Checks that the classes the scanners derive (``[^\\r\\n\\p{L}\\p{N}]``,
    ``[^\\s\\p{L}\\p{N}]``) are what ``regex`` matches; a mismatch is a
    :class:`UnicodeTableError`.
    """
    masks = {name: class_mask(p) for name, p in CLASS_PATTERNS.items()}
    fold = np.zeros(TABLE_SIZE, dtype=np.uint8)
    for letter in CONTRACTION_LETTERS:
        m = class_mask(f"(?i:{letter})")
        if np.any(fold[m] != 0):
            raise UnicodeTableError(f"a code point matches two contraction letters (at {letter!r})")
        fold[m] = ord(letter)
    letter_m, number_m, space_m = masks["letter"], masks["number"], masks["space"]
    crlf = np.zeros(TABLE_SIZE, dtype=np.bool_)
    crlf[[0x0A, 0x0D]] = True
    checks = {
        r"[^\r\n\p{L}\p{N}]": ~(crlf | letter_m | number_m),
        r"[^\s\p{L}\p{N}]": ~(space_m | letter_m | number_m),
    }
    for pattern, expected in checks.items():
        got = class_mask(pattern)
        if not np.array_equal(got, expected):
            bad = int(np.flatnonzero(got != expected)[0])
            raise UnicodeTableError(
                f"regex {regex.__version__}: {pattern} disagrees with the derived class at U+{bad:04X}"
            )
    if not (space_m[0x0A] and space_m[0x0D]):
        raise UnicodeTableError(r"regex's \s does not hold CR and LF")
    table = pack_table(letter_m, number_m, space_m, masks["upperish"], masks["lowerish"], fold)
    assigned = _assigned_count()
    _all_code_points.cache_clear()  # 4.4 MB, not needed after the build
    meta = {
        "regex_version": regex.__version__,
        "layout_version": LAYOUT_VERSION,
        "assigned": assigned,
        "unicode_version": UNICODE_TOTALS.get(assigned, f"unknown ({assigned} assigned)"),
    }
    return table, meta


def _write_atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cache(
    folder: Path, stem: str | None = None, layout: int = LAYOUT_VERSION
) -> tuple[np.ndarray, dict[str, Any]] | None:
    stem = stem or _cache_stem()
    npy, meta_path = folder / f"{stem}.npy", folder / f"{stem}.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        table = np.load(npy, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if (
        meta.get("regex_version") != regex.__version__
        or meta.get("layout_version") != layout
        or table.dtype != np.uint16
        or table.shape != (TABLE_SIZE,)
    ):
        return None
    return as_table(table), meta


@functools.cache
def _load() -> tuple[np.ndarray, dict[str, Any]]:
    return _load_or_build(_cache_stem(), LAYOUT_VERSION, build_table)


def _load_or_build(stem: str, layout: int, build: Any) -> tuple[np.ndarray, dict[str, Any]]:
    folder = cache_dir()
    cached = _read_cache(folder, stem, layout)
    if cached is not None:
        return cached
    table, meta = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / f"{stem}.npy", lambda f: np.save(f, table, allow_pickle=False))
        _write_atomic(
            folder / f"{stem}.json",
            lambda f: f.write(json.dumps(meta, indent=1).encode("utf-8")),
        )
    except OSError:
        pass  # an unwritable cache only costs a rebuild next time
    return table, meta


def load_table() -> np.ndarray:
    """The class table for this ``regex`` version: from the disk cache, else built and cached.

    A read-only C-contiguous ``uint16`` array of 0x110000 entries (one per code
    point); the first build takes a few seconds, a cached load about a millisecond.
    """
    return _load()[0]


def table_info() -> dict[str, Any]:
    """Metadata of the loaded table: ``regex_version``, ``layout_version``, ``assigned``,
    ``unicode_version``."""
    return dict(_load()[1])


def unicode_version() -> str:
    """The Unicode version of ``regex``'s character data (e.g. ``"17.0.0"``).

    Found from the count of assigned characters, which is published per
    version; ``"unknown (N assigned)"`` for a version this module does not know.
    """
    return str(_load()[1]["unicode_version"])


def build_word_break_table() -> tuple[np.ndarray, dict[str, Any]]:
    """Build the hat splitter's table with ``regex`` (about a second) and its metadata.

    Bits 0..4 of each ``uint16`` entry hold the code point's Word_Break value (its index in
    :data:`toknz_core.wordsplit.WB_NAMES`); the flags ``WB_EXTPICT``, ``WB_PUNCT``,
    ``WB_LL``, ``WB_LU``, ``WB_WHITE`` mark ``\\p{Extended_Pictographic}``, ``\\p{P}``,
    ``\\p{Ll}``, ``\\p{Lu}`` and ``\\s``. Raises :class:`UnicodeTableError` unless every code
    point has exactly one Word_Break value.
    """
    table = np.zeros(TABLE_SIZE, dtype=np.uint16)
    count = np.zeros(TABLE_SIZE, dtype=np.uint8)
    for code, name in enumerate(WB_NAMES):
        m = class_mask(rf"\p{{Word_Break={name}}}")
        count += m
        table[m] |= np.uint16(code)
    if np.any(count != 1):
        bad = int(np.flatnonzero(count != 1)[0])
        raise UnicodeTableError(
            f"regex {regex.__version__}: U+{bad:04X} has {int(count[bad])} Word_Break values"
        )
    flags = {
        WB_EXTPICT: r"\p{Extended_Pictographic}",
        WB_PUNCT: r"\p{P}",
        WB_LL: r"\p{Ll}",
        WB_LU: r"\p{Lu}",
        WB_WHITE: r"\s",
    }
    for bit, pattern in flags.items():
        table[class_mask(pattern)] |= bit
    _all_code_points.cache_clear()
    meta = {
        "regex_version": regex.__version__,
        "layout_version": WB_LAYOUT_VERSION,
        "unicode_version": unicode_version(),
    }
    return as_table(table), meta


@functools.cache
def _load_word_break() -> tuple[np.ndarray, dict[str, Any]]:
    stem = f"wordbreak-layout{WB_LAYOUT_VERSION}-regex{regex.__version__}"
    return _load_or_build(stem, WB_LAYOUT_VERSION, build_word_break_table)


def load_word_break_table() -> np.ndarray:
    """The hat splitter's Word_Break table for this ``regex`` version (cached on disk like
    :func:`load_table`): a read-only ``uint16`` array of 0x110000 entries."""
    return _load_word_break()[0]
