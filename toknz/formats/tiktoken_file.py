"""tiktoken rank files: one ``<base64 token> <rank>`` line per token.

Ids are ranks. The files carry no split pattern and no special tokens; the
well-known ones are recognized by sha256 in :mod:`toknz.formats.known`.
"""

from __future__ import annotations

import base64
import binascii
import os
import sys

from toknz.errors import FormatError
from toknz.formats._io import atomic_write


def parse_ranks(data: bytes, path: str | os.PathLike[str] = "<ranks>") -> dict[bytes, int]:
    """Parse a rank file's bytes into ``token bytes -> rank``.

    Raises :class:`FormatError` naming the file and line for a bad line, a
    duplicate token or rank, or an empty file.
    """
    try:
        return _parse_fast(data)
    except (ValueError, binascii.Error):
        pass  # find and report the bad line below
    ranks: dict[bytes, int] = {}
    seen_ranks: set[int] = set()
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise FormatError(
                f"{path}, line {lineno}: expected '<base64 token> <rank>', got {line[:80]!r}"
            )
        try:
            token = base64.b64decode(parts[0], validate=True)
        except (binascii.Error, ValueError):
            raise FormatError(
                f"{path}, line {lineno}: {parts[0][:40]!r} is not valid base64"
            ) from None
        try:
            rank = int(parts[1])
        except ValueError:
            raise FormatError(
                f"{path}, line {lineno}: rank {parts[1][:20]!r} is not an integer"
            ) from None
        if rank < 0:
            raise FormatError(f"{path}, line {lineno}: negative rank {rank}")
        if not token:
            raise FormatError(f"{path}, line {lineno}: empty token")
        if token in ranks:
            raise FormatError(
                f"{path}, line {lineno}: token {token!r} appears twice (ranks {ranks[token]} and {rank})"
            )
        if rank in seen_ranks:
            raise FormatError(f"{path}, line {lineno}: rank {rank} appears twice")
        ranks[token] = rank
        seen_ranks.add(rank)
    if not ranks:
        raise FormatError(f"{path}: empty rank file (no '<base64 token> <rank>' lines)")
    return ranks


def _strict_b64decode(token: bytes) -> bytes:
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(token, strict_mode=True)
    return base64.b64decode(token, validate=True)  # pragma: no cover - Python 3.10


def _parse_fast(data: bytes) -> dict[bytes, int]:
    """The common case, a well-formed file, without per-line checks; ValueError on anything odd."""
    ranks: dict[bytes, int] = {}
    decode = _strict_b64decode
    for line in data.splitlines():
        if not line:
            continue
        token, rank = line.split()
        ranks[decode(token)] = int(rank)
    values = set(ranks.values())
    if (
        not ranks
        or b"" in ranks
        or min(values) < 0
        or len(values) != len(ranks)
        or len(ranks) != sum(1 for ln in data.splitlines() if ln.strip())
    ):
        raise ValueError("needs the careful parser")
    return ranks


def format_ranks(ranks: dict[bytes, int]) -> bytes:
    """Serialize ranks in rank order."""
    lines = [
        base64.b64encode(tok) + b" " + str(r).encode()
        for tok, r in sorted(ranks.items(), key=lambda kv: kv[1])
    ]
    return b"\n".join(lines) + b"\n"


def write_ranks(path: str | os.PathLike[str], ranks: dict[bytes, int]) -> None:
    """Write a rank file atomically."""
    atomic_write(path, format_ranks(ranks))
