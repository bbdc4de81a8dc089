"""BoundaryOracle: atoms are exact, probes are complete, answers are sound on real pre-tokenizers.

The oracle rests on one checked property per pre-tokenizer (probe
completeness, see toknz/bytelevel/boundaries.py); these tests check it and
its consequences against long random continuations, for every pre-tokenizer
of the tokenizers `toknz fetch --all` provides and the named split patterns.
"""

from __future__ import annotations

import random

import pytest
from cover_checks import assert_true_cover_stays_open
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toknz.bytelevel.boundaries import (
    BoundaryOracle,
    boundaries,
    regex_character_tests,
    text_of,
)
from toknz.pipeline.pretokenize import PATTERNS, Split, pre_tokenize

#: Real tokenizers whose pre-tokenizer splits (Llama 2's does not).
REAL = ["gpt2", "cl100k_base", "o200k_base", "llama3", "qwen3", "deepseek_v3", "gemma3", "gptoss"]

#: Pieces random texts are made of: contractions, digits of several scripts, CJK,
#: ZWJ emoji, right-to-left text, control characters, combining marks, odd spaces.
CHUNKS = [
    "a", "Z", "s", "S", "t", "ll", "LL", "re", "ve", "m", "d", "ſ", "'", "’", " ", "  ", "\t",
    "\n", "\r\n", "\r", "\x0b", "\x0c", "\xa0", "\u3000", "\u2028", "0", "7", "123", "٣", "०",
    "５", "¹", "Ⅻ", "中", "文", "の", "テ", "한", "👨\u200d👩", "🏳️\u200d🌈", "👍🏽", "م", "ש",
    "\u200f", "e\u0301", "\u0345", "ǅ", "ʰ", "\x00", "\x1b", "\x7f", ".", ",", "!", "/", "-", "_",
    "(", "<|endoftext|>", "$", "€", "\ufffd",
]  # fmt: skip


@pytest.fixture(scope="module")
def oracles() -> dict[str, BoundaryOracle]:
    """Oracles built so far in this module, by name (building one costs about a second)."""
    return {}


def _oracle(name: str, toknz_tok, cache: dict[str, BoundaryOracle]) -> BoundaryOracle:
    if name not in cache:
        if name.startswith("pattern:"):
            pre = Split(PATTERNS[name.split(":", 1)[1]], "Removed", invert=True)
        else:
            pre = toknz_tok(name).pre_tokenizer
        cache[name] = BoundaryOracle(pre)
    return cache[name]


ALL = [*REAL, "pattern:gpt2", "pattern:cl100k", "pattern:o200k"]


def _text(rng: random.Random, reps: list[str], n: int) -> str:
    pool = CHUNKS + reps
    return "".join(rng.choice(pool) for _ in range(n))


def _char_ends(pre, text: str, at_start: bool = True) -> set[int]:
    found = boundaries(pre_tokenize(pre, text, at_start), text)
    assert found is not None
    return set(found)


def test_character_tests_are_read_from_patterns() -> None:
    tests = regex_character_tests(PATTERNS["cl100k"])
    assert tests is not None
    assert {"[^\\r\\n\\p{L}\\p{N}]", "\\p{N}", "\\s", "'"} <= set(tests)
    assert "(?i:[sdmt])" in tests  # case-insensitive contractions are tested both ways
    assert regex_character_tests(r"(\w)\1") is None  # back-references: not understood


@pytest.mark.parametrize("name", ALL)
def test_characters_of_one_atom_split_alike(name: str, toknz_tok, oracles) -> None:
    """Replacing every character by its atom's representative keeps every boundary."""
    oracle = _oracle(name, toknz_tok, oracles)
    assert oracle.atoms is not None
    reps = oracle.atoms.representatives
    rng = random.Random(1)
    for _ in range(400):
        text = _text(rng, reps, rng.randint(1, 12))
        swapped = "".join(reps[oracle.atoms.table[ord(c)]] for c in text)
        assert _char_ends(oracle.pre, text) == _char_ends(oracle.pre, swapped), repr(text)


@pytest.mark.parametrize("name", ALL)
def test_probes_are_complete(name: str, toknz_tok, oracles) -> None:
    """Boundaries inside a known text under any continuation are those of some probe."""
    oracle = _oracle(name, toknz_tok, oracles)
    reps = oracle.atoms.representatives
    rng = random.Random(2)
    for _ in range(1500):
        t = _text(rng, reps, rng.randint(1, 6))
        f = _text(rng, reps, rng.randint(1, 8))
        inside = {e for e in _char_ends(oracle.pre, t + f) if e < len(t)}
        options = [{e for e in _char_ends(oracle.pre, t + p) if e < len(t)} for p in oracle.probes]
        assert inside in options, (t, f)


@pytest.mark.parametrize("name", ALL)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_boundaries_of_real_text_are_possible(name: str, toknz_tok, oracles, data) -> None:
    """Soundness, in bytes: a junction where the whole text has a boundary is never ruled out.

    The text is cut at two byte offsets ``a < b`` (inside characters too, and
    the text may hold undecodable bytes); ``left = text[:a]`` (or from its
    final cut), ``right = text[a:b]``; the rest of the text is the
    continuation the oracle did not see.
    """
    oracle = _oracle(name, toknz_tok, oracles)
    pieces = data.draw(
        st.lists(st.sampled_from(CHUNKS + oracle.atoms.representatives), min_size=2, max_size=14)
    )
    raw = "".join(pieces).encode("utf-8", "surrogatepass")
    if data.draw(st.booleans()):
        k = data.draw(st.integers(0, len(raw)))
        raw = raw[:k] + data.draw(st.binary(min_size=1, max_size=2)) + raw[k:]
    a = data.draw(st.integers(1, len(raw) - 1))
    b = data.draw(st.integers(a + 1, len(raw)))
    text = text_of(raw)
    # byte offset -> is it a boundary of the whole text?
    char_ends = _char_ends(oracle.pre, text)
    byte_ends = {len(text[:e].encode("utf-8", "surrogateescape")) for e in char_ends}
    left, right = raw[:a], raw[a:b]
    if a in byte_ends:
        assert oracle.possible(left, right, at_start=True), (raw, a, b)
        cut = oracle.final_cut(left)
        assert oracle.possible(left[cut:], right, at_start=cut == 0), (raw, a, b, cut)


@pytest.mark.parametrize("name", ALL)
def test_final_cuts_hold_for_the_real_continuation(name: str, toknz_tok, oracles) -> None:
    """After a final cut, the pieces are those of the text after the cut, pre-tokenized alone."""
    oracle = _oracle(name, toknz_tok, oracles)
    reps = oracle.atoms.representatives
    rng = random.Random(3)
    found = 0
    for _ in range(600):
        raw = _text(rng, reps, rng.randint(2, 16)).encode("utf-8", "surrogatepass")
        a = rng.randint(1, len(raw))
        cut = oracle.final_cut(raw[:a])
        if cut == 0:
            continue
        found += 1
        text, head = text_of(raw), text_of(raw[:cut])
        whole = pre_tokenize(oracle.pre, text)
        ends = boundaries(whole, text)
        assert ends is not None and len(head) in ends, (raw, cut)
        after = whole[ends.index(len(head)) + 1 :]
        assert after == pre_tokenize(oracle.pre, text[len(head) :], False), (raw, cut)
    assert found > 20  # cuts are found, so the check above is not vacuous


def test_answers_are_precise_where_the_pattern_decides() -> None:
    """Not a trivial oracle: inside a word never, before a space or after a word always."""
    oracle = BoundaryOracle(Split(PATTERNS["cl100k"], "Removed", invert=True))
    assert not oracle.possible(b"hel", b"lo", at_start=True)
    assert not oracle.possible(b"x 12", b"3", at_start=True)  # digit groups of three
    assert oracle.possible(b"x 123", b"4", at_start=True)
    assert oracle.possible(b"word", b" ", at_start=True)
    assert oracle.possible(b"word", b".", at_start=True)
    assert not oracle.possible(b"\xe4\xb8", b"\xad", at_start=True)  # inside a character
    # "  " then a letter: the last space joins the word, the first is a piece.
    assert oracle.possible(b"a ", b" ", at_start=True)
    assert oracle.possible(b"don", b"'t", at_start=True)
    assert not oracle.possible(b"don'", b"t", at_start=True)


def test_no_split_has_no_boundaries() -> None:
    from toknz.pipeline.pretokenize import NoSplit

    oracle = BoundaryOracle(NoSplit())
    assert not oracle.possible(b"a", b" b")
    assert oracle.final_cut(b"a b c d") == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "o200k_base", "llama3", "qwen3", "gemma3"])
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=st.lists(st.sampled_from(CHUNKS), min_size=1, max_size=10))
def test_streaming_covers_keep_the_true_encoding(name: str, toknz_tok, pieces) -> None:
    """At every byte of a random text, the cover that the tokenizer's own encoding passes through is open."""
    import numpy as np

    from toknz.bytelevel import ByteLM, CallableLM

    tok = toknz_tok(name)
    blm = ByteLM(CallableLM(lambda p: np.zeros(tok.n_vocab)), tok)
    ids = tok.encode_ordinary("".join(pieces))
    if any(i in blm.canon.special_ids for i in ids):
        return
    assert_true_cover_stays_open(blm, ids)


@pytest.mark.parametrize("name", ALL)
def test_certain_boundaries_hold_for_the_real_continuation(name: str, toknz_tok, oracles) -> None:
    """A boundary reported certain for a known text is a boundary of every text it starts."""
    oracle = _oracle(name, toknz_tok, oracles)
    reps = oracle.atoms.representatives
    rng = random.Random(4)
    found = 0
    for _ in range(400):
        raw = _text(rng, reps, rng.randint(2, 14)).encode("utf-8", "surrogatepass")
        a = rng.randint(1, len(raw))
        text = text_of(raw)
        ends = {
            len(text[:e].encode("utf-8", "surrogateescape")) for e in _char_ends(oracle.pre, text)
        }
        for b in oracle.certain(raw[:a]):
            found += 1
            assert 0 < b < a and b in ends, (raw, a, b)
    assert found > 50


def test_indented_code_keeps_few_covers(toknz_tok) -> None:
    """Tab-indented Go: splits of white-space runs that the next bytes rule out are dropped.

    Without re-checking junctions and tokens that span a settled boundary, this
    text kept hundreds of open token sequences (every split of every tab run).
    """
    import numpy as np

    from toknz.bytelevel import ByteLM, CallableLM

    tok = toknz_tok("gpt2")
    blm = ByteLM(CallableLM(lambda p: np.zeros(tok.n_vocab)), tok)
    text = b"\t\t\tcontinue\n\t\t}\n\t\tfor _, dep := range pkg.imports {\n\t\t\tif !dep.ok() {\n"
    most = max(len(blm.state(text[:i]).nodes) for i in range(1, len(text) + 1))
    assert most <= 8


def test_pre_tokenizer_steps_a_normalizer_makes_inert_are_dropped() -> None:
    """Gemma 3 splits on " " after replacing every space with "▁": it never splits."""
    from toknz.bytelevel.boundaries import effective_pre_tokenizer
    from toknz.pipeline.normalizers import NormalizerSequence, Prepend, Replace
    from toknz.pipeline.pretokenize import Digits, NoSplit, PreTokenizerSequence

    space = Split(" ", "MergedWithPrevious", is_regex=False)
    to_meta = Replace(" ", "▁")
    assert isinstance(effective_pre_tokenizer(to_meta, space), NoSplit)
    assert isinstance(
        effective_pre_tokenizer(NormalizerSequence((to_meta, Prepend("▁"))), space), NoSplit
    )
    # A later step that can put the space back keeps the split.
    back = NormalizerSequence((to_meta, Replace("▁", " ")))
    assert effective_pre_tokenizer(back, space) is space
    assert effective_pre_tokenizer(None, space) is space
    regex_split = Split(r" ", "MergedWithPrevious")
    assert effective_pre_tokenizer(to_meta, regex_split) is regex_split  # regexes: left as is
    seq = PreTokenizerSequence((space, Digits(True)))
    assert effective_pre_tokenizer(to_meta, seq) == Digits(True)
