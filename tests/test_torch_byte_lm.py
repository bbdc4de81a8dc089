"""The byte-level LM: batching, targets, causality (with and without the gate), save/load."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from toknz.errors import InputError, UsageError  # noqa: E402
from toknz.torch.batching import SPECIAL_BYTES, ByteBatcher, WordBatcher  # noqa: E402
from toknz.torch.byte_lm import (  # noqa: E402
    END_OF_TEXT,
    START,
    ByteLevelLM,
    ByteLMConfig,
    byte_targets,
)
from toknz.torch.layers import TransformerConfig  # noqa: E402

TEXTS = ["Hello world, again", "byte by byte", "ünïcödé wörds and 漢字 too", "x"]


def tiny(gate: bool = False, **options: object) -> ByteLevelLM:
    torch.manual_seed(0)
    if gate:
        options.setdefault("gate_layer", 1)
    config = ByteLMConfig(
        transformer=TransformerConfig(dim=32, depth=2, heads=2),
        local=TransformerConfig(dim=16, depth=1, heads=2),
        **options,  # type: ignore[arg-type]
    )
    model = ByteLevelLM(config)
    if model.gate is not None:  # delete about half the positions, so hard deletion happens
        with torch.no_grad():
            model.gate.proj.bias.zero_()
    return model


# --- batching -----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=5), st.sampled_from([1, 8]))
def test_byte_batcher_gives_back_every_byte(texts: list[str], multiple: int) -> None:
    batch = ByteBatcher(pad_to_multiple=multiple)(texts)
    assert batch.decode() == texts
    assert batch.n_bytes == sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    assert batch.n_bytes == WordBatcher()(texts).n_bytes
    assert batch.bytes.shape[1] % multiple == 0 and bool(batch.ended.all())
    assert not batch.bytes[~batch.mask].any()
    assert batch.mask.sum(1).tolist() == batch.lengths.tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a", "é", "<|endoftext|>", "<|sep|>", " "]), max_size=12))
def test_special_tokens_are_one_byte_like_the_word_batcher(parts: list[str]) -> None:
    text = "".join(parts)
    specials = ["<|endoftext|>", "<|sep|>"]
    batch = ByteBatcher(special_tokens=specials)([text])
    words = WordBatcher(special_tokens=specials)([text])
    assert batch.decode() == [text]
    assert batch.n_bytes == words.n_bytes == len(text.encode())
    assert batch.row_bytes(0) == b"".join(words.word_bytes(0))


def test_max_bytes_cuts_rows_and_counts_the_kept_bytes() -> None:
    batcher = ByteBatcher(special_tokens=["<|endoftext|>"], max_bytes=3)
    batch = batcher(["ab<|endoftext|>cd", "xy"])
    assert batch.lengths.tolist() == [3, 2]
    assert batch.ended.tolist() == [False, True]
    assert batch.n_bytes == 2 + len("<|endoftext|>") + 2
    _, targets, predicted = byte_targets(batch)
    assert predicted.sum(1).tolist() == [3, 3]  # a cut row predicts no end of text
    assert targets[1, 2] == END_OF_TEXT


def test_byte_batcher_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="reserved"):
        ByteBatcher(special_tokens=["<s>"])([bytes([SPECIAL_BYTES[0]])])
    with pytest.raises(UsageError, match="list of texts"):
        ByteBatcher()("one text")
    with pytest.raises(UsageError):
        ByteBatcher(pad_to_multiple=0)
    with pytest.raises(UsageError):
        ByteBatcher(max_bytes=0)
    with pytest.raises(UsageError, match="distinct"):
        ByteBatcher(special_tokens=["a", "a"])


def test_byte_batcher_is_a_dataloader_collate() -> None:
    loader = torch.utils.data.DataLoader(TEXTS, batch_size=2, collate_fn=ByteBatcher())
    assert [t for batch in loader for t in batch.decode()] == TEXTS


# --- targets and loss -----------------------------------------------------------------------


def test_every_byte_and_one_end_of_text_are_predicted() -> None:
    batch = ByteBatcher()(["ab", "", "é"])
    inputs, targets, predicted = byte_targets(batch)
    assert inputs[:, 0].tolist() == [START] * 3
    assert inputs[0, 1:3].tolist() == [97, 98]
    assert targets[0, :3].tolist() == [97, 98, END_OF_TEXT]
    assert targets[1, 0] == END_OF_TEXT
    assert targets[2, :3].tolist() == [0xC3, 0xA9, END_OF_TEXT]
    assert predicted.sum(1).tolist() == [3, 1, 3]


@pytest.mark.parametrize("gate", [False, True])
def test_loss_is_the_mean_of_the_position_nll(gate: bool) -> None:
    model = tiny(gate).eval()
    batch = model.batcher()(TEXTS)
    out = model(batch)
    nll = model.position_nll(batch).detach()
    assert out.n_bytes == batch.n_bytes == WordBatcher()(TEXTS).n_bytes
    assert out.aux is not None and out.aux["symbols"] == batch.n_bytes + len(TEXTS)
    assert float(out.nll_sum) == pytest.approx(float(nll.sum()), rel=1e-5)
    ce = float(nll.sum()) / out.aux["symbols"]
    assert float(out.loss) == pytest.approx(ce + out.aux.get("gate_loss", 0.0), rel=1e-5)
    assert 5 < out.bits_per_byte() < 12


@pytest.mark.parametrize("gate", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_padding_does_not_change_a_texts_loss(gate: bool, training: bool) -> None:
    model = tiny(gate).train(training)
    together = model.position_nll(model.batcher(pad_to_multiple=8)(TEXTS))
    for b, text in enumerate(TEXTS):
        alone = model.position_nll(model.batcher()([text]))
        n = alone.shape[1]
        assert torch.allclose(together[b, :n], alone[0], atol=1e-4)


# --- causality ------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_the_loss_at_a_byte_has_no_gradient_from_later_bytes(gate: bool, training: bool) -> None:
    """The nats at position i (predicting byte i from the start and bytes < i) do not depend
    on the embeddings of any later position: soft deletion (training) or hard (eval)."""
    model = tiny(gate).train(training)
    batch = model.batcher()(["causal bytes, all"])
    inputs, targets, _ = byte_targets(batch)
    x = model.embed(inputs).detach().requires_grad_(True)
    mask = torch.ones_like(inputs, dtype=torch.bool)
    logits, g = model.logits_from_embeddings(x, mask)
    if gate:
        assert g is not None and model.gate is not None
        deleted = int((g <= model.gate.threshold).sum())
        assert 0 < deleted < g.numel()  # some positions really are deleted
    nll = torch.nn.functional.cross_entropy(logits[0], targets[0], reduction="none")
    t = inputs.shape[1]
    for i in range(t):
        (grad,) = torch.autograd.grad(nll[i], x, retain_graph=True)
        assert grad[0, i + 1 :].abs().max() == 0 if i + 1 < t else True, i
        assert grad[0, : i + 1].abs().sum() > 0


@pytest.mark.parametrize("gate", [False, True])
def test_changing_later_bytes_leaves_earlier_losses_unchanged(gate: bool) -> None:
    model = tiny(gate).eval()
    a = model.position_nll(model.batcher()(["the same start, then this"]))
    b = model.position_nll(model.batcher()(["the same start, xyzzy etc"]))
    n = len("the same start, ")  # the positions predicting those bytes
    assert torch.allclose(a[0, :n], b[0, :n], atol=1e-5)


# --- training, saving, generation -----------------------------------------------------------


@pytest.mark.parametrize("gate", [False, True])
def test_training_lowers_the_loss(gate: bool) -> None:
    model = tiny(gate, target_deletion=0.3 if gate else None).train()
    batch = model.batcher()(["abcabcabcabc", "abcabc"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = float(model(batch).nll_sum)
    for _ in range(15):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert float(model.eval()(batch).nll_sum) < 0.7 * first


@pytest.mark.parametrize("gate", [False, True])
def test_save_and_load_give_identical_outputs(gate: bool, tmp_path) -> None:
    model = tiny(gate, special_tokens=("<|endoftext|>",), target_deletion=0.9 if gate else None)
    batch = model.batcher()(TEXTS + ["a<|endoftext|>b"])
    model.train()(batch)  # moves the controller, whose state must travel too
    model.save_pretrained(tmp_path)
    loaded = ByteLevelLM.from_pretrained(tmp_path)
    assert loaded.config == model.config
    assert loaded.num_parameters() == model.num_parameters()
    if gate:
        assert loaded.controller is not None and model.controller is not None
        assert float(loaded.controller.weight) == float(model.controller.weight) > 0
    for training in (False, True):
        want = model.train(training).position_nll(batch)
        got = loaded.train(training).position_nll(batch)
        assert torch.equal(want, got)


@pytest.mark.parametrize("gate", [False, True])
def test_generate_continues_the_prompt_and_respects_the_budget(gate: bool) -> None:
    model = tiny(gate, special_tokens=("<|endoftext|>",)).eval()
    out = model.generate("Hello", max_new_bytes=12, generator=torch.Generator().manual_seed(1))
    assert out.startswith("Hello")
    assert len(model.generate_bytes("Hello", 12, top_k=5)) <= 12
    assert model.generate("Hi", 0) == "Hi"
    greedy = model.generate("Hello", 6, temperature=0)
    assert greedy == model.generate("Hello", 6, temperature=0)
    with pytest.raises(UsageError):
        model.generate("x", -1)


def test_greedy_generation_follows_what_it_learned() -> None:
    model = tiny().train()
    batch = model.batcher()(["abcd"] * 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(40):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    assert model.generate("", 10, temperature=0) == "abcd"  # then END_OF_TEXT


def test_config_is_checked() -> None:
    small = TransformerConfig(dim=16, depth=2, heads=2)
    with pytest.raises(UsageError, match="gate_layer"):
        ByteLMConfig(transformer=small, gate_layer=2)
    with pytest.raises(UsageError, match="gate_layer"):
        ByteLMConfig(transformer=small, gate_layer=0)
    with pytest.raises(UsageError, match="needs a delete gate"):
        ByteLMConfig(transformer=small, target_deletion=0.5)
    with pytest.raises(UsageError, match="target_deletion"):
        ByteLMConfig(transformer=small, gate_layer=1, target_deletion=1.0)
    config = ByteLMConfig(transformer=TransformerConfig(dim=16, heads=2, causal=False))
    assert config.transformer.causal and config.local.cross_attention
    with pytest.raises(UsageError, match="gate"):
        tiny().encode(torch.zeros(1, 2, 32), torch.ones(1, 2, dtype=torch.bool), True)


# --- devices, precision, compile ------------------------------------------------------------


@pytest.mark.parametrize("gate", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_bfloat16_autocast_on_cpu_runs(gate: bool, training: bool) -> None:
    model = tiny(gate, target_deletion=0.5 if gate else None).train(training)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(model.batcher()(TEXTS))
    if training:
        out.loss.backward()
    assert math.isfinite(out.bits_per_byte()) and math.isfinite(float(out.loss))


def test_training_forward_compiles_as_one_graph() -> None:
    """Soft deletion has no value-dependent shapes: the gated training path is one graph."""
    model = tiny(True).train()
    batch = model.batcher(pad_to_multiple=8)(TEXTS)
    inputs, _, _ = byte_targets(batch)
    mask = torch.arange(inputs.shape[1]) <= batch.lengths.unsqueeze(-1)
    x = model.embed(inputs).detach()
    compiled = torch.compile(
        lambda e, m: model.logits_from_embeddings(e, m, hard_delete=False)[0],
        backend="aot_eager",
        fullgraph=True,
    )
    want, _ = model.logits_from_embeddings(x, mask, hard_delete=False)
    assert torch.allclose(compiled(x, mask), want, atol=1e-5)


def test_runs_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for gate in (False, True):
        model = tiny(gate, target_deletion=0.5 if gate else None).eval().cuda()
        batch = model.batcher()(TEXTS)
        got = model.position_nll(batch.to("cuda")).cpu()
        want = tiny(gate).eval().position_nll(batch)
        assert torch.allclose(got, want, atol=1e-4)
        model.train()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(batch.to("cuda"))
        out.loss.backward()
        assert math.isfinite(out.bits_per_byte())
        model.eval()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            assert math.isfinite(model(batch.to("cuda")).bits_per_byte())
        assert model.generate("Hello", max_new_bytes=5, temperature=0).startswith("Hello")
