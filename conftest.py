"""Doctests of the library (``--doctest-modules`` over ``toknz/`` and ``toknz_core/``).

- ``toknz/torch/`` needs torch (the ``torch`` extra, installed in CI): without it its modules
  are not collected, as the torch tests skip.
- An example that loads a real tokenizer file (``toknz.load("cl100k_base")``) is skipped
  when that file is not in the toknz cache, except under ``CI=true`` where it must be there
  (``toknz fetch --all``), as ``tests/conftest.py`` does for the tests.
"""

from __future__ import annotations

import importlib.util
import os
import re

import pytest

collect_ignore_glob: list[str] = []
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob.append("toknz/torch/*.py")

_LOADS = re.compile(r"""\bload\(\s*["']([\w.-]+)["']""")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CI") == "true":
        return
    from toknz import fetch

    for item in items:
        if not isinstance(item, pytest.DoctestItem) or item.dtest is None:
            continue
        names = {m for ex in item.dtest.examples for m in _LOADS.findall(ex.source)}
        missing = sorted(
            n for n in names if n in fetch.KNOWN_FILES and fetch.cached_path(n) is None
        )
        if missing:
            item.add_marker(
                pytest.mark.skip(reason=f"needs {', '.join(missing)}: run `toknz fetch --all`")
            )
