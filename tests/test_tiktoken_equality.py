"""toknz encodes exactly as tiktoken on the four OpenAI rank files.

The references are ``tiktoken.Encoding`` objects built offline from the cached
rank files with the pattern and special tokens of ``tiktoken_ext.openai_public``
(see ``conftest.py``). Equality is checked on real text (the corpora in
``corpora/`` and some of this repository's code, cut into chunks of a few KB
so a failure shows a small diff) and on hypothesis-generated text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import TIKTOKEN_NAMES, assert_same_ids, corpus_files, corpus_ids, sample_chunks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import SPECIAL_STRINGS, texts

import toknz
from toknz.formats.known import KNOWN_RANK_FILES
from toknz.pipeline.pretokenize import PATTERNS

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW_SETTINGS = settings(SETTINGS, max_examples=3000)

# Chunks per corpus file in the default run (the slow run takes every chunk).
DEFAULT_CHUNKS = 6

PATTERN_NAME = {
    "r50k_base": "r50k",
    "p50k_base": "p50k",
    "cl100k_base": "cl100k",
    "o200k_base": "o200k",
}


def _token_bytes(enc: Any) -> Any:
    def get(t: int) -> bytes:
        try:
            return enc.decode_single_token_bytes(t)
        except KeyError:
            return b"<no such token>"

    return get


def check_text(tok: toknz.Tokenizer, enc: Any, text: str, where: str = "") -> None:
    """encode_ordinary, encode with every special allowed, and specials-as-text all equal tiktoken."""
    tb = _token_bytes(enc)
    assert_same_ids(
        tok.encode_ordinary(text), enc.encode_ordinary(text), tb, text, f"{where} encode_ordinary"
    )
    assert_same_ids(
        tok.encode(text, allowed_special="all"),
        enc.encode(text, allowed_special="all"),
        tb,
        text,
        f"{where} encode(allowed_special='all')",
    )
    assert_same_ids(
        tok.encode(text, disallowed_special=()),
        enc.encode(text, disallowed_special=()),
        tb,
        text,
        f"{where} encode(disallowed_special=())",
    )


# ------------------------------------------------------------------ the files themselves


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_pattern_specials_and_vocab_match_tiktoken(
    name: str, toknz_tok: Any, tiktoken_enc: Any
) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    assert PATTERNS[PATTERN_NAME[name]] == enc._pat_str
    assert tok.pattern == enc._pat_str
    assert tok.special_tokens == enc._special_tokens
    known = [k for k in KNOWN_RANK_FILES.values() if k.name == name]
    assert len(known) == 1 and known[0].special_tokens == enc._special_tokens
    assert tok.n_vocab == enc.n_vocab
    assert tok.name == name


# ------------------------------------------------------------------ corpora


@pytest.mark.parametrize("path", corpus_files(), ids=corpus_ids())
@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_corpus_equal(name: str, path: Path, toknz_tok: Any, tiktoken_enc: Any) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    for offset, text in sample_chunks(path, DEFAULT_CHUNKS):
        check_text(tok, enc, text, f"{path.name} at character {offset}")


@pytest.mark.slow
@pytest.mark.parametrize("path", corpus_files(), ids=corpus_ids())
@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_corpus_equal_every_chunk(name: str, path: Path, toknz_tok: Any, tiktoken_enc: Any) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    for offset, text in sample_chunks(path, None):
        check_text(tok, enc, text, f"{path.name} at character {offset}")


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_corpus_whole_files_and_batch(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    """Batch APIs agree too, and chunk boundaries do not hide a difference on whole files."""
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    texts_ = [
        text for p in corpus_files()[:3] + corpus_files()[-2:] for _, text in sample_chunks(p, 3)
    ]
    whole = "".join(texts_)
    assert_same_ids(
        tok.encode_ordinary(whole), enc.encode_ordinary(whole), _token_bytes(enc), whole, "joined"
    )
    assert tok.encode_ordinary_batch(texts_, num_threads=2) == enc.encode_ordinary_batch(
        texts_, num_threads=2
    )
    assert tok.encode_batch(texts_, allowed_special="all", num_threads=2) == enc.encode_batch(
        texts_, allowed_special="all", num_threads=2
    )


# ------------------------------------------------------------------ generated text


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_generated_text_equal(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        check_text(tok, enc, text)

    check()


@pytest.mark.slow
@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_generated_text_equal_many(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)

    @SLOW_SETTINGS
    @given(texts(max_blocks=60))
    def check(text: str) -> None:
        check_text(tok, enc, text)

    check()


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n",
        "a" * 300,
        " " * 200,
        " " * 200 + "a",
        "\n" * 50 + " x",
        "  \n\n  \t\r\n\u00a0\u3000\u2028x",
        "1234567890" * 10,
        "\u0661\u0662\u0663\u0664 \uff11\uff12\uff13\uff14 \u00b2\u00b3",
        "I'm you'LL they'Re it\u2019s JOHN'S",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f44d\U0001f3fd \U0001f1fa\U0001f1f8",
        "e\u0301 a\u0308\u0323 \u01c5ungla \u01c8 CamelCaseWORDs",
        "\u041f\u0440\u0438\u0432\u0435\u0442 \u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0e20\u0e32\u0e29\u0e32",
        "<|endoftext|> <|fim_prefix|>x<|fim_suffix|>",
        "def f(x):\r\n\treturn x  # comment\n\n\n",
        "\x00\x01\x7f\ufffd\ufeff",
        "\U0010ffff\U000e0001\ue000",
    ],
)
@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_hard_cases_equal(name: str, text: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    check_text(toknz_tok(name), tiktoken_enc(name), text)


@pytest.mark.xfail(
    strict=True,
    reason="the `regex` module has Unicode 17 tables, tiktoken's Rust regex an older version: "
    "letters assigned in Unicode 17 (CJK Extension J) split differently",
)
@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_newest_unicode_letters(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    # U+331E5 is a CJK Extension J ideograph (Unicode 17.0): \p{L} for `regex`,
    # unassigned for tiktoken, so ":C" joins a different piece.
    text = "\U000331e5:C"
    assert toknz_tok(name).encode_ordinary(text) == tiktoken_enc(name).encode_ordinary(text)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_unicode_15_and_16_letters(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    # CJK Ext H (15.0), CJK Ext I (15.1), Garay and Todhri (16.0): the engines agree.
    for c in ["\U00031350", "\U0002ebf0", "\U00010d50", "\U000105c0"]:
        text = f"{c}:C {c}{c}x"
        assert toknz_tok(name).encode_ordinary(text) == tiktoken_enc(name).encode_ordinary(text), (
            ascii(c)
        )


# ------------------------------------------------------------------ special tokens


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_disallowed_special_raises(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    for special in enc.special_tokens_set:
        text = f"hello {special} world"
        with pytest.raises(ValueError):
            enc.encode(text)
        with pytest.raises(toknz.SpecialTokenError, match=re.escape(repr(special))):
            tok.encode(text)
        with pytest.raises(toknz.SpecialTokenError, match="character offset 6"):
            tok.encode(text)
        # encode_ordinary and disallowed_special=() treat it as text, as tiktoken does
        assert tok.encode_ordinary(text) == enc.encode_ordinary(text)
        assert tok.encode(text, disallowed_special=()) == enc.encode(text, disallowed_special=())
        ids = tok.encode(text, allowed_special={special})
        assert ids == enc.encode(text, allowed_special={special})
        assert ids.count(enc._special_tokens[special]) == 1


def test_allowed_subset_and_disallowed_rest(toknz_tok: Any, tiktoken_enc: Any) -> None:
    tok, enc = toknz_tok("cl100k_base"), tiktoken_enc("cl100k_base")
    text = "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>  pass<|endoftext|>"
    allowed = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}
    # <|endoftext|> is disallowed by default: both refuse
    with pytest.raises(ValueError):
        enc.encode(text, allowed_special=allowed)
    with pytest.raises(toknz.SpecialTokenError, match=r"<\|endoftext\|>"):
        tok.encode(text, allowed_special=allowed)
    # ... and encode it as text when nothing is disallowed
    want = enc.encode(text, allowed_special=allowed, disallowed_special=())
    assert tok.encode(text, allowed_special=allowed, disallowed_special=()) == want
    assert want[0] == 100258 and 100257 not in want
    assert tok.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_special_policy_like_tiktoken(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    """Any allowed/disallowed choice: toknz refuses exactly when tiktoken does, else same ids."""
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    specials = sorted(enc.special_tokens_set)
    text_parts = st.lists(
        st.one_of(texts(max_blocks=4), st.sampled_from(specials + SPECIAL_STRINGS)), max_size=6
    )
    special_sets = st.sets(st.sampled_from(specials))
    allowed_st = st.one_of(st.just("all"), special_sets)
    disallowed_st = st.one_of(st.just("all"), st.just(()), special_sets)

    @SETTINGS
    @given(text_parts, allowed_st, disallowed_st)
    def check(parts: list[str], allowed: Any, disallowed: Any) -> None:
        text = "".join(parts)
        try:
            want = enc.encode(text, allowed_special=allowed, disallowed_special=disallowed)
        except ValueError:
            with pytest.raises(toknz.SpecialTokenError):
                tok.encode(text, allowed_special=allowed, disallowed_special=disallowed)
            return
        got = tok.encode(text, allowed_special=allowed, disallowed_special=disallowed)
        assert_same_ids(
            got, want, _token_bytes(enc), text, f"allowed={allowed} disallowed={disallowed}"
        )

    check()


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_refusal_survives_an_allowed_all_encode(name: str) -> None:
    """Encoding with allowed_special='all' must not switch the refusal off for later calls."""
    from conftest import require_file

    tok = toknz.Tokenizer.from_file(require_file(name))
    text = "hello <|endoftext|> world"
    tok.encode("x", allowed_special="all")
    with pytest.raises(toknz.SpecialTokenError):
        tok.encode(text)
