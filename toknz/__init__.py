"""toknz: tokenizers and byte-level modeling, with Numba hot paths and no Rust.

    >>> import toknz
    >>> enc = toknz.load("cl100k_base")          # after `toknz fetch cl100k_base`
    >>> enc.decode(enc.encode("hello world"))
    'hello world'

Public API: :class:`Tokenizer`, :func:`load`, the error types in
:mod:`toknz.errors`.
"""

from __future__ import annotations

import os

from toknz.errors import (
    FetchError,
    FormatError,
    InputError,
    SpecialTokenError,
    ToknzError,
    UnsupportedFeatureError,
    UsageError,
)
from toknz.tokenizer import Tokenizer
from toknz.words import split_words

__version__ = "0.1.0"

__all__ = [
    "FetchError",
    "FormatError",
    "InputError",
    "SpecialTokenError",
    "Tokenizer",
    "ToknzError",
    "UnsupportedFeatureError",
    "UsageError",
    "load",
    "split_words",
]


def load(name_or_path: str | os.PathLike[str], **kwargs: object) -> Tokenizer:
    """Load a tokenizer by well-known name (``"cl100k_base"``, ``"llama3"``...) or from a path.

    Names resolve to files fetched by ``toknz fetch`` into the cache
    (``$TOKNZ_CACHE``, default ``~/.cache/toknz``); a missing file is a
    :class:`FetchError` telling which command fetches it.
    """
    from pathlib import Path

    from toknz import fetch

    key = str(name_or_path)
    if key in fetch.available_names():
        path = fetch.require(key)
        return Tokenizer.from_file(path, name=key, **kwargs)  # type: ignore[arg-type]
    p = Path(key)
    if p.exists():
        return Tokenizer.from_file(p, **kwargs)  # type: ignore[arg-type]
    raise UsageError(
        f"{key!r} is neither a known tokenizer name ({', '.join(fetch.available_names())}) nor an existing path"
    )
