"""The BPE-level language model: causality, nll accounting, save/load with its tokenizer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from toknz.errors import FormatError, UsageError  # noqa: E402
from toknz.tokenizer import Tokenizer  # noqa: E402
from toknz.torch.layers import TransformerConfig  # noqa: E402
from toknz.torch.token_lm import TokenLevelLM, TokenLMConfig  # noqa: E402
from toknz.train import train_from_counts  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TEXTS = ["Hello world, again", "the cat sat", "ünïcödé wörds and 漢字 too", "x", ""]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    counts = {b"Hello": 9, b" world": 7, b" the": 12, b" cat": 5, b" sat": 5, b" w\xc3\xb6rds": 3}
    return train_from_counts(counts, vocab_size=290)


def tiny(tokenizer: Tokenizer, tie: bool = True) -> TokenLevelLM:
    torch.manual_seed(0)
    config = TokenLMConfig(
        vocab_size=tokenizer.n_vocab,
        transformer=TransformerConfig(dim=32, depth=2, heads=2),
        tie_embeddings=tie,
    )
    return TokenLevelLM(config, tokenizer).eval()


def test_batcher_encodes_with_the_tokenizer(tokenizer: Tokenizer) -> None:
    batch = tiny(tokenizer).batcher(pad_to_multiple=8)(TEXTS)
    assert batch.n_bytes == sum(len(t.encode()) for t in TEXTS)
    assert batch.ids.shape[1] % 8 == 0
    for b, text in enumerate(TEXTS):
        n = int(batch.lengths[b])
        ids = batch.ids[b, :n].tolist()
        assert ids == tokenizer.encode_ordinary(text)
        assert tokenizer.decode_bytes(ids) == text.encode()
        assert batch.mask[b].sum() == n and not batch.ids[b, n:].any()


def test_loss_at_a_token_ignores_later_tokens(tokenizer: Tokenizer) -> None:
    model = tiny(tokenizer)
    batch = model.batcher()(["Hello world the cat sat"])
    n = int(batch.lengths[0])
    assert n >= 4
    x = model.embed(batch.ids).detach().requires_grad_()
    logits = model.logits_from_embeddings(x, batch.mask)
    targets, _ = model.targets(batch)
    for i in range(n + 1):
        nll = torch.nn.functional.cross_entropy(logits[0, i], targets[0, i])
        (grad,) = torch.autograd.grad(nll, x, retain_graph=True)
        norms = grad[0].norm(dim=-1)
        assert torch.all(norms[i:] == 0), (i, norms)
        if i > 0:
            assert norms[:i].sum() > 0


def test_nll_covers_every_byte_and_the_end(tokenizer: Tokenizer) -> None:
    model = tiny(tokenizer)
    batch = model.batcher()(TEXTS)
    out = model(batch)
    assert out.n_bytes == sum(len(t.encode("utf-8")) for t in TEXTS)
    symbols = sum(len(tokenizer.encode_ordinary(t)) + 1 for t in TEXTS)
    assert out.aux == {"symbols": float(symbols)}
    assert out.bits_per_byte() == pytest.approx(float(out.nll_sum) / out.n_bytes / math.log(2))
    assert float(out.loss.detach()) == pytest.approx(float(out.nll_sum) / symbols, rel=1e-5)
    assert float(model.position_nll(batch).detach().sum()) == pytest.approx(
        float(out.nll_sum), rel=1e-5
    )
    # the end-of-text id is predicted once per text, after its last id
    targets, predicted = model.targets(batch)
    assert int((targets[predicted] == model.end_id).sum()) == len(TEXTS)
    # padding does not change a text's nats: batch of one == its share of the batch
    alone = sum(float(model(model.batcher()([t])).nll_sum) for t in TEXTS)
    assert alone == pytest.approx(float(out.nll_sum), rel=1e-4)


@pytest.mark.parametrize("tie", [True, False])
def test_save_and_load_give_the_same_model_and_tokenizer(
    tokenizer: Tokenizer, tmp_path: Path, tie: bool
) -> None:
    model = tiny(tokenizer, tie)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    loaded = TokenLevelLM.from_pretrained(tmp_path).eval()
    assert loaded.config == model.config
    assert loaded.num_parameters() == model.num_parameters()
    assert loaded.tokenizer is not None
    assert loaded.tokenizer.encode_ordinary(TEXTS[2]) == tokenizer.encode_ordinary(TEXTS[2])
    with torch.no_grad():
        a = model(model.batcher()(TEXTS))
        b = loaded(loaded.batcher()(TEXTS))
    assert torch.equal(a.nll_sum, b.nll_sum)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(FormatError, match="tokenizer.json"):
        TokenLevelLM.from_pretrained(tmp_path)


def test_tied_head_counts_the_table_once(tokenizer: Tokenizer) -> None:
    tied, untied = tiny(tokenizer, True), tiny(tokenizer, False)
    assert untied.num_parameters() - tied.num_parameters() == (tokenizer.n_vocab + 1) * 32


def test_generate_continues_the_prompt(tokenizer: Tokenizer) -> None:
    model = tiny(tokenizer)
    gen = torch.Generator().manual_seed(1)
    text = model.generate("Hello", max_new_bytes=12, generator=gen)
    # at most 12 new bytes, each shown as itself or as one U+FFFD
    assert text.startswith("Hello") and len(text) - len("Hello") <= 12
    greedy = model.generate("Hello", max_new_bytes=6, temperature=0)
    assert greedy == model.generate("Hello", max_new_bytes=6, temperature=0)


def test_rejects_a_mismatched_or_normalizing_tokenizer(tokenizer: Tokenizer) -> None:
    config = TokenLMConfig(vocab_size=tokenizer.n_vocab + 1)
    with pytest.raises(UsageError, match="ids but the model was built for"):
        TokenLevelLM(config, tokenizer)
    nfc = train_from_counts({b"ab": 3}, vocab_size=257, normalize="nfc")
    with pytest.raises(UsageError, match="without a normalizer"):
        TokenLevelLM(TokenLMConfig(vocab_size=nfc.n_vocab), nfc)
    with pytest.raises(UsageError, match="no tokenizer"):
        TokenLevelLM(TokenLMConfig(vocab_size=300)).batcher()
