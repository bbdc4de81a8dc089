"""Learned deletion (MrT5): the gate, hard deletion, its equivalences and the controller."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from toknz.errors import UsageError  # noqa: E402
from toknz.torch.byte_lm import ByteLevelLM, ByteLMConfig, byte_targets  # noqa: E402
from toknz.torch.deletion import (  # noqa: E402
    DeleteGate,
    DeletionController,
    compact,
    deletion_rate,
    gate_loss,
)
from toknz.torch.layers import TransformerConfig  # noqa: E402

TEXTS = ["Hello world, again", "byte by byte", "ünïcödé wörds", "x"]


def tiny(**options: object) -> ByteLevelLM:
    torch.manual_seed(0)
    options.setdefault("gate_layer", 1)
    config = ByteLMConfig(
        transformer=TransformerConfig(dim=32, depth=3, heads=2),
        local=TransformerConfig(dim=16, depth=1, heads=2),
        **options,  # type: ignore[arg-type]
    )
    return ByteLevelLM(config)


def embedded(model: ByteLevelLM, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = model.batcher()(texts)
    inputs, _, _ = byte_targets(batch)
    mask = torch.arange(inputs.shape[1]) <= batch.lengths.unsqueeze(-1)
    return model.embed(inputs), mask


def fix_gate(model: ByteLevelLM, values: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the model's gate return ``values`` (padding still gets the scale)."""
    assert model.gate is not None
    scale = model.gate.scale
    monkeypatch.setattr(
        model.gate, "forward", lambda h, mask: torch.where(mask, values[:, : h.shape[1]], scale)
    )


# --- the gate and compaction ----------------------------------------------------------------


def test_gate_values_lie_between_the_scale_and_zero() -> None:
    torch.manual_seed(0)
    gate = DeleteGate(dim=8)
    h = torch.randn(3, 7, 8) * 5
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[0, 4:] = False
    g = gate(h, mask)
    assert g.shape == (3, 7) and g.dtype == torch.float32
    assert bool(((g <= 0) & (g >= gate.scale)).all())
    assert torch.all(g[0, 4:] == gate.scale)  # padding counts as deleted
    keep = gate.keep_mask(g, mask)
    assert not keep[0, 4:].any()
    assert torch.equal(keep, (g > gate.scale / 2) & mask)
    states, kept = gate.compact(h, g, mask)
    assert states.shape == (3, int(keep.sum(1).max()), 8)
    for b in range(3):
        n = int(keep[b].sum())
        assert torch.equal(states[b, :n], h[b][keep[b]])
        assert kept.index[b, :n].tolist() == torch.nonzero(keep[b]).flatten().tolist()
    # MrT5's form: scale · sigmoid(-(w · norm(h) + b))
    want = gate.scale * torch.sigmoid(-gate.proj(gate.norm(h)).squeeze(-1))
    assert torch.allclose(g[1:], want[1:])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=5, max_size=5), min_size=1, max_size=4))
def test_compact_keeps_exactly_the_kept_positions_in_order(rows: list[list[bool]]) -> None:
    keep = torch.tensor(rows)
    kept = compact(keep)
    width = max(max(sum(r) for r in rows), 1)
    assert kept.index.shape == kept.mask.shape == (len(rows), width)
    values = torch.arange(5.0).expand(len(rows), 5) * 10
    gathered = kept.gather(values)
    states = kept.gather(torch.randn(len(rows), 5, 3))
    assert states.shape == (len(rows), width, 3)
    for b, row in enumerate(rows):
        want = [t for t, k in enumerate(row) if k]
        n = len(want)
        assert kept.mask[b].tolist() == [True] * n + [False] * (width - n)
        assert kept.index[b, :n].tolist() == want
        assert gathered[b, :n].tolist() == [10.0 * t for t in want]


def test_gate_loss_and_deletion_rate() -> None:
    gate = torch.tensor([[-30.0, -1.0, -20.0, -30.0]])
    mask = torch.tensor([[True, True, True, False]])
    assert float(gate_loss(gate, mask, 0.5)) == pytest.approx(0.5 * (-51.0 / 3))
    assert float(deletion_rate(gate, mask, -15.0)) == pytest.approx(2 / 3)


# --- hard deletion in the byte model ---------------------------------------------------------


def gate_values(t: int) -> torch.Tensor:
    """Keep values deleting a fixed pattern: positions 1, 2, 5, 8, 9, ... (every row)."""
    pattern = torch.tensor([(i % 4 == 1 or i % 7 == 2) for i in range(t)])
    return torch.where(pattern, -29.0, -2.0).expand(len(TEXTS), t)


def test_hard_deletion_shortens_the_sequence_by_exactly_the_deleted(monkeypatch) -> None:
    model = tiny().eval()
    x, mask = embedded(model, TEXTS)
    values = gate_values(x.shape[1])
    fix_gate(model, values, monkeypatch)
    states = model.encode(x, mask, hard_delete=True)
    keep = (values > -15) & mask
    counts = keep.sum(1)
    assert states.deep.shape == (len(TEXTS), int(counts.max()), 32)
    assert states.mask.sum(1).tolist() == counts.tolist()
    assert torch.equal(mask.sum(1) - states.mask.sum(1), ((values <= -15) & mask).sum(1))
    for b in range(len(TEXTS)):
        n = int(counts[b])
        assert states.positions[b, :n].tolist() == torch.nonzero(keep[b]).flatten().tolist()
    logits, _ = model.logits_from_embeddings(x, mask)
    assert logits.shape == (len(TEXTS), x.shape[1], 257)
    soft = model.encode(x, mask, hard_delete=False)
    assert soft.deep.shape == x.shape  # training: nothing removed


@pytest.mark.parametrize("bias", [1.0, 30.0])
def test_hard_deletion_equals_soft_when_nothing_is_deleted(bias: float) -> None:
    """Bias 1 and zero weights: G = -30·sigmoid(-1) ≈ -8.1 everywhere, kept but down-weighted;
    bias 30: G ≈ 0. Either way the two paths compute the same function."""
    model = tiny().eval()
    assert model.gate is not None
    with torch.no_grad():
        model.gate.proj.weight.zero_()
        model.gate.proj.bias.fill_(bias)
    x, mask = embedded(model, TEXTS)
    hard, g = model.logits_from_embeddings(x, mask, hard_delete=True)
    soft, _ = model.logits_from_embeddings(x, mask, hard_delete=False)
    assert g is not None and not ((g <= model.gate.threshold) & mask).any()
    assert torch.allclose(hard[mask], soft[mask], atol=1e-5)


def test_hard_deletion_equals_the_later_layers_on_only_the_kept(monkeypatch) -> None:
    model = tiny().eval()
    x, mask = embedded(model, TEXTS)
    values = gate_values(x.shape[1])
    fix_gate(model, values, monkeypatch)
    states = model.encode(x, mask, hard_delete=True)
    logits = model.decode(states, mask)
    for b in range(len(TEXTS)):
        idx = torch.nonzero((values[b] > -15) & mask[b]).flatten()
        n = len(idx)
        early = model.transformer.run_blocks(x[b : b + 1], 0, 1)[:, : int(mask[b].sum())]
        kept = early[:, idx]
        deep = model.transformer.run_blocks(
            kept, 1, 3, key_bias=values[b : b + 1, idx], positions=idx
        )
        deep = model.transformer.norm(deep)
        assert torch.allclose(states.deep[b, :n], deep[0], atol=1e-5)
        # the local stack sees the null slot and the kept states at or before each position
        assert model.local is not None
        memory = torch.cat((model.null_memory[None, None], model.memory_in(deep)), dim=1)
        t = early.shape[1]
        q = torch.arange(t)[:, None]
        allowed = torch.cat((torch.ones(t, 1, dtype=torch.bool), idx[None, :] <= q), dim=1)
        bias = torch.where(allowed, torch.cat((torch.zeros(1), values[b, idx])), -1e9)
        h = model.local_in(early)
        for block in model.local.blocks:
            h = block(h, torch.arange(t), model.local.bias(h), memory, bias[None, None])
        want = model.head(model.local.norm(h))
        assert torch.allclose(logits[b, :t], want[0], atol=1e-5)


def test_soft_deletion_with_a_huge_scale_equals_hard_deletion(monkeypatch) -> None:
    """Soft deletion is hard deletion made differentiable: as k → -∞ they agree."""
    model = tiny(gate_scale=-1e4).eval()
    x, mask = embedded(model, TEXTS)
    values = torch.where(gate_values(x.shape[1]) < -15, -1e4, -2.0)
    fix_gate(model, values, monkeypatch)
    hard, _ = model.logits_from_embeddings(x, mask, hard_delete=True)
    soft, _ = model.logits_from_embeddings(x, mask, hard_delete=False)
    assert torch.allclose(hard[mask], soft[mask], atol=1e-4)


def test_a_text_with_every_position_deleted_still_predicts(monkeypatch) -> None:
    """The local stack's null slot is always visible: no NaN, no peeking at padding."""
    model = tiny().eval()
    x, mask = embedded(model, TEXTS)
    fix_gate(model, torch.full(mask.shape, -29.0), monkeypatch)
    states = model.encode(x, mask, hard_delete=True)
    assert states.deep.shape[1] == 1 and not states.mask.any()
    logits, _ = model.logits_from_embeddings(x, mask)
    assert torch.isfinite(logits).all()
    out = model(model.batcher()(TEXTS))
    assert out.aux is not None and out.aux["deletion_rate"] == 1.0


def test_eval_mode_deletes_hard_and_train_mode_soft(monkeypatch) -> None:
    model = tiny()
    calls: list[bool] = []
    original = model.encode
    monkeypatch.setattr(
        model, "encode", lambda x, m, hard: calls.append(hard) or original(x, m, hard)
    )
    batch = model.batcher()(TEXTS)
    model.train()(batch)
    model.eval()(batch)
    model.train()(batch, hard_delete=True)
    assert calls == [False, True, True]


# --- the controller ----------------------------------------------------------------------


def test_controller_follows_mrt5s_update_rule_and_resumes() -> None:
    c = DeletionController(target=0.4, kp=0.5, ki=0.01)
    p = i = 0.0
    rates = [0.0, 0.1, 0.9, 0.3, 0.5]
    for rate in rates[:3]:
        e = 0.4 - rate
        p = 0.9 * p + 0.1 * 0.5 * e
        i = i + 0.01 * e
        assert float(c.update(rate)) == pytest.approx(max(0.0, p + i), abs=1e-6)
    resumed = DeletionController(target=0.4, kp=0.5, ki=0.01)
    resumed.load_state_dict(c.state_dict())
    assert int(resumed.steps) == 3
    for rate in rates[3:]:
        assert float(resumed.update(rate)) == pytest.approx(float(c.update(rate)))
    with pytest.raises(UsageError, match="target"):
        DeletionController(target=1.5)


def test_the_controller_moves_the_deletion_rate_to_its_target() -> None:
    """A toy run: a gate over fixed states, a task loss that charges for deleting each
    position by its (linearly predictable) importance, and the controlled regulariser. The
    rate starts near 0 and the controller raises ``α`` until it nears the target."""
    torch.manual_seed(0)
    target = 0.5
    h, mask = torch.randn(8, 16, 8), torch.ones(8, 16, dtype=torch.bool)
    importance = 0.2 * torch.sigmoid(h @ torch.randn(8))
    gate = DeleteGate(8)
    with torch.no_grad():
        gate.proj.bias.fill_(3.0)  # start with (almost) nothing deleted
    controller = DeletionController(target, kp=0.5, ki=0.01)
    opt = torch.optim.Adam(gate.parameters(), lr=0.05)
    rates = []
    for _ in range(60):
        g = gate(h, mask)
        loss = -(importance * g).mean() + gate_loss(g, mask, controller.weight.clone())
        opt.zero_grad()
        loss.backward()
        opt.step()
        rates.append(float(deletion_rate(g.detach(), mask, gate.threshold)))
        controller.update(rates[-1])
    late = sum(rates[-5:]) / 5
    assert abs(late - target) < abs(rates[0] - target)
    assert abs(late - target) < 0.1, rates
    assert float(controller.weight) > 0


def _overdeleting_run(symmetric: bool) -> tuple[list[float], float]:
    """A toy run whose task loss itself rewards deleting (as a language model's loss can):
    the rate climbs past the target unless the controller can pull it back."""
    torch.manual_seed(0)
    h, mask = torch.randn(8, 16, 8), torch.ones(8, 16, dtype=torch.bool)
    gate = DeleteGate(8)
    controller = DeletionController(0.5, kp=0.5, ki=0.01, symmetric=symmetric)
    opt = torch.optim.Adam(gate.parameters(), lr=0.05)
    rates = []
    for _ in range(150):
        g = gate(h, mask)
        loss = 0.05 * g.mean() + gate_loss(g, mask, controller.weight.clone())
        opt.zero_grad()
        loss.backward()
        opt.step()
        rates.append(float(deletion_rate(g.detach(), mask, gate.threshold)))
        controller.update(rates[-1])
    return rates, float(controller.weight)


def test_a_symmetric_controller_pulls_an_overdeleting_gate_back() -> None:
    clipped, weight = _overdeleting_run(symmetric=False)
    assert sum(clipped[-5:]) / 5 > 0.9 and weight == 0.0  # MrT5's rule cannot push back
    held, weight = _overdeleting_run(symmetric=True)
    assert abs(sum(held[-5:]) / 5 - 0.5) < 0.15, held
    assert weight < 0


def test_the_model_updates_its_controller_only_in_training() -> None:
    model = tiny(target_deletion=0.9)
    assert model.gate is not None and model.controller is not None
    batch = model.batcher()(TEXTS)
    out = model.train()(batch)
    assert out.aux is not None and out.aux["gate_weight"] == 0.0  # the weight before the step
    assert int(model.controller.steps) == 1 and float(model.controller.weight) > 0
    loss_weight = float(model.controller.weight)
    out = model(batch)
    assert out.aux is not None and out.aux["gate_weight"] == pytest.approx(loss_weight)
    model.eval()(batch)
    assert int(model.controller.steps) == 2
    assert set(out.aux) >= {"deletion_rate", "gate_loss", "gate_weight", "gate_mean"}


def test_gate_options_are_checked() -> None:
    with pytest.raises(UsageError, match="negative"):
        DeleteGate(8, scale=1.0)
    with pytest.raises(UsageError, match="threshold"):
        DeleteGate(8, scale=-10.0, threshold=-11.0)
    with pytest.raises(UsageError, match="bool"):
        compact(torch.ones(2, 3))
