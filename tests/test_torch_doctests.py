"""The runnable examples in the docstrings of toknz.torch (and what feeds it) run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytest.importorskip("torch")

MODULES = [
    "toknz.words",
    "toknz.dynamic",
    "toknz.torch.batching",
    "toknz.torch.byte_lm",
    "toknz.torch.deletion",
    "toknz.torch.generation",
    "toknz.torch.hierarchical",
    "toknz.torch.layers",
    "toknz.torch.lm_training",
    "toknz.torch.outputs",
    "toknz.torch.pooling",
    "toknz.torch.saving",
    "toknz.torch.token_lm",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
