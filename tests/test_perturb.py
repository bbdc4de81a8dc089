"""toknz.perturb: each perturbation makes exactly the edits it says, deterministically."""

from __future__ import annotations

import doctest
import unicodedata
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toknz.perturb
from toknz.errors import UsageError
from toknz.perturb import PERTURBATIONS, count_edits, perturb, perturb_all

texts = st.text(
    alphabet=st.one_of(
        st.sampled_from("aAbBzZ ßİéÉ\u0301\u0308 \t\n.,!1"),
        st.characters(codec="utf-8"),
    ),
    max_size=80,
)
rates = st.floats(0.0, 1.0)


def _is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(ch in it for ch in small)


def _marks_keep_their_base(before: str, after: str) -> None:
    """Every combining mark of ``after`` follows the character it followed in ``before``."""
    pairs_before = Counter(
        (before[i - 1] if i else "", ch)
        for i, ch in enumerate(before)
        if unicodedata.category(ch).startswith("M")
    )
    pairs_after = Counter(
        (after[i - 1] if i else "", ch)
        for i, ch in enumerate(after)
        if unicodedata.category(ch).startswith("M")
    )
    assert pairs_after == pairs_before


@settings(max_examples=150, deadline=None)
@given(texts, rates, st.integers(0, 5))
def test_case_flips_exactly_k_letters(text: str, rate: float, seed: int) -> None:
    out = perturb(text, "case", rate, seed)
    k = count_edits(text, "case", rate)
    assert len(out) == len(text)
    changed = [i for i, (a, b) in enumerate(zip(text, out, strict=True)) if a != b]
    assert len(changed) == k
    assert all(out[i] == text[i].swapcase() and out[i].swapcase() == text[i] for i in changed)
    assert not any(unicodedata.category(text[i]).startswith("M") for i in changed)


@settings(max_examples=150, deadline=None)
@given(texts, rates, st.integers(0, 5))
def test_swap_moves_k_disjoint_adjacent_pairs(text: str, rate: float, seed: int) -> None:
    out = perturb(text, "swap", rate, seed)
    k = count_edits(text, "swap", rate)
    assert Counter(out) == Counter(text)
    changed = [i for i, (a, b) in enumerate(zip(text, out, strict=True)) if a != b]
    assert len(changed) == 2 * k
    for i in changed[::2]:
        assert out[i] == text[i + 1] and out[i + 1] == text[i]
        assert not text[i].isspace() and not text[i + 1].isspace()
    _marks_keep_their_base(text, out)


@settings(max_examples=150, deadline=None)
@given(texts, rates, st.integers(0, 5))
def test_insert_adds_k_characters_of_the_text(text: str, rate: float, seed: int) -> None:
    out = perturb(text, "insert", rate, seed)
    k = count_edits(text, "insert", rate)
    assert len(out) == len(text) + k
    assert _is_subsequence(text, out)
    added = Counter(out) - Counter(text)
    assert set(added) <= {ch for ch in text if not ch.isspace()}
    _marks_keep_their_base(text, out)


@settings(max_examples=150, deadline=None)
@given(texts, rates, st.integers(0, 5))
def test_space_adds_k_spaces(text: str, rate: float, seed: int) -> None:
    out = perturb(text, "space", rate, seed)
    k = count_edits(text, "space", rate)
    assert k == round(rate * len(text))
    assert len(out) == len(text) + k
    assert Counter(out) - Counter(text) == (Counter({" ": k}) if k else Counter())
    assert _is_subsequence(text, out)
    _marks_keep_their_base(text, out)


@pytest.mark.parametrize("name", PERTURBATIONS)
def test_seeded_and_reproducible(name: str) -> None:
    text = "The quick brown fox jumps over the lazy dog, twice: Ünïcödé too."
    assert perturb(text, name, 0.2, seed=3) == perturb(text, name, 0.2, seed=3)
    outs = {perturb(text, name, 0.2, seed=s) for s in range(6)}
    assert len(outs) > 1  # the seed matters
    assert perturb(text, name, 0.0) == text
    batch = perturb_all([text, text], name, 0.2, seed=1)
    assert batch[0] != batch[1] or name == "case" and batch[0] == batch[1]
    assert batch == perturb_all([text, text], name, 0.2, seed=1)


def test_bad_options_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown perturbation"):
        perturb("abc", "shuffle")
    with pytest.raises(UsageError, match="between 0 and 1"):
        perturb("abc", "case", rate=1.5)


def test_docstring_examples() -> None:
    assert doctest.testmod(toknz.perturb).failed == 0
