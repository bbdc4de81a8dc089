"""Dynamic tokenization (toknz.dynamic): batch-level BPE over token ids, against a pure-Python twin."""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import require_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toknz.cli import main
from toknz.dynamic import (
    DynamicOptions,
    boundaries_for,
    length_curve,
    merge_batch,
    unmerge,
)
from toknz.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- the twin


def _segments(seq: list[int], starts: list[int]) -> list[list[int]]:
    if not seq:
        return []
    cuts = sorted({0, *starts})
    return [seq[a:b] for a, b in zip(cuts, [*cuts[1:], len(seq)], strict=True)]


def twin(
    batch: list[list[int]],
    bounds: list[list[int]],
    budget: int | None,
    min_count: int,
    first: int,
) -> dict[str, Any]:
    """The obvious algorithm: recount every pair, take the max count then the smallest pair."""
    segs = [_segments(seq, b) for seq, b in zip(batch, bounds, strict=True)]
    span: dict[int, tuple[int, ...]] = {}
    by_span: dict[tuple[int, ...], int] = {}
    merges: list[tuple[int, int, int]] = []
    lengths = [sum(len(s) for s in batch)]
    while budget is None or len(span) < budget:
        counts: Counter[tuple[int, int]] = Counter()
        for row in segs:
            for s in row:
                counts.update(zip(s, s[1:], strict=False))
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        if counts[best] < min_count:
            break
        a, b = best
        whole = span.get(a, (a,)) + span.get(b, (b,))
        z = by_span.get(whole)
        if z is None:
            z = first + len(span)
            by_span[whole] = z
            span[z] = whole
        merges.append((a, b, z))
        for row in segs:
            for k, s in enumerate(row):
                out, i = [], 0
                while i < len(s):
                    if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                        out.append(z)
                        i += 2
                    else:
                        out.append(s[i])
                        i += 1
                row[k] = out
        lengths.append(sum(len(s) for row in segs for s in row))
    return {
        "ids": [[t for s in row for t in s] for row in segs],
        "definitions": span,
        "merges": merges,
        "lengths": lengths,
    }


@st.composite
def batches(draw: Any) -> tuple[list[list[int]], list[list[int]], int | None, int]:
    alphabet = draw(st.integers(1, 6))
    n_seq = draw(st.integers(0, 5))
    seqs = [draw(st.lists(st.integers(0, alphabet - 1), max_size=14)) for _ in range(n_seq)]
    bounds = [
        sorted(set(draw(st.lists(st.integers(0, max(0, len(s) - 1)), max_size=4)))) if s else []
        for s in seqs
    ]
    budget = draw(st.one_of(st.none(), st.integers(0, 12)))
    min_count = draw(st.integers(1, 3))
    return seqs, bounds, budget, min_count


# ----------------------------------------------------------------------------- properties


@SETTINGS
@given(batches())
def test_kernel_equals_twin_and_unmerges(case: Any) -> None:
    seqs, bounds, budget, min_count = case
    first = 100
    got = merge_batch(seqs, bounds, budget=budget, min_count=min_count, first_new_id=first)
    want = twin(seqs, bounds, budget, min_count, first)
    assert [s.tolist() for s in got.ids] == want["ids"]
    assert got.definitions == want["definitions"]
    assert got.merges == want["merges"]
    assert unmerge(got) == seqs
    # spans: contiguous, cover the sequence, and spell the definition
    for seq, new, spans, starts in zip(seqs, got.ids, got.spans, bounds, strict=True):
        assert spans[:, 0].tolist() == [0, *spans[:-1, 1].tolist()] if len(spans) else True
        assert (spans[-1, 1] if len(spans) else 0) == len(seq)
        for t, (a, b) in zip(new.tolist(), spans.tolist(), strict=True):
            assert tuple(seq[a:b]) == got.definitions.get(t, (t,))
            assert not any(a < s < b for s in starts), "a merged token crosses a boundary"
    curve = length_curve(seqs, bounds, budget=budget, min_count=min_count)
    assert curve.tolist() == want["lengths"]


@SETTINGS
@given(batches())
def test_budget_and_min_count_exact(case: Any) -> None:
    seqs, bounds, budget, min_count = case
    got = merge_batch(seqs, bounds, budget=budget, min_count=min_count)
    assert all(c >= min_count for c in got.merge_counts)
    if budget is not None:
        assert len(got.definitions) <= budget
    if budget is None or len(got.definitions) < budget:
        # stopped for want of pairs: none left reaches min_count
        counts: Counter[tuple[int, int]] = Counter()
        for new, spans, starts in zip(got.ids, got.spans, bounds, strict=True):
            cut = {0, *starts}
            row = new.tolist()
            for i in range(1, len(row)):
                if int(spans[i, 0]) not in cut:
                    counts[(row[i - 1], row[i])] += 1
        assert max(counts.values(), default=0) < min_count


@SETTINGS
@given(batches(), st.integers(0, 12), st.integers(0, 12))
def test_merges_are_a_prefix(case: Any, k: int, m: int) -> None:
    seqs, bounds, _, min_count = case
    small, big = sorted((k, m))
    a = merge_batch(seqs, bounds, budget=small, min_count=min_count)
    b = merge_batch(seqs, bounds, budget=big, min_count=min_count)
    assert a.merges == b.merges[: len(a.merges)]
    curve = length_curve(seqs, bounds, budget=big, min_count=min_count)
    assert curve[len(a.merges)] == a.n_after
    assert curve[-1] == b.n_after
    assert np.all(np.diff(curve) < 0)


def test_doc_example_and_repeats() -> None:
    b = merge_batch([[1, 2, 3, 1, 2], [1, 2]], first_new_id=10)
    assert [s.tolist() for s in b.ids] == [[10, 3, 10], [10]]
    assert b.definitions == {10: (1, 2)}
    assert b.spans[0].tolist() == [[0, 2], [2, 3], [3, 5]]
    # overlapping occurrences of (a, a) count, and merge left to right
    r = merge_batch([[7, 7, 7]], min_count=2)
    assert [s.tolist() for s in r.ids] == [[8, 7]] and r.merge_counts == [2]
    assert merge_batch([]).ids == [] and merge_batch([[]]).n_after == 0


def test_errors() -> None:
    with pytest.raises(UsageError, match="budget"):
        merge_batch([[1, 2]], budget=-1)
    with pytest.raises(UsageError, match="min_count"):
        merge_batch([[1, 2]], min_count=0)
    with pytest.raises(UsageError, match="first_new_id"):
        merge_batch([[1, 2]], first_new_id=2)
    with pytest.raises(UsageError, match="outside"):
        merge_batch([[1, 2]], [[2]])
    with pytest.raises(UsageError, match="entries"):
        merge_batch([[1, 2]], [[0], [0]])
    with pytest.raises(UsageError, match="unknown dynamic"):
        DynamicOptions.of({"budjet": 3})


# ----------------------------------------------------------------------------- real tokenizer

WS = set(b" \t\n\r\x0b\x0c")


@functools.cache
def o200k() -> Any:
    require_file("o200k_base")
    import toknz

    return toknz.load("o200k_base")


def _sentences(n_per_lang: int = 6) -> list[str]:
    out = []
    for name in ("de", "el", "ru", "ja", "hi", "fr"):
        lines = (ROOT / "corpora" / "multi" / f"{name}.txt").read_text("utf-8").splitlines()
        out.extend([ln for ln in lines if len(ln) > 20][:n_per_lang])
    out.append("The well-known  re-encoding of  'words.'\n\n\tNew line?  ")
    return out


@pytest.mark.parametrize("rule", ["pretoken", "word", "word+hyphen"])
def test_o200k_merged_tokens_are_valid(rule: str) -> None:
    from toknz.pipeline.pretokenize import pre_tokenize

    tok = o200k()
    texts = _sentences()
    got = tok.encode_batch(texts, dynamic={"boundary": rule, "min_count": 2})
    assert got.first_new_id == tok.n_vocab
    assert got.n_after < got.n_before
    base = tok.encode_batch(texts)
    assert unmerge(got) == base
    for text, ids, new, spans in zip(texts, base, got.ids, got.spans, strict=True):
        raw = text.encode("utf-8")
        piece_starts = set(
            np.cumsum(
                [0] + [len(p.encode()) for p in pre_tokenize(tok.pre_tokenizer, text)]
            ).tolist()
        )
        at = np.concatenate([[0], np.cumsum([len(tok.decode_single_token_bytes(t)) for t in ids])])
        for t, (a, b) in zip(new.tolist(), spans.tolist(), strict=True):
            if t < tok.n_vocab:
                continue
            parts = got.definitions[t]
            word = b"".join(tok.decode_single_token_bytes(p) for p in parts)
            assert word == raw[at[a] : at[b]]  # decodes to its constituents, in place
            if rule == "pretoken":
                assert not any(at[a] < s < at[b] for s in piece_starts)
            ws = [c in WS for c in word]
            assert all(ws) or not any(ws[1:]), word


TEXT = st.lists(
    st.sampled_from(list("ab cd\n\t-.,'!é日本ß\u3000") + ["ab", " ab", "cd-ab", "  "]), max_size=25
).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=5), st.sampled_from(["pretoken", "word", "word+hyphen"]))
def test_o200k_random_texts_merge_validly(texts: list[str], rule: str) -> None:
    from toknz.pipeline.pretokenize import pre_tokenize

    tok = o200k()
    got = tok.encode_batch(texts, dynamic={"boundary": rule, "min_count": 1})
    base = tok.encode_batch(texts)
    assert unmerge(got) == base
    for text, ids, new, spans in zip(texts, base, got.ids, got.spans, strict=True):
        pieces = pre_tokenize(tok.pre_tokenizer, text)
        piece_starts = set(np.cumsum([0] + [len(p.encode()) for p in pieces]).tolist())
        at = np.cumsum([0] + [len(tok.decode_single_token_bytes(t)) for t in ids])
        for t, (a, b) in zip(new.tolist(), spans.tolist(), strict=True):
            if t >= tok.n_vocab:
                word = b"".join(tok.decode_single_token_bytes(p) for p in got.definitions[t])
                assert word == text.encode()[at[a] : at[b]]
                ws = [c in WS for c in word]
                assert all(ws) or not any(ws[1:]), word
                if rule == "pretoken":
                    assert not any(at[a] < s < at[b] for s in piece_starts)


def test_boundaries_for_example_and_errors() -> None:
    tok = o200k()
    assert boundaries_for(tok, ["Hello world!"])[0].tolist() == [0, 1, 2]
    assert boundaries_for(tok, ["Hello world!"], "word")[0].tolist() == [0, 1]
    with pytest.raises(UsageError, match="unknown boundary"):
        boundaries_for(tok, ["x"], "sentence")
    with pytest.raises(UsageError, match="bytes"):
        boundaries_for(tok, ["Hello"], ids=[[0, 1, 2, 3, 4, 5, 6]])
    opts = DynamicOptions(budget=3)
    assert len(tok.encode_batch(["a b a b a b"] * 3, dynamic=opts).definitions) <= 3


# ----------------------------------------------------------------------------- CLI


def test_cli_end_to_end(tmp_path: Path) -> None:
    require_file("o200k_base")
    a = tmp_path / "a.txt"
    a.write_text("\n".join(_sentences(4)), encoding="utf-8")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        main,
        [
            "dynamic",
            "-t",
            "o200k_base",
            str(a),
            "--batch-size",
            "8",
            "--budget",
            "50",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "fewer" in result.output
    report = json.loads(out.read_text())
    row = report["files"][0]
    assert row["tokens_after"] < row["tokens_before"] and report["budget"] == 50


def test_cli_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nbr\xffoken\n")
    runner = CliRunner()
    result = runner.invoke(main, ["dynamic", "-t", "o200k_base", str(bad)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "byte offset 7" in lines[0] and "bad.txt" in lines[0]
    result = runner.invoke(main, ["dynamic", "-t", "o200k_base", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"toknz: error: {tmp_path / 'missing.txt'}: no such file"
    ]
