"""Fill-in-the-middle: the exact method equals brute-force sums; the token-level baselines do not.

Toy FIM models (tests/fim_toys.py) pick a middle among finitely many texts,
so the next-byte distribution of a middle that starts with the prefix's
moved tail is a finite sum to compare with, to 1e-9. A tiny random
``transformers`` model checks the same end to end against a walk over every
token sequence (``mode="all"``: exact for any LM).
"""

from __future__ import annotations

import numpy as np
import pytest
from bytelm_toys import toy_tokenizer
from fim_toys import (
    FimDocLM,
    cover_brute_force,
    fim_tokenizer,
    support_brute_force,
    total_variation,
)

from toknz.bytelevel.fim import (
    FimModel,
    FimTokens,
    fim,
    fim_next_byte_logprobs,
    fim_token_healing,
    fim_token_prompting,
    fim_tokens,
    split_prefix,
    split_suffix,
)
from toknz.errors import UsageError


@pytest.fixture(scope="module")
def tok():
    return fim_tokenizer()


@pytest.fixture(scope="module")
def toks(tok) -> FimTokens:
    return fim_tokens(tok)


@pytest.fixture(scope="module")
def doc_lm(tok, toks) -> FimDocLM:
    return FimDocLM(tok, toks, penalty=0.3, seed=11)


def _context(tok, toks: FimTokens, head: bytes, suffix: bytes) -> list[int]:
    return [
        toks.prefix,
        *tok.encode_ordinary(head.decode()),
        toks.suffix,
        *tok.encode_ordinary(suffix.decode()),
        toks.middle,
    ]


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == (257,) and got.dtype == np.float64
    assert np.array_equal(np.isfinite(got), np.isfinite(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=0, atol=1e-9)
    assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------- sentinels, cut


def test_fim_tokens_found_by_spelling(tok) -> None:
    ids = {t.content: t.id for t in tok.added_tokens}
    assert fim_tokens(tok) == FimTokens(
        ids["<|fim_prefix|>"], ids["<|fim_suffix|>"], ids["<|fim_middle|>"], (ids["<|endoftext|>"],)
    )
    starcoder = fim_tokenizer(
        ("<|endoftext|>", "<fim_middle>", "<fim_suffix>", "<fim_prefix>", "<file_sep>")
    )
    ids = {t.content: t.id for t in starcoder.added_tokens}
    got = fim_tokens(starcoder)
    assert (got.prefix, got.suffix, got.middle) == (
        ids["<fim_prefix>"],
        ids["<fim_suffix>"],
        ids["<fim_middle>"],
    )
    assert set(got.end) == {ids["<|endoftext|>"], ids["<file_sep>"]}
    assert set(got.stop_ids) == set(got.end) | {got.prefix, got.suffix, got.middle}


def test_split_prefix_at_the_last_pre_token(tok) -> None:
    assert split_prefix(tok, b"s aaa") == (b"s", b" aaa")
    assert split_prefix(tok, b"s aaa", "token") == (b"s aa", b"a")  # " aaa" is [" a", "a", "a"]
    assert split_prefix(tok, b"s aaa", "none") == (b"s aaa", b"")
    assert split_prefix(tok, b"s aaa", 2) == (b"s a", b"aa")
    assert split_prefix(tok, b"as") == (b"", b"as")
    assert split_prefix(tok, b"x = 1  ") == (b"x = 1", b"  ")
    assert split_prefix(tok, b"") == (b"", b"")
    cut = "s é".encode()[:3]  # a cursor inside a character
    assert split_prefix(tok, cut) == (b"s", b" \xc3")


# --------------------------------------------------------------------- exactness (toy)

CASES = [
    # prefix, suffix, middle so far, backoff
    (b"s aa", b" s", b"", "pretoken"),  # tail " aa": a middle " aas" is [" a", "as"]
    (b"a", b"s", b"", "pretoken"),  # the whole prefix is the tail
    ("s é".encode()[:3], b"a", b"", "pretoken"),  # tail ends inside a character
    (b"a a", b"", b"s", "pretoken"),  # after a first middle byte
    (b"s as", b"a", b"", "pretoken"),
    (b"", b"as", b"", "pretoken"),  # empty prefix
    (b"s aa", b" s", b"", "token"),
    (b"s aa", b" s", b"", 3),
    (b"s aa", b" s", b"a", "none"),
]


@pytest.mark.parametrize(("prefix", "suffix", "middle", "backoff"), CASES)
def test_exact_next_byte_matches_brute_force(
    tok, toks, doc_lm, prefix: bytes, suffix: bytes, middle: bytes, backoff
) -> None:
    got = fim_next_byte_logprobs(doc_lm, tok, prefix, suffix, middle, backoff=backoff)
    head, tail = split_prefix(tok, prefix, backoff)
    assert head + tail == prefix
    context = _context(tok, toks, head, suffix)
    # Every complete middle the model can write after this context, kept when it starts with tail.
    _assert_same(got, support_brute_force(doc_lm.lm_for(context), tok, tail + middle))
    # Every token sequence spelling a prefix of tail, one token further (no pruning).
    _assert_same(got, cover_brute_force(doc_lm, tok, context, toks.stop_ids, tail + middle))


def test_tail_ending_inside_a_token_is_covered(tok, toks, doc_lm) -> None:
    # The case the exact method exists for: some likely middles cross the cut inside a token.
    head, tail = split_prefix(tok, b"s aa")
    lm = doc_lm.lm_for(_context(tok, toks, head, b" s"))
    crossing = total = 0.0
    for seq, p in lm.probs.items():
        spans = np.cumsum([len(tok.decode_single_token_bytes(i)) for i in seq])
        if tok.decode_bytes(list(seq)).startswith(tail):
            total += p
            crossing += p if len(tail) not in spans.tolist() else 0.0
    assert crossing / total > 0.05
    lp = fim_next_byte_logprobs(doc_lm, tok, b"s aa", b" s")
    assert np.exp(lp[ord("s")]) > 0.01  # " aa" + "s": the token "as" straddles the cut


def test_exact_sampling_follows_the_distribution(tok, doc_lm) -> None:
    out = fim(doc_lm, tok, b"s a", b" s", max_bytes=6)
    so_far = b""
    for b in out:
        lp = fim_next_byte_logprobs(doc_lm, tok, b"s a", b" s", so_far)
        assert int(np.argmax(lp)) == b
        so_far += bytes([b])
    if len(out) < 6:  # stopped: the end was the most likely outcome
        assert int(np.argmax(fim_next_byte_logprobs(doc_lm, tok, b"s a", b" s", out))) == 256
    a = fim(doc_lm, tok, b"s a", b" s", max_bytes=6, temperature=1.0, seed=3)
    assert a == fim(doc_lm, tok, b"s a", b" s", max_bytes=6, temperature=1.0, seed=3)
    assert len(fim(doc_lm, tok, b"s a", b"", max_bytes=2, temperature=1.0, seed=4)) <= 2
    assert fim(doc_lm, tok, b"s a", b"", max_bytes=0) == b""
    # Every sample is a middle the model can write: tail + sample is in the support.
    head, tail = split_prefix(tok, b"s a")
    toks = fim_tokens(tok)
    lm = doc_lm.lm_for(_context(tok, toks, head, b""))
    texts = {tok.decode_bytes(list(s)) for s in lm.probs}
    for seed in range(5):
        m = fim(doc_lm, tok, b"s a", b"", max_bytes=20, temperature=1.0, seed=seed)
        assert tail + m in texts
    stopped = fim(doc_lm, tok, b"s a", b"", max_bytes=20, temperature=1.0, seed=1, stop=[b"a"])
    assert b"a" not in stopped[:-1]


# --------------------------------------------------------------------- suffix joined (toy)


def test_split_suffix_at_the_first_pre_token(tok) -> None:
    assert split_suffix(tok, b"as a") == (b"as", b" a")
    assert split_suffix(tok, b" aaa s") == (b" aaa", b" s")
    assert split_suffix(tok, b" aaa s", "token") == (b" a", b"aa s")
    assert split_suffix(tok, b"as a", "none") == (b"", b"as a")
    assert split_suffix(tok, b"as a", 3) == (b"as ", b"a")
    assert split_suffix(tok, b"") == (b"", b"")
    assert split_suffix(tok, "é a".encode()[1:]) == (b"\xa9", b" a")  # starts inside a character
    for bad in ("word", 5, -1, True, 1.5):
        with pytest.raises(UsageError):
            split_suffix(tok, b"as a", bad)  # type: ignore[arg-type]


def joined_brute_force(lm, tok, x: bytes, end: bytes) -> np.ndarray:
    """Next outcome of a middle starting with ``x`` that must end with ``end``, from the support.

    Middles equal to ``x`` are ruled out; entry 256 is the middle ``x + end``;
    byte ``b`` is every other middle starting with ``x + b``. When ``x``
    itself is the only middle left, it finishes (entry 256 is certain).
    """
    scores = np.zeros(257)
    for seq, p in lm.probs.items():
        d = tok.decode_bytes(list(seq))
        if not d.startswith(x) or d == x:
            continue
        scores[256 if d == x + end else d[len(x)]] += p
    if scores.sum() == 0:
        scores[256] = 1.0
    with np.errstate(divide="ignore"):
        return np.log(scores / scores.sum())


JOINED = [
    # prefix, suffix, middle so far
    (b"s a", b"s a", b""),  # the suffix head "s" may merge with the middle's end ("as")
    (b"s a", b"s a", b"a"),
    (b"a", b"as", b""),
    (b"s aa", b" s", b""),  # the head is the whole suffix
    (b"", b"1 a", b""),
    ("s é".encode()[:3], b"a", b""),  # tail ends inside a character
]


@pytest.mark.parametrize(("prefix", "suffix", "middle"), JOINED)
def test_joined_suffix_matches_brute_force(
    tok, toks, doc_lm, prefix: bytes, suffix: bytes, middle: bytes
) -> None:
    got = fim_next_byte_logprobs(doc_lm, tok, prefix, suffix, middle, suffix_backoff="pretoken")
    head, tail = split_prefix(tok, prefix)
    end, rest = split_suffix(tok, suffix)
    assert end and end + rest == suffix
    lm = doc_lm.lm_for(_context(tok, toks, head, rest))
    _assert_same(got, joined_brute_force(lm, tok, tail + middle, end))


def test_joined_suffix_generation(tok, toks) -> None:
    doc_lm = FimDocLM(tok, toks, alphabet=("a", "s", " "), max_chars=8, decay=0.3, seed=5)
    prefix, suffix = b"s a", b"s a"
    head, tail = split_prefix(tok, prefix)
    end, rest = split_suffix(tok, suffix)
    lm = doc_lm.lm_for(_context(tok, toks, head, rest))
    # Greedy: the argmax of the brute-force distribution at every step, finishing included.
    got = fim(doc_lm, tok, prefix, suffix, max_bytes=8, suffix_backoff="pretoken")
    x = b""
    while True:
        b = int(np.argmax(joined_brute_force(lm, tok, tail + x, end)))
        if b == 256 or len(x) == 8:
            break
        x += bytes([b])
    assert got == x
    texts = {tok.decode_bytes(list(s)) for s in lm.probs}
    assert tail + got + end in texts  # it finished with the suffix head
    # Every sample is a middle the model can write, once the suffix head is put back.
    # (Or, where the steps before led to a middle that can only end as it is, that middle.)
    finished = 0
    for seed in range(12):
        m = fim(
            doc_lm, tok, prefix, suffix, 20, temperature=1.0, seed=seed, suffix_backoff="pretoken"
        )
        assert tail + m + end in texts or tail + m in texts
        finished += tail + m + end in texts
    assert finished > 6  # most: the rest reached a middle that can only end as it is
    same = fim(doc_lm, tok, prefix, suffix, 20, temperature=1.0, seed=3, suffix_backoff="pretoken")
    assert same == fim(
        doc_lm, tok, prefix, suffix, 20, temperature=1.0, seed=3, suffix_backoff="pretoken"
    )
    assert fim(doc_lm, tok, prefix, suffix, 0, suffix_backoff="pretoken") == b""
    # "none" is the method without the join; an empty suffix has nothing to join.
    assert fim(doc_lm, tok, prefix, suffix, 8, suffix_backoff="none") == fim(
        doc_lm, tok, prefix, suffix, 8
    )
    assert fim(doc_lm, tok, prefix, b"", 8, suffix_backoff="pretoken") == fim(
        doc_lm, tok, prefix, b"", 8
    )
    with pytest.raises(UsageError, match="method='exact'"):
        fim_next_byte_logprobs(
            doc_lm, tok, prefix, suffix, method="plain", suffix_backoff="pretoken"
        )


# --------------------------------------------------------------------- baselines (toy)


def test_baseline_first_bytes_match_their_brute_force(tok, toks, doc_lm) -> None:
    prefix, suffix = b"s aa", b" s"
    ids = tok.encode_ordinary(prefix.decode())
    plain = fim_next_byte_logprobs(doc_lm, tok, prefix, suffix, method="plain")
    ctx = [toks.prefix, *ids, toks.suffix, *tok.encode_ordinary(suffix.decode()), toks.middle]
    _assert_same(plain, support_brute_force(doc_lm.lm_for(ctx), tok, b""))
    healing = fim_next_byte_logprobs(doc_lm, tok, prefix, suffix, method="healing")
    removed = tok.decode_single_token_bytes(ids[-1])
    ctx = [toks.prefix, *ids[:-1], toks.suffix, *tok.encode_ordinary(suffix.decode()), toks.middle]
    lm = doc_lm.lm_for(ctx)
    _assert_same(healing, support_brute_force(lm, tok, removed, first_starts=removed))


def test_baselines_generate_the_most_likely_tokens(tok, toks, doc_lm) -> None:
    prefix, suffix = b"s aa", b" s"
    ids = tok.encode_ordinary(prefix.decode())
    sfx = tok.encode_ordinary(suffix.decode())
    for heal in (False, True):
        ctx = [toks.prefix, *(ids[:-1] if heal else ids), toks.suffix, *sfx, toks.middle]
        lm = doc_lm.lm_for(ctx)
        removed = tok.decode_single_token_bytes(ids[-1]) if heal else b""
        seq: list[int] = []
        while True:
            lp = lm.next_token_logprobs([seq])[0]
            if not seq and heal:
                ok = [tok.decode_single_token_bytes(i).startswith(removed) for i in range(len(lp))]
                lp = np.where(ok, lp, -np.inf)
            t = int(np.argmax(lp))
            if t == toks.end[0]:
                break
            seq.append(t)
        want = tok.decode_bytes(seq)[len(removed) :]
        method = fim_token_healing if heal else fim_token_prompting
        assert method(doc_lm, tok, prefix, suffix) == want
        assert method(doc_lm, tok, prefix, suffix, max_bytes=1) == want[:1]
        a = method(doc_lm, tok, prefix, suffix, temperature=1.0, seed=5)
        assert a == method(doc_lm, tok, prefix, suffix, temperature=1.0, seed=5)
        assert method(doc_lm, tok, prefix, suffix, top_k=1, temperature=1.0, seed=6) == want


def test_exact_differs_from_token_baselines_under_boundary_bias(tok, toks) -> None:
    # "s aaa" ends with the tokens " a", "a", "a". A model that rarely puts a token
    # that BPE would have merged right after the prompt ("a" then "as") shuns "s"
    # after plain prompting and after healing the last "a"; cut before " aaa", the
    # exact method asks for a middle starting " aaa", which that bias does not touch.
    prefix, suffix = b"s aaa", b" s"
    kw = {"alphabet": ("a", "s", " ", "é"), "max_chars": 7, "seed": 2}
    unbiased = FimDocLM(tok, toks, penalty=1.0, **kw)
    biased = FimDocLM(tok, toks, penalty=0.02, **kw)
    got = {
        m: fim_next_byte_logprobs(biased, tok, prefix, suffix, method=m)
        for m in ("exact", "plain", "healing")
    }
    assert total_variation(got["exact"], got["plain"]) > 0.05
    assert total_variation(got["exact"], got["healing"]) > 0.05
    assert np.exp(got["plain"][ord("s")]) < 0.5 * np.exp(got["exact"][ord("s")])
    # Without the bias all three agree (this model is right about text cut anywhere),
    # and the exact answer did not move.
    for m in ("exact", "plain", "healing"):
        truth = fim_next_byte_logprobs(unbiased, tok, prefix, suffix, method=m)
        _assert_same(truth, got["exact"])


def test_fim_model_bundles_the_three_methods(tok, toks, doc_lm) -> None:
    model = FimModel(doc_lm, tok)
    assert model.tokens == toks
    assert model.exact(b"s a", b" s", 5) == fim(doc_lm, tok, b"s a", b" s", 5)
    assert model.plain(b"s a", b" s", 5) == fim_token_prompting(doc_lm, tok, b"s a", b" s", 5)
    assert model.healing(b"s a", b" s", 5) == fim_token_healing(doc_lm, tok, b"s a", b" s", 5)
    _assert_same(
        model.next_byte_logprobs(b"s a", b" s", b"a"),
        fim_next_byte_logprobs(doc_lm, tok, b"s a", b" s", b"a"),
    )


def test_explicit_tokens_for_other_spellings() -> None:
    tok = fim_tokenizer(("<|endoftext|>", "[PFX]", "[SFX]", "[MID]"))
    ids = {t.content: t.id for t in tok.added_tokens}
    with pytest.raises(UsageError):
        fim_tokens(tok)
    toks = FimTokens(ids["[PFX]"], ids["[SFX]"], ids["[MID]"], (ids["<|endoftext|>"],))
    lm = FimDocLM(tok, toks, seed=4)
    lp = fim_next_byte_logprobs(lm, tok, b"s aa", b"", tokens=toks)
    head, tail = split_prefix(tok, b"s aa")
    _assert_same(lp, support_brute_force(lm.lm_for(_context(tok, toks, head, b"")), tok, tail))
    assert len(fim(lm, tok, b"s aa", b"", 4, tokens=toks)) <= 4


# --------------------------------------------------------------------- bad input


def test_bad_input(tok, toks, doc_lm) -> None:
    plain_tok = toy_tokenizer()
    with pytest.raises(UsageError) as err:
        fim(doc_lm, plain_tok, b"a", b"")
    msg = str(err.value)
    assert "has no FIM tokens" in msg and "<|fim_prefix|>" in msg and "\n" not in msg
    for method in (fim, fim_token_prompting, fim_token_healing, fim_next_byte_logprobs):
        with pytest.raises(UsageError):
            method(doc_lm, tok, "s a", b"")  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            method(doc_lm, tok, b"s a", "")  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            method(object(), tok, b"s a", b"")  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            method(doc_lm, tok, b"s a", b"", tokens=FimTokens(1, 2, 10_000))
    with pytest.raises(UsageError):
        fim(doc_lm, tok, b"s a", b"", backoff="word")
    with pytest.raises(UsageError):
        fim(doc_lm, tok, b"s a", b"", backoff=4)
    with pytest.raises(UsageError):
        fim(doc_lm, tok, b"s a", b"", top_p=0.0)
    with pytest.raises(UsageError):
        fim_token_prompting(doc_lm, tok, b"s a", b"", max_bytes=-1)
    with pytest.raises(UsageError):
        fim_next_byte_logprobs(doc_lm, tok, b"s a", b"", method="beam")
    with pytest.raises(UsageError):
        fim_next_byte_logprobs(doc_lm, tok, b"s a", b"", b"a", method="plain")
    with pytest.raises(UsageError, match="probability zero"):
        fim(doc_lm, tok, b"s ax", b"")  # no middle of this model starts with " ax"


# --------------------------------------------------------------------- a transformers model


@pytest.fixture(scope="module")
def hf_lm(tok):
    torch = pytest.importorskip("torch", reason="torch is not installed (toknz[bytelm])")
    transformers = pytest.importorskip("transformers", reason="toknz[bytelm] is not installed")
    from toknz.bytelevel import HFCausalLM

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        vocab_size=tok.n_vocab,
        n_positions=64,
        initializer_range=0.3,  # peaked next-token distributions
        bos_token_id=0,
        eos_token_id=0,
    )
    return HFCausalLM(transformers.GPT2LMHeadModel(config))


@pytest.mark.parametrize(
    ("prefix", "suffix", "middle"),
    [(b"s aa", b" s", b""), (b"as a", b"1", b"s"), ("a é".encode()[:3], b"", b"")],
)
def test_transformers_exact_matches_brute_force(
    tok, toks, hf_lm, prefix: bytes, suffix: bytes, middle: bytes
) -> None:
    got = fim_next_byte_logprobs(hf_lm, tok, prefix, suffix, middle, mode="all")
    head, tail = split_prefix(tok, prefix)
    want = cover_brute_force(
        hf_lm, tok, _context(tok, toks, head, suffix), toks.stop_ids, tail + middle
    )
    _assert_same(got, want)
    canonical = fim_next_byte_logprobs(hf_lm, tok, prefix, suffix, middle)
    assert np.exp(canonical).sum() == pytest.approx(1.0, abs=1e-12)


def test_transformers_end_to_end(tok, toks, hf_lm) -> None:
    prefix, suffix = b"s aa", b" s"
    out = fim(hf_lm, tok, prefix, suffix, max_bytes=5)
    assert out == fim(hf_lm, tok, prefix, suffix, max_bytes=5)
    so_far = b""
    for b in out:
        assert int(np.argmax(fim_next_byte_logprobs(hf_lm, tok, prefix, suffix, so_far))) == b
        so_far += bytes([b])
    plain = fim_token_prompting(hf_lm, tok, prefix, suffix, max_bytes=5)
    assert plain == fim_token_prompting(hf_lm, tok, prefix, suffix, max_bytes=5)
    assert len(plain) <= 5
    healed = fim_token_healing(hf_lm, tok, prefix, suffix, max_bytes=5)
    assert len(healed) <= 5
    # The prefix ends inside a word (" aa" is [" a", "a"]): both baselines' first-byte
    # distributions differ from the exact one on this model.
    exact = fim_next_byte_logprobs(hf_lm, tok, prefix, suffix)
    for method in ("plain", "healing"):
        other = fim_next_byte_logprobs(hf_lm, tok, prefix, suffix, method=method)
        assert total_variation(exact, other) > 0.05, method
    # The plain baseline's first byte: every first token, by its first byte.
    ctx = [
        toks.prefix,
        *tok.encode_ordinary(prefix.decode()),
        toks.suffix,
        *tok.encode_ordinary(suffix.decode()),
        toks.middle,
    ]
    _assert_same(
        fim_next_byte_logprobs(hf_lm, tok, prefix, suffix, method="plain"),
        cover_brute_force(hf_lm, tok, ctx, toks.stop_ids, b""),
    )
