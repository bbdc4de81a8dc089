"""The compiled encode path (scanner + kernel + word cache) against tiktoken and `tokenizers` on generated text.

Short texts normally take the `regex` path; here the threshold is lowered so
that every generated text goes through the compiled one.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import TIKTOKEN_NAMES
from hypothesis import HealthCheck, given, settings
from strategies import texts

import toknz.tokenizer as tokenizer_module

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture()
def compiled_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer_module, "COMPILED_MIN_CHARS", 1)


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_compiled_path_equals_tiktoken(
    name: str, toknz_tok: Any, tiktoken_enc: Any, compiled_always: None
) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    assert tok._compiled_kind() is not None

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
def test_compiled_path_equals_tokenizers(
    name: str, toknz_tok: Any, hf_tok: Any, compiled_always: None
) -> None:
    tok, hf = toknz_tok(name), hf_tok(name)
    assert tok._compiled_kind() is not None or name == "qwen3"  # qwen3 has an NFC normalizer

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        assert (
            tok.encode(text, allowed_special="all") == hf.encode(text, add_special_tokens=False).ids
        )

    check()


def test_batch_to_numpy_matches_single(toknz_tok: Any, compiled_always: None) -> None:
    tok = toknz_tok("cl100k_base")
    docs = ["hello world " * 50, "", "x", "ünïcödé 12345 " * 40, "a\n\n b" * 100]
    ids, offsets = tok.encode_batch_to_numpy(docs, num_threads=2)
    assert offsets.tolist()[0] == 0 and len(offsets) == len(docs) + 1
    for i, doc in enumerate(docs):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == tok.encode_ordinary(doc)
