"""Canonicality: the pairwise/merge-history test agrees with re-encoding, on real tokenizers.

The reference is ``encode_ordinary(decode(ids)) == ids`` (for bytes that are
not valid UTF-8: pre-tokenize the surrogateescape text, BPE each piece from
its bytes; see toknz.bytelevel.canonical).
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from cover_checks import assert_true_cover_stays_open
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import texts

from toknz.bytelevel import ByteLM, CallableLM, canonicality, is_canonical, is_valid_pair
from toknz.errors import InputError, UsageError
from toknz.pipeline.pretokenize import pre_tokenize

NAMES = ["gpt2", "cl100k_base", "o200k_base", "llama3", "qwen3", "llama2"]
BYTE_LEVEL = ["gpt2", "cl100k_base", "o200k_base", "llama3", "qwen3"]

ADVERSARIAL = [
    "I'm sure they'll say it's the dog's, we've we'd you're I'D SHE'LL don't",
    "'s'S'''t ''ll x'ss",
    "1234567 12 123 1,234,567.89 ٣٤٥٦٧ ०१२३४५ ５６７８９ ¹²³",
    "中文字符测试，日本語のテキスト。한국어 텍스트",
    "👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 👍🏽 thumbs",
    "مرحبا بالعالم שלום עולם",
    "tab\there\r\nnew\x00line\x1b[31m\x7f end",
    "e\u0301 n\u0303 a\u0308\u0304 Z\u0335\u0321\u0322a\u0336lgo",
    "<|endoftext|> <|im_start|>user <s> </s> <|begin_of_text|>",
    "   leading and trailing spaces   \n\n\n  \t ",
    "x" * 40 + " " * 9 + "y",
]


def reference(tok, ids: list[int]) -> bool:
    data = tok.decode_bytes(ids)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if not tok.model.byte_level:
            return False
        text = data.decode("utf-8", "surrogateescape")
        if tok.normalizer is not None and tok.normalizer.normalize(text) != text:
            return False
        pieces = pre_tokenize(tok.pre_tokenizer, text)
        raw = [p.encode("utf-8", "surrogateescape") for p in pieces]
        return bool(tok.model.encode_piece_bytes(raw) == ids)
    return bool(tok.encode_ordinary(text) == ids)


def _plain(tok, i: int) -> bool:
    c = canonicality(tok)
    return i not in c.added_ids and i < c.n_model and tok.model.id_to_token[i] is not None


def _pair_applies(tok, left: int, right: int) -> bool:
    """The pair reference applies: plain tokens (and, for SentencePiece, a word start on the left)."""
    if not (_plain(tok, left) and _plain(tok, right)):
        return False
    return tok.model.byte_level or canonicality(tok).token_bytes[left].startswith(b" ")


def _pairs(tok, n_random: int, first: int, seed: int) -> list[tuple[int, int]]:
    c = canonicality(tok)
    rng = random.Random(seed)
    pairs = [(rng.randrange(first), rng.randrange(first)) for _ in range(n_random)]
    # Pairs BPE merges (a token's two parts) and pairs next to those.
    for t in range(first):
        a, b = int(c.left_child[t]), int(c.right_child[t])
        if a >= 0:
            pairs += [(a, b), (t, b), (a, t)]
    for s in ADVERSARIAL:
        ids = tok.encode_ordinary(s)
        pairs += list(zip(ids, ids[1:], strict=False))
    return [p for p in pairs if _pair_applies(tok, *p)]


@pytest.mark.parametrize("name", NAMES)
def test_pairs_agree_with_reencoding(toknz_tok, name: str) -> None:
    tok = toknz_tok(name)
    pairs = _pairs(tok, 2500, 3000, seed=NAMES.index(name))
    answers = [(is_valid_pair(a, b, tok), reference(tok, [a, b])) for a, b in pairs]
    wrong = [(p, got, want) for p, (got, want) in zip(pairs, answers, strict=True) if got != want]
    assert not wrong, wrong[:10]
    # The sample holds both kinds.
    assert any(w for _, w in answers) and any(not w for _, w in answers)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_all_pairs_of_first_tokens(toknz_tok, name: str) -> None:
    tok = toknz_tok(name)
    first = 700
    wrong = []
    for a in range(first):
        for b in range(first):
            if _pair_applies(tok, a, b) and is_valid_pair(a, b, tok) != reference(tok, [a, b]):
                wrong.append((a, b))
    assert not wrong, wrong[:10]


def _mutations(tok, ids: list[int], rng: random.Random) -> list[list[int]]:
    """Nearby sequences: a token split into its merge parts, two tokens joined, one replaced."""
    c = canonicality(tok)
    out = []
    for k, t in enumerate(ids):
        if t < c.n_model and c.left_child[t] >= 0:
            out.append(ids[:k] + [int(c.left_child[t]), int(c.right_child[t])] + ids[k + 1 :])
    for k in range(len(ids) - 1):
        joined = c.token_bytes[ids[k]] + c.token_bytes[ids[k + 1]]
        t = c._bytes_to_id.get(joined)
        if t is not None:
            out.append(ids[:k] + [t] + ids[k + 2 :])
    if ids:
        k = rng.randrange(len(ids))
        out.append(ids[:k] + [rng.randrange(min(c.n_model, 5000))] + ids[k + 1 :])
    return out


@pytest.mark.parametrize("name", NAMES)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=texts(max_blocks=6), seed=st.integers(0, 1000))
def test_sequences_agree_with_reencoding(toknz_tok, name: str, text: str, seed: int) -> None:
    tok = toknz_tok(name)
    ids = tok.encode_ordinary(text)
    assert is_canonical(ids, tok) == reference(tok, ids)
    for variant in _mutations(tok, ids, random.Random(seed))[:12]:
        assert is_canonical(variant, tok) == reference(tok, variant), variant


@pytest.mark.parametrize("name", NAMES)
def test_adversarial_strings(toknz_tok, name: str) -> None:
    tok = toknz_tok(name)
    rng = random.Random(0)
    for s in ADVERSARIAL:
        ids = tok.encode_ordinary(s)
        assert is_canonical(ids, tok), s
        for variant in _mutations(tok, ids, rng):
            assert is_canonical(variant, tok) == reference(tok, variant), (s, variant)


@pytest.mark.parametrize("name", BYTE_LEVEL)
def test_invalid_utf8_and_special_tokens(toknz_tok, name: str) -> None:
    tok = toknz_tok(name)
    c = canonicality(tok)
    # Tokens that hold part of a character (bytes that are not valid UTF-8 alone).
    partial = [
        i for i in range(c.n_model) if len(c.token_bytes[i]) == 1 and c.token_bytes[i][0] >= 0x80
    ]
    rng = random.Random(1)
    for _ in range(300):
        ids = [rng.choice(partial) for _ in range(rng.randrange(1, 4))]
        ids.insert(rng.randrange(len(ids) + 1), rng.randrange(3000))
        assert is_canonical(ids, tok) == reference(tok, ids), ids
    for special in c.special_ids:
        assert not is_canonical([special], tok)
    with pytest.raises(InputError):
        is_canonical([c.n_vocab], tok)
    with pytest.raises(InputError):
        is_valid_pair(-1, 0, tok)
    with pytest.raises(UsageError):
        is_canonical([0], object())


@pytest.mark.parametrize("name", ["gpt2", "llama3"])
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_merge_kernel_equals_python_bpe(toknz_tok, name: str, data) -> None:
    """The kernel's twin: plain BPE (no whole-piece rule) on the two tokens' bytes, in Python."""
    tok = toknz_tok(name)
    c = canonicality(tok)
    left = data.draw(st.integers(256, 20000))
    split = c.left_child[left] >= 0 and data.draw(st.booleans())
    right = int(c.right_child[left]) if split else data.draw(st.integers(0, 20000))
    left = int(c.left_child[left]) if split else left
    got = c.merge_compatible(left, right)
    if got is None:
        return
    want = tok.model._merge_python(c.token_bytes[left] + c.token_bytes[right]) == (left, right)
    assert got == want


@pytest.mark.parametrize("name", BYTE_LEVEL)
def test_streaming_cover_set_keeps_the_true_cover(toknz_tok, name: str) -> None:
    """At every byte of adversarial text, the canonical cover of the true encoding is open."""
    tok = toknz_tok(name)
    n_vocab = tok.n_vocab
    blm = ByteLM(CallableLM(lambda p: np.zeros(n_vocab)), tok)
    c = canonicality(tok)
    for s in ADVERSARIAL:
        ids = tok.encode_ordinary(s)
        data = b"".join(c.token_bytes[i] for i in ids)[:40]  # normalized text (NFC for qwen3)
        sizes = assert_true_cover_stays_open(blm, ids, 40, s)
        # Whitespace runs keep several splits open (a boundary may fall between
        # any two spaces); elsewhere the set stays small.
        assert max(sizes) < 2048
        assert blm.prefix_logprob(data) > -np.inf
        if not re.search(r"\s\s", s):
            assert sizes[-1] < 64, (s, sizes[-1])


@pytest.mark.parametrize("name", ["gpt2", "llama3", "qwen3"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_whole_row_kernel_equals_pair_kernel(toknz_tok, name: str, data) -> None:
    """row_ok_all (one shared walk for every right token) answers as pair_ok does, token by token."""
    from toknz_core import canon

    tok = toknz_tok(name)
    c = canonicality(tok)
    left = data.draw(st.integers(0, c.n_model - 1))
    rights = np.arange(c.n_model, dtype=np.int64)
    row = c.merge_compatible_row(left, rights)  # many rights: the whole-row kernel
    sample = np.array(
        data.draw(st.lists(st.integers(0, c.n_model - 1), min_size=200, max_size=200))
    )
    want = [
        canon.pair_ok(np.int64(left), np.int64(r), c.left_child, c.right_child, c.crank, c.pairs)
        for r in sample
    ]
    assert row[sample].tolist() == want
    assert row.tolist() == c.merge_compatible_row(left, rights[:100]).tolist() + row[100:].tolist()


def test_byte_fallback_spellings_of_known_characters_are_dropped() -> None:
    """A character with a symbol of its own never takes its byte-fallback spelling.

    Without that rule every ASCII byte doubles the open covers (the character's
    token or its ``<0x..>`` token), as it did for Gemma 3.
    """
    from bytelm_toys import fallback_tokenizer

    tok = fallback_tokenizer()
    blm = ByteLM(CallableLM(lambda p: np.zeros(tok.n_vocab)), tok)
    c = blm.canon
    assert c.has_fallback and not c.has_split  # Split(" ") is inert after ▁ replaces spaces
    for text in ["as as 11'sa as", "aé a é", "ééa"]:
        ids = tok.encode_ordinary(text)
        sizes = assert_true_cover_stays_open(blm, ids, label=text)
        assert max(sizes) <= 4, (text, sizes)
    a, fb_a, fb_c3, fb_a9 = (tok.model.vocab[s] for s in ("a", "<0x61>", "<0xC3>", "<0xA9>"))
    ids = np.array([a, fb_a, fb_c3, fb_a9])
    assert c.fallback_allowed((), ids).tolist() == [True, False, True, False]
    assert c.fallback_allowed((a, fb_c3), ids).tolist() == [False, False, False, True]
    assert c.fallback_allowed((fb_c3, fb_a9), ids).tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    "text",
    [
        "It was just as well, the cat sat on the mat.",
        "Rare: ꙮ and 𓀀 and 𝔘 next to 中文 and é.",
        "    for i in range(10):\n        print(i)  # ꙮ\n",
    ],
)
def test_gemma_covers_keep_the_true_encoding_and_stay_few(toknz_tok, text: str) -> None:
    """Gemma 3 (byte fallback, spaces normalized away): the true cover stays, covers stay few."""
    tok = toknz_tok("gemma3")
    blm = ByteLM(CallableLM(lambda p: np.zeros(tok.n_vocab)), tok)
    assert not blm.canon.has_split
    ids = tok.encode_ordinary(text)
    sizes = assert_true_cover_stays_open(blm, ids, label=text)
    assert max(sizes) <= 24, sizes
