"""The pure-Python reference trainer (tests/reference_trainer.py) against ``tokenizers``' BpeTrainer.

Every comparison trains the real ``tokenizers.trainers.BpeTrainer`` on the same
words (one word per training sequence) and compares the ``model.vocab`` and
``model.merges`` of its ``tokenizer.json`` with the reference's output.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_trainer import (
    initial_tokens,
    merge_word,
    reference_train,
    reference_train_raw,
)
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from toknz.pipeline.byte_alphabet import byte_to_char, bytes_to_chars
from toknz.pipeline.pretokenize import PATTERNS

REPO = Path(__file__).resolve().parents[1]
CHUNK_CHARS = 200_000

# Special tokens, some of which collide with a byte-level character ("a") or with
# a token that training makes ("ab", "Ġa" = b" a", "Ã©" = "é" in UTF-8).
SPECIALS = ["<s>", "</s>", "<pad>", "a", "ab", "Ġa", "Ã©"]

HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- harness


def _json_model(tok: Tokenizer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges  # type: ignore[return-value]


def _hf_trainer(
    vocab_size: int, min_frequency: int, special_tokens: Sequence[str], max_token_length: int | None
) -> trainers.BpeTrainer:
    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        # toknz: "no token longer than N bytes"; tokenizers: a formed pair counts
        # only when len(left) + len(right) < max_token_length.
        max_token_length=None if max_token_length is None else max_token_length + 1,
    )


def hf_train_words(
    words: Iterable[str],
    vocab_size: int,
    *,
    min_frequency: int = 0,
    special_tokens: Sequence[str] = (),
    max_token_length: int | None = None,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train ``tokenizers`` on text words, one word per sequence, with a byte-level pre-tokenizer that does not split."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = _hf_trainer(vocab_size, min_frequency, special_tokens, max_token_length)
    tok.train_from_iterator(iter(words), trainer=trainer)
    return _json_model(tok)


def hf_train_counts(word_counts: Mapping[bytes, int], vocab_size: int, **options: object):
    """Train ``tokenizers`` on UTF-8 word counts (each word repeated ``count`` times)."""
    words = (word.decode("utf-8") for word, count in word_counts.items() for _ in range(count))
    return hf_train_words(words, vocab_size, **options)  # type: ignore[arg-type]


def hf_train_spelled(
    word_counts: Mapping[bytes, int],
    vocab_size: int,
    *,
    min_frequency: int = 0,
    special_tokens: Sequence[str] = (),
    max_token_length: int | None = None,
):
    """Train ``tokenizers`` on words of ANY bytes: feed them already spelled in the byte-level alphabet, with no pre-tokenizer."""
    tok = Tokenizer(models.BPE())
    trainer = _hf_trainer(vocab_size, min_frequency, special_tokens, max_token_length)
    sequences = (bytes_to_chars(w) for w, count in word_counts.items() for _ in range(count))
    tok.train_from_iterator(sequences, trainer=trainer)
    return _json_model(tok)


# ----------------------------------------------------------------------- strategies

utf8_words = (
    st.text(alphabet="abcde é", min_size=1, max_size=12)
    .map(str.encode)
    .filter(lambda w: len(w) <= 12)
)
any_byte_words = st.binary(min_size=1, max_size=12).map(
    lambda b: bytes(b"ab \x00\xff\xc3\xa9"[x % 7] for x in b)
)
counts = st.integers(min_value=1, max_value=20)
options = st.fixed_dictionaries(
    {
        "vocab_size": st.one_of(
            st.sampled_from([258, 262, 266, 270, 280, 300]), st.integers(260, 400)
        ),
        "min_frequency": st.sampled_from([0, 2, 5]),
        "special_tokens": st.lists(st.sampled_from(SPECIALS), max_size=3),
        "max_token_length": st.sampled_from([None, 2, 3, 5]),
    }
)


# ---------------------------------------------------------------------- comparisons


@HYPOTHESIS
@given(st.dictionaries(utf8_words, counts, min_size=4, max_size=40), options)
def test_equal_to_tokenizers_on_small_utf8_corpora(
    word_counts: dict[bytes, int], opts: dict
) -> None:
    mine = reference_train(word_counts, **opts)
    theirs = hf_train_counts(word_counts, **opts)
    assert mine[1] == theirs[1]
    assert mine[0] == theirs[0]


@HYPOTHESIS
@given(st.dictionaries(any_byte_words, counts, min_size=4, max_size=40), options)
def test_equal_to_tokenizers_on_any_bytes(word_counts: dict[bytes, int], opts: dict) -> None:
    # Words need not be UTF-8 (b"\xff", a lone b"\xc3"): tokenizers sees them spelled.
    mine = reference_train(word_counts, **opts)
    theirs = hf_train_spelled(word_counts, **opts)
    assert mine[1] == theirs[1]
    assert mine[0] == theirs[0]


def _real_words(relative: str, chars: int | None) -> list[str]:
    text = (REPO / relative).read_text(encoding="utf-8")
    if chars is not None:
        text = text[:chars]
    return regex.findall(PATTERNS["cl100k"], text)


def _check_real_text(
    relative: str, chars: int | None, vocab_size: int, **opts: object
) -> list[tuple[str, str]]:
    words = _real_words(relative, chars)
    word_counts = collections.Counter(w.encode("utf-8") for w in words)
    vocab, merges = reference_train(word_counts, vocab_size, **opts)  # type: ignore[arg-type]
    hf_vocab, hf_merges = hf_train_words(words, vocab_size, **opts)  # type: ignore[arg-type]
    assert merges == hf_merges
    assert vocab == hf_vocab
    return merges


@pytest.mark.parametrize(
    ("relative", "opts"),
    [
        ("corpora/en/austen_emma.txt", {}),
        ("corpora/code/python_stdlib.txt", {}),
        ("corpora/en/austen_emma.txt", {"max_token_length": 4, "min_frequency": 3}),
        ("corpora/code/go_stdlib.txt", {"special_tokens": ["<|endoftext|>", "ĠĠ"]}),
        ("corpora/multi/ja.txt", {"max_token_length": 5}),
    ],
)
def test_equal_to_tokenizers_on_real_text(relative: str, opts: dict) -> None:
    merges = _check_real_text(relative, CHUNK_CHARS, 256 + 300, **opts)
    assert len(merges) >= 290  # the vocabulary really grew (specials may take a few slots)


@pytest.mark.slow
@pytest.mark.parametrize(
    "relative",
    [
        "corpora/en/austen_emma.txt",
        "corpora/code/c_libxcrypt.txt",
        "corpora/code/rust_core.txt",
        "corpora/multi/zh-cn.txt",
        "corpora/multi/ru.txt",
    ],
)
def test_equal_to_tokenizers_on_whole_corpora(relative: str) -> None:
    _check_real_text(relative, None, 256 + 4000)
    _check_real_text(relative, None, 256 + 2000, max_token_length=6, min_frequency=2)


# ------------------------------------------------------------------ hand-checkable


HF_TEST_WORDS = {
    b"roses": 1,
    b"are": 2,
    b"red": 1,
    b"voilets": 1,
    b"blue": 1,
    b"BERT": 1,
    b"is": 2,
    b"big": 1,
    b"and": 1,
    b"so": 1,
    b"GPT-2": 1,
}


def test_tokenizers_own_trainer_example() -> None:
    # Counts: (r,e) 3 (are x2, red), (a,r) 2, (i,s) 2, every other pair 1. With
    # min_frequency 2: r+e; that turns (a,r) into (a,re), count 2, which ties with
    # (i,s) and wins on the smaller left id ('a' < 'i'); then i+s; then a count-1
    # pair is the top and training stops.
    vocab, merges = reference_train(HF_TEST_WORDS, 30_000, min_frequency=2)
    assert merges == [("r", "e"), ("a", "re"), ("i", "s")]
    assert (vocab["re"], vocab["are"], vocab["is"]) == (256, 257, 258)
    assert len(vocab) == 259
    assert hf_train_counts(HF_TEST_WORDS, 30_000, min_frequency=2) == (vocab, merges)


def test_initial_ids_sort_by_code_point_not_byte() -> None:
    vocab, merges = reference_train({b"x": 1}, 1000, special_tokens=["<s>", "</s>", "<s>"])
    assert merges == []
    assert (vocab["<s>"], vocab["</s>"]) == (0, 1)  # a repeated special token is skipped
    # '!' (byte 0x21) is the smallest character; byte 0x00 is spelled U+0100 'Ā',
    # which comes after every Latin-1 character ('ÿ' = byte 0xFF, U+00FF).
    assert vocab["!"] == 2
    assert vocab["ÿ"] == 2 + 187
    assert vocab["Ā"] == 2 + 188
    assert vocab[byte_to_char()[ord(" ")]] == vocab["Ġ"] == 2 + 188 + 32
    assert sorted(vocab, key=vocab.__getitem__)[2:] == sorted(byte_to_char())
    assert len(vocab) == 258


def test_vocab_size_below_the_alphabet_still_keeps_the_alphabet() -> None:
    words = {b"aaab": 3}
    assert reference_train(words, 10) == (
        {c: i for i, c in enumerate(initial_tokens())},
        [],
    )
    assert hf_train_counts(words, 10) == reference_train(words, 10)


def test_special_token_equal_to_a_merge_lends_its_id() -> None:
    # "ab" is special (id 0): merging a+b reuses id 0, so the vocabulary does not
    # grow and training goes on to the next merge.
    words = {b"ab": 5, b"abc": 3}
    vocab, merges = reference_train(words, 258, special_tokens=["ab"])
    assert merges == [("a", "b"), ("ab", "c")]
    assert vocab["ab"] == 0 and vocab["abc"] == 257 and len(vocab) == 258
    raw = reference_train_raw(words, 258, special_tokens=["ab"])
    assert raw.steps[0][2] == 0
    assert hf_train_counts(words, 258, special_tokens=["ab"]) == (vocab, merges)


def test_min_frequency_stops_training() -> None:
    words = {b"abab": 3, b"cd": 2}
    # (a,b) 6, then (ab,ab) 3, (b,a) is used up; (c,d) 2 is below 3.
    assert reference_train(words, 400, min_frequency=3)[1] == [("a", "b"), ("ab", "ab")]
    assert reference_train(words, 400, min_frequency=0)[1] == [
        ("a", "b"),
        ("ab", "ab"),
        ("c", "d"),
    ]
    assert hf_train_counts(words, 400, min_frequency=3) == reference_train(
        words, 400, min_frequency=3
    )


def test_max_token_length_is_in_bytes() -> None:
    words = {"éééé".encode(): 4, b"aaaaaa": 1}
    vocab, merges = reference_train(words, 400, max_token_length=3)
    assert all(len(t) <= 3 for t in vocab if t not in initial_tokens())
    # 'é' is 2 bytes (Ã ©): "é" is a 2-byte token, "éé" (4 bytes) is never made.
    assert ("Ã", "©") in merges and "Ã©Ã©" not in vocab
    assert hf_train_counts(words, 400, max_token_length=3) == (vocab, merges)


# --------------------------------------------------------------- Word::merge twin


def test_merge_word_reports_changes_like_word_rs() -> None:
    # tokenizers' own test: h e l l o with ids 0 1 2 2 3, merge (l, l) -> 4.
    lengths = [1, 1, 1, 1, 2]
    word = [0, 1, 2, 2, 3]
    changes = merge_word(word, 2, 2, 4, lengths, None)
    assert word == [0, 1, 4, 3]
    assert changes == [((1, 2), -1), ((1, 4), 1), ((2, 3), -1), ((4, 3), 1)]
    # With a limit of 2 bytes the formed pairs (3 bytes) are not counted.
    word = [0, 1, 2, 2, 3]
    assert merge_word(word, 2, 2, 4, lengths, 2) == [((1, 2), -1), ((2, 3), -1)]


def test_merge_word_overlaps_and_runs() -> None:
    lengths = [1, 2]
    word = [0, 0, 0, 0, 0]  # a a a a a, merge (a, a) -> 1: [aa, aa, a]
    changes = merge_word(word, 0, 0, 1, lengths, None)
    assert word == [1, 1, 0]
    assert changes == [
        ((0, 0), -1),
        ((1, 0), 1),
        ((1, 0), -1),
        ((1, 1), 1),
        ((0, 0), -1),
        ((1, 0), 1),
    ]


def test_destroyed_pairs_too_long_to_count_are_still_subtracted() -> None:
    # a b a b, merge (a, b) -> ab with a 2-byte limit: (ab, a) is formed but too
    # long to count, then destroyed and subtracted, so its count goes negative.
    lengths = [1, 1, 2]
    word = [0, 1, 0, 1]
    changes = merge_word(word, 0, 1, 2, lengths, 2)
    assert word == [2, 2]
    assert changes == [((1, 0), -1), ((2, 0), -1)]


# ----------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(any_byte_words, counts, min_size=1, max_size=30), options)
def test_each_pair_and_each_new_token_is_merged_once(
    word_counts: dict[bytes, int], opts: dict
) -> None:
    # Without subword prefixes/suffixes one string is never made by two different
    # merges, so no pair is merged twice and ids repeat only where a special token
    # (ids below the number of specials) already spells the merge result.
    raw = reference_train_raw(word_counts, **opts)
    pairs = [(left, right) for left, right, _ in raw.steps]
    assert len(pairs) == len(set(pairs))
    made = [new for _, _, new in raw.steps]
    assert len(made) == len(set(made))
    specials = len(dict.fromkeys(opts["special_tokens"]))
    first_new = len(initial_tokens(opts["special_tokens"]))
    assert all(new >= first_new or new < specials for new in made)
    assert len(raw.tokens) == len(set(raw.tokens))
    if opts["max_token_length"] is not None:
        assert all(len(raw.tokens[new]) <= opts["max_token_length"] for new in made)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_token_length"):
        reference_train({b"ab": 1}, 300, max_token_length=1)
    with pytest.raises(TypeError, match="bytes"):
        reference_train({"ab": 1}, 300)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="counts"):
        reference_train({b"ab": -1}, 300)
