"""Data-mixture inference: the LP by hand, lazy = full LP, controlled recovery, real merge lists, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mixture_helpers import CATEGORY_FILES, REPO, known_mixture, split_blocks

from toknz.analysis import Text, infer_mixture
from toknz.analysis.lp import build_inputs, solve_mixture_lp
from toknz.analysis.mixture import byte_weights, prepare_merges
from toknz.analysis.replay import PairCounts, replay_sample
from toknz.analysis.samples import load_sample
from toknz.cli import main
from toknz.train import train


def key(a: int, b: int) -> int:
    return (a << 32) | b


M0, M1, Q, R = key(1, 2), key(3, 4), key(5, 6), key(7, 8)


def hand_counts(init: dict[int, int], order: list[int]) -> PairCounts:
    """Pair counts of a category whose merges only remove their own pair (no new pairs)."""
    keys = np.array(list(init), dtype=np.int64)
    counts = np.array(list(init.values()), dtype=np.int64)
    merge_counts = np.array([init.get(m, 0) for m in order], dtype=np.int64)
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    dk: list[int] = []
    dv: list[int] = []
    for t, m in enumerate(order):
        if init.get(m, 0):
            dk.append(m)
            dv.append(-init[m])
        offsets[t + 1] = len(dk)
    return PairCounts(
        keys, counts, merge_counts, offsets, np.array(dk, np.int64), np.array(dv, np.int64)
    )


def test_lp_known_answer_by_hand() -> None:
    """Two categories; step 0 needs alpha_A >= 1/2 and step 1 alpha_A <= 1/2: the answer is 1/2.

    A (100 pairs): m0 50, m1 20, q 30. B (100 pairs): m0 15, m1 45, q 35, r 5.
    Step 0 (m0) vs m1: 0.3 a - 0.3 (1 - a) >= 0; step 1 (m1) vs q: -0.1 a + 0.1 (1 - a) >= 0.
    """
    order = [M0, M1, Q]
    a = hand_counts({M0: 50, M1: 20, Q: 30}, order)
    b = hand_counts({M0: 15, M1: 45, Q: 35, R: 5}, order)
    sol = solve_mixture_lp(build_inputs([a, b], np.array(order, dtype=np.int64)))
    assert sol.converged
    assert sol.slack == pytest.approx(0.0, abs=1e-9)
    assert sol.pair_weights == pytest.approx([0.5, 0.5], abs=1e-7)
    # B's sample was three times as many bytes per pair: a quarter of the bytes are A's.
    shares = byte_weights(sol.pair_weights, np.array([100.0, 300.0]), np.array([100.0, 100.0]))
    assert shares == pytest.approx([0.25, 0.75], abs=1e-7)


def test_lp_slack_by_hand_when_no_mixture_fits() -> None:
    """A merge no mixture can explain: the slack is the smallest total shortfall."""
    order = [M0, M1]
    # Step 0 merges m0, but m1 is more frequent in both categories by 0.2 of the pairs.
    a = hand_counts({M0: 40, M1: 60}, order)
    b = hand_counts({M0: 40, M1: 60}, order)
    sol = solve_mixture_lp(build_inputs([a, b], np.array(order, dtype=np.int64)))
    assert sol.slack == pytest.approx(0.2, abs=1e-9)


# ----------------------------------------------------------------- trained on known mixtures

FAST_CATEGORIES = ["en", "python", "de", "ru", "ja"]


def halves(names: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    train_side: dict[str, str] = {}
    sample_side: dict[str, str] = {}
    for n in names:
        text = (REPO / CATEGORY_FILES[n]).read_text(encoding="utf-8")
        train_side[n], sample_side[n] = split_blocks(text)
    return train_side, sample_side


def recover(
    names: list[str], seed: int, tmp_path: Path, *, merges: int, same_text: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    train_side, sample_side = halves(names)
    weights = np.random.default_rng(seed).dirichlet(np.ones(len(names)))
    text, actual = known_mixture(train_side, weights)
    corpus = tmp_path / f"mix{seed}.txt"
    corpus.write_text(text, encoding="utf-8")
    tok = train([corpus], vocab_size=256 + merges, pattern="cl100k", threads=1)
    if same_text:
        # The inference sees exactly the training text of each category.
        parts: dict[str, str] = {}
        mixed = text
        for n, share in zip(names, actual, strict=True):
            nbytes = round(share * len(text.encode("utf-8")))
            chunk = mixed.encode("utf-8")[:nbytes].decode("utf-8", "ignore")
            parts[n] = chunk
            mixed = mixed[len(chunk) :]
        samples = {n: Text(parts[n]) for n in names}
    else:
        samples = {n: Text(sample_side[n]) for n in names}
    result = infer_mixture(tok, samples, merges=merges, threads=1)
    assert abs(sum(result.weights.values()) - 1) < 1e-9
    assert result.converged
    return np.array([result.weights[n] for n in names]), actual


def test_exact_recovery_when_sampling_the_training_text(tmp_path: Path) -> None:
    """The samples are the very text the tokenizer learned from: every merge fits, zero error."""
    est, actual = recover(FAST_CATEGORIES, 3, tmp_path, merges=600, same_text=True)
    assert np.abs(est - actual).max() < 1e-6, (est, actual)


@pytest.mark.parametrize("seed", [0, 1])
def test_controlled_recovery_on_held_out_text(seed: int, tmp_path: Path) -> None:
    """Five categories, random simplex weights, tokenizer and samples from disjoint text blocks."""
    est, actual = recover(FAST_CATEGORIES, seed, tmp_path, merges=1000)
    err = np.abs(est - actual)
    log10_mse = float(np.log10(np.mean((est - actual) ** 2)))
    print(f"seed {seed}: log10 MSE {log10_mse:.2f}, max abs error {err.max():.4f}")
    assert err.max() < 0.03, (est.round(4), actual.round(4))
    assert log10_mse < -3.3


@pytest.mark.slow
def test_controlled_recovery_more_categories_and_trials(tmp_path: Path) -> None:
    names = list(CATEGORY_FILES)
    errors = []
    for seed in range(6):
        est, actual = recover(names, seed, tmp_path, merges=1500)
        errors.append(float(np.mean((est - actual) ** 2)))
        assert np.abs(est - actual).max() < 0.04
    print(f"mean log10 MSE {np.mean(np.log10(errors)):.2f}")
    assert np.mean(np.log10(errors)) < -3.3


def test_lazy_generation_reaches_the_full_lp_optimum(tmp_path: Path) -> None:
    """Solve the LP with every constraint written out (scipy) and compare with the lazy optimum."""
    linprog = pytest.importorskip("scipy.optimize").linprog
    names = ["en", "python", "de"]
    train_side, sample_side = halves(names)
    text, _ = known_mixture(train_side, np.array([0.5, 0.3, 0.2]), total=120_000)
    corpus = tmp_path / "mix.txt"
    corpus.write_text(text, encoding="utf-8")
    tok = train([corpus], vocab_size=256 + 40, pattern="cl100k", threads=1)
    merges = prepare_merges(tok, 40)
    samples = [load_sample(tok, n, Text(sample_side[n][:8_000]), threads=1) for n in names]
    counts = [replay_sample(s, merges) for s in samples]
    keys = (merges.left.astype(np.int64) << 32) | merges.right.astype(np.int64)
    data = build_inputs(counts, keys)
    lazy = solve_mixture_lp(data, per_step=1, max_add=7)
    assert lazy.converged and lazy.rounds > 1

    # Full LP: columns alpha (n), v_t (T), v_p (every pair); one row per (t, p) with a count.
    n, steps = len(names), len(merges)
    all_keys = sorted({k for c in counts for t in range(steps + 1) for k in c.counts_at(t)})
    col = {k: n + steps + j for j, k in enumerate(all_keys)}
    sparse = pytest.importorskip("scipy.sparse")
    data_v: list[float] = []
    row_i: list[int] = []
    col_i: list[int] = []
    n_rows = 0
    for t in range(steps):
        at = [c.counts_at(t) for c in counts]
        merged = int(keys[t])
        for k in sorted({k for a in at for k in a} - {merged}):
            # -(sum_i alpha_i (c_m - c_p) / pairs_i + v_t + v_p) <= 0
            for i, (c, a) in enumerate(zip(counts, at, strict=True)):
                row_i.append(n_rows)
                col_i.append(i)
                data_v.append(-(a.get(merged, 0) - a.get(k, 0)) / c.total_pairs)
            row_i += [n_rows, n_rows]
            col_i += [n + t, col[k]]
            data_v += [-1.0, -1.0]
            n_rows += 1
    cost = np.concatenate([np.zeros(n), np.ones(steps + len(all_keys))])
    a_ub = sparse.csr_matrix((data_v, (row_i, col_i)), shape=(n_rows, len(cost)))
    eq = np.zeros((1, len(cost)))
    eq[0, :n] = 1.0
    full = linprog(
        cost,
        A_ub=a_ub,
        b_ub=np.zeros(n_rows),
        A_eq=eq,
        b_eq=[1.0],
        bounds=[(0, 1)] * n + [(0, None)] * (len(cost) - n),
        method="highs",
    )
    assert full.status == 0
    assert n_rows > 5 * lazy.constraints, "the lazy LP should need far fewer rows"
    assert lazy.slack == pytest.approx(full.fun, rel=1e-6, abs=1e-10)
    # Dropping slack rows (every round, or never) changes the path, not the optimum.
    for drop_after in (0, 1):
        other = solve_mixture_lp(data, per_step=1, max_add=7, drop_after=drop_after)
        assert other.converged
        assert other.slack == pytest.approx(full.fun, rel=1e-6, abs=1e-10)


# ----------------------------------------------------------------- real merge lists


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "llama2"])
def test_runs_on_real_merge_lists(name: str, toknz_tok) -> None:
    tok = toknz_tok(name)
    samples = {
        "en": Text((REPO / CATEGORY_FILES["en"]).read_text(encoding="utf-8")[:60_000]),
        "code": Text((REPO / CATEGORY_FILES["python"]).read_text(encoding="utf-8")[:60_000]),
        "de": Text((REPO / CATEGORY_FILES["de"]).read_text(encoding="utf-8")[:60_000]),
    }
    result = infer_mixture(tok, samples, merges=300, threads=1)
    assert abs(sum(result.weights.values()) - 1) < 1e-9
    assert all(w >= 0 for w in result.weights.values())
    assert result.merges_used == 300
    report = result.merge_report
    assert report["kept"] == 300
    assert report["examined"] == 300 + sum(report["skipped"].values())
    if name == "llama2":
        assert report["skipped"].get("redundant_split", 0) > 100
    else:
        assert report["skipped"] == {}
    if name == "gpt2":  # WebText: far more English prose than code (the paper: 0.7% code)
        assert result.weights["en"] > result.weights["code"]


def test_llama2_redundant_splits_match_the_paper(toknz_tok) -> None:
    """The paper keeps 48.3% of Llama's merges once redundant splits are dropped."""
    from toknz.analysis.merges import merge_list

    merges = merge_list(toknz_tok("llama2"))
    share = len(merges) / merges.total
    assert 0.46 < share < 0.50, merges.report()
    assert merges.skipped["redundant_split"] > 25_000


def test_gemma_hand_added_whitespace_is_skipped(toknz_tok) -> None:
    from toknz.analysis.merges import merge_list

    merges = merge_list(toknz_tok("gemma3"), 2000)
    assert merges.skipped["hand_added_whitespace"] > 1000
    first = b"".join(merges.pair_bytes(0))
    assert first.strip(" \n\t\u2581".encode()) != b"", first


# ----------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("mixture")
    names = ["en", "python", "ru"]
    train_side, sample_side = halves(names)
    text, _ = known_mixture(train_side, np.array([0.5, 0.3, 0.2]), total=150_000)
    corpus = root / "mix.txt"
    corpus.write_text(text, encoding="utf-8")
    tok = train([corpus], vocab_size=256 + 400, pattern="cl100k", threads=1)
    path = root / "tok.json"
    tok.save(path)
    samples = {}
    for n in names:
        samples[n] = root / f"{n}.txt"
        samples[n].write_text(sample_side[n], encoding="utf-8")
    return path, samples


def test_cli_mixture_end_to_end(trained, tmp_path: Path) -> None:
    tok_path, samples = trained
    out, plot = tmp_path / "m.json", tmp_path / "m.png"
    args = ["mixture", "-t", str(tok_path), "-o", str(out), "--plot", str(plot)]
    for n, p in samples.items():
        args += ["--category", f"{n}={p}"]
    result = CliRunner().invoke(main, [*args, "--bootstrap", "2", "--threads", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines][0] == "en"  # sorted: the largest share first
    assert "█" in lines[0] and "[" in lines[0]
    data = json.loads(out.read_text())
    assert set(data["weights"]) == set(samples)
    assert sum(data["weights"].values()) == pytest.approx(1.0, abs=1e-9)
    for k in ("slack", "constraints", "seconds", "merge_report", "intervals"):
        assert k in data
    for n, (lo, hi) in data["intervals"].items():
        assert lo <= data["weights"][n] <= hi
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _one_line_error(result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    err = result.stderr.strip()
    assert err.startswith("toknz: error:") and "\n" not in err, err
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in err, err


def test_cli_mixture_bad_input(trained, tmp_path: Path) -> None:
    tok_path, samples = trained
    run = CliRunner().invoke
    good = [f"--category=en={samples['en']}", f"--category=python={samples['python']}"]
    base = ["mixture", "-t", str(tok_path), "--threads", "1"]
    _one_line_error(
        run(main, [*base, *good, "--category", f"ru={tmp_path / 'nope.txt'}"]), 1, "nope.txt"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _one_line_error(run(main, [*base, *good, "--category", f"x={empty}"]), 1, "'x'", "no text")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text\n\xff\xfe broken\n")
    _one_line_error(
        run(main, [*base, *good, "--category", f"x={bad}"]), 1, "bad.txt", "byte offset 10"
    )
    _one_line_error(run(main, [*base, good[0]]), 2, "at least two")
    _one_line_error(run(main, [*base, *good, f"--category=en={samples['ru']}"]), 2, "twice")
    _one_line_error(run(main, [*base, *good, "--category", "nameonly"]), 2, "NAME=PATH")
    _one_line_error(run(main, [*base, *good, "--merges", "100000"]), 2, "usable merges")
    _one_line_error(run(main, [*base, *good, "--merges", "0"]), 2, "at least 1")
    # A tokenizer with no merges.
    data = json.loads(tok_path.read_text())
    data["model"]["merges"] = []
    no_merges = tmp_path / "nomerges.json"
    no_merges.write_text(json.dumps(data))
    _one_line_error(run(main, ["mixture", "-t", str(no_merges), *good]), 2, "no merges")
    # Not a BPE tokenizer.
    data["model"] = {"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "a"}
    wordpiece = tmp_path / "wp.json"
    wordpiece.write_text(json.dumps(data))
    result = run(main, ["mixture", "-t", str(wordpiece), *good])
    assert result.exit_code in (1, 2) and "\n" not in result.stderr.strip(), result.output
    _one_line_error(
        run(main, ["mixture", "-t", "no-such-tokenizer", *good]), 2, "no-such-tokenizer"
    )


# ----------------------------------------------------------------- inspect


def test_inspect_merge_stats_categories_and_diff(trained) -> None:
    tok_path, samples = trained
    result = CliRunner().invoke(
        main,
        [
            "inspect", str(tok_path), "--json", "--diff", str(tok_path),
            "--category", f"en={samples['en']}", "--category", f"ru={samples['ru']}",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["merges_report"]
    classes = report["merge_classes"]["all"]
    assert sum(classes.values()) == pytest.approx(1.0)
    assert "Latin" in classes and "Cyrillic" in classes
    frequent = report["first_frequent"]
    assert frequent["en"]["first_step"] == 0  # the first merge is an English one
    assert frequent["ru"]["first_step"] is not None and frequent["ru"]["first_step"] > 0
    diff = report["diff"]
    assert diff["shared_prefix"] == diff["merges_a"] == diff["merges_b"]
    assert diff["unique_to_a"] == diff["unique_to_b"] == 0
    text = CliRunner().invoke(main, ["inspect", str(tok_path), "--merge-stats"])
    assert text.exit_code == 0 and "merge classes" in text.stdout


def test_diff_of_real_merge_lists(toknz_tok) -> None:
    from toknz.analysis.merge_stats import diff_merges

    same = diff_merges(toknz_tok("gpt2"), toknz_tok("gpt2-hf"), limit=5000)
    assert same["shared_prefix"] == 5000 and same["first_divergence"] is None
    other = diff_merges(toknz_tok("gpt2"), toknz_tok("cl100k_base"), limit=5000)
    assert other["shared_prefix"] < 5 and other["first_divergence"] is not None
    assert other["unique_to_a"] > 0 and other["unique_to_b"] > 0
    assert len(other["examples_a"]) == 10


def test_shifted_intervals_hold_the_point_and_keep_the_spread() -> None:
    from toknz.analysis.mixture import shifted_intervals

    point = np.array([0.30, 0.02])
    # The draws sit above the point for "a" (a shifted bootstrap distribution).
    draws = [{"a": 0.40 + 0.01 * k, "b": 0.01 * k} for k in range(11)]
    iv = shifted_intervals(point, ["a", "b"], draws, 0.8)
    lo_a, hi_a = iv["a"]
    assert lo_a < 0.30 < hi_a
    spread = np.quantile([d["a"] for d in draws], [0.1, 0.9])
    assert hi_a - lo_a == pytest.approx(spread[1] - spread[0])
    assert iv["b"][0] == 0.0  # clipped at zero
    assert iv["b"][1] <= 1.0


def test_the_solver_prints_nothing_on_stdout() -> None:
    """HiGHS's first instance writes a banner to stdout; `toknz mixture` output must not get it."""
    import subprocess
    import sys

    code = "from toknz.analysis.lp import _highs\n_highs(); _highs()\nprint('only this')\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout == "only this\n"
