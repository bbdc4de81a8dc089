"""`toknz train-lm` and toknz.torch.lm_training: windows, the held-out split, sizing, resume,
learning, and the command's output and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from toknz.cli import main  # noqa: E402
from toknz.errors import InputError, UsageError  # noqa: E402
from toknz.torch.lm_training import (  # noqa: E402
    TrainLMOptions,
    cut_windows,
    evaluate_bpb,
    load_corpus,
    model_class,
    size_for,
    train_lm,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


LINE = "The cat sat on the mat; the dog sat on the log. Ünïcödé wörds, 漢字 too.\n"


def write_corpus(folder: Path, repeats: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text("".join(f"{i} {LINE}" for i in range(repeats)), "utf-8")
    (folder / "b.txt").write_text("".join(f"{LINE[::-1]} {i}\n" for i in range(repeats)), "utf-8")
    return folder


def tiny_options(**changes: object) -> TrainLMOptions:
    settings: dict[str, object] = dict(
        arch="hierarchical",
        params=20_000,
        steps=6,
        batch_size=4,
        seq_bytes=96,
        lr=3e-3,
        warmup_steps=2,
        eval_every=3,
        checkpoint_every=3,
        eval_windows=6,
        vocab_size=300,
    )
    settings.update(changes)
    return TrainLMOptions(**settings)  # type: ignore[arg-type]


# --- data -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80), st.integers(1, 12))
def test_windows_cut_at_characters_and_give_back_the_text(text: str, size: int) -> None:
    windows = cut_windows(text, size)
    assert "".join(windows) == text
    for w in windows:
        assert w
        assert len(w.encode("utf-8", "surrogatepass")) <= size or len(w) == 1


def test_heldout_is_the_tail_of_each_file_and_never_trained_on(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c")
    corpus = load_corpus([folder], seq_bytes=50, heldout=0.2)
    assert corpus.files == [str(folder / "a.txt"), str(folder / "b.txt")]
    start = 0
    held_start = 0
    for path in corpus.files:
        text = Path(path).read_text("utf-8")
        windows = cut_windows(text, 50)
        n_held = math.ceil(len(windows) * 0.2)
        n_train = len(windows) - n_held
        assert corpus.train[start : start + n_train] == windows[:n_train]
        assert corpus.heldout[held_start : held_start + n_held] == windows[n_train:]
        # the held-out windows are the file's last bytes: no training byte lies among them
        tail = "".join(windows[n_train:])
        assert text.endswith(tail) and "".join(windows[:n_train]) + tail == text
        start += n_train
        held_start += n_held
    assert start == len(corpus.train) and held_start == len(corpus.heldout)
    # the split is a function of the files and the settings only
    assert load_corpus([folder], seq_bytes=50, heldout=0.2).fingerprint() == corpus.fingerprint()


def test_corpus_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("tiny")
    with pytest.raises(InputError, match="no such file"):
        load_corpus([tmp_path / "missing.txt"])
    with pytest.raises(InputError, match="empty.txt: the corpus holds no text"):
        load_corpus([tmp_path / "empty.txt"])
    with pytest.raises(InputError, match="too little text to hold out"):
        load_corpus([tmp_path / "short.txt"], seq_bytes=64)
    with pytest.raises(UsageError, match="heldout"):
        load_corpus([tmp_path / "short.txt"], heldout=0.0)
    with pytest.raises(UsageError, match="standard input"):
        load_corpus(["-"])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok " * 40 + b"\xff")
    with pytest.raises(InputError, match=r"bad.txt, byte offset 120"):
        load_corpus([bad])


def test_jsonl_records_are_documents(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"doc {i} " * 9}) for i in range(10)))
    corpus = load_corpus([path], seq_bytes=1000, heldout=0.2, field_name="text")
    assert corpus.train == [f"doc {i} " * 9 for i in range(8)]
    assert corpus.heldout == [f"doc {i} " * 9 for i in range(8, 10)]


# --- sizing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [300_000, 2_000_000])
def test_architectures_are_sized_to_equal_parameter_counts(target: int) -> None:
    gate = {"gate_layer": 2, "target_deletion": 0.5}
    for arch, overrides in [("hierarchical", {}), ("bpe", {}), ("bytes", {}), ("bytes", gate)]:
        sizing = size_for(arch, target, vocab_size=4096, overrides=overrides)
        assert abs(sizing.params - target) <= 0.1 * target, (arch, sizing.params)
        for name, value in overrides.items():
            assert getattr(sizing.config, name) == value
        model = model_class(arch)(sizing.config)  # type: ignore[call-arg]
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == sizing.params


# --- training -------------------------------------------------------------------------------


def state(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Killed(Exception):
    pass


@pytest.mark.parametrize("arch", ["hierarchical", "bpe"])
def test_resume_gives_the_uninterrupted_run(tmp_path: Path, arch: str) -> None:
    folder = write_corpus(tmp_path / "c")
    corpus = load_corpus([folder], seq_bytes=96, heldout=0.1)
    whole = train_lm([folder], tmp_path / "whole", tiny_options(arch=arch), corpus=corpus)

    def kill(step: int, loss: float) -> None:
        if step == 4:  # after the checkpoint of step 3: step 4 is lost
            raise Killed

    with pytest.raises(Killed):
        train_lm([folder], tmp_path / "cut", tiny_options(arch=arch), on_step=kill)
    resumed = train_lm([folder], tmp_path / "cut", tiny_options(arch=arch), resume=True)
    assert resumed.step == whole.step == 6
    a, b = state(whole.model), state(resumed.model)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.heldout_bpb == whole.heldout_bpb
    log_a = json.loads((tmp_path / "whole" / "log.json").read_text())
    log_b = json.loads((tmp_path / "cut" / "log.json").read_text())
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in log_a["evals"]]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"} for e in log_b["evals"]]
    assert [e["step"] for e in log_a["evals"]] == [3, 6]
    # the saved checkpoint loads with the architecture's from_pretrained
    loaded = model_class(arch).from_pretrained(tmp_path / "cut" / "checkpoint")
    for key, value in state(loaded).items():
        assert torch.equal(value, b[key]), key


def test_resume_checks_the_run_it_continues(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c")
    out = tmp_path / "run"
    with pytest.raises(UsageError, match="no checkpoint to resume from"):
        train_lm([folder], out, tiny_options(steps=1), resume=True)
    train_lm([folder], out, tiny_options(steps=1))
    with pytest.raises(UsageError, match="holds a checkpoint already"):
        train_lm([folder], out, tiny_options(steps=2))
    with pytest.raises(UsageError, match="arch='hierarchical', not 'bpe'"):
        train_lm([folder], out, tiny_options(arch="bpe", steps=2), resume=True)
    (folder / "a.txt").write_text("something else " * 30)
    with pytest.raises(UsageError, match="corpus differs"):
        train_lm([folder], out, tiny_options(steps=2), resume=True)


def test_a_save_cut_between_renames_still_resumes(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c")
    out = tmp_path / "run"
    train_lm([folder], out, tiny_options(steps=2))
    (out / "checkpoint").rename(out / "checkpoint.old")  # killed after the first rename
    (out / ".checkpoint.abc.tmp").mkdir()  # and a half-written save
    result = train_lm([folder], out, tiny_options(steps=3), resume=True)
    assert result.step == 3
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "log.json"]


def test_loss_goes_down_on_a_tiny_corpus(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c", repeats=20)
    options = tiny_options(
        arch="bpe", params=30_000, steps=40, eval_every=0, checkpoint_every=0, lr=1e-2
    )
    corpus = load_corpus([folder], seq_bytes=96, heldout=0.1)
    result = train_lm([folder], tmp_path / "run", options, corpus=corpus)
    fresh = model_class("bpe").from_pretrained(tmp_path / "run" / "checkpoint")
    torch.manual_seed(0)
    for p in fresh.parameters():  # same tokenizer and sizes, new weights
        torch.nn.init.normal_(p, std=0.02)
    before = evaluate_bpb(fresh, corpus.heldout[:6])
    assert result.heldout_bpb < 0.7 * before, (result.heldout_bpb, before)
    assert result.log[-1]["train_loss"] < math.log(300)


def test_output_folder_inside_the_corpus_is_not_read(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c")
    train_lm([folder], folder / "run", tiny_options(steps=1))
    train_lm([folder], folder / "run", tiny_options(steps=2), resume=True)


# --- the command ----------------------------------------------------------------------------

TINY_ARGS = [
    "--params", "20000", "--steps", "3", "--batch-size", "4", "--seq-bytes", "96",
    "--eval-every", "2", "--eval-windows", "4", "--warmup-steps", "1", "--vocab-size", "300",
]  # fmt: skip


def one_line_error(result: object, code: int, match: str) -> None:
    assert result.exit_code == code, result.output  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("toknz: error: "), lines
    assert match in lines[0], lines[0]


@pytest.mark.parametrize("arch", ["hierarchical", "bpe", "bytes"])
def test_cli_trains_and_reports(tmp_path: Path, arch: str) -> None:
    folder = write_corpus(tmp_path / "c")
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(
        main, ["train-lm", str(folder), "--arch", arch, "-o", str(out), *TINY_ARGS]
    )
    assert result.exit_code == 0, result.output
    fields = result.stdout.strip().split("\t")
    assert fields[0].endswith(" bits/byte") and fields[1] == arch and fields[3] == "3 steps"
    assert 0 < float(fields[0].split()[0]) < 20
    log = json.loads((out / "log.json").read_text())
    assert log["arch"] == arch and f"{log['params']} params" == fields[2]
    assert [e["step"] for e in log["evals"]] == [2, 3]
    assert "trainable parameters" in result.stderr
    model_class(arch).from_pretrained(out / "checkpoint")
    more = runner.invoke(
        main,
        ["train-lm", str(folder), "--arch", arch, "-o", str(out), *TINY_ARGS[:2], "--steps", "4",
         *TINY_ARGS[4:], "--resume", "-q"],
    )  # fmt: skip
    assert more.exit_code == 0, more.output
    assert more.stderr == "" and "\t4 steps\t" in more.stdout


def test_cli_trains_a_gated_byte_model(tmp_path: Path) -> None:
    from toknz.torch.byte_lm import ByteLevelLM

    folder = write_corpus(tmp_path / "c")
    out = tmp_path / "run"
    args = ["train-lm", str(folder), "--arch", "bytes", "-o", str(out), *TINY_ARGS]
    result = CliRunner().invoke(main, [*args, "--gate-layer", "2", "--target-deletion", "0.4"])
    assert result.exit_code == 0, result.output
    model = ByteLevelLM.from_pretrained(out / "checkpoint")
    assert model.config.gate_layer == 2 and model.config.target_deletion == 0.4
    log = json.loads((out / "log.json").read_text())
    assert log["params"] == model.num_parameters() and abs(log["params"] - 20000) <= 3000


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "c")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "e.txt").write_text("")
    runner = CliRunner()

    def run(*args: str) -> object:
        return runner.invoke(main, ["train-lm", *args])

    out = str(tmp_path / "run")
    one_line_error(
        run(str(tmp_path / "nope"), "--arch", "bpe", "-o", out, "--steps", "1"), 1, "no such file"
    )
    one_line_error(
        run(str(tmp_path / "empty"), "--arch", "bpe", "-o", out, "--steps", "1"), 1, "holds no text"
    )
    one_line_error(run(str(folder), "--arch", "bpe", "-o", out), 2, "give a stop")
    one_line_error(
        run(str(folder), "--arch", "bpe", "-o", out, "--steps", "1", "--resume"), 2, "no checkpoint"
    )
    one_line_error(
        run(str(folder), "--arch", "bpe", "-o", out, "--steps", "1", "--backbone-layers", "2"),
        2,
        "give backbone too",
    )
    one_line_error(
        run(str(folder), "--arch", "bpe", "-o", out, "--steps", "1", "--gate-layer", "2"),
        2,
        "delete gate is for the bytes architecture",
    )
    one_line_error(
        run(
            str(folder),
            "--arch",
            "hierarchical",
            "-o",
            out,
            "--steps",
            "1",
            "--backbone",
            str(tmp_path / "x"),
        ),
        2,
        "not a folder holding a transformers model",
    )
    assert (
        runner.invoke(
            main, ["train-lm", str(folder), "--arch", "hierarchical", "-o", out, *TINY_ARGS[:4]]
        ).exit_code
        == 0
    )
    one_line_error(
        run(str(folder), "--arch", "bpe", "-o", out, *TINY_ARGS[:4], "--resume"),
        2,
        "arch='hierarchical'",
    )
    one_line_error(
        run(str(folder), "--arch", "hierarchical", "-o", out, *TINY_ARGS[:4]), 2, "--resume"
    )
