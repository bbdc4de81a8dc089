"""The Dask counting engine (:mod:`toknz.train.distributed`) counts what local counting counts.

- byte ranges tile every file exactly, and counting the ranges apart gives the words of
  the whole text (property-tested on texts full of line ends, spaces and ``"/"``);
- on a 2-worker process cluster the table equals :func:`count_words` over
  :func:`iter_chunks` (gpt2, cl100k, o200k; unit document and line; folders, globs,
  ``file://`` URLs, ``.jsonl``, ``.parquet``, ``.gz``);
- a worker killed in the middle of a run (its finished tables lost with it) gives the
  same table: tasks are pure, nothing is added twice;
- the order and shape of the merges do not matter;
- invalid UTF-8 names the file and byte offset, or is skipped and counted as locally.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toknz.errors import InputError, UsageError
from toknz.pipeline.pretokenize import Split, resolve_pattern
from toknz.train.counting import count_text, count_words
from toknz.train.distributed import (
    CountTask,
    _Settings,
    count_task,
    count_words_dask,
    merge_partials,
    next_cut,
    plan_tasks,
    range_bounds,
)
from toknz.train.inputs import expand_paths, iter_chunks

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]
PATTERNS = ("gpt2", "cl100k", "o200k")


def splitter(pattern: str) -> Split:
    return Split(resolve_pattern(pattern), "Isolated")


def local_count(paths: list[str], pattern: str, **kw: Any) -> tuple[dict[bytes, int], int, Any]:
    from toknz.train.inputs import InputStats

    stats = InputStats()
    field_name = kw.pop("field_name", None)
    skip_invalid = kw.pop("skip_invalid", False)
    chunks = iter_chunks(paths, field_name=field_name, skip_invalid=skip_invalid, stats=stats)
    table, cut = count_words(chunks, splitter(pattern), threads=1, **kw)
    return table.to_dict(), cut, stats


# --- ranges: pure functions, no cluster -------------------------------------------------

# Texts where cut points are dense and tricky: line ends before spaces, "/" and more
# line ends, CRLF, runs of spaces, letters around single spaces, multi-byte characters.
_pieces = st.sampled_from(
    ["\n", "\n", "\n", " ", " ", "/", "\r\n", "\t", "a", "b", "Z", "é", "中", "1", ".", "//", "\n/"]
)
dense_texts = st.lists(_pieces, max_size=120).map("".join)


def _bounds(data: bytes, task_bytes: int, scan: int) -> list[tuple[int, int]]:
    size = len(data)

    def read(offset: int, n: int) -> bytes:
        return data[offset : offset + n]

    nominal = list(range(0, size, task_bytes)) + [size]
    if len(nominal) == 1:
        nominal = [0, 0]
    tasks = [CountTask(0, "x", "x", size, a, b) for a, b in itertools.pairwise(nominal)]
    return [range_bounds(t, read, scan) for t in tasks]


def _words(text: str, pattern: str) -> dict[bytes, int]:
    table, _, _ = count_text(text, splitter(pattern))
    return table.to_dict()


def _add(total: dict[bytes, int], more: dict[bytes, int]) -> None:
    for w, c in more.items():
        total[w] = total.get(w, 0) + c


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_texts, st.integers(1, 17))
def test_ranges_tile_the_file_and_keep_the_words(text: str, task_bytes: int) -> None:
    data = text.encode("utf-8")
    ranges = _bounds(data, task_bytes, scan=len(data) + 1)
    # Tiling: starts at 0, ends at the end, each range starts where the last one stopped.
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    for (a, b), (c, _) in itertools.pairwise(ranges):
        assert a <= b == c
    # Every range is whole characters, and counting the ranges apart gives the words
    # of the whole text, for every GPT pattern.
    parts = [data[a:b].decode("utf-8") for a, b in ranges]
    for pattern in PATTERNS:
        total: dict[bytes, int] = {}
        for part in parts:
            _add(total, _words(part, pattern))
        assert total == _words(text, pattern), pattern


@settings(max_examples=150, deadline=None)
@given(dense_texts, st.integers(0, 400), st.integers(1, 8))
def test_next_cut_is_monotone_and_independent_of_the_scan_start(
    text: str, at: int, scan: int
) -> None:
    data = text.encode("utf-8")

    def read(offset: int, n: int) -> bytes:
        return data[offset : offset + n]

    size = len(data)
    cuts = [next_cut(read, size, b, scan) for b in range(size + 1)]
    assert cuts == sorted(cuts)
    for b, c in enumerate(cuts):
        assert b <= c <= size
        # a cut is at a character start, and never splits a "\r\n"-free UTF-8 sequence
        assert c == size or data[c] & 0xC0 != 0x80


def test_a_line_with_no_safe_cut_is_cut_at_character_starts() -> None:
    data = ("中" * 5000).encode("utf-8")  # no line end, no space: no safe cut anywhere
    ranges = _bounds(data, 1000, scan=100)
    assert len(ranges) > 5 and ranges[-1][1] == len(data)
    for (a, b), (c, _) in itertools.pairwise(ranges):
        assert a <= b == c and b % 3 == 0


def _settings(pattern: str = "o200k", piece_bytes: int = 64, **kw: Any) -> _Settings:
    sp = splitter(pattern)
    return _Settings(
        sp,
        kw.get("normalizer"),
        kw.get("max_word_bytes", 1024),
        kw.get("unit", "document"),
        kw.get("field_name"),
        kw.get("skip_invalid", False),
        piece_bytes,
        True,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of several files: real prose, code and CJK slices, plus hard synthetic text."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "sub").mkdir()
    for src, n in (
        ("en/austen_emma.txt", 120_000),
        ("code/python_stdlib.txt", 90_000),
        ("multi/ja.txt", 60_000),
        ("legal/train.txt", 70_000),
    ):
        raw = (REPO / "corpora" / src).read_bytes()[:n]
        raw = raw[: len(raw.decode("utf-8", "ignore").encode("utf-8"))]
        (root / src.replace("/", "_")).write_bytes(raw)
    tricky = "".join(
        f"x{i}.\n/path/{i}\n  indented\r\nCRLF line {i}\n\n\n/*c*/\t\n" + "A" * (i % 7) * 300
        for i in range(400)
    )
    (root / "sub" / "tricky.txt").write_text(tricky, encoding="utf-8")
    (root / "sub" / "long.txt").write_text("ACGT" * 3000 + "\n" + "a b " * 5000)
    (root / "empty.txt").write_text("")
    (root / "skip.md").write_text("not matched by the glob\n")
    return root


def test_count_task_merges_in_any_order_give_the_same_table(corpus: Path) -> None:
    paths = expand_paths([str(corpus)], "*.txt")
    tasks = plan_tasks(paths, task_bytes=40_000)
    assert len(tasks) > 8
    st_ = _settings(piece_bytes=4096)
    parts = [count_task(t, st_) for t in tasks]
    want, want_cut, _ = local_count(paths, "o200k")

    def tree(items: list[Any]) -> Any:
        while len(items) > 1:
            items = [
                merge_partials(*items[i : i + 2]) if i + 1 < len(items) else items[i]
                for i in range(0, len(items), 2)
            ]
        return items[0]

    for order in (parts, parts[::-1], parts[1::2] + parts[0::2]):
        result = tree(list(order))
        assert result.table.to_dict() == want and result.words_cut == want_cut
    chain = parts[0]
    for p in parts[1:]:
        chain = merge_partials(p, chain)
    assert chain.table.to_dict() == want
    assert chain.bytes == sum(os.path.getsize(p) for p in paths)


# --- on a cluster ----------------------------------------------------------------------


class KillOnce:
    """A normalizer that changes nothing, except that it kills its worker process once.

    The first worker to normalize its 25th piece (counted in its environment, which
    outlives the unpickled copies of this object) claims a marker file and exits,
    losing the tables of the tasks it had finished; the run must still count every
    word exactly once.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def normalize(self, text: str) -> str:
        seen = int(os.environ.get("TOKNZ_TEST_PIECES", "0")) + 1
        os.environ["TOKNZ_TEST_PIECES"] = str(seen)
        if seen >= 25:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return text
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)
        return text

    def to_json(self) -> dict[str, Any]:
        return {"type": "KillOnce"}


@pytest.fixture(scope="module")
def client() -> Any:
    import cloudpickle

    # The workers cannot import this test module: send its helpers by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.parametrize("unit", ["document", "line"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_dask_equals_local_counting(client: Any, corpus: Path, pattern: str, unit: str) -> None:
    paths = expand_paths([str(corpus)], "*.txt")
    want, want_cut, want_stats = local_count(paths, pattern, unit=unit, max_word_bytes=64)
    table, cut, stats = count_words_dask(
        [str(corpus)],
        splitter(pattern),
        unit=unit,
        max_word_bytes=64,
        glob="*.txt",
        client=client,
        task_bytes=50_000,
        piece_bytes=8192,
    )
    assert table.to_dict() == want
    assert cut == want_cut > 0  # the DNA-like line has words over 64 bytes
    assert (
        (stats.files, stats.bytes)
        == (want_stats.files, want_stats.bytes)
        == (
            len(paths),
            sum(os.path.getsize(p) for p in paths),
        )
    )


def test_task_size_and_inputs_spelling_do_not_matter(client: Any, corpus: Path) -> None:
    paths = expand_paths([str(corpus)], "*.txt")
    want, _, _ = local_count(paths, "cl100k")
    seen: list[int] = []
    for inputs, task_bytes in (
        ([str(corpus / "**" / "*.txt")], 7_777),
        ([f"file://{corpus}"], 1 << 20),
        (paths[::-1], 123_456),
    ):
        table, _, stats = count_words_dask(
            inputs,
            splitter("cl100k"),
            glob="*.txt",
            client=client,
            task_bytes=task_bytes,
            on_bytes=seen.append,
        )
        assert table.to_dict() == want, inputs
        assert stats.files == len(paths)
    assert sum(seen) == 3 * sum(os.path.getsize(p) for p in paths)


def test_jsonl_parquet_and_gzip(client: Any, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = (REPO / "corpora" / "legal" / "train.txt").read_text(encoding="utf-8")[:150_000]
    records = [{"text": d, "id": i} for i, d in enumerate(docs.split("\n\n"))]
    with open(tmp_path / "a.jsonl", "w", encoding="utf-8") as f:
        for r in records[::2]:
            f.write(json.dumps(r) + "\n")
    pq.write_table(
        pa.table({"text": [r["text"] for r in records[1::2]]}),
        tmp_path / "b.parquet",
        row_group_size=100,
    )
    with gzip.open(tmp_path / "c.jsonl.gz", "wt", encoding="utf-8") as g:
        g.write(json.dumps({"text": "zipped\n/text"}) + "\n")
    paths = expand_paths([str(tmp_path)])
    want, _, want_stats = local_count(paths, "o200k", field_name="text")
    table, _, stats = count_words_dask(
        [str(tmp_path)], splitter("o200k"), field_name="text", client=client
    )
    assert table.to_dict() == want
    assert (stats.files, stats.bytes) == (want_stats.files, want_stats.bytes)
    with pytest.raises(UsageError, match="needs --field"):
        count_words_dask([str(tmp_path)], splitter("o200k"), client=client)


def test_a_worker_killed_mid_run_changes_nothing(client: Any, corpus: Path, tmp_path: Path) -> None:
    paths = expand_paths([str(corpus)], "*.txt")
    want, want_cut, _ = local_count(paths, "o200k")
    marker = tmp_path / "killed"
    before = set(client.run(os.getpid).values())
    table, cut, stats = count_words_dask(
        [str(corpus)],
        splitter("o200k"),
        normalizer=KillOnce(str(marker)),  # type: ignore[arg-type]
        glob="*.txt",
        client=client,
        task_bytes=20_000,
        piece_bytes=4096,
    )
    assert marker.exists(), "no worker was killed"
    assert int(marker.read_text()) in before
    assert table.to_dict() == want and cut == want_cut
    assert stats.bytes == sum(os.path.getsize(p) for p in paths)
    client.wait_for_workers(2, timeout=60)
    assert int(marker.read_text()) not in set(client.run(os.getpid).values())


def test_invalid_utf8_names_file_and_offset(client: Any, tmp_path: Path) -> None:
    good = ("line of text\n" * 5000).encode()
    bad = good[:40_003] + b"\xff\xfe" + good[40_003:]
    (tmp_path / "a.txt").write_bytes(good)
    (tmp_path / "b.txt").write_bytes(bad)
    with pytest.raises(InputError, match=r"b\.txt, byte offset 40003: invalid UTF-8"):
        count_words_dask(
            [str(tmp_path)], splitter("gpt2"), client=client, task_bytes=10_000, piece_bytes=999
        )
    paths = expand_paths([str(tmp_path)])
    want, _, want_stats = local_count(paths, "gpt2", skip_invalid=True)
    table, _, stats = count_words_dask(
        [str(tmp_path)], splitter("gpt2"), client=client, task_bytes=10_000, skip_invalid=True
    )
    assert table.to_dict() == want
    assert stats.skipped_lines == want_stats.skipped_lines == 1
    assert stats.skipped_where == want_stats.skipped_where


def test_refusals(client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="standard input"):
        count_words_dask(["-"], splitter("gpt2"), client=client)
    with pytest.raises(InputError, match="no such file"):
        count_words_dask([str(tmp_path / "nope.txt")], splitter("gpt2"), client=client)
    with pytest.raises(UsageError, match="unknown unit"):
        count_words_dask([str(tmp_path)], splitter("gpt2"), unit="word", client=client)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UsageError, match=r"pip install 'toknz\[dask\]'"):
        count_words_dask([str(tmp_path)], splitter("gpt2"))


def test_train_and_count_on_dask_equal_local(client: Any, corpus: Path, tmp_path: Path) -> None:
    """``train(engine="dask")``, ``toknz train --engine dask`` and ``toknz count --engine dask``
    give byte-identical outputs to the local path (superwords, whose second pass also counts
    on the cluster, included)."""
    from click.testing import CliRunner

    import toknz
    from toknz.cli import main
    from toknz.train import train

    address = client.scheduler.address
    for kw in ({"pattern": "o200k"}, {"pattern": "cl100k", "superwords_at": 700}):
        local = train([corpus], vocab_size=900, glob="*.txt", threads=1, **kw)
        on_dask = train(
            [corpus], vocab_size=900, glob="*.txt", engine="dask", scheduler=address, **kw
        )
        local.save(tmp_path / "a.json")
        on_dask.save(tmp_path / "b.json")
        assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    runner = CliRunner()
    common = [str(corpus), "--glob", "*.txt", "--pattern", "gpt2"]
    assert runner.invoke(main, ["count", *common, "-o", str(tmp_path / "l.parquet")]).exit_code == 0
    done = runner.invoke(
        main,
        ["count", *common, "-o", str(tmp_path / "d.parquet"), "--engine", "dask"]
        + ["--scheduler", address],
    )
    assert done.exit_code == 0, done.output
    from toknz.train.shards import read_counts

    assert (
        read_counts(tmp_path / "l.parquet")[0].to_dict()
        == read_counts(tmp_path / "d.parquet")[0].to_dict()
    )
    done = runner.invoke(
        main,
        ["train", *common, "-o", str(tmp_path / "t.json"), "--vocab-size", "600"]
        + ["--engine", "dask", "--scheduler", address],
    )
    assert done.exit_code == 0, done.output
    assert toknz.load(tmp_path / "t.json").n_vocab == 600


def test_mixture_samples_count_on_dask(client: Any, corpus: Path, tmp_path: Path) -> None:
    """``toknz mixture --engine dask`` counts the category samples on the cluster: same result."""
    from toknz.analysis import infer_mixture
    from toknz.train import train

    tok = train([corpus], vocab_size=500, pattern="o200k", threads=1)
    cats = {
        "prose": [str(corpus / "en_austen_emma.txt")],
        "code": [str(corpus / "code_python_stdlib.txt")],
    }
    local = infer_mixture(tok, cats, merges=200)
    on_dask = infer_mixture(
        tok, cats, merges=200, engine="dask", scheduler=client.scheduler.address
    )
    assert on_dask.weights == local.weights
