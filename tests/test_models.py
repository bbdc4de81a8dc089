"""The real small models' tokenizers (toknz/models.py): toknz agrees with `transformers`.

Each model converted by ``toknz fetch NAME`` has a ``tokenizer.json``
written by ``transformers`` from the GGUF file; toknz loads the same file and
must give the ids of ``AutoTokenizer`` on real text, special tokens included.
Skipped for models not fetched (they are hundreds of MB; CI does not fetch them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers import corpus_files

import toknz
from toknz.models import KNOWN_MODELS, converted_dir


def converted_folder(name: str) -> Path:
    folder = converted_dir(name)
    if not (folder / "tokenizer.json").exists():
        pytest.skip(f"{name} not fetched: run `toknz fetch {name}`")
    return folder


def samples() -> list[str]:
    out = []
    for path in corpus_files():
        text = path.read_text(encoding="utf-8")
        out += [text[i : i + 700] for i in range(0, min(len(text), 7000), 700)]
    return out


@pytest.mark.parametrize("name", sorted(KNOWN_MODELS))
def test_toknz_matches_transformers(name: str) -> None:
    folder = converted_folder(name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers: Any = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(folder))
    tok = toknz.Tokenizer.from_file(folder / "tokenizer.json")
    specials = sorted(tok.special_tokens)[:4]
    texts = samples() + [f"{s}x y{s}\n" for s in specials] + ["", " ", "\n\n\t  a", "x" * 3000]
    for text in texts:
        want = hf.encode(text, add_special_tokens=False)
        assert tok.encode(text, allowed_special="all") == want, text[:80]
