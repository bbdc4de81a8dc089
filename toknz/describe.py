"""Describe a tokenizer: sizes, pipeline, special tokens, longest tokens, byte/script statistics.

:func:`describe_tokenizer` returns a JSON-ready dict; :func:`format_report`
renders it for a terminal. Script statistics classify each token's decoded
bytes: whole-token classes (whitespace, digits, punctuation...) and, for
tokens with letters, the Unicode script of their letters.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import regex

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

_SCRIPTS = (
    "Latin",
    "Cyrillic",
    "Greek",
    "Han",
    "Hiragana",
    "Katakana",
    "Hangul",
    "Arabic",
    "Hebrew",
    "Devanagari",
    "Thai",
    "Armenian",
    "Georgian",
    "Bengali",
    "Tamil",
)
_SCRIPT_RES = [(s, regex.compile(rf"\p{{Script={s}}}")) for s in _SCRIPTS]
_LETTER = regex.compile(r"\p{L}")


def classify_token(raw: bytes) -> str:
    """A coarse class for a token's bytes: whitespace, digits, punctuation, a script name, mixed, partial-utf8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "partial-utf8"
    if not text:
        return "empty"
    if text.isspace():
        return "whitespace"
    stripped = text.strip()
    if stripped.isdigit():
        return "digits"
    if not _LETTER.search(stripped):
        return "punctuation/symbols"
    found = {name for name, rx in _SCRIPT_RES if rx.search(stripped)}
    if len(found) == 1:
        return found.pop()
    if not found:
        return "other-script"
    return "mixed-script"


def describe_tokenizer(tok: Tokenizer, *, top: int = 10) -> dict[str, Any]:
    """A report on ``tok``: every number counts tokens (ids), lengths are in bytes."""
    model = tok.model
    token_bytes: list[tuple[int, bytes]] = []
    for i in range(model.n_vocab):
        raw = model.token_bytes(i)
        if raw is not None:
            token_bytes.append((i, raw))
    classes = Counter(classify_token(raw) for _, raw in token_bytes)
    lengths = Counter(len(raw) for _, raw in token_bytes)
    longest = sorted(token_bytes, key=lambda it: (-len(it[1]), it[0]))[:top]
    return {
        "name": tok.name,
        "source": tok.source,
        "n_vocab": tok.n_vocab,
        "model_tokens": len(token_bytes),
        "merges": len(model.merges) if model.merge_rule == "merges" else None,
        "merge_rule": model.merge_rule,
        "byte_level": model.byte_level,
        "pattern": tok.pattern,
        "normalizer": tok.normalizer.to_json() if tok.normalizer else None,
        "pre_tokenizer": tok.pre_tokenizer.to_json() or None,
        "decoder": tok.decoder.to_json() if tok.decoder else None,
        "options": {
            "unk_token": model.unk_token,
            "byte_fallback": model.byte_fallback,
            "fuse_unk": model.fuse_unk,
            "ignore_merges": model.ignore_merges,
            "continuing_subword_prefix": model.continuing_subword_prefix,
            "end_of_word_suffix": model.end_of_word_suffix,
        },
        "special_tokens": tok.special_tokens,
        "added_tokens": len(tok.added_tokens),
        "longest_tokens": [
            {"id": i, "bytes": len(raw), "text": raw.decode("utf-8", "replace")}
            for i, raw in longest
        ],
        "token_length_bytes": {str(k): v for k, v in sorted(lengths.items())},
        "token_classes": dict(classes.most_common()),
    }


def format_report(report: dict[str, Any]) -> str:
    """Render :func:`describe_tokenizer`'s report as plain text."""
    lines = [
        f"{report['name']}  ({report['source']})",
        f"  vocabulary     {report['n_vocab']:,} ids, {report['model_tokens']:,} model tokens, "
        f"{report['added_tokens']} added tokens",
        f"  merges         {report['merges']:,}"
        if report["merges"] is not None
        else "  merges         from ranks (tiktoken rule)",
        f"  byte-level     {report['byte_level']}",
    ]
    if report["pattern"]:
        lines.append(f"  pattern        {report['pattern']}")
    lines.append(f"  normalizer     {report['normalizer']}")
    lines.append(f"  pre-tokenizer  {report['pre_tokenizer']}")
    opts = {k: v for k, v in report["options"].items() if v not in (None, False, "")}
    if opts:
        lines.append(f"  model options  {opts}")
    specials = report["special_tokens"]
    shown = ", ".join(f"{k}={v}" for k, v in list(specials.items())[:12])
    more = f" (+{len(specials) - 12} more)" if len(specials) > 12 else ""
    lines.append(f"  special        {len(specials)}: {shown}{more}")
    lines.append("  longest tokens (bytes):")
    for t in report["longest_tokens"]:
        lines.append(f"    {t['id']:>7}  {t['bytes']:>3}  {t['text']!r}")
    total = sum(report["token_classes"].values()) or 1
    lines.append("  token classes:")
    for cls, n in report["token_classes"].items():
        lines.append(f"    {cls:20s} {n:>7,}  {100 * n / total:5.1f}%")
    return "\n".join(lines)


def describe_merges(
    tok: Tokenizer,
    *,
    merges: int | None = None,
    categories: dict[str, Any] | None = None,
    diff: Tokenizer | None = None,
    threshold: float = 1e-4,
) -> dict[str, Any]:
    """Merge-list statistics (see :mod:`toknz.analysis.merge_stats`) as a JSON-ready dict.

    ``merges`` limits the analysis to the first cleaned merges (default
    all); ``categories`` (name -> sample path or paths) adds where each
    category first becomes frequent; ``diff`` compares with another
    tokenizer's merge list. Raises :class:`~toknz.errors.UsageError` for a
    tokenizer with no merges.
    """
    from toknz.analysis.merge_stats import diff_merges, first_frequent, merge_classes
    from toknz.analysis.merges import merge_list

    cleaned = merge_list(tok, merges)
    out: dict[str, Any] = {
        "merge_classes": merge_classes(cleaned),
        "merge_cleaning": cleaned.report(),
    }
    if categories:
        out["first_frequent"] = first_frequent(tok, categories, cleaned, threshold=threshold)
    if diff is not None:
        out["diff"] = diff_merges(tok, diff, limit=merges)
    return out


def format_merges(report: dict[str, Any]) -> str:
    """Render :func:`describe_merges`'s report as plain text."""
    from toknz.analysis.merge_stats import format_merge_report

    return format_merge_report(report)
