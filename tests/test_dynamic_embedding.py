"""Embeddings for dynamically merged tokens (toknz.torch.dynamic_embedding, dynamic_training)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import toknz  # noqa: E402
from toknz.dynamic import merge_batch, unmerge  # noqa: E402
from toknz.errors import UsageError  # noqa: E402
from toknz.torch.dynamic_embedding import (  # noqa: E402
    DynamicEmbedding,
    HypernetConfig,
    MergedTokenHypernet,
    dynamic_logits,
    hidden_at,
    hidden_states,
    lm_inputs,
    run_dynamic_lm,
)
from toknz.torch.dynamic_training import (  # noqa: E402
    HypernetTrainOptions,
    aligned_positions,
    distillation_loss,
    merge_texts,
    train_hypernet,
)
from toknz.torch.layers import TransformerConfig  # noqa: E402
from toknz.train import train as train_tokenizer  # noqa: E402

V, D = 40, 16
TEXTS = [
    "Die Einstellungen der Fußnoten werden im Dialog festgelegt.",
    "Wählen Sie Extras - Fußnoten und Endnoten, dann die Einstellungen.",
    "Die Fußnoten und die Endnoten stehen am Ende der Seite.",
    "Legt die Anzeigeeinstellungen für Fußnoten und Endnoten fest.",
] * 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_net(output_head: bool = False) -> MergedTokenHypernet:
    trunk = TransformerConfig(dim=16, depth=1, heads=2)
    return MergedTokenHypernet(
        HypernetConfig(embed_dim=D, transformer=trunk, embed_scale=1.0, output_head=output_head)
    )


def perturbed(net: MergedTokenHypernet) -> MergedTokenHypernet:
    """Nonzero output projections, so the hypernetwork differs from the mean."""
    with torch.no_grad():
        net.out.weight.normal_(0, 0.1)
        if net.out_head is not None:
            net.out_head.weight.normal_(0, 0.1)
    return net


def table() -> torch.nn.Embedding:
    torch.manual_seed(0)
    return torch.nn.Embedding(V, D)


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> toknz.Tokenizer:
    folder = tmp_path_factory.mktemp("tok")
    path = folder / "text.txt"
    path.write_text("\n".join(TEXTS * 3), encoding="utf-8")
    return train_tokenizer([str(path)], vocab_size=270)


def tiny_llama(n_vocab: int) -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=n_vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    return transformers.LlamaForCausalLM(config).eval()


# --- the input side -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["mean", "hypernet"])
def test_unmerged_batch_equals_wrapped_embedding(mode: str) -> None:
    emb_table = table()
    emb = DynamicEmbedding(emb_table, mode=mode)
    ids = torch.randint(0, V, (3, 7))
    assert torch.equal(emb(ids, {}), emb_table(ids))
    batch = merge_batch([[1, 2, 3], [4, 5]], budget=0)
    x = lm_inputs(batch).input_ids
    assert torch.equal(emb(x, batch), emb_table(x))


def test_base_positions_are_untouched_and_new_ones_filled() -> None:
    emb_table = table()
    emb = DynamicEmbedding(emb_table, mode="hypernet", hypernet=perturbed(small_net()))
    batch = merge_batch([[1, 2, 3, 1, 2, 9], [1, 2, 1, 2]], first_new_id=V)
    x = lm_inputs(batch).input_ids
    out = emb(x, batch)
    base = x < V
    assert torch.equal(out[base], emb_table(x.clamp(max=V - 1))[base])
    assert not torch.allclose(out[~base], emb_table.weight[[1, 2]].mean(0).expand(4, D))


def test_mean_mode_equals_a_slow_python_mean() -> None:
    emb_table = table()
    emb = DynamicEmbedding(emb_table, mode="mean")
    defs = {V: (1, 2), V + 1: (3, 4, 5, 6), V + 2: (7, 7)}
    ids = torch.tensor([[V, 0, V + 1], [V + 2, V, 9]])
    out = emb(ids, defs)
    w = emb_table.weight.tolist()
    for b in range(2):
        for t in range(3):
            i = int(ids[b, t])
            parts = defs.get(i, (i,))
            slow = [sum(w[p][k] for p in parts) / len(parts) for k in range(D)]
            assert torch.allclose(out[b, t], torch.tensor(slow), atol=1e-6)


def test_untrained_hypernet_gives_the_mean() -> None:
    emb_table = table()
    mean = DynamicEmbedding(emb_table, mode="mean")
    net = DynamicEmbedding(emb_table, mode="hypernet", hypernet=small_net())
    ids = torch.tensor([[V, 3, V + 1]])
    defs = {V: (1, 2, 3), V + 1: (5, 6)}
    assert torch.allclose(net(ids, defs), mean(ids, defs), atol=1e-6)


def test_gradients_reach_the_hypernet_only() -> None:
    emb_table = table()
    emb = DynamicEmbedding(emb_table, mode="hypernet", hypernet=perturbed(small_net()))
    assert not emb_table.weight.requires_grad
    ids = torch.tensor([[V, 3, V + 1, 4]])
    emb(ids, {V: (1, 2), V + 1: (5, 6, 7)}).pow(2).sum().backward()
    assert emb_table.weight.grad is None
    trainable = emb.trainable_parameters()
    assert {id(p) for p in trainable} == {id(p) for p in emb.hypernet.parameters()}
    assert all(p.grad is not None for p in trainable)
    assert all(float(p.grad.abs().sum()) > 0 for p in trainable)
    # through a model: its weights get nothing either
    model = tiny_llama(V)
    model.requires_grad_(False)
    dyn = DynamicEmbedding(
        model.get_input_embeddings(),
        mode="hypernet",
        hypernet=perturbed(
            MergedTokenHypernet(
                HypernetConfig(embed_dim=32, transformer=TransformerConfig(dim=16, heads=2))
            )
        ),
    )
    batch = merge_batch([[1, 2, 3, 1, 2, 9]], first_new_id=V)
    out = run_dynamic_lm(model, dyn, lm_inputs(batch), batch)
    out.logits.sum().backward()
    assert all(p.grad is None for p in model.parameters())
    assert dyn.hypernet is not None and dyn.hypernet.out.weight.grad is not None


def test_errors() -> None:
    emb = DynamicEmbedding(table())
    with pytest.raises(UsageError, match="no definition"):
        emb(torch.tensor([[V + 3]]), {V: (1, 2)})
    with pytest.raises(UsageError, match="not a base id"):
        emb(torch.tensor([[V]]), {V: (1, V + 5)})
    with pytest.raises(UsageError, match="mode"):
        DynamicEmbedding(table(), mode="sum")
    with pytest.raises(UsageError, match="size"):
        DynamicEmbedding(torch.nn.Embedding(V, 8), mode="hypernet", hypernet=small_net())


# --- the cache ------------------------------------------------------------------------------


def test_cache_hits_misses_and_lru_eviction() -> None:
    emb = DynamicEmbedding(table(), mode="hypernet", hypernet=perturbed(small_net()), cache_size=2)
    emb.eval()
    a, b, c = (1, 2), (3, 4), (5, 6, 7)
    with torch.no_grad():
        first = emb.vectors([a, b])
        assert emb.cache_info()[:4] == (0, 2, 0, 2)
        again = emb.vectors([a])  # a is now the most recent
        assert emb.cache_info().hits == 1 and torch.equal(again[0], first[0])
        emb.vectors([c])  # evicts b, the least recently used
        info = emb.cache_info()
        assert (info.evictions, info.size, info.capacity) == (1, 2, 2)
        emb.vectors([a])
        assert emb.cache_info().hits == 2
        emb.vectors([b])
        assert emb.cache_info().misses == 4
    # with a gradient recorded the cache is bypassed, and the values agree
    fresh = emb.vectors([a, b])
    assert fresh.requires_grad and emb.cache_info().misses == 4
    assert torch.allclose(fresh.detach(), first, atol=1e-6)
    emb.train()
    assert emb.cache_info().size == 0


def test_forward_uses_the_cache_under_no_grad() -> None:
    emb = DynamicEmbedding(table(), mode="mean", cache_size=8)
    ids = torch.tensor([[V, 3, V + 1, V]])
    defs = {V: (1, 2), V + 1: (5, 6)}
    with torch.no_grad():
        x = emb(ids, defs)
        y = emb(ids, defs)
    assert torch.equal(x, y)
    assert emb.cache_info()[:2] == (2, 2)


# --- the output side ------------------------------------------------------------------------


def test_dynamic_logits_shape_and_base_logits() -> None:
    head = torch.nn.Linear(D, V, bias=False)
    hidden = torch.randn(2, 5, D)
    batch = merge_batch([[1, 2, 3, 1, 2], [3, 4, 3, 4]], first_new_id=V)
    logits, new_ids = dynamic_logits(hidden, head, batch)
    assert logits.shape == (2, 5, V + batch.n_new)
    assert new_ids == sorted(batch.definitions)
    assert torch.equal(logits[..., :V], hidden @ head.weight.T)
    for k, i in enumerate(new_ids):
        vec = head.weight[list(batch.definitions[i])].mean(0)
        assert torch.allclose(logits[..., V + k], hidden @ vec, atol=1e-5)
    # the hypernetwork's output head: at initialisation also the mean
    net = small_net(output_head=True)
    same, _ = dynamic_logits(hidden, head.weight, batch.definitions, hypernet=net)
    assert torch.allclose(same, logits, atol=1e-5)
    other, _ = dynamic_logits(hidden, head.weight, batch.definitions, hypernet=perturbed(net))
    assert torch.equal(other[..., :V], logits[..., :V])
    assert not torch.allclose(other[..., V:], logits[..., V:])
    with pytest.raises(UsageError, match="output head"):
        dynamic_logits(hidden, head, batch, hypernet=small_net())


# --- transformers, saving, training ---------------------------------------------------------


def test_lm_inputs_and_unmerged_run_equal_the_model() -> None:
    model = tiny_llama(V)
    emb = DynamicEmbedding(model.get_input_embeddings(), mode="mean")
    rows = [[5, 6, 7, 8], [9, 10]]
    x = lm_inputs(rows, prefix=[1])
    assert x.input_ids.tolist() == [[1, 5, 6, 7, 8], [1, 9, 10, 0, 0]]
    assert x.attention_mask.tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    with torch.no_grad():
        ours = run_dynamic_lm(model, emb, x, {}).logits
        ref = model(
            input_ids=x.input_ids, attention_mask=x.attention_mask, position_ids=x.position_ids
        ).logits
    assert torch.allclose(ours[0], ref[0], atol=1e-5)
    assert torch.allclose(ours[1, :3], ref[1, :3], atol=1e-5)
    with pytest.raises(UsageError, match="original"):
        lm_inputs(rows, positions="original")


def test_hidden_at_groups_rows_without_changing_the_states() -> None:
    model = tiny_llama(V)
    emb = DynamicEmbedding(model.get_input_embeddings(), mode="mean")
    batch = merge_batch(
        [[1, 2, 3, 1, 2, 9, 9, 9, 4, 5], [1, 2], [7, 8, 7, 8, 6], [3]], first_new_id=V
    )
    x = lm_inputs(batch, prefix=[0])
    rows = torch.tensor([0, 2, 1, 0, 3, 2])
    pos = torch.tensor([1, 2, 1, 4, 1, 0])
    with torch.no_grad():
        full = hidden_states(model, emb(x.input_ids, batch), x)[rows, pos]
        for per_call in (1, 6, 4096):
            got = hidden_at(model, lambda i: emb(i, batch), x, rows, pos, tokens_per_call=per_call)
            assert torch.allclose(got, full, atol=1e-5)


def test_save_and_load_give_identical_outputs(tmp_path: Path) -> None:
    emb_table = table()
    emb = DynamicEmbedding(
        emb_table, mode="hypernet", hypernet=perturbed(small_net(output_head=True))
    )
    emb.save_pretrained(tmp_path / "hn")
    back = DynamicEmbedding.from_pretrained(emb_table, tmp_path / "hn")
    assert back.hypernet is not None and back.hypernet.config == emb.hypernet.config
    ids = torch.tensor([[V, 3, V + 1]])
    defs = {V: (1, 2), V + 1: (5, 6, 7)}
    with torch.no_grad():
        assert torch.equal(back(ids, defs), emb(ids, defs))
        h = torch.randn(1, 3, D)
        a, _ = dynamic_logits(h, emb_table.weight, defs, hypernet=emb.hypernet)
        b, _ = dynamic_logits(h, emb_table.weight, defs, hypernet=back.hypernet)
        assert torch.equal(a, b)
    with pytest.raises(UsageError, match="nothing to save"):
        DynamicEmbedding(emb_table).save_pretrained(tmp_path / "mean")


def test_aligned_positions_predict_the_same_token(tok: toknz.Tokenizer) -> None:
    batch = merge_texts(tok, TEXTS[:4], first_new_id=tok.n_vocab)
    assert batch.n_new > 0
    rows, dyn, base = aligned_positions(batch, prefix=1, from_first_merge=False)
    orig = unmerge(batch)
    for r, j, k in zip(rows.tolist(), dyn.tolist(), base.tolist(), strict=True):
        dyn_row = [int(t) for t in batch.ids[r]]
        # the text read so far is the same
        prefix = [t for i in dyn_row[:j] for t in batch.definitions.get(i, (i,))]
        assert prefix == orig[r][:k]
    assert int(rows.numel()) == batch.n_after


def test_merge_texts_cuts_and_keeps_boundaries(tok: toknz.Tokenizer) -> None:
    batch = merge_texts(tok, TEXTS[:4], first_new_id=tok.n_vocab, max_tokens=5)
    assert all(len(r) <= 5 for r in unmerge(batch))
    with pytest.raises(UsageError, match="first_new_id"):
        merge_texts(tok, TEXTS[:4], first_new_id=10)


def test_training_lowers_the_objective(tok: toknz.Tokenizer, tmp_path: Path) -> None:
    model = tiny_llama(tok.n_vocab)
    net = MergedTokenHypernet(
        HypernetConfig(embed_dim=32, transformer=TransformerConfig(dim=32, depth=1, heads=2))
    )
    emb = DynamicEmbedding(model.get_input_embeddings(), mode="hypernet", hypernet=net)
    held = merge_texts(tok, TEXTS, first_new_id=tok.n_vocab)
    with torch.no_grad():
        before, n = distillation_loss(model, emb, held, prefix=[0])
    assert n > 0 and float(before) > 0
    options = HypernetTrainOptions(
        steps=25, batch_size=8, lr=3e-3, warmup_steps=2, prefix=(0,), seed=1
    )
    result = train_hypernet(model, tok, TEXTS, options, embedding=emb, output=tmp_path / "hn")
    assert result.steps == 25 and len(result.losses) == 25
    with torch.no_grad():
        after, _ = distillation_loss(model, emb, held, prefix=[0])
    assert float(after) < 0.7 * float(before)
    assert (tmp_path / "hn" / "config.json").exists()
    assert (tmp_path / "hn" / "train_log.json").exists()
    assert all(p.grad is None for p in model.parameters())
    # seeded: the same run again gives the same losses
    model2 = tiny_llama(tok.n_vocab)
    net2 = MergedTokenHypernet(net.config)
    emb2 = DynamicEmbedding(model2.get_input_embeddings(), mode="hypernet", hypernet=net2)
    torch.manual_seed(123)  # train_hypernet seeds itself
    again = train_hypernet(model2, tok, TEXTS, options, embedding=emb2)
    np.testing.assert_allclose(again.losses, result.losses, rtol=1e-4)


@pytest.mark.parametrize("name", ["toknz.torch.dynamic_embedding", "toknz.torch.dynamic_training"])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_training_under_bf16_autocast_runs(tok: toknz.Tokenizer) -> None:
    model = tiny_llama(tok.n_vocab)
    options = HypernetTrainOptions(
        steps=3, batch_size=8, prefix=(0,), autocast="bfloat16", rows_per_step=2
    )
    result = train_hypernet(model, tok, {"a": TEXTS[:4], "b": TEXTS[4:]}, options)
    assert result.steps == 3 and all(np.isfinite(result.losses))
    assert all(p.dtype == torch.float32 for p in result.embedding.trainable_parameters())
    with pytest.raises(UsageError, match="autocast"):
        HypernetTrainOptions(autocast="int8")


def test_hidden_states_with_layers_are_the_models_own() -> None:
    model = tiny_llama(V)
    emb = DynamicEmbedding(model.get_input_embeddings(), mode="mean")
    batch = merge_batch([[1, 2, 3, 1, 2, 9], [7, 8, 7, 8]], first_new_id=V)
    x = lm_inputs(batch, prefix=[0])
    rows, pos = torch.tensor([0, 1, 0]), torch.tensor([1, 2, 3])
    with torch.no_grad():
        embeds = emb(x.input_ids, batch)
        out = model.model(
            inputs_embeds=embeds,
            attention_mask=x.attention_mask,
            position_ids=x.position_ids,
            output_hidden_states=True,
        )
        both = hidden_states(model, embeds, x, layers=(1, 0))
        assert both.shape == (*x.input_ids.shape, 3, D * 2)
        assert torch.equal(both[:, :, 0], hidden_states(model, embeds, x))
        assert torch.equal(both[:, :, 1], out.hidden_states[1])
        assert torch.equal(both[:, :, 2], out.hidden_states[0])
        picked = hidden_at(model, lambda i: emb(i, batch), x, rows, pos, layers=(1,))
        assert torch.allclose(picked, both[rows, pos][:, :2], atol=1e-5)
        with pytest.raises(UsageError, match="layer 7"):
            hidden_states(model, embeds, x, layers=(7,))


def test_hidden_matching_term_adds_to_the_kl(tok: toknz.Tokenizer) -> None:
    model = tiny_llama(tok.n_vocab).requires_grad_(False)
    net = perturbed(
        MergedTokenHypernet(
            HypernetConfig(embed_dim=32, transformer=TransformerConfig(dim=32, depth=1, heads=2))
        )
    )
    emb = DynamicEmbedding(model.get_input_embeddings(), mode="hypernet", hypernet=net)
    batch = merge_texts(tok, TEXTS, first_new_id=tok.n_vocab)
    parts: dict[str, float] = {}
    loss, n = distillation_loss(
        model, emb, batch, prefix=[0], hidden_weight=0.5, hidden_layers=(1, 2), parts=parts
    )
    plain, n_plain = distillation_loss(model, emb, batch, prefix=[0])
    assert n == n_plain > 0
    assert parts["kl"] == pytest.approx(float(plain.detach()), rel=1e-5)
    assert parts["hidden"] > 0
    assert float(loss.detach()) == pytest.approx(parts["kl"] + 0.5 * parts["hidden"], rel=1e-5)
    loss.backward()
    assert all(p.grad is None for p in model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    with pytest.raises(UsageError, match="hidden_layers"):
        distillation_loss(model, emb, batch, hidden_weight=1.0)
    with pytest.raises(UsageError, match="hidden_layers"):
        HypernetTrainOptions(hidden_weight=1.0)
    with pytest.raises(UsageError, match="non-negative"):
        HypernetTrainOptions(hidden_weight=-1.0, hidden_layers=(1,))
    options = HypernetTrainOptions(
        steps=2, batch_size=8, prefix=(0,), hidden_weight=1.0, hidden_layers=(2,)
    )
    result = train_hypernet(model, tok, TEXTS, options, embedding=emb)
    assert result.steps == 2 and all(np.isfinite(result.losses))
