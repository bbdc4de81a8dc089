"""Derived state (toknz/derived.py): built once per object, shared by threads, never pickled.

- the pickled state of a ``BPE`` is its dataclass fields and that of a ``Tokenizer`` its
  constructor arguments, whatever caches and tables were built before;
- eight threads started together on a fresh tokenizer (every table still to build) give
  the ids and text of a warm one, on the compiled and the general path;
- the inputs are still checked when the object is made.
"""

from __future__ import annotations

import inspect
import pickle
import threading
from dataclasses import fields
from typing import Any

import numpy as np
import pytest

import toknz
from toknz.errors import FormatError
from toknz.pipeline.bpe import BPE
from toknz.tokenizer import Tokenizer

THREADS = 8

TEXTS = [
    "Grüße aus Köln – 12,5 % mehr Käse?  Ja!\n\ttabs\tand  spaces ",
    "naïve café ﬁnance ½ ⅔ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧑‍🔬🧑🏽‍🚀 ",
    "def f(x):\n    return x**2  # ok\r\n" * 3,
    "",
    " ".join(f"{i:x}" for i in range(300)),
    "日本語のテキストと中文文本，還有한국어 텍스트.",
]


def _tokenizer_inputs() -> set[str]:
    return set(inspect.signature(Tokenizer.__init__).parameters) - {"self"}


@pytest.mark.parametrize("name", ["cl100k_base", "llama2"])
def test_pickled_state_is_the_inputs_only(name: str, toknz_tok: Any) -> None:
    tok = toknz_tok(name)
    ids = tok.encode_batch(TEXTS, num_threads=2)  # builds caches, kernel tables, encoders
    assert [tok.decode(i) for i in ids]
    assert set(tok.__getstate__()) == _tokenizer_inputs()
    assert set(tok.model.__getstate__()) == {f.name for f in fields(BPE)}
    again = pickle.loads(pickle.dumps(tok))
    assert "_decode_tables" not in again.__dict__ and "table" not in again.model.__dict__
    assert again.encode_batch(TEXTS, num_threads=1) == ids


def _race(tok: toknz.Tokenizer, job: Any) -> list[Any]:
    """``job(tok, i)`` on THREADS threads released together; their results in order."""
    start = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = job(tok, i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def _job(tok: toknz.Tokenizer, i: int) -> tuple[list[list[int]], list[str], list[int]]:
    # Every thread takes a different way in, so different derived values are built first.
    texts = TEXTS[i % len(TEXTS) :] + TEXTS[: i % len(TEXTS)]
    if i % 3 == 0:
        ids = [tok.encode(t) for t in texts]
    elif i % 3 == 1:
        ids = tok.encode_batch(texts, num_threads=2)
    else:
        flat, offsets = tok.encode_batch_to_numpy(texts, num_threads=1)
        ids = [flat[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    order = [(j + i) % len(TEXTS) for j in range(len(TEXTS))]
    ids = [ids[order.index(k)] for k in range(len(TEXTS))]
    long_text = "".join(TEXTS) * 40  # long enough for the compiled path
    return ids, [tok.decode(x) for x in ids], tok.encode_to_numpy(long_text).tolist()


@pytest.mark.parametrize("name", ["cl100k_base", "llama3", "llama2"])
def test_eight_threads_on_a_fresh_tokenizer(name: str, toknz_tok: Any) -> None:
    from conftest import require_file

    warm = toknz_tok(name)
    want = _job(warm, 0)
    fresh = toknz.Tokenizer.from_file(require_file(name))
    for got in _race(fresh, _job):
        assert got == want


def test_inputs_are_checked_when_made() -> None:
    with pytest.raises(FormatError, match="negative id"):
        BPE(vocab={"a": -1}, merges=[])
    with pytest.raises(FormatError, match="unk_token"):
        BPE(vocab={"a": 0}, merges=[], unk_token="<unk>")


def test_byte_tables_follow_the_vocabulary() -> None:
    model = BPE.from_ranks({bytes([b]): b for b in range(256)} | {b"ab": 256})
    assert model._bytes_mode and not model._missing_bytes and model._unk_id == -1
    assert np.array_equal(model._byte_ids, np.arange(256, dtype=np.int32))
    gap = BPE.from_ranks({bytes([b]): b for b in range(255)})
    assert gap._missing_bytes and gap._byte_ids[255] == -1
