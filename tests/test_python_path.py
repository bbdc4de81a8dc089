"""The start-up path: short texts encoded before the Numba kernels load, with BPE in Python.

``BPE._merge_python`` is compared with the kernels on generated pieces, and a
fresh process encodes short texts without importing a kernel, giving the ids
of the compiled path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import texts
from toknz_core.encode import merge_words

from toknz.pipeline.byte_alphabet import bytes_to_chars
from toknz.pipeline.pretokenize import pre_tokenize


def kernel_merge(model: Any, raw: bytes) -> list[int]:
    """The Numba merge of one piece (no whole-token shortcut)."""
    sym = model._byte_ids[np.frombuffer(raw, dtype=np.uint8)].astype(np.int32)
    out, _ = merge_words(sym, np.array([0, len(sym)], dtype=np.int64), *model.table)
    return [int(x) for x in out]


SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base", "llama3", "gpt2-hf"])
def test_python_merge_matches_kernels(name: str, toknz_tok: Any) -> None:
    model = toknz_tok(name).model
    tok = toknz_tok(name)
    shortcut = model.merge_rule == "ranks" or model.ignore_merges

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        for piece in pre_tokenize(tok.pre_tokenizer, text, True):
            raw = piece.encode("utf-8")
            if shortcut and len(raw) > 1 and bytes_to_chars(raw) in model.vocab:
                continue  # a whole token: encoded by the shortcut, never merged
            assert list(model._merge_python(raw)) == kernel_merge(model, raw), raw

    check()


@pytest.mark.parametrize("name", ["cl100k_base", "llama3", "gpt2-hf"])
def test_python_merge_ties_go_left(name: str, toknz_tok: Any) -> None:
    """Runs of one character: the same pair at several places, the leftmost merges first."""
    model = toknz_tok(name).model
    for piece in [
        "zzz",
        "kkk",
        "zzzzzzz",
        "qqqqq",
        "xxxxxxxxxxx",
        " ñññññ",
        "ŋŋŋŋŋŋŋ",
        "\u3042" * 7,
    ]:
        raw = piece.encode("utf-8")
        assert list(model._merge_python(raw)) == kernel_merge(model, raw), piece


FRESH = r"""
import json, sys
import toknz
tok = toknz.load(sys.argv[1])
texts = json.loads(sys.argv[2])
ids = [tok.encode_ordinary(t) for t in texts]
assert tok.encode_ordinary_batch(texts, num_threads=2) == ids
loaded = [m for m in sys.modules if m.startswith("toknz_core.") and m != "toknz_core"]
print(json.dumps({"ids": ids, "kernels": loaded}))
"""


@pytest.mark.parametrize("name", ["cl100k_base", "llama3"])
def test_fresh_process_short_texts_load_no_kernel(name: str, toknz_tok: Any) -> None:
    samples = [
        "hello",
        "Hello, world! It's 2026.",
        "  indented\n\n\tcode(x) += 1;",
        "日本語とEnglishの混在 ünïcödé",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
    ]
    out = subprocess.run(
        [sys.executable, "-c", FRESH, name, json.dumps(samples)],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)
    tok = toknz_tok(name)
    assert got["ids"] == [tok.encode_ordinary(t) for t in samples]
    assert not any(m in ("toknz_core.encode", "toknz_core.docencode") for m in got["kernels"])


@pytest.mark.parametrize("name", ["cl100k_base", "llama3"])
def test_batch_and_single_agree_before_and_after_kernels(
    name: str, toknz_tok: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``encode_batch`` == ``[encode(t) ...]`` == ``encode_batch_to_numpy`` for small batches (the
    Python path while the kernels are not loaded) and large ones, before and after loading."""
    import toknz.kernel_loading

    tok = toknz_tok(name)
    # No background load in the middle of an example: each example chooses its path.
    monkeypatch.setattr(toknz.kernel_loading, "LOAD_AFTER_S", float("inf"))
    monkeypatch.setattr(toknz.kernel_loading, "WAIT_AFTER_S", float("inf"))

    def fresh(after: bool) -> None:
        """Forget the compiled functions (as a newly loaded tokenizer), then load them if ``after``."""
        for key in ("_text_encoder", "_batch_encoder", "_startup", "_short_ready"):
            tok.__dict__.pop(key, None)
        if after:
            tok._compiled_encoder()
        assert tok.encode_path == ("compiled" if after else "python")

    @settings(SETTINGS, max_examples=40)
    @given(
        st.lists(texts(max_blocks=6), max_size=5),
        st.sampled_from([0, 0, 300, 2100]),
        st.sampled_from([1, 3]),
        st.booleans(),
        st.booleans(),
    )
    def check(batch: list[str], long: int, threads: int, after: bool, specials: bool) -> None:
        if long:
            batch = [*batch, "word, " * long]  # pushes the batch over PYTHON_PATH_CHARS
        options: dict[str, Any] = {"add_special_tokens": specials, "disallowed_special": ()}
        fresh(after)
        got = tok.encode_batch(batch, num_threads=threads, **options)
        fresh(after)
        arr, offsets = tok.encode_batch_to_numpy(batch, num_threads=threads, **options)
        fresh(after)
        want = [tok.encode(t, **options) for t in batch]
        assert got == want
        assert offsets.tolist()[-1] == arr.shape[0] and arr.dtype == np.uint32
        assert [arr[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)] == want

    try:
        check()
    finally:
        fresh(True)
