"""``toknz encode``: text files to token ids."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from toknz.cli._common import (
    _load,
    _pattern_option,
    _read_text,
    _tokenizer_option,
)


@click.command("encode")
@_tokenizer_option
@_pattern_option
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write ids here: FILE.npy (flat uint32 ids of all documents) or FILE.jsonl. Default: JSON lines on stdout.",
)
@click.option(
    "--lines",
    is_flag=True,
    help="Each line of a file is a separate document (default: each file is one).",
)
@click.option(
    "--allowed-special",
    multiple=True,
    metavar="TOKEN|all",
    help="Encode this special token (repeatable, or 'all') as its id when it occurs in the text.",
)
@click.option(
    "--ordinary",
    is_flag=True,
    help="Encode special-token text as plain text instead of refusing it.",
)
@click.option(
    "--add-special-tokens", is_flag=True, help="Apply the file's post-processor (BOS/EOS...)."
)
@click.option(
    "--stats",
    is_flag=True,
    help="Print a summary (bytes, tokens, bytes per token, speed) to stderr.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    help="Threads for encoding (default: all cores).",
)
def encode(
    tokenizer_name: str,
    pattern: str | None,
    files: Sequence[str],
    output: str | None,
    lines: bool,
    allowed_special: Sequence[str],
    ordinary: bool,
    add_special_tokens: bool,
    stats: bool,
    threads: int | None,
) -> None:
    """Encode text FILEs (UTF-8; `-` is stdin) to token ids.

    Text that spells a special token is refused unless --allowed-special or
    --ordinary says what to do with it.
    """
    import numpy as np

    from toknz.errors import UsageError

    if output is not None and not output.endswith((".npy", ".jsonl", ".json")):
        raise UsageError(f"--output {output}: use a .npy or .jsonl file name")
    if ordinary and allowed_special:
        raise UsageError("--ordinary and --allowed-special contradict each other; give one")
    tok = _load(tokenizer_name, pattern)
    allowed: Any = "all" if "all" in allowed_special else frozenset(allowed_special)
    if allowed != "all" and allowed - tok.special_tokens_set:
        known = ", ".join(sorted(tok.special_tokens_set)[:10]) or "none"
        raise UsageError(
            f"--allowed-special: {', '.join(sorted(allowed - tok.special_tokens_set))} is not a special token "
            f"of {tok.name} (it has: {known})"
        )
    disallowed: Any = () if ordinary else "all"

    from toknz.errors import SpecialTokenError

    t0 = time.perf_counter()
    docs: list[str] = []
    refused: Any = (
        ()
        if ordinary
        else tok.special_tokens_set - (tok.special_tokens_set if allowed == "all" else allowed)
    )
    for path in files:
        text = _read_text(path)
        hit = tok.find_special(text, refused) if refused else None
        if hit is not None:
            offset, content = hit
            line = text.count("\n", 0, offset) + 1
            byte_offset = len(text[:offset].encode("utf-8"))
            raise SpecialTokenError(
                f"{path}, line {line}, byte offset {byte_offset}: the text contains the special token {content!r}. "
                "Pass --allowed-special TOKEN (or all) to encode it as a special token, "
                "or --ordinary to encode it as plain text."
            )
        docs.extend(text.splitlines(keepends=True) if lines else [text])
    t_read = time.perf_counter()
    results = tok.encode_batch(
        docs,
        num_threads=threads,
        allowed_special=allowed,
        disallowed_special=disallowed,
        add_special_tokens=add_special_tokens,
    )
    t_enc = time.perf_counter()

    if output is not None and output.endswith(".npy"):
        from toknz.formats._io import atomic_write

        flat = np.fromiter((i for ids in results for i in ids), dtype=np.uint32)
        import io

        buf = io.BytesIO()
        np.save(buf, flat)
        atomic_write(output, buf.getvalue())
    else:
        lines_out = "".join(json.dumps(ids) + "\n" for ids in results)
        if output is not None:
            from toknz.formats._io import atomic_write

            atomic_write(output, lines_out.encode("utf-8"))
        else:
            sys.stdout.write(lines_out)
    if stats:
        n_bytes = sum(len(d.encode("utf-8")) for d in docs)
        n_tokens = sum(len(ids) for ids in results)
        secs = t_enc - t_read
        click.echo(
            f"{tok.name}: {len(docs)} document(s), {n_bytes:,} bytes -> {n_tokens:,} tokens "
            f"({n_bytes / max(n_tokens, 1):.2f} bytes/token), encoded in {secs:.2f} s "
            f"({n_bytes / 1e6 / max(secs, 1e-9):.1f} MB/s, read in {t_read - t0:.2f} s)",
            err=True,
        )
