"""The GPT-2 "byte-level" alphabet: a printable character for each of the 256 bytes.

``tokenizer.json`` files of byte-level BPE models spell tokens in this alphabet
(a space is ``Ġ``, a newline ``Ċ``). toknz works on raw bytes internally and
uses these tables only at the file boundary.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def byte_to_char() -> tuple[str, ...]:
    """Return the 256 characters, indexed by byte value.

    Bytes that are printable Latin-1 (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``)
    stand for themselves; the other 68 bytes map, in byte order, to U+0100 and up.
    """
    printable = set(range(ord("!"), ord("~") + 1))
    printable |= set(range(ord("¡"), ord("¬") + 1))
    printable |= set(range(ord("®"), ord("ÿ") + 1))
    table = []
    extra = 0
    for b in range(256):
        if b in printable:
            table.append(chr(b))
        else:
            table.append(chr(256 + extra))
            extra += 1
    return tuple(table)


@lru_cache(maxsize=1)
def char_to_byte() -> dict[str, int]:
    """Inverse of :func:`byte_to_char`."""
    return {c: b for b, c in enumerate(byte_to_char())}


@lru_cache(maxsize=1)
def _to_chars_table() -> dict[int, str]:
    # latin-1 code point (= byte value) -> byte-level character
    return dict(enumerate(byte_to_char()))


@lru_cache(maxsize=1)
def _to_latin1_table() -> dict[int, str]:
    # byte-level character -> latin-1 character of its byte; latin-1 characters
    # outside the alphabet map to U+FFFF so that encoding them fails.
    table: dict[int, str] = {c: "\uffff" for c in range(256)}
    for b, c in enumerate(byte_to_char()):
        table[ord(c)] = chr(b)
    return table


def bytes_to_chars(data: bytes) -> str:
    """Spell raw bytes in the byte-level alphabet."""
    return data.decode("latin-1").translate(_to_chars_table())


def chars_to_bytes(text: str) -> bytes | None:
    """Read a byte-level spelling back into bytes; ``None`` if a character is outside the alphabet."""
    try:
        return text.translate(_to_latin1_table()).encode("latin-1")
    except UnicodeEncodeError:
        return None
