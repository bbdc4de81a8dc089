"""One check for empty added and special tokens: ``toknz.validate.check_token_text``.

A ``tokenizer.json`` added token, a ``Tokenizer`` built in Python, ``train(special_tokens=...)``
and a training preset's ``[special_tokens]`` all refuse an empty token (and one that is not a
string) through it, with the same words and the place named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from toknz.errors import FormatError, UsageError
from toknz.pipeline.added_tokens import AddedToken
from toknz.pipeline.bpe import BPE
from toknz.pipeline.pretokenize import ByteLevel
from toknz.tokenizer import Tokenizer
from toknz.train import train
from toknz.train.preset import load_preset
from toknz.validate import check_token_text

EMPTY = "may not be empty: remove it or give it text"


def test_the_check_itself() -> None:
    assert check_token_text("<s>", "x") == "<s>"
    assert check_token_text(" ", "x") == " "  # a space is text
    with pytest.raises(FormatError, match=rf"^x: an added token {EMPTY}$"):
        check_token_text("", "x")
    with pytest.raises(
        UsageError, match=r"^y: a special token must be a string, got the integer 3"
    ):
        check_token_text(3, "y", what="a special token", error=UsageError)


def test_tokenizer_json_added_token() -> None:
    with pytest.raises(FormatError, match=rf"^added_tokens\[2\]: an added token {EMPTY}$"):
        AddedToken.from_json({"id": 5, "content": ""}, "added_tokens[2]")


def test_tokenizer_built_in_python() -> None:
    model = BPE.from_ranks({bytes([b]): b for b in range(256)})
    with pytest.raises(FormatError, match=rf"^added token '': an added token {EMPTY}$"):
        Tokenizer(model, ByteLevel(), added_tokens=[AddedToken("", 300, special=True)])


def test_training_special_tokens(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("one two three\n" * 20, encoding="utf-8")
    with pytest.raises(
        UsageError, match=rf"^special_tokens\[1\]: a special token \(--special\) {EMPTY}$"
    ):
        train([corpus], vocab_size=300, special_tokens=["<|eot|>", ""], threads=1)


def test_preset_special_tokens(tmp_path: Path) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text('vocab_size = 300\n[special_tokens]\ndocuments = ["<|eot|>", ""]\n')
    with pytest.raises(
        UsageError, match=rf"special_tokens\.documents\[1\]: a special token {EMPTY}$"
    ):
        load_preset(preset)
