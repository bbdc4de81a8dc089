"""Mixture inference under distribution shift: error per method, the fit diagnostic's alarms, the training unit.

Every category has two *sources* of the same kind of text (one programming
language from two code bases, one natural language from two packages,
technical English from two projects). A trial draws byte weights from the
simplex, trains a Llama-3-pattern byte-level BPE tokenizer with toknz on
that mixture of each category's *training source* (evenly spaced blocks of
its even ~2,000-character blocks), and infers the weights twice:

- *in distribution*: the sample is the odd blocks of the same source (what
  ``benchmarks/mixture.py`` does);
- *shifted*: the sample is text of the category's *other* source.

Every method of :data:`toknz.analysis.mixture.METHODS` is solved on the same
replayed samples, and the fit diagnostic (:mod:`toknz.analysis.mixture_fit`,
computed on the plain LP, as ``infer_mixture`` does) is recorded, so its
alarm rates can be read off: true alarms among shifted trials whose plain
max error exceeds 0.05, false alarms among in-distribution trials. A third
part trains line by line, as ``tokenizers``' ``Tokenizer.train(files)`` does
(toknz ``unit="line"``, the same merges: ``tests/test_train_units.py``), and compares counting the samples as documents, as lines, and
``unit="auto"``.

    python benchmarks/mixture_shift.py                 # 20 trials per setting
    python benchmarks/mixture_shift.py --trials 3 --no-write

Sources: ``python corpora/build.py --kind code --size-mb 200`` and
``--kind prose --size-mb 40`` (``~/.cache/toknz/corpora/code-200mb``,
``prose-40mb``), the repository's ``corpora/multi``, the Python packages
installed beside toknz (numpy, scipy, sympy sources) and the German, French and
Russian message catalogues of the Debian packages installed here
(``/usr/share/locale/*/LC_MESSAGES/*.mo``). Writes
``docs/bench/mixture_shift.jsonl`` and the part of ``docs/mixture.md`` between
the ``<!-- mixture_shift -->`` markers.
"""

from __future__ import annotations

import argparse
import gettext
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_marked
from mixture_helpers import known_mixture, split_blocks, spread_bytes

from toknz.analysis import Text
from toknz.analysis.lp import solve_mixture_lp
from toknz.analysis.mixture import (
    DEFAULT_METHOD,
    METHODS,
    byte_weights,
    count_samples,
    infer_mixture,
    joinable_pairs,
    method_steps,
    prepare_merges,
    solve_samples,
    token_bytes,
)
from toknz.analysis.mixture_fit import FIT_THRESHOLD
from toknz.train import train

ROOT = Path(__file__).resolve().parent.parent

DOC = ROOT / "docs" / "mixture.md"
MARK = "<!-- mixture_shift -->"
JSONL = ROOT / "docs" / "bench" / "mixture_shift.jsonl"
CACHE = Path(os.environ.get("TOKNZ_CACHE", Path.home() / ".cache" / "toknz")) / "corpora"
SITE = Path(np.__file__).resolve().parent.parent
MERGES = 1000
#: Bytes read from each source: the training source is split in two halves of this size.
SOURCE_MB = 1.0


def read_head(path: Path, n: int) -> str:
    """The first ``n`` bytes of ``path`` as text (a cut character dropped)."""
    with open(path, "rb") as f:
        return f.read(n).decode("utf-8", "ignore")


def read_tail(path: Path, n: int) -> str:
    """The last ``n`` bytes of ``path`` as text, from the first line end on."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - n))
        data = f.read().decode("utf-8", "ignore")
    return data[data.find("\n") + 1 :]


def python_files(packages: list[str], n: int) -> str:
    """About ``n`` bytes of the ``*.py`` files of installed ``packages`` (evenly spaced files)."""
    files = sorted(
        p for pkg in packages for p in (SITE / pkg).rglob("*.py") if "tests" not in p.parts
    )
    text = "".join(p.read_text(encoding="utf-8", errors="ignore") for p in files)
    return spread_bytes(text, n)


def catalogue_text(lang: str, n: int) -> str:
    """About ``n`` bytes of the translated messages of the installed ``.mo`` files of ``lang``."""
    out: list[str] = []
    for path in sorted(Path("/usr/share/locale", lang, "LC_MESSAGES").glob("*.mo")):
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        out.extend(v.strip() + "\n" for k, v in catalog.items() if k and isinstance(v, str))
    return spread_bytes("".join(out), n)


def settings() -> list[dict]:
    """Each setting: name -> (training source loader, other source loader, description)."""
    n = int(SOURCE_MB * 1e6)
    code, prose = CACHE / "code-200mb", CACHE / "prose-40mb"
    multi = ROOT / "corpora" / "multi"
    return [
        {
            "setting": "code + docs",
            "categories": {
                "python": (
                    lambda: read_head(code / "python.txt", 2 * n),
                    lambda: python_files(["numpy", "scipy"], n),
                    "CPython 3.11 stdlib -> numpy + scipy sources",
                ),
                "c": (
                    lambda: read_head(code / "linux_c.txt", 2 * n),
                    lambda: read_tail(code / "c.txt", n),
                    "Linux kernel -> glibc",
                ),
                "rust": (
                    lambda: read_head(code / "rust.txt", 2 * n),
                    lambda: read_tail(code / "rust.txt", n),
                    "Rust library/ -> rustc compiler/",
                ),
                "en docs": (
                    lambda: read_head(code / "linux_docs.txt", 2 * n),
                    lambda: read_head(prose / "python_docs.txt", n),
                    "Linux Documentation/ -> Python 3.11 docs (both reST)",
                ),
            },
        },
        {
            "setting": "languages + code",
            "categories": {
                "de": (
                    lambda: (multi / "de.txt").read_text(encoding="utf-8"),
                    lambda: catalogue_text("de", n),
                    "LibreOffice help -> Debian message catalogues",
                ),
                "fr": (
                    lambda: (multi / "fr.txt").read_text(encoding="utf-8"),
                    lambda: catalogue_text("fr", n),
                    "LibreOffice help -> Debian message catalogues",
                ),
                "ru": (
                    lambda: (multi / "ru.txt").read_text(encoding="utf-8"),
                    lambda: catalogue_text("ru", n),
                    "LibreOffice help -> Debian message catalogues",
                ),
                "python": (
                    lambda: read_head(code / "python.txt", 2 * n),
                    lambda: python_files(["sympy"], n),
                    "CPython 3.11 stdlib -> sympy sources",
                ),
            },
        },
    ]


def load(setting: dict) -> dict:
    """Training side, in-distribution sample and shifted sample of every category."""
    train_side, same, other, sources = {}, {}, {}, {}
    for name, (load_train, load_other, what) in setting["categories"].items():
        train_side[name], same[name] = split_blocks(load_train())
        other[name] = load_other()
        sources[name] = what
    return {"train": train_side, "same": same, "other": other, "sources": sources}


def solve_all(tok, samples: dict[str, str], merges: int, methods: list[str]) -> dict:
    """Every method's byte weights on one set of samples, and the plain LP's fit diagnostic."""
    names = list(samples)
    cleaned = prepare_merges(tok, merges)
    counted = count_samples(tok, {k: Text(v) for k, v in samples.items()}, threads=1)
    fitted = solve_samples(names, counted, cleaned, method="plain")
    sizes = np.array([s.bytes for s in counted], dtype=np.float64)
    plain = fitted.solution
    out = {"fit": fitted.fit.score, "unseen": fitted.fit.unseen, "slack": plain.slack}
    out["worst"] = [m["merge"] for m in fitted.fit.worst[:3]]
    joinable = joinable_pairs(fitted.pair_keys, cleaned, token_bytes(tok, cleaned))
    weights = {}
    seconds = {}
    for method in methods:
        t0 = time.perf_counter()
        if method == "plain":
            sol, denominators = plain, fitted.data.denominators
        else:
            data_m, active_m = method_steps(method, fitted.data, fitted.active, plain, joinable)
            sol, denominators = solve_mixture_lp(data_m, active=active_m), data_m.denominators
        w = byte_weights(sol.pair_weights, sizes, denominators)
        weights[method] = {n: float(x) for n, x in zip(names, w, strict=True)}
        seconds[method] = time.perf_counter() - t0 + (plain.seconds if method == "plain" else 0)
    out["weights"] = weights
    out["seconds"] = seconds
    return out


def errors(weights: dict[str, float], actual: np.ndarray, names: list[str]) -> dict:
    est = np.array([weights[n] for n in names])
    diff = est - actual
    return {
        "max": float(np.abs(diff).max()),
        "mae": float(np.abs(diff).mean()),
        "log10_mse": float(np.log10(max(np.mean(diff**2), 1e-12))),
    }


def trials_of(data: dict, trials: int, seed: int, tmp: Path, unit: str = "document"):
    """Per trial: ``(trial, tokenizer, actual byte shares, mixture MB)``, weights from ``seed``.

    The tokenizer is trained by toknz on the trial's mixture with the Llama 3
    pattern; ``unit="line"`` pre-tokenizes each line on its own, as
    ``tokenizers``' ``Tokenizer.train(files)`` does (the same merges:
    ``tests/test_train_units.py``).
    """
    names = list(data["train"])
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        weights = rng.dirichlet(np.ones(len(names)))
        text, actual = known_mixture(data["train"], weights, spread=True)
        corpus = tmp / "mix.txt"
        corpus.write_text(text, encoding="utf-8")
        tok = train([corpus], vocab_size=256 + MERGES, pattern="llama3", unit=unit, threads=1)
        yield trial, tok, actual, len(text.encode()) / 1e6


def run_setting(setting: dict, trials: int, methods: list[str], seed: int, tmp: Path) -> list[dict]:
    data = load(setting)
    names = list(data["train"])
    rows = []
    for trial, tok, actual, mixture_mb in trials_of(data, trials, seed, tmp):
        row = {
            "setting": setting["setting"],
            "trial": trial,
            "seed": seed,
            "actual": dict(zip(names, actual.tolist(), strict=True)),
            "mixture_mb": mixture_mb,
        }
        for kind in ("same", "other"):
            got = solve_all(tok, data[kind], MERGES, methods)
            got["errors"] = {m: errors(got["weights"][m], actual, names) for m in methods}
            row[kind] = got
        rows.append(row)
        print(
            f"  {setting['setting']} trial {trial}: in-dist fit {row['same']['fit']:.3f} "
            f"max err {row['same']['errors']['plain']['max']:.3f}; shifted fit "
            f"{row['other']['fit']:.3f} max err "
            + ", ".join(f"{m} {row['other']['errors'][m]['max']:.3f}" for m in methods),
            flush=True,
        )
    return rows


def run_units(setting: dict, trials: int, seed: int, tmp: Path) -> list[dict]:
    """Tokenizers trained line by line (as ``tokenizers.train(files)``) and as whole documents;
    samples counted as documents, as lines, and with ``unit="auto"``."""
    data = load(setting)
    names = list(data["train"])
    samples = {k: Text(v) for k, v in data["same"].items()}
    rows = []
    for trained in ("line", "document"):
        for trial, tok, actual, _mb in trials_of(data, trials, seed, tmp, unit=trained):
            row: dict = {"setting": setting["setting"], "trial": trial, "trained": trained}
            for unit in ("document", "line", "auto"):
                r = infer_mixture(tok, samples, merges=MERGES, unit=unit, threads=1)
                row[unit] = {
                    "errors": errors(r.weights, actual, names),
                    "fit": r.fit["score"],
                    "chosen": r.unit,
                    "weights": r.weights,
                }
            est = {u: np.array([row[u]["weights"][n] for n in names]) for u in ("document", "line")}
            row["unit_gap_max"] = float(np.abs(est["document"] - est["line"]).max())
            rows.append(row)
            print(
                f"  trained by {trained}, trial {trial}: samples as documents max err "
                f"{row['document']['errors']['max']:.4f} (fit {row['document']['fit']:.4f}), "
                f"as lines {row['line']['errors']['max']:.4f} (fit {row['line']['fit']:.4f}), "
                f"auto chose {row['auto']['chosen']}",
                flush=True,
            )
    return rows


def summarize(rows: list[dict], methods: list[str]) -> dict:
    """Per setting and method: mean errors in and out of distribution; the diagnostic's rates."""
    out: dict = {"settings": {}, "threshold": FIT_THRESHOLD}
    for setting in dict.fromkeys(r["setting"] for r in rows):
        rs = [r for r in rows if r["setting"] == setting]
        per = {}
        for m in methods:
            per[m] = {
                kind: {
                    "mae": float(np.mean([r[kind]["errors"][m]["mae"] for r in rs])),
                    "max": float(np.mean([r[kind]["errors"][m]["max"] for r in rs])),
                    "log10_mse": float(np.mean([r[kind]["errors"][m]["log10_mse"] for r in rs])),
                    "log10_mse_sd": float(
                        np.std([r[kind]["errors"][m]["log10_mse"] for r in rs], ddof=1)
                    )
                    if len(rs) > 1
                    else 0.0,
                }
                for kind in ("same", "other")
            }
        out["settings"][setting] = {"trials": len(rs), "methods": per}
    out["rates"] = alarm_rates(rows, FIT_THRESHOLD)
    return out


def alarm_rates(rows: list[dict], threshold: float) -> dict:
    """True alarms (shifted trials, plain max error > 0.05) and false alarms (in distribution)."""
    bad = [
        r["other"]["fit"] > threshold for r in rows if r["other"]["errors"]["plain"]["max"] > 0.05
    ]
    shifted = [r["other"]["fit"] > threshold for r in rows]
    same = [r["same"]["fit"] > threshold for r in rows]
    default_bad = [
        r["other"]["fit"] > threshold
        for r in rows
        if r["other"]["errors"][DEFAULT_METHOD]["max"] > 0.05
    ]
    return {
        "true_alarm": float(np.mean(bad)) if bad else None,
        "bad_trials": len(bad),
        "true_alarm_default": float(np.mean(default_bad)) if default_bad else None,
        "bad_trials_default": len(default_bad),
        "shifted_alarm": float(np.mean(shifted)) if shifted else None,
        "false_alarm": float(np.mean(same)) if same else None,
        "fit_same_max": max(r["same"]["fit"] for r in rows),
        "fit_other_min": min(r["other"]["fit"] for r in rows),
    }


def report(
    command: str, rows: list[dict], units: list[dict], methods: list[str], sources: dict
) -> str:
    s = summarize(rows, methods)
    rates = s["rates"]
    lines = [
        f"Generated by `{command}`: {MERGES:,} merges, Llama-3-pattern tokenizers trained by "
        "toknz on random simplex mixtures of each category's training source; the same "
        "tokenizer inferred from held-out blocks of the same sources (*in distribution*) and "
        "from each category's other source (*shifted*). Mean over trials; MAE is the mean "
        "absolute error of the byte shares, max the largest per trial (then averaged).",
        "",
        "Sources (training -> shifted sample):",
        "",
    ]
    for setting, cats in sources.items():
        for name, what in cats.items():
            lines.append(f"- {setting}, `{name}`: {what}")
    lines += [
        "",
        "| setting | method | trials | in-dist log10 MSE | in-dist MAE | shifted log10 MSE | shifted MAE | shifted max error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting, info in s["settings"].items():
        for m in methods:
            a, b = info["methods"][m]["same"], info["methods"][m]["other"]
            mark = " (default)" if m == DEFAULT_METHOD else ""
            lines.append(
                f"| {setting} | {m}{mark} | {info['trials']} | {a['log10_mse']:.2f} ± "
                f"{a['log10_mse_sd']:.2f} | {a['mae']:.4f} | {b['log10_mse']:.2f} ± "
                f"{b['log10_mse_sd']:.2f} | {b['mae']:.4f} | {b['max']:.3f} |"
            )
    lines += [
        "",
        "Against the plain LP (ratios of mean shifted MAE, per setting; *eligible*: "
        "in-distribution log10 MSE within 0.2 of plain's in every setting):",
        "",
    ]
    for m in methods:
        ratios, eligible = [], True
        for info in s["settings"].values():
            base, mine = info["methods"]["plain"], info["methods"][m]
            ratios.append(mine["other"]["mae"] / base["other"]["mae"])
            eligible &= mine["same"]["log10_mse"] <= base["same"]["log10_mse"] + 0.2
        lines.append(
            f"- {m}: shifted MAE × "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + ("; eligible" if eligible else "; loses in-distribution precision")
        )
    pct = lambda x: "–" if x is None else f"{100 * x:.0f} %"  # noqa: E731
    lines += [
        "",
        f"Fit diagnostic (threshold {FIT_THRESHOLD:.2f}, fixed in "
        "`toknz/analysis/mixture_fit.py`; score of the plain LP): fires on "
        f"{pct(rates['true_alarm'])} of the {rates['bad_trials']} shifted trials whose plain "
        f"max error exceeds 0.05 ({pct(rates['true_alarm_default'])} of the "
        f"{rates['bad_trials_default']} where the default method's does), on "
        f"{pct(rates['shifted_alarm'])} of all shifted trials, and on "
        f"{pct(rates['false_alarm'])} of in-distribution trials (false alarms). Largest "
        f"in-distribution score {rates['fit_same_max']:.3f}, smallest shifted score "
        f"{rates['fit_other_min']:.3f}.",
    ]
    if units:
        lines += [
            "",
            f"Training unit (setting *{units[0]['setting']}*, in distribution): tokenizers "
            'trained line by line (toknz `unit="line"`, which learns the same merges as '
            "`tokenizers`' `Tokenizer.train(files)`: `tests/test_train_units.py`) or as whole "
            "documents, samples counted both ways:",
            "",
            "| trained by | trials | max error, samples as documents | as lines | fit score, "
            "documents / lines | largest gap between the two estimates | `auto` chose the "
            "training unit | max error with `auto` |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for trained in ("line", "document"):
            us = [u for u in units if u.get("trained", "line") == trained]
            if not us:
                continue

            def mean(key: str, unit: str, us: list[dict] = us) -> float:
                return float(np.mean([u[unit][key] for u in us]))

            def err(unit: str, us: list[dict] = us) -> float:
                return float(np.mean([u[unit]["errors"]["max"] for u in us]))

            right = sum(u["auto"]["chosen"] == trained for u in us)
            lines.append(
                f"| {trained} | {len(us)} | {err('document'):.4f} | {err('line'):.4f} | "
                f"{mean('fit', 'document'):.4f} / {mean('fit', 'line'):.4f} | "
                f"{np.mean([u['unit_gap_max'] for u in us]):.4f} | {right} of {len(us)} | "
                f"{err('auto'):.4f} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--unit-trials", type=int, default=8, help="Trials per training unit.")
    ap.add_argument("--seed", type=int, default=1, help="Seed of the trials' weights.")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--report", action="store_true", help="Only rewrite the docs from the JSONL.")
    args = ap.parse_args()
    command = "python benchmarks/mixture_shift.py" + (
        " " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""
    )
    todo = [s for s in settings() if not args.only or any(o in s["setting"] for o in args.only)]
    sources = {s["setting"]: {k: v[2] for k, v in s["categories"].items()} for s in todo}
    if args.report:
        saved = [json.loads(x) for x in JSONL.read_text(encoding="utf-8").splitlines()]
        head = saved[0]
        rows = [r for r in saved[1:] if "same" in r]
        units = [r for r in saved[1:] if "document" in r]
        write_marked(
            DOC, MARK, report(head["command"], rows, units, head["methods"], head["sources"])
        )
        return
    rows: list[dict] = []
    units: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for setting in todo:
            print(f"{setting['setting']}:", flush=True)
            rows += run_setting(setting, args.trials, args.methods, args.seed, Path(tmp))
        if args.unit_trials:
            units = run_units(todo[0], args.unit_trials, args.seed, Path(tmp))
    print(json.dumps(summarize(rows, args.methods), indent=1))
    print(report(command, rows, units, args.methods, sources))
    if args.no_write:
        return
    JSONL.parent.mkdir(parents=True, exist_ok=True)
    head = {"command": command, "methods": args.methods, "sources": sources}
    JSONL.write_text("".join(json.dumps(r) + "\n" for r in [head, *rows, *units]), encoding="utf-8")
    write_marked(DOC, MARK, report(command, rows, units, args.methods, sources))
    print(f"wrote {DOC.relative_to(ROOT)} and {JSONL.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
