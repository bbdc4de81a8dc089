"""``toknz decode``: token ids back to text."""

from __future__ import annotations

import json
import sys

import click

from toknz.cli._common import (
    _load,
    _pattern_option,
    _tokenizer_option,
)


def _read_ids(path: str) -> list[list[int]]:
    import numpy as np

    from toknz.errors import InputError
    from toknz.formats._io import decode_utf8, read_file_bytes

    if path.endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .npy file ({exc})") from None
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise InputError(
                f"{path}: expected a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}"
            )
        return [arr.astype(np.int64).tolist()]
    data = sys.stdin.buffer.read() if path == "-" else read_file_bytes(path)
    text = decode_utf8(data, path)
    out: list[list[int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            ids = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}, line {lineno}, column {exc.colno}: not a JSON list of ids ({exc.msg})"
            ) from None
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise InputError(f"{path}, line {lineno}: expected a JSON list of integers")
        out.append(ids)
    return out


@click.command("decode")
@_tokenizer_option
@_pattern_option
@click.argument("file", default="-", metavar="[FILE]")
@click.option("--skip-special-tokens", is_flag=True, help="Leave special tokens out of the text.")
@click.option(
    "--errors",
    type=click.Choice(["replace", "strict", "ignore", "backslashreplace"]),
    default="replace",
    show_default=True,
    help="What to do with invalid UTF-8 in the decoded bytes.",
)
def decode(
    tokenizer_name: str, pattern: str | None, file: str, skip_special_tokens: bool, errors: str
) -> None:
    """Decode ids (JSON lines, as `toknz encode` writes, or a .npy file) back to text."""
    from toknz.errors import InputError

    tok = _load(tokenizer_name, pattern)
    for ids in _read_ids(file):
        try:
            text = tok.decode(ids, errors=errors, skip_special_tokens=skip_special_tokens)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{file}: decoded bytes are not valid UTF-8 at byte {exc.start} (use --errors replace)"
            ) from None
        sys.stdout.write(text)
    sys.stdout.flush()
