"""Count shards (``toknz count``) and ``train --from-counts``.

Training from shards must give the tokenizer that training on the text gives,
byte for byte; shards merge in any order to the same file; shards counted
with different settings do not merge; a broken shard is an error naming it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from toknz.cli import main
from toknz.errors import InputError, UsageError
from toknz.pipeline.pretokenize import PATTERNS
from toknz.train import TrainReport, train
from toknz.train.counting import WordTable
from toknz.train.shards import (
    COUNTS_KEY,
    CountMeta,
    count_corpus,
    merge_counts,
    prune,
    pruning_cost,
    read_counts,
    write_counts,
)

REPO = Path(__file__).resolve().parents[1]
VOCAB = 700
# A regex no compiled scanner knows: counted by the `regex` path in worker processes.
CUSTOM = r"\s?\p{L}+|\s?\p{N}{1,2}|\s?[^\s\p{L}\p{N}]+|\s+"


def _text() -> str:
    """About 140 KB of prose, code and Japanese, with cased and decomposed letters."""
    parts = [
        (REPO / "corpora/en/austen_emma.txt").read_text(encoding="utf-8")[:70_000],
        (REPO / "corpora/code/python_stdlib.txt").read_text(encoding="utf-8")[:50_000],
        (REPO / "corpora/multi/ja.txt").read_text(encoding="utf-8")[:15_000],
        "Cafe\u0301 CAFÉ café Ångström A\u030angström ÉCOLE école\n" * 40,
    ]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The whole corpus, and its two halves cut at a line that starts a word."""
    folder = tmp_path_factory.mktemp("corpus")
    text = _text()
    cut = text.index("\nThe", len(text) // 2) + 1
    whole = folder / "whole.txt"
    whole.write_text(text, encoding="utf-8")
    first, second = folder / "a.txt", folder / "b.txt"
    first.write_text(text[:cut], encoding="utf-8")
    second.write_text(text[cut:], encoding="utf-8")
    return {"whole": whole, "a": first, "b": second}


def _json(tok, path: Path) -> bytes:  # type: ignore[no-untyped-def]
    tok.save(path)
    return path.read_bytes()


CASES = [
    ("gpt2", "document", "none", True),
    ("cl100k", "document", "none", True),
    ("o200k", "document", "none", True),
    (CUSTOM, "document", "none", True),
    ("cl100k", "line", "none", True),
    ("o200k", "line", "nfc", False),
    ("gpt2", "document", "nfc", False),
]


@pytest.mark.parametrize(("pattern", "unit", "normalize", "cased"), CASES)
def test_from_counts_is_byte_identical_to_training_on_text(
    corpus: dict[str, Path], tmp_path: Path, pattern: str, unit: str, normalize: str, cased: bool
) -> None:
    options = {"pattern": pattern, "unit": unit, "normalize": normalize, "cased": cased}
    table, meta = count_corpus([corpus["whole"]], threads=2, **options)  # type: ignore[arg-type]
    assert meta.pattern == PATTERNS.get(pattern, pattern)
    assert (meta.unit, meta.normalize, meta.cased) == (unit, normalize, cased)
    shard = tmp_path / "counts.parquet"
    write_counts(table, shard, meta=meta)
    direct = train([corpus["whole"]], vocab_size=VOCAB, threads=2, **options)  # type: ignore[arg-type]
    report = TrainReport()
    # The settings come from the shard: none is given here.
    from_shard = train(from_counts=[shard], vocab_size=VOCAB, report=report)
    assert _json(from_shard, tmp_path / "b.json") == _json(direct, tmp_path / "a.json")
    assert report.from_counts == [str(shard)]
    assert report.inputs == [str(corpus["whole"])]
    assert report.input_bytes == corpus["whole"].stat().st_size
    assert (report.unit, report.normalize, report.cased) == (unit, normalize, cased)


def test_halves_merge_in_any_order_to_the_whole(corpus: dict[str, Path], tmp_path: Path) -> None:
    shards = []
    for name in ("a", "b"):
        table, meta = count_corpus([corpus[name]], pattern="o200k", threads=2)
        shards.append(tmp_path / f"{name}.parquet")
        write_counts(table, shards[-1], meta=meta)
    forward, meta_f = merge_counts(shards)
    backward, meta_b = merge_counts(shards[::-1])
    write_counts(forward, tmp_path / "ab.parquet", meta=meta_f)
    write_counts(backward, tmp_path / "ba.parquet", meta=meta_b)
    assert (tmp_path / "ab.parquet").read_bytes() == (tmp_path / "ba.parquet").read_bytes()
    whole, meta_w = count_corpus([corpus["whole"]], pattern="o200k", threads=2)
    assert forward.to_dict() == whole.to_dict()
    assert meta_f.input_bytes == meta_w.input_bytes and meta_f.input_files == 2
    assert meta_f.inputs == sorted(str(corpus[n]) for n in ("a", "b"))
    # The merged shard read back, the two halves, and a folder of them all train alike.
    direct = _json(train([corpus["whole"]], vocab_size=VOCAB, pattern="o200k"), tmp_path / "w")
    for source in ([tmp_path / "ab.parquet"], shards[::-1]):
        assert _json(train(from_counts=source, vocab_size=VOCAB), tmp_path / "s") == direct
    folder = tmp_path / "halves"
    folder.mkdir()
    for shard in shards:
        shard.rename(folder / shard.name)
    assert _json(train(from_counts=[folder], vocab_size=VOCAB), tmp_path / "f") == direct


def test_presets_and_required_tokens_from_counts(corpus: dict[str, Path], tmp_path: Path) -> None:
    table, meta = count_corpus([corpus["whole"]], preset="legal", threads=2)
    assert meta.pattern == PATTERNS["o200k"] and meta.normalize == "nfc"
    shard = tmp_path / "legal.parquet"
    write_counts(table, shard, meta=meta)
    options = {"preset": "legal", "vocab_size": 900, "required_tokens": ["Woodhouse", "Harriet"]}
    direct = train([corpus["whole"]], **options)  # type: ignore[arg-type]
    from_shard = train(from_counts=[shard], **options)  # type: ignore[arg-type]
    assert _json(from_shard, tmp_path / "b.json") == _json(direct, tmp_path / "a.json")
    assert len(from_shard.encode(" Woodhouse")) == 1
    # A preset whose settings differ from the shard's is refused, as is superwords_at.
    gpt2, gpt2_meta = count_corpus([corpus["a"]], pattern="gpt2", threads=2)
    write_counts(gpt2, tmp_path / "gpt2.parquet", meta=gpt2_meta)
    with pytest.raises(UsageError, match="preset legal sets pattern"):
        train(from_counts=[tmp_path / "gpt2.parquet"], preset="legal", vocab_size=900)
    with pytest.raises(UsageError, match="superwords_at"):
        train(from_counts=[shard], vocab_size=900, superwords_at=600)


def test_conflicting_settings_are_refused(corpus: dict[str, Path], tmp_path: Path) -> None:
    made = {}
    for name, options in {
        "gpt2": {"pattern": "gpt2"},
        "cl100k": {"pattern": "cl100k"},
        "nfc": {"pattern": "gpt2", "normalize": "nfc"},
        "line": {"pattern": "gpt2", "unit": "line"},
        "uncased": {"pattern": "gpt2", "cased": False},
        "short": {"pattern": "gpt2", "max_word_bytes": 64},
    }.items():
        table, meta = count_corpus([corpus["a"]], threads=2, **options)  # type: ignore[arg-type]
        made[name] = tmp_path / f"{name}.parquet"
        write_counts(table, made[name], meta=meta)
    for other, key in [
        ("cl100k", "pattern"),
        ("nfc", "normalize"),
        ("line", "unit"),
        ("uncased", "cased"),
        ("short", "max_word_bytes"),
    ]:
        with pytest.raises(UsageError, match=f"different {key}") as info:
            merge_counts([made["gpt2"], made[other]])
        assert str(made["gpt2"]) in str(info.value) and str(made[other]) in str(info.value)
    shard = [made["gpt2"]]
    for given in ({"pattern": "o200k"}, {"normalize": "nfc"}, {"cased": False}, {"unit": "line"}):
        with pytest.raises(UsageError, match="count shards"):
            train(from_counts=shard, vocab_size=VOCAB, **given)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="max_word_bytes"):
        train(from_counts=shard, vocab_size=VOCAB, max_word_bytes=64)
    with pytest.raises(UsageError, match="not both"):
        train([corpus["a"]], from_counts=shard, vocab_size=VOCAB)
    with pytest.raises(UsageError, match="glob"):
        train(from_counts=shard, vocab_size=VOCAB, glob="*.txt")
    # Giving the shard's own settings is fine (a name or its regex).
    train(from_counts=shard, vocab_size=300, pattern=PATTERNS["gpt2"], unit="document")


def test_broken_shards_are_errors_naming_the_file(tmp_path: Path) -> None:
    good = WordTable.from_counts({b"a": 2, b" b": 1})
    meta = CountMeta(pattern=PATTERNS["cl100k"])
    text = tmp_path / "text.parquet"
    text.write_text("not parquet at all\n")
    truncated = tmp_path / "truncated.parquet"
    write_counts(good, tmp_path / "ok.parquet", meta=meta)
    truncated.write_bytes((tmp_path / "ok.parquet").read_bytes()[:-30])
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"word": [b"a"], "count": [1]}), plain)
    no_column = tmp_path / "nocol.parquet"
    tagged = {COUNTS_KEY: meta.to_json()}
    pq.write_table(pa.table({"word": [b"a"], "n": [1]}).replace_schema_metadata(tagged), no_column)
    negative = tmp_path / "negative.parquet"
    pq.write_table(
        pa.table({"word": [b"a", b"b"], "count": [3, -1]}).replace_schema_metadata(tagged), negative
    )
    bad_meta = tmp_path / "badmeta.parquet"
    pq.write_table(
        pa.table({"word": [b"a"], "count": [1]}).replace_schema_metadata({COUNTS_KEY: "{"}),
        bad_meta,
    )
    cases = {
        text: "not a readable Parquet",
        truncated: "not a readable Parquet",
        plain: "no toknz.counts metadata",
        no_column: "no column 'count'",
        negative: "negative count",
        bad_meta: "not JSON",
        tmp_path / "missing.parquet": "no such file",
    }
    for path, what in cases.items():
        with pytest.raises(InputError, match=what) as info:
            read_counts(path)
        assert str(path) in str(info.value)
    # The CLI prints it on one line and exits 1.
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--from-counts",
            str(text),
            "-o",
            str(tmp_path / "t.json"),
            "--vocab-size",
            "300",
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"toknz: error: {text}: not a count shard")


def test_pruning_cost_is_measured(corpus: dict[str, Path], tmp_path: Path) -> None:
    table, meta = count_corpus([corpus["whole"]], pattern="cl100k", threads=2)
    exact = pruning_cost(table, VOCAB, 1)
    assert exact.exact and exact.differing == 0 and exact.missing == 0
    assert exact.words_kept == exact.words == len(table)
    cost = pruning_cost(table, VOCAB, 20)
    assert cost.words_kept < cost.words
    assert cost.first_difference is not None and cost.differing > 0
    assert 0 < cost.first_difference < cost.merges
    # Pruned shards record what they dropped, and hold only the frequent words.
    written = write_counts(table, tmp_path / "p.parquet", meta=meta, min_count=20)
    kept, back = read_counts(tmp_path / "p.parquet")
    assert back == written and back.min_count == 20
    assert back.pruned_words == len(table) - len(kept) > 0
    assert min(kept.counts) >= 20
    assert kept.to_dict() == {w: c for w, c in table.to_dict().items() if c >= 20}
    pruned, dropped, total = prune(table, 20)
    assert pruned.to_dict() == kept.to_dict() and dropped == back.pruned_words
    assert total == back.pruned_total == int(table.counts.sum() - kept.counts.sum())


def test_cli_count_merge_train_round_trip(corpus: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    common = ["--pattern", "gpt2", "--normalize", "nfc", "--uncased", "--threads", "2"]
    out = run("count", corpus["a"], "-o", tmp_path / "a.parquet", *common)
    assert "distinct words" in out and f"wrote {tmp_path / 'a.parquet'}" in out
    run("count", corpus["b"], "-o", tmp_path / "b.parquet", *common, "-q")
    run(
        "count",
        "--merge",
        tmp_path / "b.parquet",
        tmp_path / "a.parquet",
        "-o",
        tmp_path / "ab.parquet",
        "-q",
    )
    run(
        "train",
        "--from-counts",
        tmp_path / "ab.parquet",
        "-o",
        tmp_path / "s.json",
        "--vocab-size",
        VOCAB,
        "-q",
    )
    run("train", corpus["whole"], "-o", tmp_path / "t.json", "--vocab-size", VOCAB, *common, "-q")
    assert (tmp_path / "s.json").read_bytes() == (tmp_path / "t.json").read_bytes()
    # --min-count prunes and says so.
    out = run(
        "count",
        "--merge",
        tmp_path / "ab.parquet",
        "-o",
        tmp_path / "p.parquet",
        "--min-count",
        "5",
    )
    assert "seen fewer than 5 times" in out
    assert read_counts(tmp_path / "p.parquet")[1].min_count == 5
    # Usage errors: counting options with --merge, a conflicting option with --from-counts.
    result = runner.invoke(
        main,
        [
            "count",
            "--merge",
            str(tmp_path / "a.parquet"),
            "-o",
            str(tmp_path / "x.parquet"),
            "--pattern",
            "o200k",
        ],
    )
    assert result.exit_code == 2 and "toknz: error: --pattern" in result.output
    result = runner.invoke(
        main,
        [
            "train",
            "--from-counts",
            str(tmp_path / "ab.parquet"),
            "-o",
            str(tmp_path / "x.json"),
            "--vocab-size",
            "300",
            "--pattern",
            "o200k",
        ],
    )
    assert result.exit_code == 2 and "were counted with pattern" in result.output
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x.parquet").exists()


def test_pyarrow_is_imported_lazily_and_missing_pyarrow_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = "import sys, toknz.cli, toknz.train.shards; print('pyarrow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(UsageError, match=r"pip install 'toknz\[dask\]'"):
        read_counts(tmp_path / "x.parquet")


def test_doctests() -> None:
    import doctest

    import toknz.train.shards as shards

    failed, tried = doctest.testmod(shards)
    assert tried >= 4 and failed == 0


def test_interrupted_write_leaves_the_old_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = CountMeta(pattern=PATTERNS["cl100k"])
    path = tmp_path / "c.parquet"
    write_counts(WordTable.from_counts({b"old": 1}), path, meta=meta)
    before = path.read_bytes()

    def fail(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", fail)
    with pytest.raises(KeyboardInterrupt):
        write_counts(WordTable.from_counts({b"new": 2}), path, meta=meta)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.parquet"]
