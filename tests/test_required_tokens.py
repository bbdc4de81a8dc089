"""Required tokens: each listed term encodes as one token, through merges appended to the trained ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import toknz
from toknz.analysis.hygiene import check_vocabulary
from toknz.cli import main
from toknz.errors import UsageError
from toknz.train import TrainReport, save_trained, train, train_from_counts
from toknz.train.chars import may_merge
from toknz.train.required import add_required_merges, term_forms
from toknz.train.trainer import learn_merges

REPO = Path(__file__).resolve().parents[1]
TERMS = ["EBITDA", "notwithstanding", "certiorari", "§", "U.S.C.", "pursuant to", "Hotel"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("required")
    prose = (REPO / "corpora/en/austen_emma.txt").read_text(encoding="utf-8")
    path = folder / "train.txt"
    path.write_text(prose[:60_000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(corpus: Path) -> tuple[toknz.Tokenizer, TrainReport]:
    report = TrainReport()
    tok = train(
        [corpus], vocab_size=1200, pattern="o200k", required_tokens=TERMS, threads=1, report=report
    )
    return tok, report


def _texts(tok: toknz.Tokenizer, ids: list[int]) -> list[str]:
    return [tok.decode([i]) for i in ids]


def test_each_term_is_one_token_in_running_text_and_at_the_start(trained) -> None:
    tok, report = trained
    by_term = {t["term"]: t for t in report.required_tokens}
    for term in ["EBITDA", "notwithstanding", "certiorari", "§", "Hotel"]:
        assert by_term[term]["one_token"], by_term[term]
        assert len(tok.encode(term)) == 1
        text = f"{term} was filed. The {term}\n{term}"
        ids = tok.encode(text)
        assert _texts(tok, ids).count(f" {term}") == 1
        assert _texts(tok, ids).count(term) == 2  # at the start of the text and of a line
        assert tok.decode(ids) == text
        for form in by_term[term]["forms"]:
            assert len(form["encodes_as"]) == 1


def test_terms_the_pattern_cuts_are_reported_with_the_cut(trained) -> None:
    _, report = trained
    by_term = {t["term"]: t for t in report.required_tokens}
    usc = by_term["U.S.C."]
    assert not usc["one_token"]
    assert {f["status"] for f in usc["forms"]} == {"unreachable"}
    assert "'U' | '.S' | '.C' | '.'" in usc["forms"][1]["reason"]
    assert "' pursuant' | ' to'" in by_term["pursuant to"]["forms"][0]["reason"]


def test_size_holds_and_the_report_adds_up(trained) -> None:
    tok, report = trained
    assert tok.n_vocab == 1200 == report.vocab_size
    added = sum(f["merges_added"] for t in report.required_tokens for f in t["forms"])
    assert added == report.required_merges > 0
    # every appended merge makes a new token, so as many trained merges were dropped
    assert report.trained_merges_dropped == report.required_merges
    assert report.merges == len(tok.model.merges)


def test_tokenizers_agrees_and_no_dead_entries(trained, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    tok, report = trained
    out = tmp_path / "tokenizer.json"
    save_trained(tok, out, report=report)
    hf = Tokenizer.from_file(str(out))
    held_out = (REPO / "corpora/en/austen_emma.txt").read_text(encoding="utf-8")[-20_000:]
    text = held_out + " The Hotel: EBITDA, ADDRESS notwithstanding § 1983 (certiorari)."
    ids = tok.encode(text)
    assert ids == hf.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text  # no word split and re-joined with spaces (KL3M's "AD|D|RE|S|S")
    hygiene = check_vocabulary(tok)
    assert hygiene.unreachable == [] and hygiene.duplicates == []
    saved = json.loads((tmp_path / "tokenizer.json.report.json").read_text(encoding="utf-8"))
    assert saved["required_tokens"] == report.required_tokens


def test_tiktoken_file_encodes_the_same(trained, tmp_path: Path) -> None:
    """tiktoken ranks tokens, not merges: the appended merges must not change what it does."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    from toknz.pipeline.pretokenize import PATTERNS

    tok, _ = trained
    out = tmp_path / "t.tiktoken"
    tok.save(out, format="tiktoken")
    enc = tiktoken.Encoding(
        "t",
        pat_str=PATTERNS["o200k"],
        mergeable_ranks=load_tiktoken_bpe(str(out)),
        special_tokens={},
    )
    text = (REPO / "corpora/multi/de.txt").read_text(encoding="utf-8")[:30_000]
    text += " EBITDA notwithstanding, certiorari; Hotel § 12"
    assert enc.encode_ordinary(text) == tok.encode(text)


def test_preset_list_is_used_and_can_be_turned_off(corpus: Path) -> None:
    on, off = TrainReport(), TrainReport()
    train([corpus], preset="legal", vocab_size=800, threads=1, report=on)
    train([corpus], preset="legal", vocab_size=800, required_tokens=[], threads=1, report=off)
    assert on.required_tokens and on.required_tokens_file
    assert off.required_tokens == [] and off.required_merges == 0


def test_uncased_terms_are_normalized(tmp_path: Path) -> None:
    src = tmp_path / "c.txt"
    src.write_text("The Court held that the statute applies.\n" * 30, encoding="utf-8")
    report = TrainReport()
    tok = train(
        [src], vocab_size=300, cased=False, required_tokens=["EBITDA"], threads=1, report=report
    )
    assert [f["text"] for f in report.required_tokens[0]["forms"]] == [" ebitda", "ebitda"]
    assert len(tok.encode("EBITDA")) == 1 and _texts(tok, tok.encode("Net EBITDA"))[-1] == " ebitda"


def test_character_level_rules_hold(corpus: Path) -> None:
    report = TrainReport()
    tok = train(
        [corpus],
        preset="char-4k",
        vocab_size=700,
        required_tokens=["zyx", "qqqq", "a1"],
        threads=1,
        report=report,
    )
    by_term = {t["term"]: t for t in report.required_tokens}
    zyx = {f["text"]: f for f in by_term["zyx"]["forms"]}
    assert zyx["zyx"]["status"] == "merged" and len(tok.encode("zyx")) == 1
    assert "mixes whitespace and letter" in zyx[" zyx"]["reason"]
    assert "more than max_token_chars 3" in by_term["qqqq"]["forms"][1]["reason"]
    assert "split pattern cuts" in by_term["a1"]["forms"][1]["reason"]  # letters | digits
    for a, b in tok.model.merges:
        left, right = (tok.model.token_bytes(tok.model.vocab[x]) or b"" for x in (a, b))
        assert may_merge(left, right, 3)


def test_too_small_a_vocabulary_is_a_usage_error() -> None:
    counts = {b" the": 5, b" a": 3}
    result = learn_merges(counts, 258)
    with pytest.raises(UsageError, match="leaves no room"):
        add_required_merges(result, ["notwithstanding"], pattern="gpt2", vocab_size=258)


def test_term_forms() -> None:
    assert term_forms("EBITDA") == [" EBITDA", "EBITDA"]
    assert term_forms(" x") == [" x"]
    assert term_forms("") == []


words = st.text(alphabet="abcdeé xyz", min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.dictionaries(
        st.text(alphabet="abcdeé", min_size=1, max_size=8).map(lambda w: (" " + w).encode()),
        st.integers(1, 50),
        min_size=1,
        max_size=30,
    ),
    terms=st.lists(st.text(alphabet="abcdeé", min_size=1, max_size=10), max_size=6),
    room=st.integers(0, 60),
    probe=words,
)
def test_every_reachable_form_is_one_token(counts, terms, room, probe) -> None:
    """Random corpora and terms: forms become one token, the size holds, text round-trips."""
    vocab_size = 256 + room + 30
    try:
        tok = train_from_counts(
            counts, vocab_size=vocab_size, pattern=r" ?\w+|\s+", required_tokens=terms
        )
    except UsageError:
        assert sum(len(t.encode()) for t in terms) * 2 > 30 + room  # genuinely too small
        return
    assert tok.n_vocab <= vocab_size
    for term in terms:
        for form in term_forms(term):
            assert len(tok.encode(form)) == 1, (term, form)
    text = " ".join(terms) + probe
    assert tok.decode(tok.encode(text)) == text
    assert check_vocabulary(tok).unreachable == []


def test_cli_option_and_summary(corpus: Path, tmp_path: Path) -> None:
    terms = tmp_path / "terms.txt"
    terms.write_text("certiorari\nU.S.C.\n\n", encoding="utf-8")
    out = tmp_path / "t.json"
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(corpus),
            "-o",
            str(out),
            "--vocab-size",
            "600",
            "--pattern",
            "o200k",
            "--required-tokens",
            str(terms),
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "required tokens: 1 of 2 encode as one token" in result.output
    assert "'U.S.C.' cannot be one token: the split pattern cuts it into 4 pieces" in result.output
    assert len(toknz.load(out).encode(" certiorari")) == 1
    off = CliRunner().invoke(
        main,
        ["train", str(corpus), "-o", str(out), "--preset", "legal", "--vocab-size", "600"]
        + ["--required-tokens", "none", "--threads", "1"],
    )
    assert off.exit_code == 0 and "required tokens" not in off.output
    missing = CliRunner().invoke(
        main,
        ["train", str(corpus), "-o", str(out), "--vocab-size", "600"]
        + ["--required-tokens", str(tmp_path / "nope.txt")],
    )
    assert missing.exit_code != 0 and "nope.txt" in missing.output
