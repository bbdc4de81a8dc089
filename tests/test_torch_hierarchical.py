"""The hierarchical byte/word model: batching, causality, save/load, backbones, devices."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from toknz.errors import InputError, UsageError  # noqa: E402
from toknz.torch.batching import SPECIAL_BYTES, WordBatcher  # noqa: E402
from toknz.torch.hierarchical import (  # noqa: E402
    END_OF_TEXT,
    END_OF_WORD,
    HierarchicalConfig,
    HierarchicalLM,
    decoder_targets,
)
from toknz.torch.layers import TransformerConfig  # noqa: E402
from toknz.words import split_words  # noqa: E402

TEXTS = ["Hello world, again", "byte by byte", "ünïcödé wörds and 漢字 too", "x"]


def tiny(**options: object) -> HierarchicalLM:
    torch.manual_seed(0)
    small = TransformerConfig(dim=32, depth=1, heads=2)
    return HierarchicalLM(
        HierarchicalConfig(encoder=small, backbone=small, decoder=small, **options)
    ).eval()


# --- batching -----------------------------------------------------------------------------

texts_strategy = st.lists(st.text(max_size=60), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(texts_strategy, st.integers(4, 12), st.sampled_from([1, 4]))
def test_batcher_gives_back_every_byte(texts: list[str], cap: int, multiple: int) -> None:
    batch = WordBatcher(max_word_bytes=cap, pad_to_multiple=multiple)(texts)
    assert batch.decode() == texts
    assert batch.n_bytes == sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    assert int(batch.lengths.max()) <= cap
    assert batch.bytes.shape[1] % multiple == 0 and batch.bytes.shape[2] % multiple == 0
    for b, text in enumerate(texts):
        words = [w.encode("utf-8", "surrogatepass") for w in split_words(text, max_word_bytes=cap)]
        assert batch.word_bytes(b) == words
        data = text.encode("utf-8", "surrogatepass")
        for w, word in enumerate(words):
            offset = int(batch.offsets[b, w])
            assert data[offset : offset + len(word)] == word
    # padding is zero and masked
    assert not batch.bytes[~batch.byte_mask].any()
    assert torch.equal(batch.byte_mask.any(-1), batch.word_mask)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a b", " ", "<|eot|>", "<|x|>", "é", "<|", "|>"]), max_size=12))
def test_special_tokens_are_one_byte_words(parts: list[str]) -> None:
    text = "".join(parts)
    batcher = WordBatcher(special_tokens=["<|eot|>", "<|x|>"])
    batch = batcher([text])
    assert batch.decode() == [text]
    assert batch.n_bytes == len(text.encode())
    words = batch.word_bytes(0)
    n_special = text.count("<|eot|>") + text.count("<|x|>")
    assert sum(w in (bytes([SPECIAL_BYTES[0]]), bytes([SPECIAL_BYTES[1]])) for w in words) == (
        n_special
    )


def test_batcher_rejects_reserved_bytes_and_bad_options() -> None:
    batcher = WordBatcher(special_tokens=["<s>"])
    with pytest.raises(InputError, match=r"text 1, byte offset 2: byte 0xF5"):
        batcher([b"ok", b"ab\xf5"])
    assert batcher([b"ab\xf6"]).decode_bytes() == [b"ab\xf6"]  # not reserved by this batcher
    with pytest.raises(UsageError):
        batcher("a single text")
    with pytest.raises(UsageError):
        WordBatcher(special_tokens=["a", "a"])
    with pytest.raises(UsageError):
        WordBatcher(max_word_bytes=2)
    with pytest.raises(UsageError):
        WordBatcher(rule="nope")


def test_max_words_truncates_and_counts_the_kept_bytes() -> None:
    batch = WordBatcher(max_words=2, special_tokens=["<e>"])(["one two three", "<e>ab cd"])
    assert batch.decode() == ["one two", "<e>ab"]
    assert batch.n_bytes == len("one two") + len("<e>ab")


def test_batcher_is_a_dataloader_collate() -> None:
    loader = torch.utils.data.DataLoader(TEXTS, batch_size=2, collate_fn=WordBatcher())
    assert [t for batch in loader for t in batch.decode()] == TEXTS


# --- the model ----------------------------------------------------------------------------


def test_decoder_targets_end_each_word_and_the_text() -> None:
    batch = WordBatcher()(["ab cd", "x"])
    targets, predicted = decoder_targets(batch)
    assert targets[0, 0, :3].tolist() == [ord("a"), ord("b"), END_OF_WORD]
    assert targets[0, 1, :4].tolist() == [ord(" "), ord("c"), ord("d"), END_OF_TEXT]
    assert targets[1, 0, :2].tolist() == [ord("x"), END_OF_TEXT]
    assert int(predicted.sum()) == batch.n_bytes + int(batch.word_counts.sum())
    assert int(predicted.sum()) == batch.n_symbols
    special = WordBatcher(special_tokens=["<|eot|>"], max_words=3)(["a<|eot|>b cd ef", "x y"])
    assert int(decoder_targets(special)[1].sum()) == special.n_symbols == 11


def test_loss_is_the_mean_of_the_position_nll() -> None:
    model = tiny()
    batch = model.batcher()(TEXTS)
    out = model(batch)
    nll = model.position_nll(batch)
    assert out.n_bytes == batch.n_bytes
    assert torch.allclose(out.nll_sum, nll.sum(), rtol=1e-5)
    assert out.aux["symbols"] == batch.n_bytes + int(batch.word_counts.sum())
    assert math.isclose(
        out.bits_per_byte(), float(nll.sum()) / batch.n_bytes / math.log(2), rel_tol=1e-6
    )


@pytest.mark.parametrize("pooling", ["token", "mean"])
def test_loss_at_a_word_ignores_later_words(pooling: str) -> None:
    """Gradient test: the nll of words 0..i-1 has no gradient on the bytes of words >= i."""
    model = tiny(pooling=pooling, word_buckets=0)  # one embedding call to hook
    batch = model.batcher()(["the cat sat on the mat"])
    # Feed the encoder embeddings we can differentiate through.
    emb = model.encoder.embed

    captured: dict[str, torch.Tensor] = {}

    def hook(_module: object, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        output.retain_grad()
        captured["emb"] = output
        return output

    handle = emb.register_forward_hook(hook)
    try:
        nll = model.position_nll(batch)
        i = 3
        nll[0, :i].sum().backward()
    finally:
        handle.remove()
    grad = captured["emb"].grad.reshape(*batch.bytes.shape, -1)[0]  # [W, L, dim]
    per_word = grad.abs().sum(dim=(1, 2))
    assert (per_word[: i - 1] > 0).all()  # earlier words matter
    assert (per_word[i - 1 :] == 0).all()  # word i-1 itself and later words do not


def test_perturbing_later_words_leaves_earlier_losses_unchanged() -> None:
    model = tiny()
    batcher = model.batcher()
    a = model.position_nll(batcher(["the cat sat on the mat"]))
    b = model.position_nll(batcher(["the cat sat in a hat!!"]))
    # words: "the", " cat", " sat", then they differ
    assert torch.allclose(a[0, :3, :5], b[0, :3, :5], atol=1e-6)
    assert not torch.allclose(a[0, 3].sum(), b[0, 3].sum())


def test_decoder_sees_no_later_byte_of_its_word() -> None:
    model = tiny()
    batcher = model.batcher()
    a = model.position_nll(batcher(["one abcdefg"]))
    b = model.position_nll(batcher(["one abcXYZg"]))
    # word 1 is " abcdefg": positions 0..3 predict " abc", the same in both
    assert torch.allclose(a[0, 1, :4], b[0, 1, :4], atol=1e-6)
    assert not torch.allclose(a[0, 1, 4], b[0, 1, 4])


def test_padding_does_not_change_a_texts_loss() -> None:
    model = tiny()
    alone = model.position_nll(model.batcher()(["short text"]))
    padded = model.position_nll(model.batcher(pad_to_multiple=8)(["short text", TEXTS[2]]))
    w, length = alone.shape[1:]
    assert torch.allclose(alone[0], padded[0, :w, :length], atol=1e-5)
    assert not padded[0, w:].any() and not padded[0, :, length:].any()


def test_training_lowers_the_loss() -> None:
    model = tiny().train()
    batch = model.batcher()(["abab abab abab abab", "cdcd cdcd cdcd"] * 2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.bits_per_byte()
    assert out.bits_per_byte() < 0.5 * first


def test_save_and_load_give_identical_outputs(tmp_path: object) -> None:
    model = tiny(pooling="mean", max_word_bytes=12, special_tokens=("<|eot|>",))
    batch = model.batcher()(["a<|eot|>b", *TEXTS])
    model.save_pretrained(tmp_path)
    loaded = HierarchicalLM.from_pretrained(tmp_path).eval()
    assert loaded.config == model.config
    assert torch.equal(model.logits(batch), loaded.logits(batch))


def test_generate_continues_the_prompt_and_respects_the_budget() -> None:
    model = tiny()
    out = model.generate_bytes("Hello wor", max_new_bytes=20, temperature=0)
    assert len(out) <= 20
    assert model.generate_bytes("Hello wor", max_new_bytes=20, temperature=0) == out
    gen = torch.Generator().manual_seed(1)
    text = model.generate("Hi", max_new_bytes=10, top_k=5, generator=gen)
    assert text.startswith("Hi")
    with pytest.raises(UsageError):
        model.generate_bytes("x", max_new_bytes=-1)


def test_greedy_generation_follows_what_it_learned() -> None:
    model = tiny().train()
    text = "la la la la la la la la"
    batch = model.batcher()([text] * 4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert model.generate("la la la", max_new_bytes=9, temperature=0).startswith("la la la la la")


def test_config_is_checked() -> None:
    with pytest.raises(UsageError, match="pooling"):
        HierarchicalConfig(pooling="max")
    with pytest.raises(UsageError, match="word_buckets"):
        HierarchicalConfig(word_buckets=-1)
    with pytest.raises(UsageError, match="causal"):
        HierarchicalConfig(backbone=TransformerConfig(dim=32, depth=1, heads=2, causal=False))


# --- a transformers backbone ---------------------------------------------------------------


def tiny_llama() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config)


def test_a_transformers_causal_lm_as_the_backbone(tmp_path: object) -> None:
    small = TransformerConfig(dim=16, depth=1, heads=2)
    model = HierarchicalLM.with_backbone(tiny_llama(), encoder=small, decoder=small, layers=2)
    model.eval()
    assert len(model.backbone.hf.layers) == 2
    assert model.backbone.hf.get_input_embeddings().weight.shape == (1, 32)
    batcher = model.batcher()
    a = model.position_nll(batcher(["the cat sat on the mat"]))
    b = model.position_nll(batcher(["the cat sat in a hat!!"]))
    assert torch.allclose(a[0, :3, :5], b[0, :3, :5], atol=1e-5)  # the backbone is causal
    model.save_pretrained(tmp_path)
    loaded = HierarchicalLM.from_pretrained(tmp_path).eval()
    batch = batcher(TEXTS)
    assert torch.equal(model.logits(batch), loaded.logits(batch))
    with pytest.raises(UsageError, match="layers"):
        HierarchicalLM.with_backbone(tiny_llama(), layers=9)
    with pytest.raises(UsageError, match="not a folder"):
        HierarchicalLM.with_backbone(str(tmp_path / "missing"))


# --- devices --------------------------------------------------------------------------------


def test_bfloat16_autocast_on_cpu_runs() -> None:
    model = tiny()
    batch = model.batcher()(TEXTS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    assert math.isfinite(out.bits_per_byte())


@pytest.mark.parametrize("pooling", ["token", "mean"])
def test_length_buckets_give_the_same_outputs_and_gradients(pooling: str) -> None:
    """Running words in length groups (the default) equals running the padded batch."""
    bucketed = tiny(pooling=pooling, word_buckets=3)
    padded = tiny(pooling=pooling, word_buckets=0)
    batch = bucketed.batcher(pad_to_multiple=4)(TEXTS + ["a bb ccc dddd eeeee ffffff"])
    a, b = bucketed.position_nll(batch), padded.position_nll(batch)
    assert torch.allclose(a, b, atol=1e-5)
    a.sum().backward()
    b.sum().backward()
    for (name, p), q in zip(bucketed.named_parameters(), padded.parameters(), strict=True):
        if p.grad is None or q.grad is None:  # the word token, unused by mean pooling
            assert p.grad is None and q.grad is None and pooling == "mean", name
            continue
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


def test_length_buckets_cover_every_real_word_once() -> None:
    from toknz.torch.hierarchical import length_buckets

    lengths = torch.tensor([0, 5, 1, 0, 3, 3, 7, 2])
    groups = length_buckets(lengths, 3)
    seen = torch.cat([i for i, _ in groups]).sort().values.tolist()
    assert seen == [1, 2, 4, 5, 6, 7]
    assert all(w == int(lengths[i].max()) for i, w in groups)
    assert length_buckets(torch.zeros(4, dtype=torch.long), 3) == []


def test_the_loss_compiles_as_one_graph() -> None:
    """``torch.compile`` captures the training loss without graph breaks (shapes it accepts)."""
    model = tiny(word_buckets=0)
    batch = model.batcher(pad_to_multiple=8)(TEXTS)
    compiled = torch.compile(lambda b: model(b).loss, backend="aot_eager", fullgraph=True)
    assert torch.allclose(compiled(batch), model(batch).loss, atol=1e-5)


def test_runs_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = tiny().cuda()
    batch = model.batcher()(TEXTS)
    cpu = model.position_nll(batch.to("cuda")).cpu()
    assert torch.allclose(cpu, tiny().position_nll(batch), atol=1e-4)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(batch.to("cuda"))
    out.loss.backward()
    assert math.isfinite(out.bits_per_byte())
    assert model.generate("Hello", max_new_bytes=5, temperature=0).startswith("Hello")
