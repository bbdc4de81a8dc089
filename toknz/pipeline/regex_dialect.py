"""Translate split regexes between tiktoken/Python ``regex`` and Oniguruma (``tokenizers``).

The two dialects agree on almost everything the split patterns use, with one
trap: ``X{1,3}+``. In Python's ``regex`` (and tiktoken's Rust engine) it is a
*possessive* interval; in Oniguruma's Ruby syntax, which ``tokenizers`` uses,
it means ``(?:X{1,3})+``, one or more repetitions. tiktoken's cl100k pattern
has ``\\p{N}{1,3}+``, so written as is into a ``tokenizer.json`` it would split
"2017" as one piece instead of "201" + "7".

:func:`onig_to_python` rewrites a pattern read from ``tokenizer.json`` so that
``regex`` gives Oniguruma's meaning; :func:`python_to_onig` rewrites a pattern
for writing so that Oniguruma gives ``regex``'s meaning (an atomic group).
"""

from __future__ import annotations

import re

_INTERVAL = re.compile(r"\{(\d+)(,(\d*))?\}")


def _possessive_intervals(pattern: str) -> list[tuple[int, int, int]]:
    """``(atom_start, interval_end, plus_index)`` for each ``ATOM{n,m}+`` in ``pattern``."""
    found: list[tuple[int, int, int]] = []
    stack: list[int] = []  # start indices of open groups
    last_atom = -1
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            start = i
            if i + 1 < n and pattern[i + 1] in "pPx" and i + 2 < n and pattern[i + 2] == "{":
                close = pattern.find("}", i + 2)
                i = n if close < 0 else close + 1
            else:
                i += 2
            last_atom = start
            continue
        if c == "[":
            start = i
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            depth = 1
            while i < n and depth:
                if pattern[i] == "\\":
                    i += 2
                    continue
                if pattern[i] == "[":
                    depth += 1
                elif pattern[i] == "]":
                    depth -= 1
                i += 1
            last_atom = start
            continue
        if c == "(":
            stack.append(i)
            i += 1
            last_atom = -1
            continue
        if c == ")":
            last_atom = stack.pop() if stack else -1
            i += 1
            continue
        if c == "{" and last_atom >= 0:
            m = _INTERVAL.match(pattern, i)
            if m:
                end = m.end()
                if end < n and pattern[end] == "+":
                    found.append((last_atom, end, end))
                    i = end + 1
                    last_atom = -1
                    continue
                i = end
                continue
        if c in "|":
            last_atom = -1
        elif c not in "*+?":
            last_atom = i
        i += 1
    return found


def _rewrite(pattern: str, wrap_open: str, wrap_close: str) -> str:
    spans = _possessive_intervals(pattern)
    if not spans:
        return pattern
    out: list[str] = []
    prev = 0
    for atom_start, interval_end, plus in spans:
        out.append(pattern[prev:atom_start])
        out.append(wrap_open + pattern[atom_start:interval_end] + wrap_close)
        prev = plus + 1
    out.append(pattern[prev:])
    return "".join(out)


def onig_to_python(pattern: str) -> str:
    """Give ``X{n,m}+`` Oniguruma's meaning, ``(?:X{n,m})+``, for the ``regex`` package."""
    return _rewrite(pattern, "(?:", ")+")


def python_to_onig(pattern: str) -> str:
    """Give ``X{n,m}+`` the ``regex`` package's (possessive) meaning, ``(?>X{n,m})``, for Oniguruma."""
    return _rewrite(pattern, "(?>", ")")
