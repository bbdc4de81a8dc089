"""Shared fixtures: real tokenizer files, their reference implementations, corpus chunks.

Real tokenizer files live in the toknz cache (``toknz fetch --all`` fills
it). A test that needs a missing file is skipped, except under ``CI=true``,
where a missing file is a failure: CI must exercise the real files.

The references are built offline from the same cached files: tiktoken
``Encoding`` objects from the ``.tiktoken`` rank files (with the split pattern
and special tokens of ``tiktoken_ext.openai_public``, whose constructors are
called with their download replaced by a read of the cached file), and
``tokenizers.Tokenizer.from_file`` for ``tokenizer.json`` files.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ALL_NAMES

import toknz
from toknz import fetch


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def require_file(name: str) -> Path:
    """The cached file of ``name``; skip the test if it is missing (fail under ``CI=true``)."""
    path = fetch.cached_path(name)
    if path is None:
        msg = (
            f"real tokenizer file {name!r} is not in the toknz cache ({fetch.cache_dir()}); "
            f"run `toknz fetch --all` (or `toknz fetch {name}`) to fetch it"
        )
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@functools.cache
def _load_toknz(name: str) -> toknz.Tokenizer:
    return toknz.load(name)


@functools.cache
def _load_tiktoken(name: str) -> Any:
    import tiktoken
    import tiktoken.load
    import tiktoken_ext.openai_public as openai_public

    path = require_file(name)

    def read_cached(*_args: object, **_kwargs: object) -> dict[bytes, int]:
        return tiktoken.load.load_tiktoken_bpe(str(path))

    # The constructor gives the reference pattern and specials; its download is
    # replaced by the cached file, so nothing is fetched over the network.
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = read_cached
    try:
        spec = openai_public.ENCODING_CONSTRUCTORS[name]()
    finally:
        openai_public.load_tiktoken_bpe = original
    spec.pop("explicit_n_vocab", None)
    return tiktoken.Encoding(**spec)


@functools.cache
def _load_hf(name: str) -> Any:
    import tokenizers

    return tokenizers.Tokenizer.from_file(str(require_file(name)))


@pytest.fixture(scope="session")
def toknz_tok() -> Callable[[str], toknz.Tokenizer]:
    """``toknz_tok(name)``: the toknz tokenizer of a real file, loaded once per session."""

    def get(name: str) -> toknz.Tokenizer:
        require_file(name)
        return _load_toknz(name)

    return get


@pytest.fixture(scope="session")
def tiktoken_enc() -> Callable[[str], Any]:
    """``tiktoken_enc(name)``: the reference ``tiktoken.Encoding``, built offline from the cache."""
    return _load_tiktoken


@pytest.fixture(scope="session")
def hf_tok() -> Callable[[str], Any]:
    """``hf_tok(name)``: the reference ``tokenizers.Tokenizer`` of a ``tokenizer.json``."""
    return _load_hf


def pytest_report_header(config: pytest.Config) -> list[str]:
    missing = [n for n in ALL_NAMES if fetch.cached_path(n) is None]
    line = f"toknz cache: {fetch.cache_dir()}"
    if missing:
        line += f" (missing: {', '.join(missing)}; run `toknz fetch --all`)"
    return [line]


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for a module of tiny models (more threads only add contention on
    a busy machine: seconds become minutes); restored afterwards. A module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
