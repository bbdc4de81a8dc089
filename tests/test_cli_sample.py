"""`toknz sample` and `toknz.bytelevel.loading`: tiny random transformers models saved to disk.

Two tiny causal LMs with different vocabularies are saved as ``transformers``
folders (config, safetensors weights, a toknz-trained ``tokenizer.json``): a
GPT-2 whose tokenizer has Qwen-style FIM tokens, and a Llama without them.
The command's output must equal what the library gives in Python for the same
model and seed (sampling, greedy, FIM, ensembles, bits per byte); bad input
must give one line on stderr and a non-zero exit. The real SmolLM2 test runs
only where ``toknz fetch smollm2-135m`` has converted it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from toknz.cli import main
from toknz.errors import InputError, UsageError
from toknz.train import train_from_counts

torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'toknz[bytelm]')")
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'toknz[bytelm]')"
)

from toknz.bytelevel import (  # noqa: E402
    ByteEnsemble,
    ByteLM,
    HFCausalLM,
    bits_per_byte,
    fim,
)
from toknz.bytelevel.loading import load_model, model_cache_dir, stream_sample  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIM_SPECIALS = ("<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
PROMPT = "a sé 1"


def _tokenizer(counts: dict[bytes, int], n_merges: int, specials: tuple[str, ...]) -> Any:
    return train_from_counts(
        counts, vocab_size=256 + n_merges + len(specials), special_tokens=specials
    )


def _save(folder: Path, tok: Any, model: Any) -> Path:
    folder.mkdir(parents=True)
    model.save_pretrained(folder)
    tok.save(folder / "tokenizer.json")
    return folder


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory) -> tuple[Path, Any, Any]:
    """A tiny GPT-2 over a byte-level BPE with FIM tokens: (folder, tokenizer, model)."""
    counts = {b"as": 50, b" as": 40, b"aas": 20, b" a": 30, b"sa": 12, b"11": 10}
    counts.update({"éé".encode(): 8, " é".encode(): 7, b"'s": 6})
    tok = _tokenizer(counts, 12, FIM_SPECIALS)
    eot = tok.special_tokens["<|endoftext|>"]
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=1,
        n_head=2,
        n_embd=32,
        vocab_size=tok.n_vocab,
        n_positions=512,
        initializer_range=0.3,
        bos_token_id=eot,
        eos_token_id=eot,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    return _save(tmp_path_factory.mktemp("models") / "gpt2", tok, model), tok, model


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> tuple[Path, Any, Any]:
    """A tiny Llama over another byte-level BPE (GPT-2 split, no FIM tokens)."""
    counts = {b" sea": 30, b" see": 25, b"as": 20, b"11": 9, b" 1": 8, "é".encode(): 5}
    tok = train_from_counts(
        counts, vocab_size=256 + 9 + 1, pattern="gpt2", special_tokens=("<|endoftext|>",)
    )
    eot = tok.special_tokens["<|endoftext|>"]
    torch.manual_seed(1)
    config = transformers.LlamaConfig(
        vocab_size=tok.n_vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        initializer_range=0.3,
        bos_token_id=eot,
        eos_token_id=eot,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    return _save(tmp_path_factory.mktemp("models") / "llama", tok, model), tok, model


def _byte_lm(tok: Any, model: Any, **options: Any) -> ByteLM:
    """The reference: ByteLM over the in-memory model, <|endoftext|> first and last."""
    eot = tok.special_tokens["<|endoftext|>"]
    options.setdefault("stop_ids", [eot])
    return ByteLM(HFCausalLM(model, bos_id=eot), tok, **options)


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def _run(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(main, ["sample", *args])


def _assert_one_line_error(result: Any, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("toknz: error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --------------------------------------------------------------------- loading


def test_load_model_folder(gpt2) -> None:
    folder, tok, _ = gpt2
    loaded = load_model(folder)
    eot = tok.special_tokens["<|endoftext|>"]
    assert loaded.name == "gpt2"
    assert loaded.bos_id == eot and loaded.stop_ids == (eot,)
    assert loaded.tokenizer.n_vocab == tok.n_vocab
    assert loaded.token_lm.bos_id == eot
    assert not loaded.always_bos and loaded.context_lm.bos_id is None  # FIM prompts: no BOS
    assert loaded.context_lm.model is loaded.token_lm.model
    ids = tok.encode_ordinary(PROMPT)
    got = loaded.token_lm.next_token_logprobs([ids])[0]
    with torch.no_grad():
        logits = loaded.model(torch.tensor([[eot, *ids]])).logits[0, -1].double()
    np.testing.assert_allclose(got, torch.log_softmax(logits, -1).numpy(), atol=1e-9)


def test_load_model_by_name_honours_toknz_cache(gpt2, tmp_path: Path, monkeypatch) -> None:
    folder, tok, model = gpt2
    monkeypatch.setenv("TOKNZ_CACHE", str(tmp_path))
    with pytest.raises(UsageError, match=r"run `toknz fetch smollm2-135m`"):
        load_model("smollm2-135m")
    _save(tmp_path / "models" / "smollm2-135m" / "hf", tok, model)
    assert model_cache_dir("smollm2-135m") == tmp_path / "models" / "smollm2-135m"
    loaded = load_model("smollm2-135m")
    assert loaded.name == "smollm2-135m"
    want = _byte_lm(tok, model).sample(b"as", 6, seed=5)
    assert loaded.byte_lm().sample(b"as", 6, seed=5) == want


def test_stream_sample_equals_library_sampling(gpt2) -> None:
    _, tok, model = gpt2
    blm = _byte_lm(tok, model)
    prompt = PROMPT.encode()
    for options in ({"seed": 1}, {"seed": 2, "top_k": 5}, {"seed": 3, "top_p": 0.8}):
        want = blm.sample(prompt, 10, **options)
        assert bytes(stream_sample(blm, prompt, 10, **options)) == want
    greedy = blm.greedy(prompt, 10)
    assert bytes(stream_sample(blm, prompt, 10, temperature=0.0)) == greedy
    with pytest.raises(UsageError):
        stream_sample(blm, prompt, 10, seed=-1)
    with pytest.raises(UsageError):
        stream_sample(blm, "text", 10)  # type: ignore[arg-type]


# --------------------------------------------------------------------- sampling


def test_sample_is_seeded_and_equals_byte_lm(runner: CliRunner, gpt2) -> None:
    folder, tok, model = gpt2
    args = [str(folder), PROMPT, "--max-bytes", "12", "--seed", "7", "--bytes"]
    first = _run(runner, *args)
    assert first.exit_code == 0, first.output
    second = _run(runner, *args)
    assert first.stdout_bytes == second.stdout_bytes
    want = _byte_lm(tok, model).sample(PROMPT.encode(), 12, seed=7)
    assert first.stdout_bytes == want
    other = _run(runner, *args[:-3], "--seed", "8", "--bytes")
    assert other.stdout_bytes == _byte_lm(tok, model).sample(PROMPT.encode(), 12, seed=8)


def test_greedy_equals_byte_lm_greedy(runner: CliRunner, gpt2) -> None:
    folder, tok, model = gpt2
    want = _byte_lm(tok, model).greedy(PROMPT.encode(), 16)
    assert want  # the tiny model does not end the text at once
    raw = _run(runner, str(folder), PROMPT, "--temperature", "0", "--max-bytes", "16", "--bytes")
    assert raw.exit_code == 0, raw.output
    assert raw.stdout_bytes == want
    text = _run(runner, str(folder), PROMPT, "--temperature", "0", "--max-bytes", "16")
    assert text.exit_code == 0, text.output
    assert text.stdout == want.decode("utf-8", "replace")


def test_stop_strings_and_prompt_file(runner: CliRunner, gpt2, tmp_path: Path) -> None:
    folder, tok, model = gpt2
    blm = _byte_lm(tok, model)
    full = blm.sample(PROMPT.encode(), 20, seed=11)
    stop = full[3:5]  # a byte pair the sample holds: it must stop at its first occurrence
    want = blm.sample(PROMPT.encode(), 20, seed=11, stop=[stop])
    assert len(full) == 20 and want == full[: full.find(stop) + 2]
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_bytes(PROMPT.encode())
    args = ["--prompt-file", str(prompt_file), "--max-bytes", "20", "--seed", "11", "--bytes"]
    got = _run(runner, str(folder), *args, "--stop", os.fsdecode(stop))
    assert got.exit_code == 0, got.output
    assert got.stdout_bytes == want


def test_subprocess_console_entry(gpt2, runner: CliRunner) -> None:
    folder, tok, model = gpt2
    args = ["sample", str(folder), PROMPT, "--max-bytes", "8", "--seed", "3", "--stats"]
    proc = subprocess.run(
        [sys.executable, "-m", "toknz.cli", *args], capture_output=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr.decode()
    want = _byte_lm(tok, model).sample(PROMPT.encode(), 8, seed=3)
    assert proc.stdout == want.decode("utf-8", "replace").encode("utf-8")
    assert re.search(rb"model evaluations .* forward passes", proc.stderr), proc.stderr
    assert b"s/byte" in proc.stderr


# --------------------------------------------------------------------- FIM, ensembles, scores


def test_fim_equals_library_fim(runner: CliRunner, gpt2, tmp_path: Path) -> None:
    folder, tok, model = gpt2
    lm = HFCausalLM(model)  # no BOS before the FIM prompt: the tokenizer adds none
    prefix, suffix = b"as sa", b" 11"
    for temperature, seed in ((0.0, None), (1.0, 4)):
        want = fim(lm, tok, prefix, suffix, 10, temperature=temperature, seed=seed)
        args = ["--fim-suffix", suffix.decode(), "--max-bytes", "10", "--bytes"]
        args += ["--temperature", str(temperature)] + (["--seed", str(seed)] if seed else [])
        got = _run(runner, str(folder), prefix.decode(), *args)
        assert got.exit_code == 0, got.output
        assert got.stdout_bytes == want
    suffix_file = tmp_path / "suffix.txt"
    suffix_file.write_bytes(suffix)
    args = ["--fim-suffix-file", str(suffix_file), "--temperature", "0", "--max-bytes", "10"]
    got = _run(runner, str(folder), prefix.decode(), *args, "--bytes")
    assert got.stdout_bytes == fim(lm, tok, prefix, suffix, 10)
    for temperature, seed in ((0.0, None), (1.0, 5)):
        want = fim(
            lm,
            tok,
            prefix,
            suffix,
            10,
            temperature=temperature,
            seed=seed,
            suffix_backoff="pretoken",
        )
        args = ["--fim-suffix", suffix.decode(), "--fim-join", "--max-bytes", "10", "--bytes"]
        args += ["--temperature", str(temperature)] + (["--seed", str(seed)] if seed else [])
        got = _run(runner, str(folder), prefix.decode(), *args)
        assert got.exit_code == 0, got.output
        assert got.stdout_bytes == want
    got = _run(runner, str(folder), prefix.decode(), "--fim-join")
    assert got.exit_code != 0 and "--fim-join" in got.output and got.output.count("\n") == 1


def test_fim_without_fim_tokens_is_one_line(runner: CliRunner, llama) -> None:
    folder, _, _ = llama
    result = _run(runner, str(folder), "as", "--fim-suffix", " 1")
    _assert_one_line_error(result, 2, "FIM tokens", "llama")


def test_ensemble_of_two_vocabularies_equals_python(runner: CliRunner, gpt2, llama) -> None:
    (fa, ta, ma), (fb, tb, mb) = gpt2, llama
    assert ta.n_vocab != tb.n_vocab
    members = [_byte_lm(ta, ma), _byte_lm(tb, mb)]
    prompt = b"as 1"
    want = ByteEnsemble(members, [0.7, 0.3]).sample(prompt, 10, seed=9)
    args = [str(fa), prompt.decode(), "--ensemble", str(fb), "--weight", "0.7", "--weight", "0.3"]
    got = _run(runner, *args, "--max-bytes", "10", "--seed", "9", "--bytes")
    assert got.exit_code == 0, got.output
    assert got.stdout_bytes == want
    product = ByteEnsemble(members, [1.0, 0.5], mode="product").greedy(prompt, 10)
    args = [str(fa), prompt.decode(), "--ensemble", str(fb), "--mode", "product"]
    args += ["--weight", "1", "--weight", "0.5", "--temperature", "0", "--max-bytes", "10"]
    got = _run(runner, *args, "--bytes")
    assert got.exit_code == 0, got.output
    assert got.stdout_bytes == product


def _score(result: Any) -> float:
    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"(\S+) bits/byte\t(\d+) bytes\t.*\n", result.stdout)
    assert match, result.stdout
    return float(match.group(1))


def test_score_equals_bits_per_byte(runner: CliRunner, gpt2, llama, tmp_path: Path) -> None:
    (fa, ta, ma), (fb, tb, mb) = gpt2, llama
    text = "as sa éé 11 's".encode()
    path = tmp_path / "score.txt"
    path.write_bytes(text)
    want = bits_per_byte(_byte_lm(ta, ma), text)
    assert 0 < want < 64
    assert _score(_run(runner, str(fa), "--score", str(path))) == pytest.approx(want, abs=2e-6)
    members = [_byte_lm(ta, ma), _byte_lm(tb, mb)]
    want_mix = bits_per_byte(ByteEnsemble(members), text)
    got = _score(_run(runner, str(fa), "--ensemble", str(fb), "--score", str(path)))
    assert got == pytest.approx(want_mix, abs=2e-6)
    assert got != pytest.approx(want, abs=1e-3)


# --------------------------------------------------------------------- bad input


def test_missing_model_path(runner: CliRunner, tmp_path: Path) -> None:
    _assert_one_line_error(_run(runner, str(tmp_path / "nowhere"), "x"), 2, "nowhere")


def test_encoder_only_config_is_refused(runner: CliRunner, gpt2, tmp_path: Path) -> None:
    _, tok, _ = gpt2
    folder = tmp_path / "bert"
    config = transformers.BertConfig(
        vocab_size=tok.n_vocab,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    _save(folder, tok, transformers.BertForMaskedLM(config))
    line = _assert_one_line_error(_run(runner, str(folder), "x"), 2, "config.json", "'bert'")
    assert "encoder" in line
    with pytest.raises(UsageError, match="encoder"):
        load_model(folder)


def test_folder_without_config_or_tokenizer(gpt2, tmp_path: Path, runner: CliRunner) -> None:
    folder, tok, model = gpt2
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_one_line_error(_run(runner, str(empty), "x"), 1, "no config.json")
    no_tok = tmp_path / "no_tok"
    model.save_pretrained(no_tok)
    _assert_one_line_error(_run(runner, str(no_tok), "x"), 1, "no tokenizer.json")
    no_weights = tmp_path / "no_weights"
    model.config.save_pretrained(no_weights)
    tok.save(no_weights / "tokenizer.json")
    with pytest.raises(InputError, match="weights"):
        load_model(no_weights)


def test_tokenizer_larger_than_model_vocabulary(gpt2, tmp_path: Path) -> None:
    _, tok, _ = gpt2
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=100)
    _save(tmp_path / "small", tok, transformers.GPT2LMHeadModel(config))
    with pytest.raises(UsageError, match="scores only 100 tokens"):
        load_model(tmp_path / "small")


def test_gguf_files_checked_before_loading(tmp_path: Path, runner: CliRunner) -> None:
    gguf = pytest.importorskip("gguf")
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file at all")
    _assert_one_line_error(_run(runner, str(fake), "x"), 2, "not a GGUF file")
    bert = tmp_path / "bert.gguf"
    writer = gguf.GGUFWriter(str(bert), "bert")
    writer.add_tensor("token_embd.weight", np.zeros((4, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    _assert_one_line_error(_run(runner, str(bert), "x"), 2, "architecture 'bert'", "encoder")


def test_prompt_not_utf8(runner: CliRunner, gpt2, tmp_path: Path) -> None:
    folder, tok, model = gpt2
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"as\nsa \xff\xfe tail")
    result = _run(runner, str(folder), "--prompt-file", str(bad))
    _assert_one_line_error(result, 1, str(bad), "line 2", "byte offset 6", "--bytes")
    args = ["--prompt-file", str(bad), "--bytes", "--max-bytes", "6", "--seed", "2"]
    raw = _run(runner, str(folder), *args)
    assert raw.exit_code == 0, raw.output
    assert raw.stdout_bytes == _byte_lm(tok, model).sample(bad.read_bytes(), 6, seed=2)


def test_option_conflicts_are_usage_errors(runner: CliRunner, gpt2, tmp_path: Path) -> None:
    folder = str(gpt2[0])
    (tmp_path / "p.txt").write_text("as")
    cases = [
        ([folder, "a", "--prompt-file", str(tmp_path / "p.txt")], "not both"),
        ([folder, "a", "--weight", "1"], "--ensemble"),
        ([folder, "a", "--ensemble", folder, "--weight", "1"], "one per model"),
        ([folder, "a", "--score", str(tmp_path / "p.txt")], "--score"),
        ([folder, "a", "--fim-suffix", "b", "--ensemble", folder], "one model"),
    ]
    for args, needle in cases:
        _assert_one_line_error(_run(runner, *args), 2, needle)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    _assert_one_line_error(_run(runner, folder, "--score", str(empty)), 2, "empty")


def test_unusable_device_is_one_line(runner: CliRunner, gpt2) -> None:
    folder = str(gpt2[0])
    _assert_one_line_error(_run(runner, folder, "a", "--device", "warp9"), 2, "warp9")
    if not torch.cuda.is_available():
        _assert_one_line_error(_run(runner, folder, "a", "--device", "cuda"), 2, "'cuda'")


# --------------------------------------------------------------------- a real model


def test_real_smollm2_loads_and_samples() -> None:
    folder = model_cache_dir("smollm2-135m") / "hf"
    if not (folder / "config.json").exists():
        pytest.skip("smollm2-135m is not converted: run `toknz fetch smollm2-135m`")
    loaded = load_model("smollm2-135m")
    tok = loaded.tokenizer
    assert loaded.bos_id == tok.special_tokens["<|endoftext|>"]
    assert tok.special_tokens["<|im_end|>"] in loaded.stop_ids
    out = loaded.byte_lm().greedy(b"1, 2, 3, 4,", 8)
    assert len(out) == 8 and out.startswith(b" 5, 6"), out
