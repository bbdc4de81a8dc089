"""Round trips: text -> ids -> text, any ids -> bytes, and toknz -> file -> toknz / tokenizers / tiktoken.

What ``decode(encode(s))`` gives back depends on the file, and is asserted exactly:

- byte-level files without a normalizer give ``s`` back;
- qwen3 (NFC) and claude (NFKC) give the normalized text (as ``tokenizers``' own
  normalizer computes it) when ``s`` holds no added-token string;
- llama2 and gemma3 spell spaces as ``▁`` and decode every ``▁`` as a space, so
  a ``▁`` in the input comes back as a space; llama2 prepends ``▁`` to each text
  segment and its decoder strips one leading space of the whole output only, so
  text after a special token comes back with one space in front.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from helpers import ALL_NAMES, TIKTOKEN_NAMES, corpus_files, sample_chunks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import texts

import toknz

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

IDENTITY = {
    *TIKTOKEN_NAMES,
    "gpt2-hf",
    "llama3",
    "llama3_1",
    "gpt4o",
    "gpt35turbo",
    "gptoss",
    "deepseek_v3",
}
NORMALIZING = {"qwen3", "claude"}
METASPACE = {"llama2", "gemma3"}
assert IDENTITY | NORMALIZING | METASPACE == set(ALL_NAMES)


def _sample_texts() -> list[str]:
    out = [text for p in corpus_files()[::3] for _, text in sample_chunks(p, 1)]
    return out + [
        "",
        " ",
        "Hello world! It's 2024 \u2014 \u00fcn\u00efc\u00f8d\u00e9 \u4e2d\u6587 \n\n  x",
        "<|endoftext|> <s>hi</s> <|begin_of_text|> <bos> <|im_start|> <think>",
        "\U0001f9d1\U0001f3ff\u200d\U0001f4bb e\u0301 \u01c5 \u0661\u0662 " + " " * 70 + "a" * 120,
    ]


# ------------------------------------------------------------------ text -> ids -> text


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_decode_encode_is_identity(name: str, toknz_tok: Any) -> None:
    tok = toknz_tok(name)

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        assert tok.decode(tok.encode(text, allowed_special="all")) == text
        assert tok.decode(tok.encode_ordinary(text)) == text
        assert tok.decode_bytes(tok.encode_ordinary(text)) == text.encode("utf-8")

    check()


@pytest.mark.parametrize("name", sorted(NORMALIZING))
def test_decode_encode_gives_normalized_text(name: str, toknz_tok: Any, hf_tok: Any) -> None:
    tok = toknz_tok(name)
    normalizer = hf_tok(name).normalizer  # NFC (qwen3) or NFKC (claude), as tokenizers applies it
    added = [t.content for t in tok.added_tokens]

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        if any(a in text for a in added):
            return
        want = normalizer.normalize_str(text)
        assert tok.decode(tok.encode(text, allowed_special="all")) == want
        assert tok.decode(tok.encode_ordinary(text)) == want

    check()
    # unchanged text comes back unchanged; changed text comes back normalized
    assert tok.decode(tok.encode("e\u0301")) == "\u00e9"
    assert tok.decode(tok.encode("\u2126")) == "\u03a9"
    fi = tok.decode(tok.encode("\ufb01"))
    assert fi == ("fi" if name == "claude" else "\ufb01")


@pytest.mark.parametrize("name", sorted(METASPACE))
def test_decode_encode_metaspace(name: str, toknz_tok: Any) -> None:
    tok = toknz_tok(name)

    @SETTINGS
    @given(texts())
    def check(text: str) -> None:
        assert tok.decode(tok.encode_ordinary(text)) == text.replace("\u2581", " ")

    check()


def test_decode_encode_llama2_specials(toknz_tok: Any) -> None:
    tok = toknz_tok("llama2")
    # each text segment gets its own "▁" prefix; only the first one is stripped on decode
    assert tok.decode(tok.encode("a<s>b", allowed_special="all")) == "a<s> b"
    assert tok.decode(tok.encode("<s>b", allowed_special="all")) == "<s> b"
    assert tok.decode(tok.encode(" x", allowed_special="all")) == " x"
    assert tok.decode(tok.encode("", allowed_special="all")) == ""
    assert tok.decode(tok.encode("hi", add_special_tokens=True)) == "<s> hi"
    assert tok.decode(tok.encode("hi", add_special_tokens=True), skip_special_tokens=True) == "hi"


def test_decode_encode_gemma3_specials(toknz_tok: Any) -> None:
    tok = toknz_tok("gemma3")
    assert (
        tok.decode(tok.encode("a<bos>b <mask>\n\n\n", allowed_special="all"))
        == "a<bos>b <mask>\n\n\n"
    )
    assert tok.decode(tok.encode("hi", add_special_tokens=True)) == "<bos>hi"


# ------------------------------------------------------------------ any ids -> bytes


@pytest.mark.parametrize("name", ALL_NAMES)
def test_decode_bytes_never_raises_in_range(name: str, toknz_tok: Any) -> None:
    tok = toknz_tok(name)
    n = tok.n_vocab
    ids_st = st.lists(
        st.one_of(st.integers(0, n - 1), st.integers(0, 300), st.sampled_from([0, n - 1])),
        max_size=40,
    )

    # Unused ids: refused in a rank file's tokenizer, as tiktoken refuses them ('' in
    # tokenizers, so a tokenizer.json one decodes them to nothing).
    holes = {i for i in range(n) if tok.id_to_token(i) is None}
    if tok.model.merge_rule != "ranks":
        holes = set()

    @SETTINGS
    @given(ids_st)
    def check(ids: list[int]) -> None:
        if holes.intersection(ids):
            with pytest.raises(toknz.InputError, match="is unused"):
                tok.decode_bytes(ids)
            ids = [i for i in ids if i not in holes]
        data = tok.decode_bytes(ids)
        assert isinstance(data, bytes)
        assert isinstance(tok.decode(ids), str)
        assert isinstance(tok.decode_bytes(ids, skip_special_tokens=True), bytes)
        pieces = tok.decode_tokens_bytes(ids)
        assert len(pieces) == len(ids)
        if name not in METASPACE:  # no decoder step works on the whole sequence
            assert b"".join(pieces) == data

    check()


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_decode_bytes_equal_tiktoken(name: str, toknz_tok: Any, tiktoken_enc: Any) -> None:
    tok, enc = toknz_tok(name), tiktoken_enc(name)
    valid = set(enc._mergeable_ranks.values()) | set(enc._special_tokens.values())

    @SETTINGS
    @given(st.lists(st.integers(0, tok.n_vocab - 1), max_size=30))
    def check(ids: list[int]) -> None:
        # ids tiktoken does not know (unused ranks such as cl100k's 100256) are refused, as
        # tiktoken refuses them
        if not valid.issuperset(ids):
            with pytest.raises(toknz.InputError, match="is unused"):
                tok.decode_bytes(ids)
            with pytest.raises(KeyError):
                enc.decode_bytes(ids)
            ids = [i for i in ids if i in valid]
        want = b"".join(enc.decode_single_token_bytes(i) for i in ids)
        assert tok.decode_bytes(ids) == want
        assert tok.decode([i for i in ids if i in valid]) == enc.decode(
            [i for i in ids if i in valid]
        )

    check()


@pytest.mark.parametrize("name", ALL_NAMES)
def test_out_of_range_ids_raise(name: str, toknz_tok: Any) -> None:
    tok = toknz_tok(name)
    n = tok.n_vocab
    for ids, pos, bad in [
        ([-1], 0, -1),
        ([n], 0, n),
        ([0, 1, n + 10**6], 2, n + 10**6),
        ([5, -7], 1, -7),
    ]:
        msg = rf"token id {bad} at position {pos} is outside the vocabulary \(0\.\.{n - 1}\)"
        with pytest.raises(toknz.ToknzError, match=msg):
            tok.decode_bytes(ids)
        with pytest.raises(toknz.ToknzError, match=msg):
            tok.decode(ids)
        with pytest.raises(toknz.ToknzError, match=msg):
            tok.decode_tokens_bytes(ids)
    with pytest.raises(toknz.ToknzError, match="outside the vocabulary"):
        tok.decode_single_token_bytes(n)
    with pytest.raises(toknz.ToknzError, match="outside the vocabulary"):
        tok.decode([2**70])


# ------------------------------------------------------------------ toknz -> file -> readers

_SAVED: dict[str, Path] = {}


@pytest.fixture(scope="module")
def saved_json(tmp_path_factory: pytest.TempPathFactory, toknz_tok: Any) -> Any:
    """``saved_json(name)``: the path of ``toknz_tok(name).save(.../tokenizer.json)``, written once."""

    def get(name: str) -> Path:
        if name not in _SAVED:
            path = tmp_path_factory.mktemp(name) / "tokenizer.json"
            toknz_tok(name).save(path)
            _SAVED[name] = path
        return _SAVED[name]

    return get


WRITE_JSON_NAMES = ["cl100k_base", "o200k_base", "llama3", "llama2", "gemma3"]


@pytest.mark.parametrize("name", WRITE_JSON_NAMES)
def test_written_json_loads_in_tokenizers(name: str, toknz_tok: Any, saved_json: Any) -> None:
    import tokenizers

    tok = toknz_tok(name)
    ref = tokenizers.Tokenizer.from_file(str(saved_json(name)))
    assert ref.get_added_tokens_decoder().keys() == {t.id for t in tok.added_tokens}
    for text in _sample_texts():
        ids = tok.encode(text, allowed_special="all")
        assert ref.encode(text, add_special_tokens=False).ids == ids, text[:200]
        with_special = tok.encode(text, allowed_special="all", add_special_tokens=True)
        assert ref.encode(text, add_special_tokens=True).ids == with_special, text[:200]
        assert ref.decode(with_special, skip_special_tokens=False) == tok.decode(with_special)

    @settings(SETTINGS, max_examples=40)
    @given(texts())
    def check(text: str) -> None:
        assert ref.encode(text, add_special_tokens=False).ids == tok.encode(
            text, allowed_special="all"
        )

    check()


@pytest.mark.parametrize("name", WRITE_JSON_NAMES)
def test_written_json_reloads_in_toknz(name: str, toknz_tok: Any, saved_json: Any) -> None:
    tok = toknz_tok(name)
    again = toknz.Tokenizer.from_file(saved_json(name))
    assert again.n_vocab == tok.n_vocab
    assert again.special_tokens == tok.special_tokens
    for text in _sample_texts():
        assert again.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")
        assert again.encode_ordinary(text) == tok.encode_ordinary(text)
        ids = tok.encode(text, allowed_special="all", add_special_tokens=True)
        assert again.encode(text, allowed_special="all", add_special_tokens=True) == ids
        assert again.decode(ids) == tok.decode(ids)


@pytest.mark.parametrize(
    "name",
    [
        n if n in ("cl100k_base", "llama2") else pytest.param(n, marks=pytest.mark.slow)
        for n in WRITE_JSON_NAMES
    ],
)
def test_rewritten_json_is_byte_identical(name: str, saved_json: Any) -> None:
    """Reading toknz's own tokenizer.json and writing it again gives the same bytes."""
    again = toknz.Tokenizer.from_file(saved_json(name))
    second = saved_json(name).with_name("second.json")
    again.save(second)
    assert second.read_bytes() == saved_json(name).read_bytes()


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_written_rank_file_is_the_original(name: str, toknz_tok: Any, tmp_path: Path) -> None:
    from conftest import require_file

    out = tmp_path / f"{name}.tiktoken"
    toknz_tok(name).save(out)
    assert (
        hashlib.sha256(out.read_bytes()).digest()
        == hashlib.sha256(require_file(name).read_bytes()).digest()
    )


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base", "llama3"])
def test_written_rank_file_loads_in_tiktoken(name: str, toknz_tok: Any, tmp_path: Path) -> None:
    import tiktoken
    import tiktoken.load

    tok = toknz_tok(name)
    out = tmp_path / "x.tiktoken"
    tok.save(out)
    pattern = tok.pattern or tok.pre_tokenizer.steps[0].pattern  # llama3: its Split regex
    enc = tiktoken.Encoding(
        name=f"saved-{name}",
        pat_str=pattern,
        mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(out)),
        special_tokens=tok.special_tokens,
    )
    again = toknz.Tokenizer.from_file(out, pattern=pattern, special_tokens=tok.special_tokens)
    for text in _sample_texts():
        ids = tok.encode(text, allowed_special="all")
        assert enc.encode(text, allowed_special="all") == ids, text[:200]
        assert again.encode(text, allowed_special="all") == ids, text[:200]
        assert enc.decode_bytes(ids) == tok.decode_bytes(ids)

    @settings(SETTINGS, max_examples=40)
    @given(texts())
    def check(text: str) -> None:
        ids = tok.encode(text, allowed_special="all")
        assert enc.encode(text, allowed_special="all") == ids
        assert again.encode(text, allowed_special="all") == ids

    check()


def test_rank_file_needs_a_byte_level_model(toknz_tok: Any, tmp_path: Path) -> None:
    with pytest.raises(toknz.UsageError, match="only byte-level tokenizers"):
        toknz_tok("llama2").save(tmp_path / "x.tiktoken")
    assert not (tmp_path / "x.tiktoken").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_unknown_save_format(toknz_tok: Any, tmp_path: Path) -> None:
    with pytest.raises(toknz.UsageError, match="unknown format 'yaml'"):
        toknz_tok("cl100k_base").save(tmp_path / "x", format="yaml")
