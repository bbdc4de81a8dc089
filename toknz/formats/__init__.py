"""Tokenizer file formats: detection, reading and writing.

- ``tokenizer.json`` (:mod:`toknz.formats.tokenizer_json`)
- tiktoken rank files (:mod:`toknz.formats.tiktoken_file`)
- GPT-2 ``encoder.json`` + ``vocab.bpe`` (:mod:`toknz.formats.gpt2_files`)

:func:`load_tokenizer` detects the format from the content, not the name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from toknz.errors import FormatError, InputError, UsageError
from toknz.formats._io import read_file_bytes
from toknz.formats.gpt2_files import load_gpt2_files
from toknz.formats.known import KNOWN_RANK_FILES
from toknz.formats.tiktoken_file import parse_ranks, write_ranks
from toknz.formats.tokenizer_json import (
    parse_json,
    tiktoken_pretokenizer,
    tokenizer_from_json,
    write_tokenizer_json,
)
from toknz.pipeline.added_tokens import AddedToken
from toknz.pipeline.bpe import BPE
from toknz.pipeline.byte_alphabet import chars_to_bytes
from toknz.pipeline.decoders import ByteLevelDecoder
from toknz.pipeline.pretokenize import PATTERNS, resolve_pattern
from toknz.validate import check_all_bytes, check_id, check_ids_bounded, is_u32

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

__all__ = ["load_tokenizer", "save_tokenizer", "tokenizer_from_ranks"]


def tokenizer_from_ranks(
    ranks: dict[bytes, int],
    pattern: str,
    special_tokens: dict[str, int] | None = None,
    *,
    name: str = "tiktoken",
    source: str | None = None,
) -> Tokenizer:
    """A tiktoken-style tokenizer: byte-level BPE with ids = ranks, one split regex, special tokens."""
    from toknz.tokenizer import Tokenizer

    regex = resolve_pattern(pattern)
    specials = dict(special_tokens or {})
    where = source or name
    for token, rank in ranks.items():
        if not is_u32(rank):
            raise FormatError(f"{where}: token {token!r}: {_id_problem(rank)}")
    check_ids_bounded(ranks.values(), len(ranks), where)
    check_all_bytes((t[0] for t in ranks if len(t) == 1), where)
    taken = set(ranks.values())
    for content, i in specials.items():
        if not isinstance(content, str) or not content:
            raise UsageError(f"{name}: a special token must be a non-empty string, got {content!r}")
        if not is_u32(i):
            raise UsageError(f"{name}: special token {content!r}: {_id_problem(i)}")
        if i in taken:
            raise UsageError(
                f"{name}: special token {content!r} has id {i}, which a rank already uses"
            )
    return Tokenizer(
        BPE.from_ranks(ranks),
        tiktoken_pretokenizer(regex),
        added_tokens=[AddedToken(c, i, special=True) for c, i in specials.items()],
        decoder=ByteLevelDecoder(),
        name=name,
        pattern=regex,
        source=source,
    )


def _looks_like_encoder(obj: dict[object, object]) -> bool:
    """A GPT-2 ``encoder.json``: a non-empty object of token -> integer id."""
    return bool(obj) and all(isinstance(v, int) for v in obj.values())


def _id_problem(value: object) -> str:
    try:
        check_id(value, "id")
    except FormatError as exc:
        return str(exc).removeprefix("id: ")
    return "bad id"  # pragma: no cover


def _find_in_dir(path: Path) -> Path:
    for candidate in ("tokenizer.json", "encoder.json"):
        if (path / candidate).is_file():
            return path / candidate
    ranks = sorted(path.glob("*.tiktoken"))
    if len(ranks) == 1:
        return ranks[0]
    raise InputError(
        f"{path}: folder holds no tokenizer.json, encoder.json or single .tiktoken file"
    )


def load_tokenizer(
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    special_tokens: dict[str, int] | None = None,
    merges: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> Tokenizer:
    """Load a tokenizer from a file (or a folder holding one), detecting the format.

    ``pattern`` names the split regex of a rank file (``"cl100k"``, ``"o200k"``...
    or a regex) and ``special_tokens`` its specials; both default to the
    well-known file's values when its sha256 is recognized. ``merges`` is the
    ``vocab.bpe`` of an ``encoder.json`` (default: beside it).
    """
    p = Path(path)
    if p.is_dir():
        p = _find_in_dir(p)
    data = read_file_bytes(p)
    if not data.strip():
        raise FormatError(
            f"{p}: empty file; expected tokenizer.json, a .tiktoken rank file or encoder.json"
        )
    head = data.lstrip()[:3]
    if head[:1] in (b"{", b"[", b'"') or head == b"\xef\xbb\xbf" or data.strip() == b"null":
        obj = parse_json(data, p)  # a byte-order mark is refused there, by name
        if (
            not isinstance(obj, dict)
            or isinstance(obj.get("model"), dict)
            or not _looks_like_encoder(obj)
        ):
            return tokenizer_from_json(obj, p, name)
        vocab_bpe = Path(merges) if merges is not None else p.with_name("vocab.bpe")
        if not vocab_bpe.is_file():
            raise InputError(
                f"{p}: looks like a GPT-2 encoder.json but {vocab_bpe} (its merges) does not exist"
            )
        return load_gpt2_files(obj, vocab_bpe, p)
    ranks = parse_ranks(data, p)
    known = KNOWN_RANK_FILES.get(hashlib.sha256(data).hexdigest())
    if pattern is None:
        if known is None:
            raise UsageError(
                f"{p}: a .tiktoken rank file holds no split pattern; pass pattern= "
                f"(one of {', '.join(sorted(PATTERNS))}, or a regex)"
            )
        pattern = known.pattern
    if special_tokens is None:
        special_tokens = dict(known.special_tokens) if known else {}
    label = name or (known.name if known else p.stem)
    return tokenizer_from_ranks(ranks, pattern, special_tokens, name=label, source=str(p))


def _ranks_of(tok: Tokenizer) -> dict[bytes, int]:
    model = tok.model
    if not model.byte_level:
        raise UsageError(
            f"{tok.name}: only byte-level tokenizers can be written as tiktoken rank files"
        )
    ranks: dict[bytes, int] = {}
    added_ids = {t.id for t in tok.added_tokens}
    for text, i in model.vocab.items():
        if i in added_ids:
            continue  # special tokens are not ranks; tiktoken takes them separately
        raw = chars_to_bytes(text)
        if raw is None:
            raise UsageError(f"{tok.name}: token {text!r} is not in the byte-level alphabet")
        ranks[raw] = i
    return ranks


def save_tokenizer(
    tok: Tokenizer, path: str | os.PathLike[str], *, format: str | None = None
) -> None:
    """Write ``tok`` as ``tokenizer.json`` or a tiktoken rank file (by ``format`` or suffix), atomically."""
    fmt = format or ("tiktoken" if str(path).endswith(".tiktoken") else "json")
    if fmt == "json":
        write_tokenizer_json(tok, path)
    elif fmt == "tiktoken":
        write_ranks(path, _ranks_of(tok))
    else:
        raise UsageError(f"unknown format {fmt!r}; expected 'json' or 'tiktoken'")
