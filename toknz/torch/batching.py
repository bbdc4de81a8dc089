"""Texts to padded ``[batch, words, bytes_per_word]`` (or ``[batch, bytes]``) tensors, and back.

:class:`WordBatcher` splits each text into words with toknz's splitter
(:func:`toknz.words.word_boundaries_batch`: one Numba call for the whole batch) and lays the
UTF-8 bytes of word ``w`` of text ``b`` in ``batch.bytes[b, w, :batch.lengths[b, w]]``. The
masks say which words and bytes are real, ``offsets`` where each word starts in its text, so
:meth:`WordBatch.decode` gives back every text byte for byte. The batcher is itself a
``DataLoader`` collate function (``collate_fn=batcher``). :class:`ByteBatcher` lays each text
out as one row of bytes (:class:`ByteBatch`) for byte-level models, with the same special
tokens (:class:`SpecialTokens` does the cutting for both).

Special tokens (``"<|endoftext|>"``, document separators) become one-byte words holding a
byte that valid UTF-8 never contains (``0xF5``..``0xFF``, then ``0xC0``, ``0xC1``), so a model
with a 256-byte vocabulary sees them as one symbol and a text that holds the token's
characters as plain text cannot produce it.

    >>> batcher = WordBatcher(max_word_bytes=8, special_tokens=["<|endoftext|>"])
    >>> batch = batcher(["Hello world", "a<|endoftext|>b"])
    >>> batch.bytes.shape          # 2 texts, at most 3 words, at most 6 bytes a word
    torch.Size([2, 3, 6])
    >>> batch.lengths.tolist()
    [[5, 6, 0], [1, 1, 1]]
    >>> batch.decode() == ["Hello world", "a<|endoftext|>b"]
    True
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from toknz.errors import InputError, UsageError
from toknz.words import word_boundaries_batch

#: Bytes that never occur in valid UTF-8, in the order special tokens get them.
SPECIAL_BYTES = (*range(0xF5, 0x100), 0xC0, 0xC1)


class SpecialTokens:
    """The special-token segmentation both batchers share.

    Each of ``tokens`` (at most 13, distinct, non-empty) gets one byte of
    :data:`SPECIAL_BYTES`; :meth:`segments` cuts a text at them (longest token first).

        >>> SpecialTokens(["<|endoftext|>"]).segments("a<|endoftext|>b", 0)
        ([b'a', b'\\xf5', b'b'], 15)
    """

    def __init__(self, tokens: Sequence[str] = ()) -> None:
        if len(tokens) > len(SPECIAL_BYTES):
            raise UsageError(
                f"at most {len(SPECIAL_BYTES)} special tokens fit in the bytes UTF-8 never "
                f"uses, not {len(tokens)}"
            )
        if len(set(tokens)) != len(tokens) or any(not s for s in tokens):
            raise UsageError(f"special tokens must be distinct and non-empty: {tokens!r}")
        self.tokens = tuple(tokens)
        #: token text -> its byte
        self.special_bytes = {tok: SPECIAL_BYTES[i] for i, tok in enumerate(self.tokens)}
        #: byte -> its token's UTF-8 text
        self.texts = {SPECIAL_BYTES[i]: tok.encode("utf-8") for i, tok in enumerate(self.tokens)}
        longest_first = sorted(self.tokens, key=len, reverse=True)
        self._special_re = (
            re.compile("|".join(re.escape(t) for t in longest_first)) if longest_first else None
        )
        self._reserved = np.zeros(256, dtype=bool)
        self._reserved[[SPECIAL_BYTES[i] for i in range(len(self.tokens))]] = True

    def segments(self, text: str | bytes, index: int) -> tuple[list[bytes], int]:
        """Cut ``text`` at its special tokens: its pieces (a special as its byte), its bytes.

        The count is the UTF-8 bytes of the text (a special counts its text's bytes).
        Raises :class:`~toknz.errors.InputError` for a ``bytes`` text holding a reserved byte
        (naming text ``index``) and :class:`~toknz.errors.UsageError` for a non-text.
        """
        if isinstance(text, str):
            if self._special_re is None:
                data = text.encode("utf-8", "surrogatepass")
                return [data], len(data)
            pieces: list[bytes] = []
            n = 0
            last = 0
            for match in self._special_re.finditer(text):
                pieces.append(text[last : match.start()].encode("utf-8", "surrogatepass"))
                pieces.append(bytes([self.special_bytes[match.group()]]))
                n += len(pieces[-2]) + len(match.group().encode())
                last = match.end()
            pieces.append(text[last:].encode("utf-8", "surrogatepass"))
            return pieces, n + len(pieces[-1])
        if isinstance(text, bytes):
            found = np.flatnonzero(self._reserved[np.frombuffer(text, dtype=np.uint8)])
            if found.size:
                raise InputError(
                    f"text {index}, byte offset {int(found[0])}: byte 0x{text[found[0]]:02X} "
                    "is reserved for a special token of this batcher (pass text as str)"
                )
            return [text], len(text)
        raise UsageError(f"text {index}: expected str or bytes, not {type(text).__name__}")


class TensorBatch:
    """What every toknz batch (a dataclass of tensors and host values) can do: move every
    tensor field to a device, or pin it for ``DataLoader(pin_memory=True)``."""

    def _map_tensors(self: B, fn: Callable[[torch.Tensor], torch.Tensor]) -> B:
        changed = {
            f.name: fn(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return dataclasses.replace(self, **changed)  # type: ignore[type-var]

    def to(self: B, device: torch.device | str) -> B:
        """This batch with every tensor moved to ``device``."""
        return self._map_tensors(lambda t: t.to(device))

    def pin_memory(self: B) -> B:
        """This batch in pinned memory (``DataLoader(pin_memory=True)`` calls it)."""
        return self._map_tensors(lambda t: t.pin_memory())


B = TypeVar("B", bound=TensorBatch)


@dataclass
class WordBatch(TensorBatch):
    """A batch of texts as words of bytes (all tensors on one device).

    - ``bytes [B, W, L]`` (``long``): the bytes of each word, ``0`` after its end;
    - ``byte_mask [B, W, L]``: True on real bytes; ``word_mask [B, W]``: True on real words;
    - ``lengths [B, W]``: bytes per word (0 for padding); ``offsets [B, W]``: where each word
      starts in its text's UTF-8 bytes, each special token counted as its one byte;
    - ``n_bytes``: the UTF-8 bytes of all texts (specials count the bytes of their text), the
      denominator of bits per byte; ``n_symbols``: what a byte decoder predicts, every byte
      stored (a special as one) plus one terminator per word, known on the host so a model
      needs no device sync to average its loss; ``specials``: the special-token text of each
      special byte.
    """

    bytes: torch.Tensor
    byte_mask: torch.Tensor
    word_mask: torch.Tensor
    lengths: torch.Tensor
    offsets: torch.Tensor
    n_bytes: int
    n_symbols: int
    specials: dict[int, builtins.bytes] = dataclasses.field(default_factory=dict)

    @property
    def word_counts(self) -> torch.Tensor:
        """Words per text ``[B]``."""
        return self.word_mask.sum(dim=1)

    def word_bytes(self, b: int) -> list[builtins.bytes]:
        """The words of text ``b`` as bytes (a special as its one byte)."""
        data = self.bytes[b].cpu().numpy().astype(np.uint8)
        lengths = self.lengths[b].cpu().tolist()
        return [data[w, :n].tobytes() for w, n in enumerate(lengths) if n]

    def decode_bytes(self) -> list[builtins.bytes]:
        """The UTF-8 bytes of every text, special tokens restored."""
        out = []
        for b in range(self.bytes.shape[0]):
            words = self.word_bytes(b)
            out.append(b"".join(self.specials.get(w[0], w) if len(w) == 1 else w for w in words))
        return out

    def decode(self) -> list[str]:
        """Every text, exactly as given (``surrogatepass`` for lone surrogates)."""
        return [t.decode("utf-8", "surrogatepass") for t in self.decode_bytes()]


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class WordBatcher:
    """Turns texts into a :class:`WordBatch` (and is a ``DataLoader`` collate function).

    ``rule`` and ``max_word_bytes`` are those of :func:`toknz.split_words` (a cap is required:
    it bounds the last tensor dimension). ``special_tokens`` (at most 13) are cut out of the
    texts before splitting and each becomes a one-byte word. ``pad_to_multiple`` rounds the
    word and byte dimensions up (steady shapes for ``torch.compile`` and tensor cores).
    ``max_words`` truncates each text to its first words (None: keep all).

    Raises :class:`~toknz.errors.UsageError` for bad options and
    :class:`~toknz.errors.InputError` for a ``bytes`` text holding a byte reserved for a
    special token (naming the text and the offset).
    """

    def __init__(
        self,
        rule: str = "whitespace",
        max_word_bytes: int = 16,
        special_tokens: Sequence[str] = (),
        pad_to_multiple: int = 1,
        max_words: int | None = None,
    ) -> None:
        specials = SpecialTokens(special_tokens)
        if pad_to_multiple < 1:
            raise UsageError(f"pad_to_multiple must be at least 1, not {pad_to_multiple}")
        if max_words is not None and max_words < 1:
            raise UsageError(f"max_words must be at least 1, not {max_words}")
        word_boundaries_batch([""], rule, max_word_bytes)  # validates rule and cap
        self.rule = rule
        self.max_word_bytes = max_word_bytes
        self.special_tokens = specials.tokens
        self.pad_to_multiple = pad_to_multiple
        self.max_words = max_words
        self.special_bytes = specials.special_bytes
        self._specials = specials

    def __call__(self, texts: Sequence[str | bytes]) -> WordBatch:
        """The :class:`WordBatch` of ``texts`` (a list of str or bytes)."""
        if isinstance(texts, (str, bytes)):
            raise UsageError("WordBatcher takes a list of texts, not a single text")
        pieces_of: list[list[bytes]] = []
        n_bytes = 0
        for i, text in enumerate(texts):
            pieces, n = self._specials.segments(text, i)
            pieces_of.append(pieces)
            n_bytes += n
        flat = [p for pieces in pieces_of for p in pieces]
        bounds = word_boundaries_batch(flat, self.rule, self.max_word_bytes)
        starts_of: list[np.ndarray] = []
        k = 0
        for pieces in pieces_of:
            parts = []
            base = 0
            for piece in pieces:
                parts.append(bounds[k][:-1] + base)
                base += len(piece)
                k += 1
            starts = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            starts_of.append(np.append(starts, base))
        return self._tensors([b"".join(p) for p in pieces_of], starts_of, n_bytes)

    def _tensors(self, blobs: list[bytes], starts_of: list[np.ndarray], n_bytes: int) -> WordBatch:
        """Lay the words out: ``starts_of[b]`` are word starts of ``blobs[b]``, then its end."""
        if self.max_words is not None:
            starts_of = [s[: self.max_words + 1] for s in starts_of]
        counts = [len(s) - 1 for s in starts_of]
        n_words = _round_up(max(max(counts, default=0), 1), self.pad_to_multiple)
        lengths_np = np.zeros((len(blobs), n_words), dtype=np.int64)
        offsets_np = np.zeros((len(blobs), n_words), dtype=np.int64)
        for b, starts in enumerate(starts_of):
            lengths_np[b, : counts[b]] = np.diff(starts)
            offsets_np[b, : counts[b]] = starts[:-1]
        width = _round_up(max(int(lengths_np.max(initial=0)), 1), self.pad_to_multiple)
        # One flat buffer: text b starts at base[b]; gather every word's bytes at once.
        base = np.zeros(len(blobs) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in blobs], out=base[1:])
        data = np.frombuffer(b"".join(blobs) + b"\0", dtype=np.uint8)
        cols = np.arange(width)
        index = (base[:-1, None, None] + offsets_np[:, :, None]) + cols[None, None, :]
        byte_mask_np = cols[None, None, :] < lengths_np[:, :, None]
        gathered = np.where(byte_mask_np, data[np.where(byte_mask_np, index, len(data) - 1)], 0)
        specials = {
            SPECIAL_BYTES[i]: tok.encode("utf-8") for i, tok in enumerate(self.special_tokens)
        }
        if self.max_words is not None:
            n_bytes = int(lengths_np.sum())
            kept_specials = np.isin(gathered[:, :, 0], list(specials)) & (lengths_np == 1)
            for byte, text in specials.items():
                n_bytes += int((kept_specials & (gathered[:, :, 0] == byte)).sum()) * (
                    len(text) - 1
                )
        return WordBatch(
            bytes=torch.from_numpy(gathered.astype(np.int64)),
            byte_mask=torch.from_numpy(byte_mask_np),
            word_mask=torch.from_numpy(lengths_np > 0),
            lengths=torch.from_numpy(lengths_np),
            offsets=torch.from_numpy(offsets_np),
            n_bytes=n_bytes,
            n_symbols=int(lengths_np.sum()) + int((lengths_np > 0).sum()),
            specials=specials,
        )


@dataclass
class ByteBatch(TensorBatch):
    """A batch of texts as padded rows of bytes (all tensors on one device).

    - ``bytes [B, T]`` (``long``): the UTF-8 bytes of each text (a special token as its one
      byte), ``0`` after its end; ``mask [B, T]``: True on real bytes;
    - ``lengths [B]``: bytes per row; ``ended [B]``: True where the row holds its whole text
      (False where ``max_bytes`` cut it, so nothing marks its end);
    - ``n_bytes``: the UTF-8 bytes of all rows (specials count the bytes of their text), the
      denominator of bits per byte; ``specials``: the special-token text of each special byte.
    """

    bytes: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    ended: torch.Tensor
    n_bytes: int
    specials: dict[int, builtins.bytes] = dataclasses.field(default_factory=dict)

    def row_bytes(self, b: int) -> builtins.bytes:
        """Row ``b`` as bytes (a special as its one byte)."""
        n = int(self.lengths[b])
        return self.bytes[b, :n].cpu().numpy().astype(np.uint8).tobytes()

    def decode_bytes(self) -> list[builtins.bytes]:
        """The UTF-8 bytes of every row, special tokens restored."""
        return [
            b"".join(self.specials.get(x, bytes([x])) for x in self.row_bytes(b))
            for b in range(self.bytes.shape[0])
        ]

    def decode(self) -> list[str]:
        """Every text, exactly as given (``surrogatepass`` for lone surrogates)."""
        return [t.decode("utf-8", "surrogatepass") for t in self.decode_bytes()]


class ByteBatcher:
    """Turns texts into a :class:`ByteBatch` (and is a ``DataLoader`` collate function).

    ``special_tokens`` (at most 13) become one reserved byte each, as in
    :class:`WordBatcher`. ``max_bytes`` keeps each text's first bytes (None: all);
    ``pad_to_multiple`` rounds the byte dimension up.

        >>> batch = ByteBatcher(special_tokens=["<|endoftext|>"])(["hé", "a<|endoftext|>"])
        >>> batch.bytes.tolist(), batch.lengths.tolist(), batch.n_bytes
        ([[104, 195, 169], [97, 245, 0]], [3, 2], 17)
        >>> batch.decode() == ["hé", "a<|endoftext|>"]
        True

    Raises :class:`~toknz.errors.UsageError` for bad options and
    :class:`~toknz.errors.InputError` for a ``bytes`` text holding a reserved byte.
    """

    def __init__(
        self,
        special_tokens: Sequence[str] = (),
        pad_to_multiple: int = 1,
        max_bytes: int | None = None,
    ) -> None:
        specials = SpecialTokens(special_tokens)
        if pad_to_multiple < 1:
            raise UsageError(f"pad_to_multiple must be at least 1, not {pad_to_multiple}")
        if max_bytes is not None and max_bytes < 1:
            raise UsageError(f"max_bytes must be at least 1, not {max_bytes}")
        self.special_tokens = specials.tokens
        self.special_bytes = specials.special_bytes
        self.pad_to_multiple = pad_to_multiple
        self.max_bytes = max_bytes
        self._specials = specials

    def encode(self, text: str | bytes, index: int = 0) -> tuple[builtins.bytes, int]:
        """One text as bytes (specials as their byte) and its UTF-8 byte count."""
        pieces, n = self._specials.segments(text, index)
        return b"".join(pieces), n

    def __call__(self, texts: Sequence[str | bytes]) -> ByteBatch:
        """The :class:`ByteBatch` of ``texts`` (a list of str or bytes)."""
        if isinstance(texts, (str, bytes)):
            raise UsageError("ByteBatcher takes a list of texts, not a single text")
        rows: list[builtins.bytes] = []
        ended: list[bool] = []
        n_bytes = 0
        extra = np.zeros(256, dtype=np.int64)  # bytes a special stands for, beyond its one
        for byte, token in self._specials.texts.items():
            extra[byte] = len(token) - 1
        for i, text in enumerate(texts):
            data, n = self.encode(text, i)
            cut = self.max_bytes is not None and len(data) > self.max_bytes
            if cut:
                data = data[: self.max_bytes]
                n = len(data) + int(extra[np.frombuffer(data, dtype=np.uint8)].sum())
            rows.append(data)
            ended.append(not cut)
            n_bytes += n
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        width = _round_up(max(int(lengths.max(initial=0)), 1), self.pad_to_multiple)
        data_np = np.zeros((len(rows), width), dtype=np.int64)
        for b, row in enumerate(rows):
            data_np[b, : len(row)] = np.frombuffer(row, dtype=np.uint8)
        lengths_t = torch.from_numpy(lengths)
        return ByteBatch(
            bytes=torch.from_numpy(data_np),
            mask=torch.arange(width) < lengths_t.unsqueeze(-1),
            lengths=lengths_t,
            ended=torch.tensor(ended, dtype=torch.bool),
            n_bytes=n_bytes,
            specials=dict(self._specials.texts),
        )
