"""Merge-list statistics for ``toknz inspect``: classes, where categories become frequent, diffs.

- :func:`merge_classes`: the share of (cleaned) merges whose token is
  digits, whitespace, code punctuation, other symbols, or letters of each
  script, over the whole list and over its first 1,000 merges;
- :func:`first_frequent`: for each category sample, the first merge step
  whose pair is frequent in that sample (at least ``threshold`` of its
  pairs) and how many of the merges are;
- :func:`diff_merges`: two tokenizers' merge lists compared as byte pairs:
  shared prefix, first divergence, merges unique to each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from toknz.analysis.merges import MergeList, merge_list
from toknz.analysis.replay import replay_sample
from toknz.analysis.samples import CategoryInput, load_sample
from toknz.describe import classify_token

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

#: Symbols that mark a token as code punctuation.
CODE_PUNCTUATION = frozenset("{}()[];:=<>+-*/%&|^!~#@$\\`'\",.?_")
#: How many examples of unique merges :func:`diff_merges` lists.
DIFF_EXAMPLES = 10


def merge_token_class(raw: bytes) -> str:
    """The class of a merge's token bytes (``▁`` counts as a space): see :func:`toknz.describe.classify_token`.

    Symbol tokens holding a character of :data:`CODE_PUNCTUATION` are
    ``code punctuation``; other symbol tokens ``other symbols``.
    """
    raw = raw.replace("\u2581".encode(), b" ")
    cls = classify_token(raw)
    if cls == "punctuation/symbols":
        text = raw.decode("utf-8")
        return "code punctuation" if any(c in CODE_PUNCTUATION for c in text) else "other symbols"
    return cls


def _token_bytes(merges: MergeList, t: int) -> bytes:
    a, b = merges.pair_bytes(t)
    return a + b


def merge_classes(merges: MergeList, *, head: int = 1000) -> dict[str, Any]:
    """Shares of merges per class, over all of ``merges`` and over the first ``head``.

    Returns ``{"merges": n, "all": {class: share}, "first_<head>": {class: share}}``;
    shares are fractions of merges (sum to 1), sorted from the largest.
    """
    classes = [merge_token_class(_token_bytes(merges, t)) for t in range(len(merges))]

    def shares(items: list[str]) -> dict[str, float]:
        n = len(items) or 1
        return {k: v / n for k, v in Counter(items).most_common()}

    return {
        "merges": len(classes),
        "all": shares(classes),
        f"first_{head}": shares(classes[:head]),
    }


def first_frequent(
    tok: Tokenizer,
    categories: Mapping[str, CategoryInput],
    merges: MergeList,
    *,
    threshold: float = 1e-4,
    threads: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Where each category's text first becomes frequent in the merge order.

    For each category: ``first_step`` (0-based index into the cleaned
    merges, or None) of the first merge whose pair makes up at least
    ``threshold`` of the sample's pairs (counted before the first merge) at
    that step, its ``token`` text and its ``rank`` in the tokenizer's list,
    and ``frequent_merges``: how many merges pass the threshold.
    Raises :class:`~toknz.errors.InputError` for unreadable or empty samples.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, data in categories.items():
        sample = load_sample(tok, name, data, threads=threads)
        counts = replay_sample(sample, merges)
        share = counts.merge_counts / max(counts.total_pairs, 1)
        hits = (share >= threshold).nonzero()[0]
        first = int(hits[0]) if hits.shape[0] else None
        out[name] = {
            "first_step": first,
            "rank": int(merges.ranks[first]) if first is not None else None,
            "token": _token_bytes(merges, first).decode("utf-8", "replace")
            if first is not None
            else None,
            "frequent_merges": int(hits.shape[0]),
            "bytes": sample.bytes,
        }
    return out


def _byte_pairs(merges: MergeList) -> list[tuple[bytes, bytes]]:
    return [merges.pair_bytes(t) for t in range(len(merges))]


def diff_merges(a: Tokenizer, b: Tokenizer, *, limit: int | None = None) -> dict[str, Any]:
    """Compare the cleaned merge lists of ``a`` and ``b`` as (left bytes, right bytes) pairs.

    Returns the lengths compared, ``shared_prefix`` (merges equal in the same
    order from the start), ``first_divergence`` (the index and each side's
    merge there, or None), the number of merges found in both lists,
    ``unique_to_a``/``unique_to_b`` counts and the first
    :data:`DIFF_EXAMPLES` of each, in list order.
    """
    ma = merge_list(a, limit)
    mb = merge_list(b, limit)
    pa, pb = _byte_pairs(ma), _byte_pairs(mb)
    prefix = 0
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            break
        prefix += 1
    divergence = None
    if prefix < min(len(pa), len(pb)):
        divergence = {"index": prefix, "a": _show(pa[prefix]), "b": _show(pb[prefix])}
    set_a, set_b = set(pa), set(pb)
    only_a = [m for m in pa if m not in set_b]
    only_b = [m for m in pb if m not in set_a]
    return {
        "a": a.name,
        "b": b.name,
        "merges_a": len(pa),
        "merges_b": len(pb),
        "shared_prefix": prefix,
        "first_divergence": divergence,
        "common": len(set_a & set_b),
        "unique_to_a": len(only_a),
        "unique_to_b": len(only_b),
        "examples_a": [_show(m) for m in only_a[:DIFF_EXAMPLES]],
        "examples_b": [_show(m) for m in only_b[:DIFF_EXAMPLES]],
    }


def _show(pair: tuple[bytes, bytes]) -> str:
    left, right = pair
    return f"{left.decode('utf-8', 'replace')!r} + {right.decode('utf-8', 'replace')!r}"


def format_merge_report(report: dict[str, Any]) -> str:
    """Render the ``merges`` part of ``toknz inspect``'s report as text."""
    lines: list[str] = []
    classes = report.get("merge_classes")
    if classes:
        lines.append(
            f"  merge classes ({classes['merges']:,} merges; share of all / of the first 1,000):"
        )
        head = classes.get("first_1000", {})
        for cls, share in classes["all"].items():
            lines.append(f"    {cls:20s} {100 * share:5.1f}%  {100 * head.get(cls, 0.0):5.1f}%")
    cleaning = report.get("merge_cleaning")
    if cleaning and cleaning["skipped"]:
        skipped = ", ".join(f"{k} {v:,}" for k, v in cleaning["skipped"].items())
        lines.append(f"  merges skipped  {skipped} (of {cleaning['examined']:,} examined)")
    frequent = report.get("first_frequent")
    if frequent:
        lines.append("  where each category first becomes frequent (merge step, token):")
        for name, info in frequent.items():
            if info["first_step"] is None:
                lines.append(f"    {name:16s} never ({info['frequent_merges']} frequent merges)")
            else:
                lines.append(
                    f"    {name:16s} step {info['first_step']:>7,}  {info['token']!r}  "
                    f"({info['frequent_merges']:,} frequent merges)"
                )
    diff = report.get("diff")
    if diff:
        lines.append(
            f"  diff {diff['a']} vs {diff['b']}: {diff['merges_a']:,} vs {diff['merges_b']:,} merges, "
            f"shared prefix {diff['shared_prefix']:,}, {diff['common']:,} in both"
        )
        if diff["first_divergence"]:
            d = diff["first_divergence"]
            lines.append(f"    first divergence at {d['index']:,}: {d['a']}  vs  {d['b']}")
        lines.append(
            f"    unique to {diff['a']}: {diff['unique_to_a']:,}  e.g. {', '.join(diff['examples_a'][:5])}"
        )
        lines.append(
            f"    unique to {diff['b']}: {diff['unique_to_b']:,}  e.g. {', '.join(diff['examples_b'][:5])}"
        )
    return "\n".join(lines)


__all__ = [
    "CODE_PUNCTUATION",
    "diff_merges",
    "first_frequent",
    "format_merge_report",
    "merge_classes",
    "merge_token_class",
]
