"""Decoders: token pieces -> bytes, the inverse of byte-level spelling and metaspaces.

They follow the ``tokenizers`` decoders (``decode_chain`` over the list of
token strings), but work on ``bytes`` so that :meth:`Tokenizer.decode_bytes`
returns the exact bytes, with no lossy UTF-8 step in between. Decoders that
act on each token alone (``per_token``) are precomputed per id by the
tokenizer; the rest run on the sequence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from toknz.errors import FormatError, UnsupportedFeatureError
from toknz.pipeline.byte_alphabet import char_to_byte
from toknz.pipeline.normalizers import pattern_from_json

_BYTE_TOKEN = re.compile(rb"<0x([0-9A-Fa-f]{2})>")


class Decoder(Protocol):
    @property
    def per_token(self) -> bool: ...

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ByteLevelDecoder:
    """Undo the GPT-2 byte alphabet; a token with a character outside it passes through as UTF-8."""

    per_token: bool = True

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]:
        table = char_to_byte()
        out = []
        for p in pieces:
            text = p.decode("utf-8", errors="surrogateescape")
            raw = bytearray()
            for c in text:
                b = table.get(c)
                if b is None:
                    raw = bytearray(p)
                    break
                raw.append(b)
            out.append(bytes(raw))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        }


@dataclass(frozen=True)
class ReplaceDecoder:
    """Replace a literal string in every token."""

    pattern: str
    content: str
    per_token: bool = True

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]:
        old, new = self.pattern.encode("utf-8"), self.content.encode("utf-8")
        return [p.replace(old, new) if old else p for p in pieces]

    def to_json(self) -> dict[str, Any]:
        return {"type": "Replace", "pattern": {"String": self.pattern}, "content": self.content}


@dataclass(frozen=True)
class ByteFallbackDecoder:
    """Turn ``<0xAB>`` tokens into the byte they name."""

    per_token: bool = True

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]:
        out = []
        for p in pieces:
            m = _BYTE_TOKEN.fullmatch(p)
            out.append(bytes([int(m.group(1), 16)]) if m else p)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"type": "ByteFallback"}


@dataclass(frozen=True)
class FuseDecoder:
    """Join all tokens into one piece."""

    per_token: bool = False

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]:
        return [b"".join(pieces)]

    def to_json(self) -> dict[str, Any]:
        return {"type": "Fuse"}


@dataclass(frozen=True)
class StripDecoder:
    """Remove up to ``start`` leading and ``stop`` trailing ``content`` characters from each piece."""

    content: str
    start: int
    stop: int
    per_token: bool = False

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]:
        c = self.content.encode("utf-8")
        out = []
        for p in pieces:
            for _ in range(self.start):
                if c and p.startswith(c):
                    p = p[len(c) :]
                else:
                    break
            for _ in range(self.stop):
                if c and p.endswith(c):
                    p = p[: -len(c)]
                else:
                    break
            out.append(p)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"type": "Strip", "content": self.content, "start": self.start, "stop": self.stop}


@dataclass(frozen=True)
class MetaspaceDecoder:
    """``▁`` back to spaces; the first token loses its leading space unless the scheme is ``never``."""

    replacement: str = "\u2581"
    prepend_scheme: str = "always"
    split: bool = True
    per_token: bool = False

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]:
        rep = self.replacement.encode("utf-8")
        out = []
        for i, p in enumerate(pieces):
            p = p.replace(rep, b" ")
            if i == 0 and self.prepend_scheme != "never" and p.startswith(b" "):
                p = p[1:]
            out.append(p)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "Metaspace",
            "replacement": self.replacement,
            "prepend_scheme": self.prepend_scheme,
            "split": self.split,
        }


@dataclass(frozen=True)
class BPESuffixDecoder:
    """End-of-word suffix becomes a space (nothing on the last token)."""

    suffix: str = "</w>"
    per_token: bool = False

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]:
        s = self.suffix.encode("utf-8")
        n = len(pieces)
        return [p.replace(s, b"" if i == n - 1 else b" ") for i, p in enumerate(pieces)]

    def to_json(self) -> dict[str, Any]:
        return {"type": "BPEDecoder", "suffix": self.suffix}


@dataclass(frozen=True)
class DecoderSequence:
    steps: tuple[Decoder, ...]

    @property
    def per_token(self) -> bool:
        return all(s.per_token for s in self.steps)

    def decode_chain(self, pieces: list[bytes]) -> list[bytes]:
        for s in self.steps:
            pieces = s.decode_chain(pieces)
        return pieces

    def to_json(self) -> dict[str, Any]:
        return {"type": "Sequence", "decoders": [s.to_json() for s in self.steps]}


def split_per_token(decoder: Decoder | None) -> tuple[list[Decoder], list[Decoder]]:
    """Split a decoder into its per-token prefix and the rest (run on the sequence)."""
    steps: list[Decoder] = []
    if decoder is None:
        return [], []
    if isinstance(decoder, DecoderSequence):
        steps = list(decoder.steps)
    else:
        steps = [decoder]
    k = 0
    while k < len(steps) and steps[k].per_token:
        k += 1
    return steps[:k], steps[k:]


def decoder_from_json(obj: Any, where: str = "decoder") -> Decoder | None:
    """Build a decoder from its ``tokenizer.json`` object; unknown types are refused."""
    if obj is None:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise FormatError(f"{where}: expected an object with a 'type', got {obj!r}")
    kind = obj["type"]
    try:
        if kind == "ByteLevel":
            return ByteLevelDecoder()
        if kind == "Replace":
            pattern, is_regex = pattern_from_json(obj["pattern"], f"{where}.pattern")
            if is_regex:
                raise UnsupportedFeatureError(
                    f"{where}: a Replace decoder with a Regex pattern is not supported by toknz"
                )
            return ReplaceDecoder(pattern, str(obj["content"]))
        if kind == "ByteFallback":
            return ByteFallbackDecoder()
        if kind == "Fuse":
            return FuseDecoder()
        if kind == "Strip":
            return StripDecoder(str(obj["content"]), int(obj["start"]), int(obj["stop"]))
        if kind == "Metaspace":
            scheme = obj.get("prepend_scheme")
            if scheme is None:
                scheme = "always" if obj.get("add_prefix_space", True) else "never"
            return MetaspaceDecoder(
                str(obj.get("replacement", "\u2581")), scheme, bool(obj.get("split", True))
            )
        if kind == "BPEDecoder":
            return BPESuffixDecoder(str(obj.get("suffix", "</w>")))
        if kind == "Sequence":
            items = obj["decoders"]
            if not isinstance(items, list):
                raise FormatError(f"{where}.decoders must be a list")
            steps = [decoder_from_json(o, f"{where}.decoders[{i}]") for i, o in enumerate(items)]
            return DecoderSequence(tuple(s for s in steps if s is not None))
    except KeyError as exc:
        raise FormatError(f"{where}: {kind} decoder lacks the field {exc.args[0]!r}") from None
    raise UnsupportedFeatureError(
        f"{where}: the {kind!r} decoder is not supported by toknz (supported: ByteLevel, Replace, "
        "ByteFallback, Fuse, Strip, Metaspace, BPEDecoder, Sequence)"
    )
