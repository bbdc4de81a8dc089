"""Merge-list analysis and data-mixture inference (Hayase et al., 2024).

A BPE tokenizer's ordered merge list leaks the make-up of its training data:
each merge was the most frequent pair at its step. Given sample text per
candidate category, :func:`infer_mixture` replays the merges over each
sample (the Numba kernel :mod:`toknz_core.replay`) and solves a linear
program for the category weights.

- :mod:`toknz.analysis.merges`: a tokenizer's merges as ids, cleaned of
  merges plain BPE would not learn (added tokens, hand-added whitespace,
  redundant SentencePiece splits), with a report;
- :mod:`toknz.analysis.samples`: category samples -> the tokenizer's words;
- :mod:`toknz.analysis.replay`: per-step pair counts of a sample;
- :mod:`toknz.analysis.lp`: the LP, solved with HiGHS by lazy constraint
  generation;
- :mod:`toknz.analysis.mixture`: :func:`infer_mixture` and its result;
- :mod:`toknz.analysis.merge_stats`: merge-list statistics for
  ``toknz inspect`` (classes, where categories become frequent, diffs);
- :mod:`toknz.analysis.compare`: :func:`compare_tokenizers` (``toknz compare``): tokens,
  compression, word fragmentation and tokens per domain term, per tokenizer and corpus.

Everything heavy is imported on first use, so ``import toknz`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toknz.analysis.compare import CompareReport, compare_tokenizers
    from toknz.analysis.merges import MergeList, merge_list
    from toknz.analysis.mixture import MixtureResult, infer_mixture
    from toknz.analysis.samples import Text

__all__ = [
    "CompareReport",
    "MergeList",
    "MixtureResult",
    "Text",
    "compare_tokenizers",
    "infer_mixture",
    "merge_list",
]

_WHERE = {
    "CompareReport": "toknz.analysis.compare",
    "compare_tokenizers": "toknz.analysis.compare",
    "MergeList": "toknz.analysis.merges",
    "merge_list": "toknz.analysis.merges",
    "MixtureResult": "toknz.analysis.mixture",
    "infer_mixture": "toknz.analysis.mixture",
    "Text": "toknz.analysis.samples",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'toknz.analysis' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
