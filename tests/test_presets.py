"""Training presets: shipped TOML data, overridden by explicit options, round-trip through tokenizer.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import toknz
from toknz.cli import main
from toknz.errors import InputError, UsageError
from toknz.train import TrainReport, load_preset, preset_names, save_trained, train
from toknz.train.chars import class_of

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["char-16k", "char-4k", "char-8k", "code", "financial", "legal"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A small mixed training file and held-out text from other parts of the corpora."""
    folder = tmp_path_factory.mktemp("presets")
    prose = (REPO / "corpora/en/austen_emma.txt").read_text(encoding="utf-8")
    code = (REPO / "corpora/code/python_stdlib.txt").read_text(encoding="utf-8")
    de = (REPO / "corpora/multi/de.txt").read_text(encoding="utf-8")
    path = folder / "train.txt"
    path.write_text(prose[:30_000] + code[:30_000] + de[:10_000], encoding="utf-8")
    held_out = (
        prose[-6_000:]
        + code[-6_000:]
        + de[-2_000:]
        + " § 1983, 42 U.S.C. EBITDA 10-K <|endoftext|> \u00c9T\u00c9 ctrl\x18char"
    )
    return path, held_out


def test_shipped_presets_are_listed_and_load() -> None:
    assert preset_names() == SHIPPED
    for name in SHIPPED:
        p = load_preset(name)
        assert p.name == name and p.vocab_size and p.pattern and p.normalize
        assert p.special_tokens and len(p.special_tokens) == len(set(p.special_tokens))
        assert "<|endoftext|>" in p.special_tokens
        if name.startswith("char-"):
            assert p.max_token_chars in (3, 4)
            assert p.vocab_size == {"4k": 4096, "8k": 8192, "16k": 16384}[name[5:]]
        else:
            assert p.max_token_chars is None
            assert {"documents", "sections", "chat", "fim", "padding", "masking"} <= set(
                p.special_groups
            )
            assert p.required_terms()  # the list file ships with the preset


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_trains_and_round_trips_through_tokenizers(
    name: str, corpus: tuple[Path, str], tmp_path: Path
) -> None:
    from tokenizers import Tokenizer

    path, held_out = corpus
    report = TrainReport()
    tok = train([path], preset=name, threads=1, report=report)
    preset = load_preset(name)
    assert report.preset == name
    assert tok.n_vocab <= preset.vocab_size  # a small corpus may run out of pairs
    assert [tok.id_to_token(i) for i in range(len(preset.special_tokens))] == (
        preset.special_tokens
    )
    out = tmp_path / "tokenizer.json"
    save_trained(tok, out, report=report)
    hf = Tokenizer.from_file(str(out))
    reloaded = toknz.Tokenizer.from_file(out)
    mine = reloaded.encode(held_out, allowed_special="all")
    assert mine == tok.encode(held_out, allowed_special="all")
    assert mine == hf.encode(held_out, add_special_tokens=False).ids
    assert reloaded.decode(mine) == held_out  # cased, and already NFC: comes back whole
    if preset.max_token_chars:
        for i in range(len(preset.special_tokens), tok.n_vocab):
            raw = tok.model.token_bytes(i) or b""
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue  # part of one character
            assert len(text) <= preset.max_token_chars
            assert len({class_of(c) for c in text}) == 1


def test_options_override_the_preset(corpus: tuple[Path, str]) -> None:
    path, _ = corpus
    report = TrainReport()
    tok = train(
        [path],
        preset="legal",
        vocab_size=600,
        special_tokens=["<s>"],
        pattern="gpt2",
        normalize="none",
        unit="line",
        threads=1,
        report=report,
    )
    assert tok.n_vocab == 600
    assert tok.id_to_token(0) == "<s>" and tok.id_to_token(1) != "<|startoftext|>"
    assert report.normalize == "none" and report.unit == "line" and report.preset == "legal"
    assert report.required_tokens_file and report.required_tokens
    # the preset's terms that the gpt2 pattern keeps whole are one token each
    assert {t["term"] for t in report.required_tokens if t["one_token"]} >= {
        "plaintiff",
        "pursuant",
    }


def test_uncased_preset_lower_cases(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    src = tmp_path / "c.txt"
    src.write_text("The Court HELD that The statute applies.\n" * 40, encoding="utf-8")
    preset = tmp_path / "mine.toml"
    preset.write_text(
        'name = "mine"\nvocab_size = 300\nnormalize = "nfkc"\ncased = false\n'
        '[special_tokens]\ndocuments = ["<|endoftext|>"]\n',
        encoding="utf-8",
    )
    tok = train([src], preset=preset, threads=1)
    assert tok.encode("THE COURT") == tok.encode("the court")
    out = tmp_path / "t.json"
    tok.save(out)
    text = "The Court HELD ﬁne"  # NFKC: the ligature becomes "fi"
    assert tok.encode(text) == Tokenizer.from_file(str(out)).encode(text).ids
    assert tok.decode(tok.encode(text)) == "the court held fine"


def test_bad_presets(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown preset 'lawyer'"):
        load_preset("lawyer")
    bad = tmp_path / "bad.toml"
    bad.write_text("vocab_size = 300\nvocab_sise = 2\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"bad\.toml: unknown preset key\(s\) 'vocab_sise'"):
        load_preset(bad)
    bad.write_text('vocab_size = "big"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="vocab_size must be a non-negative integer"):
        load_preset(bad)
    bad.write_text("vocab_size = 300\n[special_tokens]\nchat = [1, 2]\n", encoding="utf-8")
    with pytest.raises(UsageError, match="special_tokens.chat"):
        load_preset(bad)
    bad.write_text('vocab_size = 300\nrequired_tokens = "nowhere.txt"\n', encoding="utf-8")
    with pytest.raises(InputError, match="nowhere.txt"):
        load_preset(bad)
    bad.write_text("vocab_size = = 3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.toml: not valid TOML.*line 1"):
        load_preset(bad)
    with pytest.raises(InputError, match="cannot read preset"):
        load_preset(tmp_path / "missing.toml")
    no_size = tmp_path / "nosize.toml"
    no_size.write_text('pattern = "gpt2"\n', encoding="utf-8")
    src = tmp_path / "c.txt"
    src.write_text("text " * 50, encoding="utf-8")
    with pytest.raises(UsageError, match="vocab_size is required"):
        train([src], preset=no_size, threads=1)


def test_cli_preset(corpus: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = corpus
    out = tmp_path / "t.json"
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["train", str(path), "-o", str(out), "--preset", "char-4k", "--vocab-size", "500"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "t.json.report.json").read_text())
    assert report["preset"] == "char-4k" and report["vocab_size"] == 500
    assert report["max_token_chars"] == 3
    tok = toknz.Tokenizer.from_file(out)
    assert tok.id_to_token(0) == "<|endoftext|>"
    missing = runner.invoke(main, ["train", str(path), "-o", str(out)])
    assert missing.exit_code == 2 and "vocab_size is required" in missing.output
