"""Deterministic synthetic noise for text: case flips, swaps, insertions, extra spaces, OCR errors.

Each perturbation works on characters (code points), never on bytes, so its output is
always valid text: a Python ``str`` whose characters all come from the input (or are a
space, or for ``"ocr"`` one of the characters of :data:`OCR_CONFUSIONS`), which encodes to
UTF-8 whenever the input does. Combining marks (Unicode category ``M*``) stay on their base
character: nothing is swapped with, inserted before, cased on, dropped before, doubled
before or replaced before a mark. Control characters other than tab and newline, and lone
surrogates, are never selected.

``rate`` is the fraction of the text's characters the perturbation touches, so
``k = round(rate * len(text))`` edits are made (fewer when the text has fewer eligible places,
see :func:`count_edits`):

- ``"case"``: flip the case of ``k`` cased letters (only letters whose other case is one
  character that flips back, so ``"ß"`` and ``"İ"`` are left alone);
- ``"swap"``: swap ``round(k / 2)`` disjoint pairs of adjacent, different, non-space
  characters (so about ``k`` characters move);
- ``"insert"``: insert ``k`` characters, each a copy of a character drawn from the text's
  own non-space characters (so the noise stays in the text's script);
- ``"space"``: insert ``k`` extra spaces, each before a character that is not a mark;
- ``"ocr"``: ``k`` OCR errors, each at its own character (any character, spaces included,
  that is not followed by a mark): a quarter drop it, a quarter double it, and half
  substitute it. A substitution reads an OCR confusion of :data:`OCR_CONFUSIONS` where one
  starts at the character (``"rn"`` -> ``"m"``, ``"m"`` -> ``"rn"``, ``"l"`` -> ``"1"``,
  ``"O"`` -> ``"0"``, ``"e"`` -> ``"c"``, ...) for 60 % of them, else (and always for the
  other 40 %) puts a different letter drawn from the text's own letters in its place.

:func:`perturb_with_edits` returns the noisy text with the :class:`Edit` spans that made it
(clean and noisy offsets), so a measure can leave the edited places out
(:mod:`toknz.analysis.stability`); :func:`perturb` is its text alone.

The same ``(text, name, rate, seed)`` always gives the same output, on every platform and
Python version (``random.Random`` seeded with a string).

    >>> perturb("Hello world", "case", rate=0.2, seed=0) != "Hello world"
    True
    >>> perturb("Hello world", "case", rate=0.2, seed=0) == perturb("Hello world", "case", rate=0.2, seed=0)
    True
    >>> len(perturb("Hello world", "insert", rate=0.2, seed=0)) - len("Hello world")
    2
    >>> perturb("abc", "space", rate=0.0)
    'abc'
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Sequence
from typing import NamedTuple

from toknz.errors import UsageError

#: The perturbations :func:`perturb` knows, by name.
PERTURBATIONS = ("case", "swap", "insert", "space", "ocr")

#: Pairs an OCR engine confuses, read either way (``"rn"`` as ``"m"`` and ``"m"`` as ``"rn"``).
OCR_CONFUSIONS = (
    ("rn", "m"),
    ("cl", "d"),
    ("vv", "w"),
    ("l", "1"),
    ("l", "I"),
    ("I", "1"),
    ("O", "0"),
    ("e", "c"),
    ("a", "o"),
    ("h", "b"),
    ("S", "5"),
    ("B", "8"),
)

_CONFUSE: dict[str, tuple[str, ...]] = {}
for _a, _b in OCR_CONFUSIONS:
    _CONFUSE[_a] = (*_CONFUSE.get(_a, ()), _b)
    _CONFUSE[_b] = (*_CONFUSE.get(_b, ()), _a)


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def _is_plain(ch: str) -> bool:
    """A character an edit may move or copy: not a mark, not a surrogate, not a control."""
    cat = unicodedata.category(ch)
    return not (cat.startswith("M") or cat in ("Cs", "Cc"))


def _flippable(ch: str) -> bool:
    other = ch.swapcase()
    return other != ch and len(other) == 1 and other.swapcase() == ch and not _is_mark(ch)


def _case_places(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if _flippable(ch)]


def _swap_places(text: str) -> list[int]:
    """Indices ``i`` where ``text[i]`` and ``text[i + 1]`` may be swapped."""
    return [
        i
        for i in range(len(text) - 1)
        if text[i] != text[i + 1]
        and _is_plain(text[i])
        and _is_plain(text[i + 1])
        and not text[i].isspace()
        and not text[i + 1].isspace()
        and not (i + 2 < len(text) and _is_mark(text[i + 2]))
    ]


def _insert_places(text: str) -> list[int]:
    """Positions ``0..len(text)`` before which a character may go (never before a mark)."""
    return [i for i in range(len(text) + 1) if i == len(text) or not _is_mark(text[i])]


def _ocr_places(text: str) -> list[int]:
    """Indices of characters an OCR error may hit: plain characters not followed by a mark."""
    n = len(text)
    return [i for i in range(n) if _is_plain(text[i]) and (i + 1 == n or not _is_mark(text[i + 1]))]


def _planned(text: str, name: str, rate: float) -> int:
    k = round(rate * len(text))
    return round(k / 2) if name == "swap" else k


def count_edits(text: str, name: str, rate: float) -> int:
    """How many edits :func:`perturb` makes: ``round(rate·len(text))`` capped by the places.

    For ``"swap"`` an edit is one swapped pair (``round(k/2)`` of them) and the cap is the
    largest number of disjoint swappable pairs; for ``"insert"`` a text with no non-space
    character to copy gets none. Raises :class:`~toknz.errors.UsageError` like :func:`perturb`.

    >>> count_edits("Hello world", "case", 0.2)
    2
    >>> count_edits("12345", "case", 0.5)  # no letters: nothing to flip
    0
    """
    _check(name, rate)
    wanted = _planned(text, name, rate)
    if name == "case":
        return min(wanted, len(_case_places(text)))
    if name == "swap":
        return min(wanted, _max_disjoint(_swap_places(text)))
    if name == "insert":
        pool = [ch for ch in text if _is_plain(ch) and not ch.isspace()]
        return wanted if pool else 0
    if name == "ocr":
        return min(wanted, len(_ocr_places(text)))
    return wanted


def _max_disjoint(places: list[int]) -> int:
    """The size of the largest set of pairs ``(i, i+1)`` from ``places`` that do not overlap."""
    taken, last = 0, -2
    for i in places:
        if i > last + 1:
            taken += 1
            last = i
    return taken


def _check(name: str, rate: float) -> None:
    if name not in PERTURBATIONS:
        raise UsageError(
            f"unknown perturbation {name!r}; expected one of {', '.join(PERTURBATIONS)}"
        )
    if not 0.0 <= rate <= 1.0:
        raise UsageError(f"perturbation rate must be between 0 and 1, not {rate}")


#: One planned edit: ``text[start:end]`` becomes ``replacement``.
_Op = tuple[int, int, str]


class Edit(NamedTuple):
    """One edited span: ``clean[clean_start:clean_end]`` became ``noisy[noisy_start:noisy_end]``.

    Offsets are character (code point) offsets. Outside the edits the two texts are equal, so
    a position of the noisy text outside every edit maps back to the clean text by undoing the
    length changes of the edits before it. An insertion has ``clean_start == clean_end``; a
    dropped character has ``noisy_start == noisy_end``.
    """

    clean_start: int
    clean_end: int
    noisy_start: int
    noisy_end: int


def _apply(text: str, ops: list[_Op]) -> tuple[str, list[Edit]]:
    """``text`` with the planned edits made (``ops`` sorted, not overlapping), and the edits.

    Insertions at the same place become one edit, so no two edits share a clean span.
    """
    merged: list[_Op] = []
    for start, end, new in ops:
        if merged and start == end == merged[-1][0] == merged[-1][1]:
            merged[-1] = (start, end, merged[-1][2] + new)
        else:
            merged.append((start, end, new))
    out: list[str] = []
    edits: list[Edit] = []
    last = noisy = 0
    for start, end, new in merged:
        out.append(text[last:start])
        noisy += start - last
        out.append(new)
        edits.append(Edit(start, end, noisy, noisy + len(new)))
        noisy += len(new)
        last = end
    out.append(text[last:])
    return "".join(out), edits


def _flip_case(text: str, k: int, rng: random.Random) -> list[_Op]:
    return [(i, i + 1, text[i].swapcase()) for i in sorted(rng.sample(_case_places(text), k))]


def _swap(text: str, k: int, rng: random.Random) -> list[_Op]:
    places = _swap_places(text)
    chosen: set[int] = set()
    if k >= _max_disjoint(places):
        chosen = set(_greedy_disjoint(places))
    else:
        for i in rng.sample(places, len(places)):
            if len(chosen) == k:
                break
            if i - 1 not in chosen and i + 1 not in chosen:
                chosen.add(i)
        if len(chosen) < k:  # a random order can block itself; the greedy set never does
            chosen = set(rng.sample(_greedy_disjoint(places), k))
    return [(i, i + 2, text[i + 1] + text[i]) for i in sorted(chosen)]


def _greedy_disjoint(places: list[int]) -> list[int]:
    out: list[int] = []
    for i in places:
        if not out or i > out[-1] + 1:
            out.append(i)
    return out


def _insert(text: str, k: int, rng: random.Random, pick: Callable[[], str]) -> list[_Op]:
    places = _insert_places(text)
    where = sorted(rng.choice(places) for _ in range(k))
    return [(i, i, pick()) for i in where]


def _ocr(text: str, k: int, rng: random.Random) -> list[_Op]:
    """``k`` OCR errors at distinct places: drop, double, confuse or replace a character."""
    n = len(text)
    sites = sorted(rng.sample(_ocr_places(text), k))
    taken = set(sites)
    letters = [ch for ch in text if ch.isalpha() and _is_plain(ch)]
    ops: list[_Op] = []
    for i in sites:
        ch = text[i]
        roll = rng.random()
        if roll < 0.25:
            ops.append((i, i + 1, ""))
            continue
        if 0.5 <= roll < 0.8:
            free_next = (
                i + 1 < n and i + 1 not in taken and (i + 2 == n or not _is_mark(text[i + 2]))
            )
            options = [
                (src, dst)
                for src, dsts in _CONFUSE.items()
                if text.startswith(src, i) and (len(src) == 1 or free_next)
                for dst in dsts
            ]
            if options:
                src, dst = rng.choice(options)
                ops.append((i, i + len(src), dst))
                continue
        if roll >= 0.5:
            other = _other_letter(ch, letters, rng)
            if other is not None:
                ops.append((i, i + 1, other))
                continue
        ops.append((i, i + 1, ch + ch))
    return ops


def _other_letter(ch: str, letters: list[str], rng: random.Random) -> str | None:
    """A letter of the text other than ``ch`` (drawn by frequency); ``None`` after 8 misses."""
    if not letters:
        return None
    for _ in range(8):
        other = rng.choice(letters)
        if other != ch:
            return other
    return None


def perturb_with_edits(
    text: str, name: str, rate: float = 0.05, seed: int | str = 0
) -> tuple[str, list[Edit]]:
    """:func:`perturb`'s output and the :class:`Edit` spans that made it, in text order.

    The edits never overlap in either text; they may touch. Copying ``text`` outside the
    edits and ``noisy[noisy_start:noisy_end]`` for each edit rebuilds the noisy text.

    >>> perturb_with_edits("The cat sat", "swap", rate=0.2, seed=1)
    ('hTe cat sat', [Edit(clean_start=0, clean_end=2, noisy_start=0, noisy_end=2)])
    >>> perturb_with_edits("The cat sat", "space", rate=0.1, seed=1)
    ('T he cat sat', [Edit(clean_start=1, clean_end=1, noisy_start=1, noisy_end=2)])
    """
    k = count_edits(text, name, rate)
    rng = random.Random(f"{seed}:{name}")
    if k == 0:
        return text, []
    if name == "case":
        ops = _flip_case(text, k, rng)
    elif name == "swap":
        ops = _swap(text, k, rng)
    elif name == "insert":
        pool = [ch for ch in text if _is_plain(ch) and not ch.isspace()]
        ops = _insert(text, k, rng, lambda: rng.choice(pool))
    elif name == "space":
        ops = _insert(text, k, rng, lambda: " ")
    else:
        ops = _ocr(text, k, rng)
    return _apply(text, ops)


def perturb(text: str, name: str, rate: float = 0.05, seed: int | str = 0) -> str:
    """``text`` with perturbation ``name`` applied at ``rate`` (see the module doc), seeded.

    Raises :class:`~toknz.errors.UsageError` for an unknown ``name`` or a ``rate`` outside
    ``[0, 1]``. :func:`perturb_with_edits` also says where the edits are.

    >>> perturb("The cat sat", "swap", rate=0.2, seed=1)
    'hTe cat sat'
    >>> perturb("The cat sat", "space", rate=0.1, seed=1)
    'T he cat sat'
    """
    return perturb_with_edits(text, name, rate, seed)[0]


def perturb_all(texts: Sequence[str], name: str, rate: float = 0.05, seed: int = 0) -> list[str]:
    """:func:`perturb` applied to each text, text ``i`` with its own seed ``f"{seed}.{i}"``.

    >>> perturb_all(["ab cd", "ef gh"], "case", rate=0.2)
    ['ab Cd', 'ef Gh']
    """
    return [perturb(t, name, rate, seed=f"{seed}.{i}") for i, t in enumerate(texts)]


__all__ = [
    "OCR_CONFUSIONS",
    "PERTURBATIONS",
    "Edit",
    "count_edits",
    "perturb",
    "perturb_all",
    "perturb_with_edits",
]
