"""Superword training (``superwords_at``): stage-2 merges cross spaces; tokenizers and tiktoken agree."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import regex
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_trainer import reference_train_raw

import toknz
from toknz.analysis.hygiene import check_vocabulary
from toknz.cli import main
from toknz.errors import UsageError
from toknz.pipeline.bpe_reference import bpe_merge, table_pair
from toknz.pipeline.byte_alphabet import chars_to_bytes
from toknz.pipeline.pretokenize import PATTERNS
from toknz.train import TrainReport, save_trained, train
from toknz.train.counting import WordTable
from toknz.train.superword import superword_merges, superword_pattern
from toknz.train.trainer import learn_merges

REPO = Path(__file__).resolve().parents[1]
EMMA = REPO / "corpora/en/austen_emma.txt"


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("superword")
    prose = EMMA.read_text(encoding="utf-8")
    legal = (REPO / "corpora/legal/train.txt").read_text(encoding="utf-8")
    path = folder / "train.txt"
    path.write_text(prose[:150_000] + legal[:150_000], encoding="utf-8")
    held_out = prose[-30_000:] + (REPO / "corpora/legal/heldout.txt").read_text(encoding="utf-8")
    return path, held_out


@pytest.fixture(scope="module")
def trained(texts: tuple[Path, str]) -> tuple[toknz.Tokenizer, TrainReport]:
    path, _ = texts
    report = TrainReport()
    tok = train(
        [path],
        preset="legal",
        vocab_size=6000,
        superwords_at=4000,
        required_tokens=["pursuant to", "notwithstanding"],
        threads=1,
        report=report,
    )
    return tok, report


def test_the_split_keeps_word_runs_and_the_patterns_other_pieces() -> None:
    split = superword_pattern(PATTERNS["o200k"])
    text = "the court's order, non-transferable\n\n  and so (big) 2019"
    assert regex.findall(split, text) == [
        "the court's order",
        ",",
        " non",
        "-transferable",
        "\n\n",
        " ",
        " and so",
        " (",
        "big",
        ")",
        " 2019",
    ]
    assert "".join(regex.findall(split, text)) == text


def test_stage_one_is_ordinary_training_and_stage_two_crosses_spaces(trained, texts) -> None:
    tok, report = trained
    path, _ = texts
    plain = train([path], preset="legal", vocab_size=4000, required_tokens=[], threads=1)
    n1 = len(plain.model.merges)
    assert tok.model.merges[:n1] == plain.model.merges
    later = [a + b for a, b in tok.model.merges[n1:]]
    spelled = [(chars_to_bytes(t) or b"").decode("utf-8", "replace") for t in later]
    assert any(" " in t.strip(" ") for t in spelled)  # a space inside: a superword
    assert " of the" in spelled
    assert tok.n_vocab == 6000 and report.superwords_at == 4000
    assert report.pattern == superword_pattern(PATTERNS["o200k"])


def test_tokenizers_and_tiktoken_agree_and_text_round_trips(trained, texts, tmp_path) -> None:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from tokenizers import Tokenizer

    tok, report = trained
    _, held_out = texts
    out = tmp_path / "tokenizer.json"
    save_trained(tok, out, report=report)
    ids = tok.encode(held_out)
    assert tok.decode(ids) == held_out
    assert Tokenizer.from_file(str(out)).encode(held_out, add_special_tokens=False).ids == ids
    assert toknz.load(out).encode(held_out) == ids
    tik = tmp_path / "t.tiktoken"
    tok.save(tik, format="tiktoken")
    enc = tiktoken.Encoding(
        "t", pat_str=report.pattern, mergeable_ranks=load_tiktoken_bpe(str(tik)), special_tokens={}
    )
    assert enc.encode_ordinary(held_out) == ids


def test_fewer_tokens_and_a_clean_vocabulary(trained, texts) -> None:
    tok, _ = trained
    path, held_out = texts
    plain = train([path], preset="legal", vocab_size=6000, required_tokens=[], threads=1)
    assert len(tok.encode(held_out)) < 0.95 * len(plain.encode(held_out))
    hygiene = check_vocabulary(tok)
    assert hygiene.unreachable == [] and hygiene.duplicates == []


def test_required_phrases_become_one_token(trained) -> None:
    tok, report = trained
    assert all(t["one_token"] for t in report.required_tokens)
    assert [tok.decode([i]) for i in tok.encode("The party, pursuant to law")][-2:] == [
        " pursuant to",
        " law",
    ]


def test_usage_errors(texts) -> None:
    path, _ = texts
    with pytest.raises(UsageError, match="must lie between"):
        train([path], vocab_size=500, superwords_at=500, threads=1)
    with pytest.raises(UsageError, match="do not go together"):
        train([path], vocab_size=500, superwords_at=400, max_token_chars=3, threads=1)


def _naive_bpe(word: list[int], merges: list[tuple[int, int, int]]) -> list[int]:
    return bpe_merge(word, table_pair({(a, b): (i, new) for i, (a, b, new) in enumerate(merges)}))


def _naive_stage_two(
    tokens: list[bytes], words: dict[tuple[int, ...], int], vocab_size: int
) -> list[tuple[int, int, int]]:
    """Most frequent adjacent pair first, ties to the smallest (left, right); a repeat reuses its id."""
    tokens = list(tokens)
    merges = []
    seqs = {tuple(w): c for w, c in words.items()}
    while len(tokens) < vocab_size:
        pairs: Counter[tuple[int, int]] = Counter()
        for w, c in seqs.items():
            for p in zip(w, w[1:], strict=False):
                pairs[p] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        raw = tokens[best[0]] + tokens[best[1]]
        new = tokens.index(raw) if raw in tokens else len(tokens)
        if new == len(tokens):
            tokens.append(raw)
        merges.append((best[0], best[1], new))
        merged: Counter[tuple[int, ...]] = Counter()
        for w, c in seqs.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += c
        seqs = dict(merged)
    return merges


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    phrases=st.dictionaries(
        st.lists(st.text(alphabet="abcé", min_size=1, max_size=4), min_size=1, max_size=4).map(
            lambda ws: " " + " ".join(ws)
        ),
        st.integers(1, 9),
        min_size=1,
        max_size=12,
    ),
    stage1=st.integers(0, 12),
    stage2=st.integers(0, 25),
)
def test_stage_two_equals_a_naive_twin(phrases, stage1, stage2) -> None:
    """Stage 1 on the words (reference trainer), then pair counting on the encoded phrases."""
    words: Counter[bytes] = Counter()
    for phrase, c in phrases.items():
        for w in regex.findall(r" ?[^ ]+", phrase):
            words[w.encode()] += c
    first = learn_merges(dict(words), 256 + stage1)
    ref = reference_train_raw(dict(words), 256 + stage1)
    assert first.merges == ref.steps
    table = WordTable.from_counts({p.encode(): c for p, c in phrases.items()})
    result = superword_merges(first, table, 256 + stage1 + stage2, pattern=r" ?[^ ]+(?: [^ ]+)*")
    byte_id = {t: i for i, t in enumerate(first.tokens)}
    encoded: Counter[tuple[int, ...]] = Counter()
    for p, c in phrases.items():
        encoded[tuple(_naive_bpe([byte_id[bytes([b])] for b in p.encode()], first.merges))] += c
    twin = _naive_stage_two(first.tokens, dict(encoded), 256 + stage1 + stage2)
    assert result.merges[len(first.merges) :] == twin


def test_cli_option(texts, tmp_path: Path) -> None:
    path, _ = texts
    out = tmp_path / "t.json"
    result = CliRunner().invoke(
        main,
        ["train", str(path), "-o", str(out), "--vocab-size", "1200", "--superwords-at", "900"]
        + ["--threads", "1", "--required-tokens", "none"],
    )
    assert result.exit_code == 0, result.output
    assert "superwords from 900" in result.output
    tok = toknz.load(out)
    assert any(
        " " in (tok.model.token_bytes(i) or b"").decode("utf-8", "replace").strip(" ")
        for i in range(900, tok.n_vocab)
    )
    bad = CliRunner().invoke(
        main,
        ["train", str(path), "-o", str(out), "--vocab-size", "1200", "--superwords-at", "5000"],
    )
    assert bad.exit_code != 0 and "must lie between" in bad.output
