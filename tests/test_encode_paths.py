"""Which encoding path runs: the Python start-up path gives way to the kernels, and the batch
API gives the single-text answer on 1 and 2 threads.

- A fresh process that encodes only short texts (under ``PYTHON_PATH_CHARS``) starts on the
  Python path and switches to the compiled path for good (the background load of
  :mod:`toknz.kernel_loading`); the test spies on both paths to see which one ran, and
  checks the ids are the same before and after the switch.
- ``encode_batch`` / ``encode_batch_to_numpy`` equal ``[encode(t) ...]`` with 1 and 2 threads,
  for batches large enough to be cut into several kernel calls.

Texts: the docstrings of standard-library modules, which no benchmark uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from conftest import require_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import texts

STDLIB_DOCS = ("argparse", "asyncio", "collections", "decimal", "email", "json", "logging")

FRESH = r"""
import importlib, json, sys, time
import toknz

name, modules = sys.argv[1], json.loads(sys.argv[2])
text = "\n".join(importlib.import_module(m).__doc__ or "" for m in modules)
docs = [text[i : i + 300] for i in range(0, len(text), 300)]
tok = toknz.load(name)
calls = {"python": 0, "compiled": 0}
real_pieces = tok.model.encode_pieces

def python_pieces(pieces):
    calls["python"] += 1
    return real_pieces(pieces)

tok.model.encode_pieces = python_pieces
first = [tok.encode_ordinary(d) for d in docs]
paths = [tok.encode_path]
deadline = time.monotonic() + 240
while tok.encode_path == "python" and time.monotonic() < deadline:
    for d in docs:
        tok.encode_ordinary(d)
paths.append(tok.encode_path)
real_compiled = tok._text_encoder
real_short = tok.__dict__.get("_short_ready") or tok._short_encoder

def compiled(data):
    calls["compiled"] += 1
    return real_compiled(data)

def short(raw, as_list):
    calls["compiled"] += 1
    return real_short(raw, as_list)

tok.__dict__["_text_encoder"] = compiled
tok.__dict__["_short_ready"] = short
calls["python"] = 0
after = [tok.encode_ordinary(d) for d in docs]
print(json.dumps({"paths": paths, "calls": calls, "same": first == after, "n": len(docs),
                  "spent_s": tok._startup.spent_s, "error": repr(tok._startup.error)}))
"""


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_fresh_process_of_short_texts_switches_to_the_compiled_path(name: str) -> None:
    require_file(name)
    out = subprocess.run(
        [sys.executable, "-c", FRESH, name, json.dumps(STDLIB_DOCS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    got = json.loads(out.stdout)
    assert got["paths"] == ["python", "compiled"], got
    assert got["error"] == "None"
    # After the switch every text went through the kernel, none through the Python merge.
    assert got["calls"] == {"python": 0, "compiled": got["n"]}
    assert got["same"]


def test_long_text_loads_the_compiled_path_at_once(toknz_tok: Any) -> None:
    """A text of PYTHON_PATH_CHARS characters or more never takes the Python path."""
    import toknz

    require_file("cl100k_base")
    tok = toknz.load("cl100k_base")  # a new object: nothing built yet
    assert tok.encode_path == "python"
    text = json.__doc__ * 10
    assert tok.encode_ordinary(text) == toknz_tok("cl100k_base").encode_ordinary(text)
    assert tok.encode_path == "compiled"


SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
@pytest.mark.parametrize("threads", [1, 2])
def test_batch_equals_single(name: str, threads: int, toknz_tok: Any) -> None:
    tok = toknz_tok(name)
    import importlib

    prose = [importlib.import_module(m).__doc__ or "" for m in STDLIB_DOCS]

    @SETTINGS
    @given(st.lists(texts(max_blocks=8), min_size=0, max_size=40), st.integers(0, len(prose)))
    def check(batch: list[str], n_prose: int) -> None:
        batch = batch + prose[:n_prose]
        want = [tok.encode_ordinary(t) for t in batch]
        assert tok.encode_ordinary_batch(batch, num_threads=threads) == want
        assert tok.encode_batch(batch, num_threads=threads, disallowed_special=()) == want
        ids, offsets = tok.encode_batch_to_numpy(batch, num_threads=threads, disallowed_special=())
        assert ids.dtype == np.uint32 and int(offsets[-1]) == len(ids)
        assert [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)] == want

    check()


def python_twin(tok: Any, text: str) -> list[int]:
    """Ids of ``text`` by the regex split and the pure-Python merge of :class:`toknz.pipeline.bpe.BPE`."""
    from toknz.pipeline.byte_alphabet import bytes_to_chars
    from toknz.pipeline.pretokenize import pre_tokenize

    model = tok.model
    shortcut = model.merge_rule == "ranks" or model.ignore_merges
    ids: list[int] = []
    for piece in pre_tokenize(tok.pre_tokenizer, text, True):
        raw = piece.encode("utf-8")
        whole = model.vocab.get(bytes_to_chars(raw)) if shortcut and len(raw) > 1 else None
        ids.extend([whole] if whole is not None else model._merge_python(raw))
    return ids


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base", "llama3"])
def test_short_kernel_equals_the_python_twin(name: str, toknz_tok: Any) -> None:
    """The three-argument kernel (:func:`toknz_core.docencode.encode_short`) against the twin."""
    tok = toknz_tok(name)
    tok.encode_ordinary("warm " * 1000)  # the compiled path is ready
    short = tok._short_encoder
    assert short is not None

    @SETTINGS
    @given(texts(max_blocks=12))
    def check(text: str) -> None:
        raw = text.encode("utf-8", "surrogatepass")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return  # lone surrogates are replaced before any kernel sees the text
        want = python_twin(tok, text)
        assert short(raw, True) == want
        arr = short(raw, False)
        assert arr.dtype == np.uint32 and arr.tolist() == want
        assert tok.encode_ordinary(text) == want

    check()


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_batch_kernel_reuses_its_buffers_across_documents(name: str, toknz_tok: Any) -> None:
    """One call of the many-documents kernel reuses one set of buffers from document to
    document: empty documents, one with more pieces than the first buffers hold (1,024),
    long pieces between short ones; each document gets the Python twin's ids."""
    tok = toknz_tok(name)
    tok.encode_ordinary("warm " * 1000)
    docs = [
        "",
        "hi",
        " ".join(f"w{i % 97}" for i in range(3000)),
        "",
        "漢字かな交じり文" * 60,
        "a b",
        (json.__doc__ or "")[:2000],
    ]
    datas = [d.encode("utf-8") for d in docs]
    offsets = np.zeros(len(datas) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in datas], out=offsets[1:])
    ids, id_offsets = tok._batch_encoder(np.frombuffer(b"".join(datas), dtype=np.uint8), offsets)
    got = [ids[a:b].tolist() for a, b in zip(id_offsets[:-1], id_offsets[1:], strict=True)]
    assert got == [python_twin(tok, d) for d in docs]


def test_short_kernel_refuses_more_ids_than_its_buffer(toknz_tok: Any) -> None:
    """More ids than SHORT_OUT: None (the caller takes the general kernel), never a cut list."""
    import random

    from toknz_core.docencode import SHORT_OUT

    tok = toknz_tok("cl100k_base")
    tok.encode_ordinary("warm " * 1000)
    rng = random.Random(0)
    text = "".join(rng.choice("ÆØÅ∂ƒ©˙∆˚¬…æ«≈ç√∫˜µ≤≥÷") for _ in range(SHORT_OUT + 100))
    assert len(tok.encode_ordinary(text)) > SHORT_OUT
    assert tok._short_encoder(text.encode("utf-8"), True) is None


def test_short_texts_from_many_threads_at_once(toknz_tok: Any) -> None:
    """Threads share the short-text kernel's pool of work arrays: each call gets its own."""
    from concurrent.futures import ThreadPoolExecutor

    tok = toknz_tok("o200k_base")
    tok.encode_ordinary("warm " * 1000)
    docs = [(json.__doc__ or "")[i : i + 200] for i in range(0, 2000, 50)] * 20
    want = [tok.encode_ordinary(d) for d in docs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(tok.encode_ordinary, docs))
        arrays = list(pool.map(tok.encode_ordinary_to_numpy, docs))
    assert got == want
    assert [a.tolist() for a in arrays] == want


def test_encode_with_default_arguments_goes_straight_to_the_short_kernel(toknz_tok: Any) -> None:
    """``encode(text)`` with the defaults skips the special-token steps when no special token
    can be in the text, and only then: one spied kernel call per short text, special tokens
    still refused or allowed exactly as with explicit arguments."""
    import toknz

    tok = toknz_tok("cl100k_base")
    tok.encode_ordinary("warm " * 1000)
    real = tok.__dict__["_short_ready"]
    calls: list[bytes] = []

    def spy(raw: bytes, as_list: bool) -> Any:
        calls.append(raw)
        return real(raw, as_list)

    tok.__dict__["_short_ready"] = spy
    try:
        assert tok.encode("hello world") == tok.encode_ordinary("hello world")
        assert tok.encode("a < b > c") == tok.encode_ordinary("a < b > c")
        assert calls == [b"hello world", b"hello world", b"a < b > c", b"a < b > c"]
        with pytest.raises(toknz.SpecialTokenError, match="<\\|endoftext\\|>"):
            tok.encode("the end<|endoftext|>")
        as_text = tok.encode("x<|endoftext|>", disallowed_special=())
        assert as_text == tok.encode_ordinary("x<|endoftext|>")
        special = tok.encode("x<|endoftext|>", allowed_special={"<|endoftext|>"})
        assert special == tok.encode_ordinary("x") + [tok.special_tokens["<|endoftext|>"]]
        assert tok.encode("hi", allowed_special=set()) == tok.encode_ordinary("hi")
    finally:
        tok.__dict__["_short_ready"] = real


def test_waiting_while_another_thread_starts_the_load(monkeypatch: Any) -> None:
    """wait() from one thread while another is still starting the loader.

    The loader thread was published before it was started, so a waiting thread could
    join it too early: RuntimeError('cannot join thread before it is started') (seen with
    8 threads on a fresh tokenizer).
    """
    import threading
    import time

    from toknz.kernel_loading import StartupPath

    real_start = threading.Thread.start

    def slow_start(self: threading.Thread) -> None:
        time.sleep(0.2)  # widen the window between making the thread and starting it
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", slow_start)
    path = StartupPath(lambda: None)
    starter = threading.Thread(target=path.start)
    real_start(starter)
    time.sleep(0.05)  # the starter is inside slow_start now
    errors = []
    try:
        path.wait(5.0)
    except RuntimeError as exc:  # the bug
        errors.append(exc)
    starter.join()
    assert errors == []
    assert path.wait(5.0) and path.ready


def test_batch_with_non_special_added_tokens_takes_the_kernel_unless_one_occurs(
    toknz_tok: Any,
) -> None:
    """Qwen 3's non-special added tokens (``<think>``...) are matched in any text: a batch in
    which none occurs goes to the compiled batch kernel, one with an occurrence takes the
    per-text path, and both give the ids of each text encoded alone."""
    tok = toknz_tok("qwen3")
    assert tok._matcher(frozenset(), False), "qwen3 has non-special added tokens"
    _ = tok._text_encoder  # loaded: short batches no longer take the start-up path
    plain = ["Grüße aus Köln, 1234 <b>bold</b> x < y", "東京都の天気", ""]
    with_token = [*plain, "let me <think>about it</think> now"]
    assert tok._compiled_batch(plain, frozenset(), frozenset(), 1, False) is not None
    assert tok._compiled_batch(with_token, frozenset(), frozenset(), 1, False) is None
    for batch in (plain, with_token):
        want = [tok.encode(t) for t in batch]
        assert tok.encode_batch(batch, num_threads=1) == want
        assert tok.encode_batch(batch, num_threads=2) == want
        ids, offsets = tok.encode_batch_to_numpy(batch, num_threads=1)
        assert [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)] == want
    assert 151667 in tok.encode_batch(with_token)[-1]  # <think> is its added token


def test_short_kernel_after_normalizer_and_added_token_check(toknz_tok: Any, hf_tok: Any) -> None:
    """Qwen 3 (NFC, non-special ``<think>``...) takes the short kernel for a text in which no
    added token can start, normalized first; a text that may hold one takes the general
    steps. Both give `tokenizers`' ids."""
    tok = toknz_tok("qwen3")
    ref = hf_tok("qwen3")
    tok.encode("warm " * 1000)  # loads the compiled path
    assert tok._short_guard is not None
    for text in ["hi", "cafe\u0301 Å\u212b Ω \u1100\u1161", "x" * 100 + " e\u0301"]:
        got = tok._short(text, frozenset(), True)
        assert got is not None, text
        assert got == tok.encode(text) == ref.encode(text, add_special_tokens=False).ids
    for text in ["a <think> b", "1 < 2"]:
        assert tok._short(text, frozenset(), True) is None  # '<' may start an added token
        assert tok.encode(text) == ref.encode(text, add_special_tokens=False).ids
    plain = toknz_tok("cl100k_base")
    assert plain._short_guard is None  # nothing to check: no normalizer, no added token


def test_merge_list_shortcut_takes_only_tokens_the_merges_rebuild(
    tmp_path: Any, toknz_tok: Any
) -> None:
    """A merge-list tokenizer (Qwen 3: no ignore_merges) encodes a piece equal to a token as
    that token only when the merges make the token out of its own bytes
    (docencode.self_encoding_tokens, checked here against the pure-Python merge): with the
    merge ('Ġth', 'e') removed, ' the' stays in the vocabulary but is no longer made, and
    every path gives `tokenizers`' ids."""
    import tokenizers
    from toknz_core import docencode

    import toknz
    from toknz.pipeline.bpe import _concatenated
    from toknz.pipeline.byte_alphabet import chars_to_bytes

    obj = json.loads(require_file("qwen3").read_text(encoding="utf-8"))
    obj["model"]["merges"] = [m for m in obj["model"]["merges"] if m != ["Ġth", "e"]]
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    tok = toknz.Tokenizer.from_file(path)
    ref = tokenizers.Tokenizer.from_file(str(path))
    model = tok.model
    raws, ids = [], []
    for text, i in sorted(model.vocab.items(), key=lambda kv: kv[1])[::50]:
        raw = chars_to_bytes(text)
        if raw is not None and len(raw) > 1:
            raws.append(raw)
            ids.append(i)
    the = model.vocab["Ġthe"]
    raws.append(b" the")
    ids.append(the)
    data, offsets = _concatenated(raws)
    pairs, rank_ids = model.table
    keep = docencode.self_encoding_tokens(
        data,
        offsets,
        np.array(ids, dtype=np.int32),
        model._byte_ids,
        pairs,
        rank_ids,
        docencode.byte_pair_ranks(model._byte_ids, pairs),
    )
    twin = []
    for raw, i in zip(raws, ids, strict=True):
        try:
            twin.append(model._merge_python(raw) == (i,))
        except KeyError:  # a merge makes a token the vocabulary lacks: not made
            twin.append(False)
    assert keep.astype(bool).tolist() == twin
    assert not twin[-1]  # ' the' is no longer made by the merges
    texts = [" the", "the other, the end: the", "x" * 40 + " the " * 300, "Ça, the café"]
    tok.encode("warm " * 1000)  # the compiled paths
    for text in texts:
        want = ref.encode(text, add_special_tokens=False).ids
        assert the not in want
        assert tok.encode(text) == want
    assert tok.encode_batch(texts) == [ref.encode(t, add_special_tokens=False).ids for t in texts]
    assert tok_fast_shortcut(toknz_tok("qwen3"))


def tok_fast_shortcut(tok: Any) -> bool:
    """Whether the compiled tables of ``tok`` take the whole-token shortcut."""
    return bool(tok.model._fast_tables[5])
