"""The compiled encode path (scanner + kernel + word cache) against tiktoken and `tokenizers` on generated text.

Tokenizers whose pipeline has a compiled scanner encode every text through it;
the tests check that they do (``_compiled_encoder``) before comparing ids.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import TIKTOKEN_NAMES
from hypothesis import HealthCheck, given, settings
from strategies import texts

import toknz

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_compiled_path_equals_tiktoken(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    assert tok._compiled_encoder() is not None

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        # Twice: the second run is answered partly from the word cache.
        assert tok.encode_ordinary(text) == enc.encode_ordinary(text)
        assert tok.encode_ordinary(text) == enc.encode_ordinary(text)
        assert tok.encode_to_numpy(text, disallowed_special=()).tolist() == enc.encode_ordinary(
            text
        )

    check()


@pytest.mark.parametrize("name", ["llama3", "qwen3", "gpt4o", "gptoss"])
def test_compiled_path_equals_tokenizers(name: str, toknz_tok: Any, hf_tok: Any) -> None:
    tok, hf = toknz_tok(name), hf_tok(name)
    assert tok._compiled_encoder() is not None

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        assert (
            tok.encode(text, allowed_special="all") == hf.encode(text, add_special_tokens=False).ids
        )

    check()


def test_batch_to_numpy_matches_single(toknz_tok: Any) -> None:
    tok = toknz_tok("cl100k_base")
    docs = ["hello world " * 50, "", "x", "ünïcödé 12345 " * 40, "a\n\n b" * 100]
    ids, offsets = tok.encode_batch_to_numpy(docs, num_threads=2)
    assert offsets.tolist()[0] == 0 and len(offsets) == len(docs) + 1
    for i, doc in enumerate(docs):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == tok.encode_ordinary(doc)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base", "r50k_base"])
def test_compiled_path_equals_regex_path(name: str, toknz_tok: Any) -> None:
    """The compiled scanner + kernel against the `regex` pre-tokenizer + per-piece BPE."""
    from toknz.pipeline.pretokenize import pre_tokenize

    tok = toknz_tok(name)

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        slow = tok.model.encode_pieces(pre_tokenize(tok.pre_tokenizer, text, True))
        assert tok.encode_ordinary(text) == slow
        assert tok.encode_ordinary_to_numpy(text).tolist() == slow

    check()


def test_to_numpy_with_specials(toknz_tok: Any) -> None:
    tok = toknz_tok("cl100k_base")
    text = "a <|endoftext|> b " * 300
    want = tok.encode(text, allowed_special="all")
    assert tok.encode_to_numpy(text, allowed_special="all").tolist() == want
    ids, offsets = tok.encode_batch_to_numpy([text, "x"], allowed_special="all", num_threads=2)
    assert ids[offsets[0] : offsets[1]].tolist() == want
    with pytest.raises(toknz.SpecialTokenError):
        tok.encode_to_numpy(text)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batch_paths_match_single(toknz_tok: Any, threads: int) -> None:
    tok = toknz_tok("o200k_base")
    docs = ["", "x", "hello world " * 50, "\ud800 lone surrogate", "", "日本語のテキスト " * 30]
    docs += [f"doc {i}: 12345 ünïcödé\n\n  b" * (i % 7) for i in range(40)]
    want = [tok.encode_ordinary(d) for d in docs]
    assert tok.encode_ordinary_batch(docs, num_threads=threads) == want
    ids, offsets = tok.encode_batch_to_numpy(docs, num_threads=threads, disallowed_special=())
    assert [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(docs))] == want
    assert tok.encode_batch([], num_threads=threads) == []
    with pytest.raises(toknz.SpecialTokenError):
        tok.encode_batch(["fine", "<|endoftext|>"], num_threads=threads)


@pytest.mark.parametrize("pattern", ["gpt2", "cl100k", "o200k"])
def test_a_saved_trained_tokenizer_keeps_the_compiled_path(pattern: str, tmp_path) -> None:
    """tokenizer.json holds the Oniguruma spelling of the pattern (cl100k's differs from
    Python's); reloading must still find the compiled scanner, with the same ids."""
    from toknz.train import train

    src = tmp_path / "c.txt"
    text = "The court's 12345 orders, non-transferable\n\n  and so on. " * 50
    src.write_text(text, encoding="utf-8")
    tok = train([src], vocab_size=300, pattern=pattern, normalize="nfc", threads=1)
    tok.save(tmp_path / "t.json")
    again = toknz.load(tmp_path / "t.json")
    assert again._compiled_kind() is not None
    assert again.encode(text) == tok.encode(text)
