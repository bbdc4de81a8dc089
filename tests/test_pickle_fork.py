"""Tokenizers pickle compactly and work across processes and threads.

- a pickled tokenizer is small (its caches and kernel tables are rebuilt, not
  pickled) and the unpickled one gives identical ids;
- a tokenizer used in the parent (Numba kernels loaded, tables built, thread
  pools run) works in a child made with ``fork`` without deadlocking, and one
  sent to a ``spawn`` child works there;
- ``encode_batch`` on two threads equals a loop of ``encode``.
"""

from __future__ import annotations

import multiprocessing
import pickle
from typing import Any

import pytest
from helpers import corpus_files, sample_chunks

import toknz

CHILD_TIMEOUT_S = 180

# Set in the parent before a fork; the child inherits it.
_INHERITED: toknz.Tokenizer | None = None


def _texts() -> list[str]:
    out = [text for p in corpus_files()[::2] for _, text in sample_chunks(p, 2)]
    return out + [
        "Hello world! <|endoftext|> \u4e2d\u6587 \U0001f9e0 " + "a" * 200,
        "",
        "<s> </s> <|begin_of_text|> \u2581x",
    ]


def _encode_all(tok: toknz.Tokenizer, texts: list[str]) -> list[list[int]]:
    return [tok.encode(t, allowed_special="all") for t in texts]


def _child_inherited(texts: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    assert _INHERITED is not None
    return _encode_all(_INHERITED, texts), _INHERITED.encode_batch(
        texts, allowed_special="all", num_threads=2
    )


def _child_given(tok: toknz.Tokenizer, texts: list[str]) -> list[list[int]]:
    return _encode_all(tok, texts)


NAMES = ["cl100k_base", "llama3", "llama2"]


@pytest.mark.parametrize("name", NAMES)
def test_pickle_is_small_and_equivalent(name: str, toknz_tok: Any) -> None:
    from conftest import require_file

    tok = toknz_tok(name)
    texts = _texts()
    want = _encode_all(tok, texts)  # fills the caches, builds the kernel table
    data = pickle.dumps(tok)
    source_size = require_file(name).stat().st_size
    assert len(data) < 3 * source_size, (len(data), source_size)
    # the caches filled above are not pickled
    assert len(pickle.dumps(tok)) == len(data)
    again = pickle.loads(data)
    assert isinstance(again, toknz.Tokenizer)
    assert again.n_vocab == tok.n_vocab and again.special_tokens == tok.special_tokens
    with pytest.raises(toknz.SpecialTokenError):
        again.encode("<|endoftext|> <s> <|begin_of_text|>")
    assert _encode_all(again, texts) == want
    assert [again.decode(ids) for ids in want] == [tok.decode(ids) for ids in want]


@pytest.mark.parametrize("name", NAMES)
def test_fork_child_after_parent_use(name: str, toknz_tok: Any) -> None:
    global _INHERITED
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    tok = toknz_tok(name)
    texts = _texts()
    want = _encode_all(tok, texts)
    assert (
        tok.encode_batch(texts, allowed_special="all", num_threads=2) == want
    )  # threads ran in the parent
    _INHERITED = tok
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:
            got, got_batch = pool.apply_async(_child_inherited, (texts,)).get(
                timeout=CHILD_TIMEOUT_S
            )
    finally:
        _INHERITED = None
    assert got == want
    assert got_batch == want


def test_spawn_child(toknz_tok: Any) -> None:
    tok = toknz_tok("cl100k_base")
    texts = _texts()
    want = _encode_all(tok, texts)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_child_given, (tok, texts)).get(timeout=CHILD_TIMEOUT_S)
    assert got == want


@pytest.mark.parametrize(
    "name", ["cl100k_base", "o200k_base", "llama3", "qwen3", "llama2", "gemma3"]
)
def test_encode_batch_threads_equal_loop(name: str, toknz_tok: Any) -> None:
    tok = toknz_tok(name)
    texts = _texts()
    want = _encode_all(tok, texts)
    assert tok.encode_batch(texts, allowed_special="all", num_threads=2) == want
    assert tok.encode_batch(texts, allowed_special="all", num_threads=1) == want
    want_special = [tok.encode(t, allowed_special="all", add_special_tokens=True) for t in texts]
    assert (
        tok.encode_batch(texts, allowed_special="all", add_special_tokens=True, num_threads=2)
        == want_special
    )
    plain = [t for t in texts if not any(s in t for s in tok.special_tokens)]
    assert plain
    assert tok.encode_batch(plain, num_threads=2) == [tok.encode(t) for t in plain]
    assert tok.encode_ordinary_batch(texts, num_threads=2) == [
        tok.encode_ordinary(t) for t in texts
    ]


def test_encode_batch_fresh_tokenizer_threads_race(toknz_tok: Any) -> None:
    """Threads that start on a tokenizer whose caches and tables are still empty."""
    from conftest import require_file

    texts = _texts()
    want = _encode_all(toknz_tok("cl100k_base"), texts)
    fresh = toknz.Tokenizer.from_file(require_file("cl100k_base"))
    assert fresh.encode_batch(texts, allowed_special="all", num_threads=2) == want
