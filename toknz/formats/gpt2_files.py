"""The original GPT-2 release files: ``encoder.json`` (token -> id) and ``vocab.bpe`` (merges)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from toknz.errors import FormatError
from toknz.formats._io import decode_utf8, read_file_bytes
from toknz.pipeline.added_tokens import AddedToken
from toknz.pipeline.bpe import BPE
from toknz.pipeline.decoders import ByteLevelDecoder
from toknz.pipeline.pretokenize import ByteLevel
from toknz.validate import check_vocab

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer


def parse_vocab_bpe(data: bytes, path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Merges from ``vocab.bpe``: an optional ``#version`` line, then ``a b`` per line."""
    merges: list[tuple[str, str]] = []
    for lineno, line in enumerate(decode_utf8(data, path).split("\n"), start=1):
        if not line or (lineno == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise FormatError(
                f"{path}, line {lineno}: expected two tokens separated by one space, got {line[:80]!r}"
            )
        merges.append((parts[0], parts[1]))
    return merges


def load_gpt2_files(
    encoder: object, vocab_bpe: str | os.PathLike[str], encoder_path: str | os.PathLike[str]
) -> Tokenizer:
    """Build the GPT-2 tokenizer from a parsed ``encoder.json`` and the path of ``vocab.bpe``."""
    from toknz.tokenizer import Tokenizer

    if not isinstance(encoder, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in encoder.items()
    ):
        raise FormatError(f"{encoder_path}: expected a JSON object of token -> integer id")
    try:
        check_vocab(encoder, "encoder.json")
    except FormatError as exc:
        raise FormatError(f"{encoder_path}: {exc}") from None
    merges = parse_vocab_bpe(read_file_bytes(vocab_bpe), vocab_bpe)
    model = BPE(vocab=dict(encoder), merges=merges, byte_level=True, merge_rule="merges")
    try:
        model.pair_arrays()
    except FormatError as exc:
        raise FormatError(f"{vocab_bpe}: {exc}") from None
    added = [AddedToken(c, i, special=True) for c, i in encoder.items() if c == "<|endoftext|>"]
    return Tokenizer(
        model,
        ByteLevel(add_prefix_space=False, use_regex=True),
        added_tokens=added,
        decoder=ByteLevelDecoder(),
        name="gpt2",
        pattern=None,
        source=str(Path(encoder_path)),
    )
