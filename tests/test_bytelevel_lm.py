"""Token-LM adapters, and the cost of ByteLM: model evaluations per byte stay bounded."""

from __future__ import annotations

import numpy as np
import pytest

from toknz.bytelevel import ByteLM, CallableLM, TokenLM, TorchLM
from toknz.bytelevel.lm import log_softmax
from toknz.errors import UsageError


def test_callable_lm_caches_and_counts() -> None:
    calls = []

    def fn(prefix: list[int]) -> np.ndarray:
        calls.append(tuple(prefix))
        return np.arange(5, dtype=np.float64) * (len(prefix) + 1)

    lm = CallableLM(fn)
    assert isinstance(lm, TokenLM)
    out = lm.next_token_logprobs([[1], [1, 2], [1]])
    assert out.shape == (3, 5)
    np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0)
    np.testing.assert_allclose(out[0], log_softmax(np.arange(5) * 2.0))
    assert lm.n_evals == 2 and calls == [(1,), (1, 2)]
    with pytest.raises(UsageError):
        CallableLM(lambda p: np.zeros((2, 2))).next_token_logprobs([[0]])


def _require_torch():
    torch = pytest.importorskip(
        "torch", reason="torch is not installed (pip install 'toknz[bytelm]')"
    )
    transformers = pytest.importorskip(
        "transformers", reason="transformers is not installed (pip install 'toknz[bytelm]')"
    )
    return torch, transformers


def test_torch_module_adapter() -> None:
    torch, _ = _require_torch()
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Embedding(7, 4), torch.nn.Linear(4, 7))
    lm = TorchLM(module, bos_id=0)
    out = lm.next_token_logprobs([[1, 2], [3, 4], [5]])
    with torch.no_grad():
        want = torch.log_softmax(module(torch.tensor([[0, 1, 2]])).double(), dim=-1)[0, -1]
    np.testing.assert_allclose(out[0], want.numpy(), atol=1e-6)
    assert lm.n_calls == 2  # one forward per prefix length
    with pytest.raises(UsageError):
        TorchLM(module).next_token_logprobs([[]])


@pytest.fixture(scope="module")
def tiny_gpt2(request):
    torch, transformers = _require_torch()
    import toknz

    tok = toknz.load("gpt2")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=1, n_head=2, n_embd=16, vocab_size=tok.n_vocab, n_positions=256
    )
    return tok, transformers.GPT2LMHeadModel(config)


def test_hf_adapter_matches_full_forward(tiny_gpt2) -> None:
    torch, _ = _require_torch()
    from toknz.bytelevel import HFCausalLM

    tok, model = tiny_gpt2
    lm = HFCausalLM(model, bos_id=50256)
    ids = tok.encode_ordinary("Hello world, it is")
    got = lm.next_token_logprobs([ids[:3], ids, ids[:4]])
    with torch.no_grad():
        full = torch.log_softmax(model(torch.tensor([[50256, *ids]])).logits.double(), dim=-1)[0]
    np.testing.assert_allclose(got[0], full[3].numpy(), atol=1e-5)
    np.testing.assert_allclose(got[1], full[len(ids)].numpy(), atol=1e-5)
    np.testing.assert_allclose(got[2], full[4].numpy(), atol=1e-5)
    # ids[:4] was computed on the way to ids[:3]'s extension: no new evaluation.
    assert lm.n_evals == 1 + len(ids)


def test_model_evaluations_per_byte_stay_bounded(tiny_gpt2) -> None:
    from toknz.bytelevel import HFCausalLM

    tok, model = tiny_gpt2
    lm = HFCausalLM(model, bos_id=50256)
    blm = ByteLM(lm, tok)
    text = b"The quick brown fox jumps over the lazy dog; it's 42 times. " * 2
    counts = []
    done = 0
    for n in (30, 60, 120):
        before = lm.n_evals
        blm.prefix_logprob(text[:n])  # extends the cover set of text[:done]
        counts.append(lm.n_evals)
        assert lm.n_evals - before <= 2 * (n - done) + 4, counts
        done = n
    # O(n): evaluations grow linearly with the bytes (about one per byte here), not O(n^2).
    assert counts[-1] <= 2 * 120 + 4, counts
    lp = blm.next_byte_logprobs(text[:120])
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-9)
    assert len(blm.greedy(text[:20], max_bytes=4)) <= 4


# ------------------------------------------------- batched evaluation (HFCausalLM)

TEXT = "Hello world, it is a fine day; numbers 12345 and more words follow here"


def _tiny_model(kind: str):
    """A tiny random model in float64 over the GPT-2 vocabulary: ``"gpt2"`` or ``"llama"`` (rotary)."""
    torch, transformers = _require_torch()
    import toknz

    tok = toknz.load("gpt2")
    torch.manual_seed(1)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            n_layer=2, n_head=2, n_embd=16, vocab_size=tok.n_vocab, n_positions=256,
            initializer_range=0.2,
        )  # fmt: skip
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=tok.n_vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
            initializer_range=0.2,
        )  # fmt: skip
        model = transformers.LlamaForCausalLM(config)
    return tok, model.double().eval()


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def tiny64(request):
    return _tiny_model(request.param)


def _full_forward(model, full: list[int]) -> np.ndarray:
    """Log-probabilities after ``full``, from one forward pass without any cache."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([full]), use_cache=False).logits
    return torch.log_softmax(logits.double(), dim=-1)[0, -1].numpy()


def _cached_nodes(lm) -> list:
    out, stack = [], [lm._root]
    while stack:
        node = stack.pop()
        if node.cache is not None:
            out.append(node)
        stack.extend(node.children.values())
    return out


@pytest.mark.parametrize("pad", [True, False])
def test_batched_equals_sequential_and_full_forward(tiny64, pad) -> None:
    from toknz.bytelevel import HFCausalLM

    tok, model = tiny64
    ids = tok.encode_ordinary(TEXT)
    assert len(ids) > 12
    batched = HFCausalLM(model, bos_id=50256, pad=pad)
    seq = HFCausalLM(model, bos_id=50256, batch=False)
    for lm in (batched, seq):  # cached ancestors of different lengths
        lm.next_token_logprobs([ids[:3], ids[:7]])
    queries = [
        *[ids[:3] + [t] for t in (11, 50, 400, ids[3])],  # children of one parent
        *[ids[:7] + [t] for t in (11, 50)],  # children of a longer parent
        ids[:3] + [5, 6, 7],  # three tokens past a cached ancestor
        ids[:7] + [8, 9, 10],
        ids[:10],  # passes through ids[:7] + ...
        [ids[1], ids[0]],  # no cached ancestor
        [ids[2], ids[0]],
        ids[:3] + [11],  # a duplicate
    ]
    got = batched.next_token_logprobs(queries)
    want = seq.next_token_logprobs(queries)
    assert got.shape == (len(queries), tok.n_vocab)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    for q, row in zip(queries, got, strict=True):
        np.testing.assert_allclose(row, _full_forward(model, [50256, *q]), rtol=0, atol=1e-6)
    assert batched.n_calls < seq.n_calls
    # The states stored by the batch extend correctly (none was changed by being reused).
    again = [ids[:3] + [t, 13] for t in (11, 50)] + [ids[:7] + [8, 9, 10, 14], ids[:11]]
    got = batched.next_token_logprobs(again)
    for q, row in zip(again, got, strict=True):
        np.testing.assert_allclose(row, _full_forward(model, [50256, *q]), rtol=0, atol=1e-6)


def test_children_of_one_parent_cost_one_forward_pass(tiny64) -> None:
    from toknz.bytelevel import HFCausalLM

    tok, model = tiny64
    ids = tok.encode_ordinary(TEXT)
    parent = ids[:5]
    kids = [parent + [t] for t in (11, 50, 400, 1000, 7)]
    lm = HFCausalLM(model, bos_id=50256)
    lm.next_token_logprobs([parent])
    calls, evals = lm.n_calls, lm.n_evals
    out = lm.next_token_logprobs([*kids, kids[0], kids[3]])  # duplicates are evaluated once
    assert (lm.n_calls - calls, lm.n_evals - evals) == (1, len(kids))
    np.testing.assert_array_equal(out[len(kids)], out[0])
    np.testing.assert_array_equal(out[len(kids) + 1], out[3])
    lm.next_token_logprobs(kids)  # all known: no model run
    assert (lm.n_calls - calls, lm.n_evals - evals) == (1, len(kids))
    # Children of parents of different lengths: one padded pass, or one per length.
    for pad, passes in ((True, 1), (False, 2)):
        lm = HFCausalLM(model, bos_id=50256, pad=pad)
        lm.next_token_logprobs([ids[:4], ids[:9]])  # one run; ids[:4]'s state cut from it
        assert (lm.n_calls, lm.n_evals) == (1, 10)
        calls = lm.n_calls
        lm.next_token_logprobs([ids[:4] + [11], ids[:9] + [11], ids[:4] + [12]])
        assert lm.n_calls - calls == passes
    # max_batch splits a group; batch=False runs one pass per prefix.
    for options, passes in (({"max_batch": 2}, 3), ({"batch": False}, 5)):
        lm = HFCausalLM(model, bos_id=50256, **options)
        lm.next_token_logprobs([parent])
        calls, evals = lm.n_calls, lm.n_evals
        lm.next_token_logprobs(kids)
        assert (lm.n_calls - calls, lm.n_evals - evals) == (passes, len(kids))
    with pytest.raises(UsageError):
        HFCausalLM(model, max_batch=0)


def test_batched_lru_eviction(tiny64) -> None:
    from toknz.bytelevel import HFCausalLM

    tok, model = tiny64
    ids = tok.encode_ordinary(TEXT)
    parent = ids[:5]
    kids = [parent + [t] for t in (11, 50, 400, 1000)]
    lm = HFCausalLM(model, bos_id=50256, max_states=2)
    lm.next_token_logprobs([parent])
    lm.next_token_logprobs(kids)
    kept = _cached_nodes(lm)
    assert len(kept) == len(lm._with_state) == 2

    def node_of(prefix):
        node = lm._root
        for t in [50256, *prefix]:
            node = node.children[t]
        return node

    assert sum(node_of(kid).cache is not None for kid in kids) == 2  # the parent was dropped
    for kid in kids:
        cached = node_of(kid).cache is not None
        calls, evals = lm.n_calls, lm.n_evals
        q = [*kid, 13]
        row = lm.next_token_logprobs([q])[0]
        # From the child's own state: one position; its state (and the parent's) evicted:
        # the whole prefix again.
        assert (lm.n_calls - calls, lm.n_evals - evals) == (1, 1 if cached else len(q) + 1)
        np.testing.assert_allclose(row, _full_forward(model, [50256, *q]), rtol=0, atol=1e-6)
        assert len(_cached_nodes(lm)) <= 2


class _TupleCacheModel:
    """A model that takes and returns its KV cache as legacy ``((keys, values), ...)`` tuples."""

    def __init__(self, model, boxed: bool = False) -> None:
        self.inner = model
        self.boxed = boxed
        self.seen: list = []

    def eval(self):
        self.inner.eval()
        return self

    def parameters(self):
        return self.inner.parameters()

    def forward(self, input_ids, past_key_values=None, attention_mask=None, position_ids=None,
                use_cache=True):  # fmt: skip
        from types import SimpleNamespace

        from transformers import DynamicCache

        if past_key_values is not None:
            self.seen.append(past_key_values)
            if self.boxed:
                past_key_values = past_key_values.kv
            past_key_values = DynamicCache(ddp_cache_data=list(past_key_values))
        out = self.inner(
            input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
            position_ids=position_ids, use_cache=True,
        )  # fmt: skip
        kv = tuple((layer.keys, layer.values) for layer in out.past_key_values.layers)
        return SimpleNamespace(logits=out.logits, past_key_values=_Box(kv) if self.boxed else kv)

    __call__ = forward


class _Box:
    """A cache of a kind HFCausalLM cannot split by row."""

    def __init__(self, kv) -> None:
        self.kv = kv


@pytest.mark.parametrize("boxed", [False, True])
def test_legacy_tuple_caches(tiny64, boxed) -> None:
    from toknz.bytelevel import HFCausalLM

    tok, model = tiny64
    ids = tok.encode_ordinary(TEXT)
    wrapped = _TupleCacheModel(model, boxed=boxed)
    lm = HFCausalLM(wrapped, bos_id=50256)
    lm.next_token_logprobs([ids[:3], ids[:6]])
    calls = lm.n_calls
    queries = [ids[:3] + [11], ids[:3] + [12], ids[:6] + [11], ids[:6] + [5, 6]]
    got = lm.next_token_logprobs(queries)
    for q, row in zip(queries, got, strict=True):
        np.testing.assert_allclose(row, _full_forward(model, [50256, *q]), rtol=0, atol=1e-6)
    if boxed:  # not splittable: one pass per prefix
        assert lm.n_calls - calls == 4 and not lm._split_ok
        assert all(isinstance(p, _Box) for p in wrapped.seen)
    else:  # one pass for the three children (one padded), one for the two-token query
        assert lm.n_calls - calls == 2
        assert all(isinstance(n.cache, tuple) for n in _cached_nodes(lm))
        assert any(p[0][0].shape[0] == 3 for p in wrapped.seen)


@pytest.mark.parametrize("mode", ["canonical", "all"])
def test_byte_lm_batched_equals_sequential(tiny64, mode) -> None:
    from toknz.bytelevel import HFCausalLM

    tok, model = tiny64
    batched = HFCausalLM(model, bos_id=50256)
    seq = HFCausalLM(model, bos_id=50256, batch=False)
    prompts = [b"Hello wo", b"12345 a", b" it's"] if mode == "all" else [TEXT.encode()[:24]]
    for prompt in prompts:
        a, b = ByteLM(batched, tok, mode=mode), ByteLM(seq, tok, mode=mode)
        for n in range(len(prompt) + 1):
            np.testing.assert_allclose(
                a.next_byte_logprobs(prompt[:n]), b.next_byte_logprobs(prompt[:n]),
                rtol=0, atol=1e-9,
            )  # fmt: skip
    assert batched.n_evals <= seq.n_evals
    if mode == "all":  # frontiers of many nodes: far fewer passes
        assert batched.n_calls * 3 < seq.n_calls, (batched.n_calls, seq.n_calls)


def test_sliding_window_caches_batch_without_padding() -> None:
    torch, transformers = _require_torch()
    from toknz.bytelevel import HFCausalLM

    torch.manual_seed(1)
    config = transformers.MistralConfig(
        vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
        sliding_window=4, initializer_range=0.2,
    )  # fmt: skip
    model = transformers.MistralForCausalLM(config).double().eval()
    ids = list(range(3, 40))
    lm = HFCausalLM(model, bos_id=0)
    lm.next_token_logprobs([ids[:3], ids[:9]])
    assert lm.n_calls == 1  # ids[:3] answered by ids[:9]'s run, but a windowed state is not cut
    calls = lm.n_calls
    queries = [ids[:3] + [t] for t in (11, 50, 200)] + [ids[:9] + [11], ids[:9] + [12]]
    got = lm.next_token_logprobs(queries)
    assert lm.n_calls - calls == 2  # one pass per ancestor length (none, ids[:9]), no padding
    got2 = lm.next_token_logprobs([q + [17, 18] for q in queries])  # windows now full
    for q, row in zip(queries, got, strict=True):
        np.testing.assert_allclose(row, _full_forward(model, [0, *q]), rtol=0, atol=1e-6)
    for q, row in zip(queries, got2, strict=True):
        want = _full_forward(model, [0, *q, 17, 18])
        np.testing.assert_allclose(row, want, rtol=0, atol=1e-6)


def test_kept_rows_are_bounded_and_dropped_rows_recomputed(tiny64) -> None:
    """``max_row_bytes`` bounds the log-probability rows kept; a dropped row is run again, equal."""
    from toknz.bytelevel import HFCausalLM

    tok, model = tiny64
    ids = tok.encode_ordinary(TEXT)
    row_bytes = 8 * model.config.vocab_size
    lm = HFCausalLM(model, bos_id=50256, max_row_bytes=10 * row_bytes, max_batch=2)
    first = lm.next_token_logprobs([ids[:3]])[0]
    for n in range(4, len(ids) + 1):
        lm.next_token_logprobs([ids[:n]])
    stack, kept = [lm._root], 0
    while stack:
        node = stack.pop()
        kept += node.lp is not None
        stack.extend(node.children.values())
    assert kept == len(lm._with_row) <= 10
    calls = lm.n_calls
    again = lm.next_token_logprobs([ids[:3]])[0]  # dropped long ago: runs the model again
    assert lm.n_calls == calls + 1
    np.testing.assert_allclose(again, first, rtol=0, atol=1e-6)
