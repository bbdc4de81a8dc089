"""The `toknz` command: outputs, round trips, one-line errors and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import toknz
from toknz import fetch
from toknz.cli import main

TEXT = "Hello world! It's a test of 12345 tokens.\nSecond line, ünïcödé 你好.\n"


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def cl100k() -> toknz.Tokenizer:
    if fetch.cached_path("cl100k_base") is None:
        message = "cl100k_base is not fetched: run `toknz fetch cl100k_base`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return toknz.load("cl100k_base")


@pytest.fixture()
def text_file(tmp_path: Path) -> Path:
    p = tmp_path / "doc.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def test_help_lists_commands(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("encode", "decode", "inspect", "fetch"):
        assert command in result.output


def test_encode_jsonl_matches_library_and_decodes_back(
    runner: CliRunner, text_file: Path, cl100k, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["encode", "-t", "cl100k_base", str(text_file)])
    assert result.exit_code == 0, result.output
    ids = json.loads(result.stdout.strip())
    assert ids == cl100k.encode(TEXT)
    ids_file = tmp_path / "ids.jsonl"
    ids_file.write_text(result.stdout)
    back = runner.invoke(main, ["decode", "-t", "cl100k_base", str(ids_file)])
    assert back.exit_code == 0
    assert back.stdout == TEXT


def test_encode_npy_and_lines(runner: CliRunner, text_file: Path, cl100k, tmp_path: Path) -> None:
    out = tmp_path / "ids.npy"
    result = runner.invoke(
        main, ["encode", "-t", "cl100k_base", str(text_file), "--lines", "-o", str(out), "--stats"]
    )
    assert result.exit_code == 0, result.output
    arr = np.load(out)
    assert arr.dtype == np.uint32
    expected = [i for line in TEXT.splitlines(keepends=True) for i in cl100k.encode(line)]
    assert arr.tolist() == expected
    assert "bytes/token" in result.stderr


def test_special_token_text_is_refused_then_allowed(
    runner: CliRunner, tmp_path: Path, cl100k
) -> None:
    p = tmp_path / "s.txt"
    p.write_text("a <|endoftext|> b", encoding="utf-8")
    refused = runner.invoke(main, ["encode", "-t", "cl100k_base", str(p)])
    assert refused.exit_code == 1
    assert "<|endoftext|>" in refused.stderr and "Traceback" not in refused.output
    allowed = runner.invoke(
        main, ["encode", "-t", "cl100k_base", str(p), "--allowed-special", "all"]
    )
    assert json.loads(allowed.stdout) == cl100k.encode("a <|endoftext|> b", allowed_special="all")
    ordinary = runner.invoke(main, ["encode", "-t", "cl100k_base", str(p), "--ordinary"])
    assert json.loads(ordinary.stdout) == cl100k.encode_ordinary("a <|endoftext|> b")


def test_invalid_utf8_names_file_and_offset(runner: CliRunner, tmp_path: Path, cl100k) -> None:
    p = tmp_path / "bad.txt"
    p.write_bytes(b"good line\nbad \xff byte\n")
    result = runner.invoke(main, ["encode", "-t", "cl100k_base", str(p)])
    assert result.exit_code == 1
    assert str(p) in result.stderr
    assert "line 2" in result.stderr and "byte offset 14" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(runner: CliRunner, text_file: Path) -> None:
    unknown = runner.invoke(main, ["encode", "-t", "no-such-tokenizer", str(text_file)])
    assert unknown.exit_code == 2
    assert "no-such-tokenizer" in unknown.stderr
    missing_arg = runner.invoke(main, ["encode", str(text_file)])
    assert missing_arg.exit_code == 2
    bad_out = runner.invoke(main, ["encode", "-t", "cl100k_base", str(text_file), "-o", "x.txt"])
    assert bad_out.exit_code == 2


def test_debug_shows_traceback(runner: CliRunner, tmp_path: Path, cl100k) -> None:
    p = tmp_path / "bad.txt"
    p.write_bytes(b"\xff")
    result = runner.invoke(main, ["--debug", "encode", "-t", "cl100k_base", str(p)])
    assert result.exit_code != 0
    assert result.exception is not None


def test_decode_rejects_non_id_lines(runner: CliRunner, tmp_path: Path, cl100k) -> None:
    p = tmp_path / "ids.jsonl"
    p.write_text("[1, 2]\n{not json\n")
    result = runner.invoke(main, ["decode", "-t", "cl100k_base", str(p)])
    assert result.exit_code == 1
    assert "line 2" in result.stderr
    p.write_text("[1, 999999999]\n")
    result = runner.invoke(main, ["decode", "-t", "cl100k_base", str(p)])
    assert result.exit_code == 1
    assert "999999999" in result.stderr


def test_inspect_json_report(runner: CliRunner, cl100k) -> None:
    result = runner.invoke(main, ["inspect", "cl100k_base", "--json", "--top", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_vocab"] == 100277
    assert report["special_tokens"]["<|endoftext|>"] == 100257
    assert len(report["longest_tokens"]) == 3
    assert report["longest_tokens"][0]["bytes"] >= report["longest_tokens"][1]["bytes"]
    assert sum(report["token_classes"].values()) == report["model_tokens"] == 100256


def test_inspect_text_report(runner: CliRunner, cl100k) -> None:
    result = runner.invoke(main, ["inspect", "cl100k_base"])
    assert result.exit_code == 0
    assert "100,277 ids" in result.stdout
    assert "<|endoftext|>=100257" in result.stdout


def test_fetch_list_and_usage(runner: CliRunner) -> None:
    listed = runner.invoke(main, ["fetch", "--list"])
    assert listed.exit_code == 0
    assert "cl100k_base" in listed.stdout and "llama3" in listed.stdout
    nothing = runner.invoke(main, ["fetch"])
    assert nothing.exit_code == 2
    unknown = runner.invoke(main, ["fetch", "no-such-name"])
    assert unknown.exit_code == 1
    assert "no-such-name" in unknown.stderr
