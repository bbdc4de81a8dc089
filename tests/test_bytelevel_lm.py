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
