"""The statistics and bookkeeping behind docs/bytelevel.md (benchmarks/bytelevel.py), on made-up rows.

The benchmark needs real models to run; what it computes from its rows does
not, and every number in the doc goes through these helpers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import bytelevel as bench
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st


def test_trim_at_suffix() -> None:
    # the generation runs into the suffix: cut before the suffix's first 4 bytes
    assert bench.trim_at_suffix(b"tag;\n\tif (shared->align", b"red->aligned_size") == (
        b"tag;\n\tif (sha"
    )
    # it ends with the start of the suffix (3 bytes or more)
    assert bench.trim_at_suffix(b"return x + 1)", b" + 1)) {") == b"return x"
    assert bench.trim_at_suffix(b"abc def", b"defg") == b"abc "
    # two bytes of the suffix at the end are not enough to cut
    assert bench.trim_at_suffix(b"abc de", b"dex1") == b"abc de"
    assert bench.trim_at_suffix(b"abc", b"") == b"abc"
    assert bench.trim_at_suffix(b"", b"abcd") == b""


@given(st.binary(max_size=12), st.binary(max_size=8))
def test_trim_at_suffix_cuts_at_the_first_run_into_the_suffix(gen, suffix) -> None:
    head = suffix[:4]
    if not head:
        assert bench.trim_at_suffix(gen, suffix) == gen
        return
    # the first place the generation spells the head, or where its last >= 3 bytes start the head
    cuts = [gen.find(head)] if head in gen else []
    cuts += [
        i for i in range(len(gen) - 2) if len(gen) - i <= len(head) and head.startswith(gen[i:])
    ]
    want = gen[: min(cuts)] if cuts else gen
    assert bench.trim_at_suffix(gen, suffix) == want


def test_trimmed_exact_on_a_row() -> None:
    row = {
        "generated": "tag;\n\tif (shared->",
        "suffix_head": "red->x",
        "middle": "tag;\n\tif (sha",
    }
    assert bench.trimmed_exact(row)
    assert not bench.trimmed_exact({**row, "middle": "tag;"})


def test_sign_test_and_wilson() -> None:
    assert bench.sign_test(0, 0) == 1.0
    assert bench.sign_test(5, 5) == 1.0
    # 10 wins, 0 losses: 2 * 0.5**10
    assert bench.sign_test(10, 0) == pytest.approx(2 / 1024)
    assert bench.sign_test(0, 10) == bench.sign_test(10, 0)
    lo, hi = bench.wilson(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.35
    lo, hi = bench.wilson(5, 10)
    assert lo < 0.5 < hi and lo == pytest.approx(1 - hi)
    assert all(math.isnan(x) for x in bench.wilson(0, 0))


def test_boot_mean_holds_the_mean() -> None:
    x = [0.1, 0.5, 0.2, 0.9, 0.4]
    lo, hi = bench.boot_mean(x)
    assert lo <= np.mean(x) <= hi
    assert bench.boot_mean([2.0]) == (2.0, 2.0)


def test_combine_matches_the_definitions() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(2):
        lp = rng.normal(size=(3, 257))
        lp[:, 7] = -np.inf  # a byte one member rules out
        rows.append(lp - np.logaddexp.reduce(lp, axis=1, keepdims=True))
    rows[1][:, 7] = rows[0][:, 7] = -np.inf
    rows[1][:, 9] = -np.inf
    w = np.array([0.3, 0.7])
    mix = bench.combine(rows, w, "mixture")
    want = np.log(0.3 * np.exp(rows[0]) + 0.7 * np.exp(rows[1]))
    np.testing.assert_allclose(mix[np.isfinite(want)], want[np.isfinite(want)], atol=1e-12)
    assert np.isneginf(mix[:, 7]).all() and np.isfinite(mix[:, 9]).all()
    prod = bench.combine(rows, w, "product")
    raw = 0.3 * rows[0] + 0.7 * rows[1]
    want = raw - np.logaddexp.reduce(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(prod[np.isfinite(want)], want[np.isfinite(want)], atol=1e-12)
    assert np.isneginf(prod[:, 9]).all()  # impossible under one member: impossible in the product
    # a zero weight drops the member (no 0 * -inf)
    only0 = bench.combine(rows, np.array([1.0, 0.0]), "product")
    np.testing.assert_allclose(only0[:, :9], rows[0][:, :9], atol=1e-12)
    assert np.isfinite(only0[:, 9]).all()


def test_done_keys_and_fim_rows(tmp_path: Path, monkeypatch) -> None:
    jsonl = tmp_path / "rows.jsonl"
    rows = [
        {"part": "fim", "kind": "meta", "run": "r", "argv": ["--shard", "0/2"], "machine": "A, x"},
        {"part": "fim", "kind": "meta", "run": "r", "argv": ["--shard", "1/2"], "machine": "A, x"},
        {"part": "fim", "kind": "case", "run": "r", "case": 0, "method": "plain"},
        {"part": "fim", "kind": "case", "run": "r", "case": 1, "method": "plain"},
        # shard 0 resumed on another machine: its later rows are that machine's
        {"part": "fim", "kind": "meta", "run": "r", "argv": ["--shard", "0/2"], "machine": "B, y"},
        {"part": "fim", "kind": "case", "run": "r", "case": 2, "method": "plain"},
        {"part": "fim", "kind": "case", "run": "r", "case": 3, "method": "plain"},
        {"part": "fim", "kind": "case", "run": "r", "case": 0, "method": "plain", "dup": True},
        {"part": "completion", "run": "r", "model": "m", "text": "code", "case": 4},
        {
            "part": "completion",
            "kind": "healing",
            "run": "r",
            "model": "m",
            "text": "code",
            "case": 5,
        },
    ]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(bench, "JSONL", jsonl)
    assert bench.done_keys("r", "fim", "case", ("case", "method")) == {
        (0, "plain"),
        (1, "plain"),
        (2, "plain"),
        (3, "plain"),
    }
    assert bench.done_keys("r", "completion", None, ("model", "text", "case")) == {("m", "code", 4)}
    assert bench.done_keys("r", "completion", "healing", ("model", "text", "case")) == {
        ("m", "code", 5)
    }
    assert bench.done_keys("nope", "fim", "case", ("case", "method")) == set()
    with open(jsonl, "a") as f:
        f.write(json.dumps({"part": "fim", "kind": "case", "run": "o", "case": 9, "method": "x"}))
    assert (9, "x") not in bench.done_keys("r", "fim", "case", ("case", "method"))
    tagged = bench.fim_rows(rows)
    assert [(r["case"], r["machine"]) for r in tagged] == [
        (0, "A, x"),
        (1, "A, x"),
        (2, "B, y"),
        (3, "A, x"),
    ]
    assert not any(r.get("dup") for r in tagged)  # the first row of a case and method is kept
