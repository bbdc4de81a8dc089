"""BPE training: identical merges and vocabulary to the `tokenizers` BpeTrainer, determinism, robustness."""

from __future__ import annotations

import collections
import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import regex
from click.testing import CliRunner

import toknz
from toknz.cli import main
from toknz.pipeline.byte_alphabet import bytes_to_chars
from toknz.pipeline.pretokenize import PATTERNS
from toknz.train import TrainReport, save_trained, train, train_from_counts
from toknz.train.trainer import byte_alphabet_order, learn_merges

REPO = Path(__file__).resolve().parents[1]
CORPORA = {
    "prose": REPO / "corpora/en/austen_emma.txt",
    "code": REPO / "corpora/code/python_stdlib.txt",
    "multilingual": REPO / "corpora/multi/ja.txt",
}


def hf_train(
    word_counts: dict[bytes, int],
    vocab_size: int,
    *,
    min_frequency: int = 0,
    specials: tuple[str, ...] = (),
):
    """Train `tokenizers`' BpeTrainer on exactly these words (one word per sequence)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def sequences():
        for word, count in word_counts.items():
            text = word.decode("utf-8")
            for _ in range(count):
                yield text

    tok.train_from_iterator(sequences(), trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def word_counts_of(path: Path, n_chars: int, pattern: str = "cl100k") -> dict[bytes, int]:
    text = path.read_text(encoding="utf-8")[:n_chars]
    return dict(
        collections.Counter(w.encode("utf-8") for w in regex.findall(PATTERNS[pattern], text))
    )


def toknz_merges(word_counts: dict[bytes, int], vocab_size: int, **kwargs):
    result = learn_merges(word_counts, vocab_size, **kwargs)
    chars = [
        bytes_to_chars(t) if i >= result.n_special else t.decode()
        for i, t in enumerate(result.tokens)
    ]
    vocab = {c: i for i, c in enumerate(chars)}
    merges = [(chars[a], chars[b]) for a, b, _ in result.merges]
    return vocab, merges


@pytest.mark.parametrize("corpus", sorted(CORPORA))
@pytest.mark.parametrize("vocab_size", [300, 1200])
def test_identical_to_tokenizers_on_real_corpora(corpus: str, vocab_size: int) -> None:
    counts = word_counts_of(CORPORA[corpus], 120_000)
    mine_vocab, mine_merges = toknz_merges(counts, vocab_size)
    hf_vocab, hf_merges = hf_train(counts, vocab_size)
    first_diff = next(
        (i for i, (a, b) in enumerate(zip(mine_merges, hf_merges, strict=False)) if a != b), None
    )
    assert first_diff is None, (
        f"merge #{first_diff}: toknz {mine_merges[first_diff]} vs tokenizers {hf_merges[first_diff]}"
    )
    assert mine_merges == hf_merges
    assert mine_vocab == hf_vocab


@pytest.mark.parametrize("min_frequency", [2, 7])
def test_identical_with_min_frequency_and_specials(min_frequency: int) -> None:
    counts = word_counts_of(CORPORA["prose"], 60_000, "gpt2")
    specials = ("<|endoftext|>", "<pad>")
    mine = toknz_merges(counts, 5000, min_frequency=min_frequency, special_tokens=specials)
    theirs = hf_train(counts, 5000, min_frequency=min_frequency, specials=specials)
    assert mine[1] == theirs[1]
    assert mine[0] == theirs[0]
    assert len(mine[1]) < 5000 - 258  # min_frequency stopped it early


@pytest.mark.slow
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_identical_to_tokenizers_large(corpus: str) -> None:
    counts = word_counts_of(CORPORA[corpus], 10**7)
    mine = toknz_merges(counts, 8192)
    theirs = hf_train(counts, 8192)
    assert mine[1] == theirs[1]
    assert mine[0] == theirs[0]


def test_ids_follow_tokenizers_alphabet_order() -> None:
    order = byte_alphabet_order()
    assert order[0] == ord("!") and order[93] == ord("~")
    assert order[-1] == 0xAD  # the last byte remapped above U+0100
    assert sorted(order) == list(range(256))


def test_counts_beyond_32_bits_are_exact() -> None:
    # With 32-bit counts, 2**32 + 1 would wrap to 1 and lose to 100.
    result = learn_merges({b"ab": 2**32 + 1, b"cd": 100, b"xyxyxy": 5 * 2**33}, 300)
    pairs = [(result.tokens[a], result.tokens[b]) for a, b, _ in result.merges]
    assert pairs == [(b"x", b"y"), (b"xy", b"xy"), (b"xyxy", b"xy"), (b"a", b"b"), (b"c", b"d")]
    assert result.counts == [3 * 5 * 2**33, 2 * 5 * 2**33, 5 * 2**33, 2**32 + 1, 100]


def test_max_token_length_caps_tokens() -> None:
    counts = word_counts_of(CORPORA["prose"], 60_000)
    for limit in (2, 4):
        result = learn_merges(counts, 2000, max_token_length=limit)
        assert max(len(t) for t in result.tokens) == limit


def test_trained_tokenizer_encodes_like_tokenizers(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    tok = train(
        [str(CORPORA["code"]), str(CORPORA["prose"])],
        vocab_size=1000,
        special_tokens=["<|endoftext|>"],
        threads=1,
    )
    out = tmp_path / "tokenizer.json"
    tok.save(out)
    hf = Tokenizer.from_file(str(out))
    reloaded = toknz.Tokenizer.from_file(out)
    for path in CORPORA.values():
        text = path.read_text(encoding="utf-8")[:30_000]
        assert tok.encode(text) == hf.encode(text, add_special_tokens=False).ids
        assert reloaded.encode(text) == tok.encode(text)
        assert tok.decode(tok.encode(text)) == text
    assert tok.encode("<|endoftext|>", allowed_special="all") == [0]


def test_deterministic_across_threads(tmp_path: Path) -> None:
    files = [str(p) for p in CORPORA.values()]
    outputs = []
    for threads in (1, 2):
        tok = train(files, vocab_size=800, threads=threads)
        out = tmp_path / f"t{threads}.json"
        save_trained(tok, out)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_inputs_jsonl_gzip_folder_and_stdin_agree(tmp_path: Path) -> None:
    text = CORPORA["prose"].read_text(encoding="utf-8")[:40_000]
    paragraphs = [p for p in text.split("\n\n") if p]
    plain = tmp_path / "a.txt"
    plain.write_text("\n\n".join(paragraphs), encoding="utf-8")
    gz = tmp_path / "b.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("\n\n".join(paragraphs))
    folder = tmp_path / "dir"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "c.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    merges = []
    for source in (plain, gz, folder):
        tok = train([str(source)], vocab_size=600, threads=1)
        merges.append(tok.model.merges)
    assert merges[0] == merges[1] == merges[2]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"text": p, "id": i}) + "\n" for i, p in enumerate(paragraphs))
    )
    with pytest.raises(toknz.UsageError, match="--field"):
        train([str(jsonl)], vocab_size=600)
    with pytest.raises(toknz.InputError, match="no field 'body'"):
        train([str(jsonl)], vocab_size=600, field_name="body")
    tok = train([str(jsonl)], vocab_size=600, field_name="text", threads=1)
    assert len(tok.model.merges) > 0


def test_bad_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(toknz.InputError, match="no text"):
        train([str(empty)], vocab_size=600)
    with pytest.raises(toknz.UsageError, match="smaller than the byte alphabet"):
        train([str(CORPORA["prose"])], vocab_size=256, special_tokens=["<s>"])
    with pytest.raises(toknz.InputError, match="no such file"):
        train([str(tmp_path / "missing.txt")], vocab_size=600)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\nbad \xff line\nanother good line\n")
    with pytest.raises(toknz.InputError, match=r"bad\.txt, byte offset 14: invalid UTF-8"):
        train([str(bad)], vocab_size=300)
    report = TrainReport()
    tok = train([str(bad)], vocab_size=300, skip_invalid=True, report=report, threads=1)
    assert report.skipped_lines == 1
    assert tok.n_vocab >= 256


def test_cli_train_writes_tokenizer_and_report(tmp_path: Path) -> None:
    out = tmp_path / "tok.json"
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(CORPORA["prose"]),
            "-o",
            str(out),
            "--vocab-size",
            "700",
            "--special",
            "<|endoftext|>",
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "tok.json.report.json").read_text())
    assert report["vocab_size"] == 700 and report["input_bytes"] == CORPORA["prose"].stat().st_size
    assert set(report["seconds"]) >= {"counting", "merging", "writing", "total"}
    assert toknz.Tokenizer.from_file(out).n_vocab == 700
    tk = tmp_path / "tok.tiktoken"
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(CORPORA["prose"]),
            "-o",
            str(tk),
            "--vocab-size",
            "700",
            "--format",
            "tiktoken",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(tk.read_text().splitlines()) == 700


def test_cli_train_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["train", str(CORPORA["prose"]), "-o", str(tmp_path / "x.json"), "--vocab-size", "100"],
    )
    assert result.exit_code == 2
    assert "smaller than the byte alphabet" in result.stderr
    assert not (tmp_path / "x.json").exists()


def test_interrupted_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = train_from_counts({b"hello": 3, b" world": 2}, vocab_size=260)
    out = tmp_path / "tok.json"
    out.write_text("previous content")

    def boom(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        tok.save(out)
    assert out.read_text() == "previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["tok.json"]


def test_long_words_without_whitespace_train(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dna = "".join(rng.choice(list("ACGT"), size=300_000))
    p = tmp_path / "dna.txt"
    p.write_text(dna)
    tok = train([str(p)], vocab_size=400, threads=1)
    assert tok.decode(tok.encode(dna[:5000])) == dna[:5000]
    assert all(
        set(tok.model.token_bytes(i) or b"") <= set(b"ACGT")
        for i in range(tok.model.n_vocab)
        if len(tok.model.token_bytes(i) or b"") > 1
    )


# ---------------------------------------------------------------- kernel vs the pure-Python twin

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from reference_trainer import kernel_train, reference_train  # noqa: E402

_ALPHABET = [b"a", b"b", b"c", b"d", b" ", b"\xc3\xa9", b"\x00", b"\xff", b"ab"]
words_st = st.lists(st.sampled_from(_ALPHABET), min_size=1, max_size=10).map(b"".join)
corpus_st = st.dictionaries(words_st, st.integers(1, 30), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corpus=corpus_st,
    extra=st.integers(1, 120),
    min_frequency=st.sampled_from([0, 2, 5]),
    specials=st.lists(
        st.sampled_from(["<s>", "a", "ab", "Ġa", "<|endoftext|>"]), max_size=3, unique=True
    ),
    max_len=st.sampled_from([None, 2, 3, 5]),
)
def test_kernel_equals_reference_twin(corpus, extra, min_frequency, specials, max_len) -> None:
    vocab_size = 256 + len(specials) + extra
    mine = kernel_train(
        corpus,
        vocab_size,
        special_tokens=specials,
        min_frequency=min_frequency,
        max_token_length=max_len,
    )
    theirs = reference_train(
        corpus,
        vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        max_token_length=max_len,
    )
    assert mine[1] == theirs[1]
    assert mine[0] == theirs[0]


@pytest.mark.slow
def test_100mb_without_whitespace_trains_in_bounded_memory(tmp_path: Path) -> None:
    """100 MB of DNA on one line: words are cut at --max-word-bytes; peak memory stays bounded."""
    import subprocess
    import sys

    rng = np.random.default_rng(1)
    data = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=100_000_000)]
    src = tmp_path / "dna.txt"
    src.write_bytes(data.tobytes())
    out = tmp_path / "dna.json"
    code = (
        "import resource, sys, toknz.cli as c\n"
        "try:\n    c.main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "train",
            str(src),
            "-o",
            str(out),
            "--vocab-size",
            "600",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_mb = int(result.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mb < 2048, f"peak RSS {peak_mb:.0f} MB"
    report = json.loads((tmp_path / "dna.json.report.json").read_text())
    assert report["words_cut"] > 0 and report["input_bytes"] == 100_000_000
    tok = toknz.Tokenizer.from_file(out)
    sample = data[:10_000].tobytes().decode()
    assert tok.decode(tok.encode(sample)) == sample


def test_trained_tiktoken_file_encodes_like_tiktoken(tmp_path: Path) -> None:
    import tiktoken
    import tiktoken.load

    tok = train(
        [str(CORPORA["prose"]), str(CORPORA["code"])],
        vocab_size=1500,
        special_tokens=["<|endoftext|>"],
        threads=1,
    )
    path = tmp_path / "t.tiktoken"
    tok.save(path, format="tiktoken")
    ranks = tiktoken.load.load_tiktoken_bpe(str(path))
    assert len(ranks) == 1499 and 0 not in ranks.values()  # id 0 is the special token
    enc = tiktoken.Encoding(
        "trained", pat_str=tok.pattern, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 0}
    )
    reloaded = toknz.Tokenizer.from_file(
        path, pattern=tok.pattern, special_tokens={"<|endoftext|>": 0}
    )
    for source in CORPORA.values():
        text = source.read_text(encoding="utf-8")[:30_000]
        ids = tok.encode(text)
        assert enc.encode_ordinary(text) == ids
        assert reloaded.encode(text) == ids
