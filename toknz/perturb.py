"""Deterministic synthetic noise for text: case flips, swaps, insertions, extra spaces.

Each perturbation works on characters (code points), never on bytes, so its output is
always valid text: a Python ``str`` whose characters all come from the input (or are a
space), which encodes to UTF-8 whenever the input does. Combining marks (Unicode category
``M*``) stay on their base character: nothing is swapped with, inserted before or cased on a
mark. Control characters other than tab and newline, and lone surrogates, are never
selected.

``rate`` is the fraction of the text's characters the perturbation touches, so
``k = round(rate * len(text))`` edits are made (fewer when the text has fewer eligible places,
see :func:`count_edits`):

- ``"case"``: flip the case of ``k`` cased letters (only letters whose other case is one
  character that flips back, so ``"ß"`` and ``"İ"`` are left alone);
- ``"swap"``: swap ``round(k / 2)`` disjoint pairs of adjacent, different, non-space
  characters (so about ``k`` characters move);
- ``"insert"``: insert ``k`` characters, each a copy of a character drawn from the text's
  own non-space characters (so the noise stays in the text's script);
- ``"space"``: insert ``k`` extra spaces, each before a character that is not a mark.

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

from toknz.errors import UsageError

#: The perturbations :func:`perturb` knows, by name.
PERTURBATIONS = ("case", "swap", "insert", "space")


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


def _flip_case(text: str, k: int, rng: random.Random) -> str:
    chars = list(text)
    for i in rng.sample(_case_places(text), k):
        chars[i] = chars[i].swapcase()
    return "".join(chars)


def _swap(text: str, k: int, rng: random.Random) -> str:
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
    chars = list(text)
    for i in chosen:
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _greedy_disjoint(places: list[int]) -> list[int]:
    out: list[int] = []
    for i in places:
        if not out or i > out[-1] + 1:
            out.append(i)
    return out


def _insert(text: str, k: int, rng: random.Random, pick: Callable[[], str]) -> str:
    places = _insert_places(text)
    where = sorted(rng.choice(places) for _ in range(k))
    out: list[str] = []
    last = 0
    for i in where:
        out.append(text[last:i])
        out.append(pick())
        last = i
    out.append(text[last:])
    return "".join(out)


def perturb(text: str, name: str, rate: float = 0.05, seed: int | str = 0) -> str:
    """``text`` with perturbation ``name`` applied at ``rate`` (see the module doc), seeded.

    Raises :class:`~toknz.errors.UsageError` for an unknown ``name`` or a ``rate`` outside
    ``[0, 1]``.

    >>> perturb("The cat sat", "swap", rate=0.2, seed=1)
    'hTe cat sat'
    >>> perturb("The cat sat", "space", rate=0.1, seed=1)
    'T he cat sat'
    """
    k = count_edits(text, name, rate)
    rng = random.Random(f"{seed}:{name}")
    if k == 0:
        return text
    if name == "case":
        return _flip_case(text, k, rng)
    if name == "swap":
        return _swap(text, k, rng)
    if name == "insert":
        pool = [ch for ch in text if _is_plain(ch) and not ch.isspace()]
        return _insert(text, k, rng, lambda: rng.choice(pool))
    return _insert(text, k, rng, lambda: " ")


def perturb_all(texts: Sequence[str], name: str, rate: float = 0.05, seed: int = 0) -> list[str]:
    """:func:`perturb` applied to each text, text ``i`` with its own seed ``f"{seed}.{i}"``.

    >>> perturb_all(["ab cd", "ef gh"], "case", rate=0.2)
    ['ab Cd', 'ef Gh']
    """
    return [perturb(t, name, rate, seed=f"{seed}.{i}") for i, t in enumerate(texts)]


__all__ = ["PERTURBATIONS", "count_edits", "perturb", "perturb_all"]
