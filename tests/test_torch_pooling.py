"""WordPooling: byte states to word states and back, against a slow pure-Python twin."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from toknz.errors import UsageError  # noqa: E402
from toknz.torch.pooling import MODES, WordPooling, word_ids_from_starts  # noqa: E402


def slow_pool(x: list[list[list[float]]], ids: list[list[int]], mode: str, w: int):
    """The obvious loop: for each row and word, reduce the states of its bytes."""
    out, masks = [], []
    for row, row_ids in zip(x, ids, strict=True):
        words, mask = [], []
        for word in range(w):
            members = [row[t] for t, i in enumerate(row_ids) if i == word]
            mask.append(bool(members))
            if not members:
                words.append([0.0] * len(row[0]))
            elif mode == "mean":
                words.append([sum(c) / len(members) for c in zip(*members, strict=True)])
            elif mode == "max":
                words.append([max(c) for c in zip(*members, strict=True)])
            elif mode == "first":
                words.append(list(members[0]))
            else:
                words.append(list(members[-1]))
        out.append(words)
        masks.append(mask)
    return out, masks


def slow_unpool(words, ids: list[list[int]], causal: bool, d: int):
    out = []
    for row_words, row_ids in zip(words, ids, strict=True):
        row = []
        for i in row_ids:
            j = i - 1 if causal else i
            ok = i >= 0 and 0 <= j < len(row_words)
            row.append(list(row_words[j]) if ok else [0.0] * d)
        out.append(row)
    return out


@st.composite
def byte_rows(draw):
    """A batch of rows of word ids (non-decreasing, padding -1 at the end) and states."""
    b = draw(st.integers(1, 3))
    t = draw(st.integers(1, 12))
    d = draw(st.integers(1, 3))
    ids = []
    for _ in range(b):
        length = draw(st.integers(0, t))
        starts = draw(st.lists(st.booleans(), min_size=length, max_size=length))
        row, word = [], -1
        for k, s in enumerate(starts):
            word += 1 if (s or k == 0) else 0
            row.append(word)
        ids.append(row + [-1] * (t - length))
    values = st.floats(-8, 8, allow_nan=False, width=32)
    x = draw(st.lists(st.lists(st.lists(values, min_size=d, max_size=d), min_size=t, max_size=t),
                      min_size=b, max_size=b))  # fmt: skip
    return x, ids


@settings(max_examples=80, deadline=None)
@given(byte_rows(), st.sampled_from(MODES), st.integers(0, 3))
def test_pooling_equals_the_slow_twin(data, mode: str, extra_words: int) -> None:
    x, ids = data
    w = max(max(r) for r in ids) + 1 + extra_words
    pooled, mask = WordPooling(mode)(torch.tensor(x), torch.tensor(ids), num_words=w)
    want, want_mask = slow_pool(x, ids, mode, w)
    assert mask.tolist() == want_mask
    assert torch.allclose(pooled, torch.tensor(want).reshape(pooled.shape), atol=1e-5)
    for causal in (False, True):
        back = WordPooling.unpool(pooled, torch.tensor(ids), causal=causal)
        want_back = slow_unpool(pooled.tolist(), ids, causal, pooled.shape[2])
        assert torch.equal(back, torch.tensor(want_back).reshape(back.shape))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=6, max_size=6), min_size=1, max_size=3))
def test_starts_give_the_same_words_as_ids(starts: list[list[bool]]) -> None:
    s = torch.tensor(starts)
    mask = torch.ones_like(s)
    mask[:, -1] = False
    ids = word_ids_from_starts(s, mask)
    for row, row_starts, row_mask in zip(ids.tolist(), starts, mask.tolist(), strict=True):
        word = -1
        for k, (i, st_, m) in enumerate(zip(row, row_starts, row_mask, strict=True)):
            word += 1 if (st_ and k > 0) or k == 0 else 0
            assert i == (word if m else -1)
    x = torch.randn(len(starts), 6, 4)
    a, am = WordPooling("max")(x, starts=s, mask=mask)
    b, bm = WordPooling("max")(x, ids)
    assert torch.equal(a, b) and torch.equal(am, bm)


def test_default_word_count_and_gradients() -> None:
    ids = torch.tensor([[0, 0, 1, 2, -1]])
    x = torch.randn(1, 5, 3, requires_grad=True)
    pooled, mask = WordPooling("mean")(x, ids)
    assert pooled.shape == (1, 3, 3) and mask.all()
    pooled.sum().backward()
    assert x.grad is not None
    assert torch.allclose(x.grad[0, :, 0], torch.tensor([0.5, 0.5, 1.0, 1.0, 0.0]))
    for mode in MODES:  # every mode is differentiable
        y = torch.randn(1, 5, 3, requires_grad=True)
        WordPooling(mode)(y, ids)[0].sum().backward()
        assert y.grad is not None and y.grad[0, 4].abs().sum() == 0  # padding gets none


def test_pooling_compiles_with_a_fixed_word_count() -> None:
    pool = WordPooling("mean")
    ids = torch.tensor([[0, 0, 1, -1], [0, 1, 1, 2]])
    x = torch.randn(2, 4, 8)
    compiled = torch.compile(
        lambda a, b: pool(a, b, num_words=3), backend="aot_eager", fullgraph=True
    )
    want = pool(x, ids, num_words=3)
    got = compiled(x, ids)
    assert torch.allclose(got[0], want[0]) and torch.equal(got[1], want[1])


def test_bad_arguments_raise_usage_errors() -> None:
    x = torch.randn(1, 3, 2)
    with pytest.raises(UsageError, match="mode"):
        WordPooling("median")
    with pytest.raises(UsageError, match="exactly one"):
        WordPooling()(x)
    with pytest.raises(UsageError, match=r"\[B, T\]"):
        WordPooling()(x, torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(UsageError):
        WordPooling.unpool(torch.randn(2, 2, 2), torch.zeros(1, 3, dtype=torch.long))
