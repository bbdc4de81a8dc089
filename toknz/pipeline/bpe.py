"""The BPE model: pieces (pre-tokenized words) -> token ids.

A :class:`BPE` holds the vocabulary, the ordered merges and the options of a
``tokenizers`` BPE model (unknown token, byte fallback, affixes,
``ignore_merges``), or the ranks of a tiktoken file. It turns them into the pair
table of the merge engine :mod:`toknz_core.encode` (used by every kernel: pieces,
whole documents, derived merges) and keeps a bounded cache of recently encoded
pieces. Before the kernels load, pieces are merged by the engine's pure-Python twin
:func:`toknz.pipeline.bpe_reference.bpe_merge`.

Two merge rules exist and both are exact:

- ``"merges"`` (``tokenizers``): pair (a, b) merges iff it is in the merge
  list; its priority is its index there.
- ``"ranks"`` (tiktoken): pair (a, b) merges iff the concatenation of their
  bytes is a token; its priority is that token's rank. The pair table then
  holds every split of every token into two tokens, so tokens reachable by
  more than one merge path encode as tiktoken encodes them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from toknz.derived import DerivedState
from toknz.errors import FormatError, InputError, UnsupportedFeatureError
from toknz.pipeline.bpe_reference import bpe_merge, concat_pair, listed_pair
from toknz.pipeline.byte_alphabet import byte_to_char, bytes_to_chars, chars_to_bytes

#: Pieces kept in the per-model cache before it is cleared.
CACHE_SIZE = 1 << 16


#: Before the Numba kernels are loaded, pieces to merge totalling at most this many bytes
#: are merged in Python: a short first encode then costs no kernel loading (about a second).
PYTHON_MERGE_BYTES = 4096


def kernels_loaded() -> bool:
    """True once the Numba encoding kernels are imported in this process."""
    return "toknz_core.encode" in sys.modules or "toknz_core.docencode" in sys.modules


def _kernels() -> Any:
    # Imported lazily: Numba compiles (or loads its cache) on first use only.
    from toknz_core import encode

    return encode


def _concatenated(raws: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``raws`` back to back (uint8) and the int64 offsets of each."""
    data = np.frombuffer(b"".join(raws), dtype=np.uint8)
    offsets = np.zeros(len(raws) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, raws), dtype=np.int64, count=len(raws)), out=offsets[1:])
    return data, offsets


@dataclass
class BPE(DerivedState):
    """A BPE model over ids ``0..n_vocab-1``.

    ``vocab`` maps model-space token strings to ids. For a byte-level model
    (``byte_level=True``) tokens are spelled in the GPT-2 byte alphabet, as in
    ``tokenizer.json``, and pieces are encoded from their UTF-8 bytes; for a
    character model (SentencePiece-style) pieces are encoded from characters.

    The fields are the model; everything computed from them (id lookup, pair tables,
    kernel tables, the piece cache) is a cached property, built on first use and
    left out of pickles (:class:`toknz.derived.DerivedState`).
    """

    vocab: dict[str, int]
    merges: list[tuple[str, str]]
    byte_level: bool = True
    merge_rule: str = "merges"
    unk_token: str | None = None
    byte_fallback: bool = False
    fuse_unk: bool = False
    continuing_subword_prefix: str | None = None
    end_of_word_suffix: str | None = None
    ignore_merges: bool = False

    def __post_init__(self) -> None:
        # The inputs are checked now; what derives from them is built on first use.
        _ = self.id_to_token
        if self.unk_token is not None and self.unk_token not in self.vocab:
            raise FormatError(f"model.unk_token {self.unk_token!r} is not in the vocabulary")

    # ----------------------------------------------------------------- derived state

    @cached_property
    def id_to_token(self) -> list[str | None]:
        """Token string of each id (None for an id no token has); refuses negative ids."""
        out: list[str | None] = [None] * (max(self.vocab.values(), default=-1) + 1)
        for tok, i in self.vocab.items():
            if i < 0:
                raise FormatError(f"model.vocab: token {tok!r} has negative id {i}")
            out[i] = tok
        return out

    @cached_property
    def _bytes_mode(self) -> bool:
        """Byte-level without affixes: pieces become symbols byte by byte (:attr:`_byte_ids`)."""
        return self.byte_level and not (self.continuing_subword_prefix or self.end_of_word_suffix)

    @cached_property
    def _byte_ids(self) -> np.ndarray:
        """The token id of each byte value (int32, 256 entries; -1 for a byte with no token)."""
        table = byte_to_char()
        return np.array([self.vocab.get(table[b], -1) for b in range(256)], dtype=np.int32)

    @cached_property
    def _missing_bytes(self) -> bool:
        return bool((self._byte_ids < 0).any())

    @cached_property
    def _unk_id(self) -> int:
        return self.vocab.get(self.unk_token, -1) if self.unk_token else -1

    @cached_property
    def _cache(self) -> dict[Any, tuple[int, ...]]:
        """Ids of recently encoded pieces (cleared past :data:`CACHE_SIZE`)."""
        return {}

    @cached_property
    def _merge_ranks(self) -> dict[tuple[str, str], int]:
        """Rank of each merge pair for :meth:`_merge_python` (a later duplicate wins)."""
        return {pair: r for r, pair in enumerate(self.merges)}

    @cached_property
    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.merge_rule == "ranks":
            return self._pairs_from_ranks()
        return self._pairs_from_merges()

    # ----------------------------------------------------------------- building

    @classmethod
    def from_ranks(cls, ranks: dict[bytes, int]) -> BPE:
        """A tiktoken model: token bytes -> rank, ranks used as ids."""
        vocab = {bytes_to_chars(tok): r for tok, r in ranks.items()}
        return cls(vocab=vocab, merges=[], byte_level=True, merge_rule="ranks")

    @property
    def n_vocab(self) -> int:
        return len(self.id_to_token)

    def token_bytes(self, token_id: int) -> bytes | None:
        """The bytes a model token stands for (byte-level spelling undone), or None for a hole."""
        tok = self.id_to_token[token_id] if 0 <= token_id < len(self.id_to_token) else None
        if tok is None:
            return None
        if self.byte_level:
            raw = chars_to_bytes(tok)
            return raw if raw is not None else tok.encode("utf-8")
        return tok.encode("utf-8")

    def pair_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(left, right, rank, new_id)`` int32 arrays of every mergeable pair (computed once)."""
        return self._pairs

    def _pairs_from_merges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        prefix_len = len(self.continuing_subword_prefix or "")
        n = len(self.merges)
        left = np.empty(n, dtype=np.int32)
        right = np.empty(n, dtype=np.int32)
        new = np.empty(n, dtype=np.int32)
        vocab = self.vocab
        for i, (a, b) in enumerate(self.merges):
            merged = a + b[prefix_len:]
            try:
                left[i] = vocab[a]
                right[i] = vocab[b]
                new[i] = vocab[merged]
            except KeyError as exc:
                raise FormatError(
                    f"model.merges[{i}]: merge {a!r} + {b!r} uses or makes {exc.args[0]!r}, "
                    "which is not in the vocabulary"
                ) from None
        return left, right, np.arange(n, dtype=np.int32), new

    def _pairs_from_ranks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from toknz_core.ranks import splits_into_tokens

        ids: list[int] = []
        raws: list[bytes] = []
        for tok, i in self.vocab.items():
            raw = chars_to_bytes(tok)
            if raw is not None:
                ids.append(i)
                raws.append(raw)
        left, right, whole = splits_into_tokens(*_concatenated(raws))
        id_of = np.array(ids, dtype=np.int32)
        rank = id_of[whole]
        return id_of[left], id_of[right], rank, rank.copy()

    @cached_property
    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """The merge engine's pair table ``(pairs, rank_ids)``
        (:func:`toknz_core.encode.build_pair_table`), built on first use.

        Raises :class:`~toknz.errors.UnsupportedFeatureError` for a model whose ids or
        merge ranks do not fit the table (ids above about a million).
        """
        kernels = _kernels()
        if self.n_vocab - 1 > kernels.MAX_ID:
            raise UnsupportedFeatureError(
                f"model.vocab: id {self.n_vocab - 1:,} is above {kernels.MAX_ID:,}, the largest "
                "id toknz's BPE kernels hold"
            )
        pairs, rank_ids, ok = kernels.build_pair_table(*self.pair_arrays())
        if not ok:
            raise UnsupportedFeatureError(
                f"model.merges: {len(self.pair_arrays()[0]):,} merges, more than the "
                f"{kernels.MAX_RANK + 1:,} toknz's BPE kernels hold"
            )
        return pairs, rank_ids

    @property
    def _merge_kernel_ready(self) -> bool:
        """True once the merge kernel is imported and this model's table built (no wait to use it)."""
        return "table" in self.__dict__ and "toknz_core.encode" in sys.modules

    def load_kernels(self) -> None:
        """Import the merge kernel, build the pair table and merge one word (loads its machine code)."""
        word = np.zeros(2, dtype=np.int32)
        _kernels().merge_words(word, np.array([0, 2], dtype=np.int64), *self.table)

    # ----------------------------------------------------------------- encoding

    def encode_pieces(self, pieces: Sequence[str]) -> list[int]:
        """Encode pre-tokenized pieces (text, before any byte-level spelling) to ids."""
        if not pieces:
            return []
        if self._bytes_mode:
            return self._encode_bytes_pieces([p.encode("utf-8") for p in pieces])
        return self._encode_char_pieces(pieces)

    def encode_piece_bytes(self, pieces: Sequence[bytes]) -> list[int]:
        """Encode raw-byte pieces (byte-level models only)."""
        if not self._bytes_mode:
            raise FormatError("raw-byte pieces need a byte-level model without subword affixes")
        return self._encode_bytes_pieces(list(pieces))

    @property
    def has_fast_path(self) -> bool:
        """True when whole documents can take the compiled path of :meth:`text_encoder`.

        Byte-level, no affixes, and every byte a token or no unknown token (missing bytes dropped).
        """
        # Bytes with no token are dropped by the kernel; an unknown token needs the slow path.
        return self._bytes_mode and (not self._missing_bytes or self._unk_id < 0)

    @cached_property
    def _fast_tables(self) -> tuple[Any, ...]:
        """The tables of :func:`toknz_core.docencode.encode_pieces` (``byte_ids`` to
        ``tok_ids``): :attr:`table`, plus the byte-pair ranks and bridges and the whole-token
        lookups."""
        from toknz_core import docencode
        from toknz_core.ranks import build_bytes_table

        raws: list[bytes] = []
        tids: list[int] = []
        for tok, i in self.vocab.items():
            raw = chars_to_bytes(tok)
            if raw is not None and len(raw) > 1:
                raws.append(raw)
                tids.append(i)
        tok_data, tok_offsets = _concatenated(raws)
        tok_ids = np.array(tids, dtype=np.int32)
        pairs, rank_ids = self.table
        byte_pairs = docencode.byte_pair_ranks(self._byte_ids, pairs)
        # A piece that is a token encodes to it: tiktoken's rule and ignore_merges; under
        # the merge list alone, true of the tokens it makes out of their own bytes, which
        # then give the same shortcut to pieces of up to CACHE_WORD bytes. Longer pieces
        # are merged as before: they are never cached, so a look-up, which is exact but
        # mostly misses, would cost each of their occurrences.
        whole_rule = self.merge_rule == "ranks" or bool(self.ignore_merges)
        # The bridges see every token; they check the whole-token rule's tokens against the
        # merges (the self-made ones need no check: their shortcut is the merges' result).
        bridges = docencode.byte_bridges(
            self._byte_ids, pairs, rank_ids, byte_pairs, whole_rule, tok_data, tok_offsets, tok_ids
        )
        long_data, long_offsets, long_ids = tok_data, tok_offsets, tok_ids
        if not whole_rule:
            keep = docencode.self_encoding_tokens(
                tok_data, tok_offsets, tok_ids, self._byte_ids, pairs, rank_ids, byte_pairs
            ).astype(bool)
            keep &= np.diff(tok_offsets) <= docencode.CACHE_WORD
            raws = [r for r, k in zip(raws, keep.tolist(), strict=True) if k]
            tok_data, tok_offsets = _concatenated(raws)
            tok_ids = tok_ids[keep]
            long_data, long_offsets = _concatenated([])
            long_ids = np.empty(0, dtype=np.int32)
        short8, short24 = docencode.build_short_tokens(tok_data, tok_offsets, tok_ids)
        return (
            self._byte_ids,
            pairs,
            rank_ids,
            byte_pairs,
            bridges,
            True,  # the shortcut: whole tokens in short8/short24 and the long table
            short8,
            short24,
            long_data,
            long_offsets,
            build_bytes_table(long_data, long_offsets),
            long_ids,
        )

    @cached_property
    def _packed(self) -> dict[int, tuple[np.ndarray, tuple[Any, ...]]]:
        """Packed tables by split kind (:meth:`_packed_tables`)."""
        return {}

    def _packed_tables(
        self, kind: int, class_table: np.ndarray
    ) -> tuple[np.ndarray, tuple[Any, ...]] | None:
        """``(blob, tables)`` of :func:`toknz_core.docencode.pack_tables` for the split ``kind``
        (``tables``: the class table, then :attr:`_fast_tables`, as views into ``blob``), or
        None without a fast path. Every compiled encoder of the model uses these views, so
        the tables are held once."""
        got = self._packed.get(kind)
        if got is None:
            if not self.has_fast_path:
                return None
            tables = self._fast_tables
            from toknz_core.docencode import pack_tables

            got = self._packed.setdefault(kind, pack_tables(kind, class_table, *tables))
            # The packed views replace the tables, the pair table included: held once
            # (rebuilt only for another kind).
            self.__dict__.pop("_fast_tables", None)
            self.__dict__["table"] = (got[1][2], got[1][3])
        return got

    def _take_work(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, memoryview, int]:
        """``(work, word cache, ids out, the same ids as a memoryview, work address)`` for
        one kernel call, from the model's pool (a new one when all are in use;
        :func:`toknz_core.docencode.new_work`). The ids (uint32) come as an array, to copy
        into a new array, and as a ``memoryview``, to make a list of: for the few ids of a
        short text each is the cheaper way to its result.

        Caches outlive threads (a thread pool's threads come and go), so a batch
        on fresh threads still finds the words earlier calls cached. Give it back
        with ``_free_works.append``.
        """
        try:
            return self._free_works.pop()
        except IndexError:
            from toknz_core.docencode import new_work, work_parts

            work = new_work()
            cache, ids = work_parts(work)
            return work, cache, ids, memoryview(ids), work.ctypes.data  # type: ignore[arg-type]

    @cached_property
    def _free_works(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, memoryview, int]]:
        """The pool of kernel work arrays (:meth:`_take_work`)."""
        return []

    def text_encoder(
        self, kind: int, class_table: np.ndarray
    ) -> Callable[[np.ndarray], np.ndarray] | None:
        """A function from one document's UTF-8 bytes (uint8 array) to its ids (int32 array).

        The document is split by the compiled pattern ``kind`` of
        :mod:`toknz_core.pretok` (``class_table``: its Unicode class table) and
        encoded in the same kernel call (:func:`toknz_core.docencode.encode_text_bytes`).
        None unless :attr:`has_fast_path`. Safe from several threads.
        """
        packed = self._packed_tables(kind, class_table)
        if packed is None:
            return None
        from toknz_core.docencode import encode_text_bytes

        tables = packed[1]
        kind64 = np.int64(kind)
        take, give = self._take_work, self._free_works.append
        check = self.check_bytes

        def encode(data: np.ndarray) -> np.ndarray:
            check(data)
            work = take()
            try:
                ids: np.ndarray = encode_text_bytes(kind64, data, *tables, work[1])  # type: ignore[call-arg]
            finally:
                give(work)
            return ids

        return encode

    def short_encoder(
        self, kind: int, class_table: np.ndarray
    ) -> Callable[[bytes, bool], list[int] | np.ndarray | None] | None:
        """Like :meth:`text_encoder` for a short text, in a call with three arguments.

        The function takes the text's UTF-8 ``bytes`` and ``as_list`` and returns its ids
        as a list (``as_list``) or a uint32 array, or None when they are more than
        :data:`toknz_core.docencode.SHORT_OUT` (use :meth:`text_encoder` then)
        (:func:`toknz_core.docencode.encode_short`). For a vocabulary missing a byte
        (SmolLM2's has no token for some control bytes), also None for a text holding
        one: :meth:`text_encoder` refuses or maps it.
        """
        packed = self._packed_tables(kind, class_table)
        if packed is None:
            return None
        missing = np.flatnonzero(self._byte_ids < 0).tolist()
        refuse = (
            re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in missing) + b"]").search
            if missing
            else None
        )
        from toknz_core.dispatch import direct_entry
        from toknz_core.docencode import encode_short

        blob = packed[0]  # kept alive by this closure: the kernel reads it by address
        blob_at = blob.ctypes.data
        take, give = self._take_work, self._free_works.append
        kernel = direct_entry(encode_short, b"", blob_at, blob_at)

        def encode(raw: bytes, as_list: bool) -> list[int] | np.ndarray | None:
            if refuse is not None and refuse(raw) is not None:
                return None
            work = take()  # out of the pool, so no other call writes to it meanwhile
            try:
                n = kernel(raw, blob_at, work[4])
                if n < 0:
                    return None
                return work[3][:n].tolist() if as_list else work[2][:n].copy()  # type: ignore[no-any-return]
            finally:
                give(work)

        return encode

    def batch_encoder(
        self, kind: int, class_table: np.ndarray, marked: bool = False
    ) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]] | None:
        """Like :meth:`text_encoder`, for many documents in one call.

        The function takes the documents' UTF-8 bytes back to back (uint8) and
        their ``n_docs + 1`` int64 offsets, and returns ``(ids, id_offsets)``
        (:func:`toknz_core.docencode.encode_documents`); with ``marked``, ``(ids,
        id_offsets, starts)``, ``starts`` flagging the first id of every pre-token
        (:func:`toknz_core.docencode.encode_documents_marked`).
        """
        packed = self._packed_tables(kind, class_table)
        if packed is None:
            return None
        from toknz_core import docencode

        kernel = docencode.encode_documents_marked if marked else docencode.encode_documents
        tables = packed[1]
        kind64 = np.int64(kind)
        take, give = self._take_work, self._free_works.append
        check = self.check_bytes

        def encode(data: np.ndarray, doc_offsets: np.ndarray) -> tuple[np.ndarray, ...]:
            check(data)
            work = take()
            try:
                out: tuple[np.ndarray, ...] = kernel(kind64, data, doc_offsets, *tables, work[1])  # type: ignore[call-arg]
            finally:
                give(work)
            return out

        return encode

    def _check_cache_size(self) -> None:
        if len(self._cache) > CACHE_SIZE:
            self._cache.clear()

    def _encode_bytes_pieces(self, pieces: list[bytes]) -> list[int]:
        return self._encode_cached(pieces, self._fill_bytes)

    def _encode_cached(
        self, pieces: Sequence[Any], fill: Callable[[list[Any]], dict[Any, tuple[int, ...]]]
    ) -> list[int]:
        """Ids of ``pieces`` from the piece cache, the distinct misses merged by ``fill``.

        Thread-safe: another thread may clear the shared cache at any time, so hits are
        read once and misses come back from the fill directly.
        """
        cache = self._cache
        self._check_cache_size()
        found = [cache.get(p) for p in pieces]
        misses = list(dict.fromkeys(p for p, ids in zip(pieces, found, strict=True) if ids is None))
        filled = fill(misses) if misses else {}
        out: list[int] = []
        for p, ids in zip(pieces, found, strict=True):
            out.extend(ids if ids is not None else filled[p])
        return out

    def _fill_bytes(self, misses: list[bytes]) -> dict[bytes, tuple[int, ...]]:
        cache = self._cache
        filled: dict[bytes, tuple[int, ...]] = {}
        todo: list[bytes] = []
        if self.merge_rule == "ranks" or self.ignore_merges:
            # A piece that is itself a token encodes to that token: tiktoken's
            # rule, and `ignore_merges` in tokenizers.
            vocab = self.vocab
            for p in misses:
                i = vocab.get(bytes_to_chars(p)) if len(p) > 1 else None
                if i is not None:
                    filled[p] = cache[p] = (i,)
                else:
                    todo.append(p)
        else:
            todo = misses
        if not todo:
            return filled
        flat = np.frombuffer(b"".join(todo), dtype=np.uint8)
        symbols = self._byte_ids[flat]
        lengths = np.fromiter((len(p) for p in todo), dtype=np.int64, count=len(todo))
        offsets = np.zeros(len(todo) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if self._missing_bytes:
            # Bytes with no token: the unknown token if there is one; with none,
            # refused (tokenizers drops them, losing the byte).
            for piece in todo:
                self.check_bytes(np.frombuffer(piece, dtype=np.uint8), "a pre-token")
            keep: list[np.ndarray] = []
            new_offsets = [0]
            for w in range(len(todo)):
                word = symbols[offsets[w] : offsets[w + 1]]
                word = self._unknown_bytes(word)
                keep.append(word)
                new_offsets.append(new_offsets[-1] + len(word))
            symbols = np.concatenate(keep) if keep else symbols[:0]
            offsets = np.array(new_offsets, dtype=np.int64)
        if (
            not self._missing_bytes
            and not self._merge_kernel_ready
            and len(flat) <= PYTHON_MERGE_BYTES
        ):
            # Before the Numba kernels are loaded, a few short pieces are cheaper in Python.
            try:
                done = {p: self._merge_python(p) for p in todo}
            except KeyError:
                pass  # a merge makes a token missing from the vocabulary: the kernel path says so
            else:
                cache.update(done)
                filled.update(done)
                return filled
        merged, out_offsets = _kernels().merge_words(symbols.astype(np.int32), offsets, *self.table)
        merged_list = merged.tolist()
        bounds = out_offsets.tolist()
        for w, p in enumerate(todo):
            filled[p] = cache[p] = tuple(merged_list[bounds[w] : bounds[w + 1]])
        return filled

    def _merge_python(self, piece: bytes) -> tuple[int, ...]:
        """BPE on one piece in pure Python (every byte has a token), with the engine's twin
        :func:`~toknz.pipeline.bpe_reference.bpe_merge` over token spellings: tiktoken's
        rank of a pair is the rank of the concatenated token, ``tokenizers``' its index in
        the merge list. Raises KeyError when a merge makes a token missing from the vocabulary.
        """
        vocab = self.vocab
        chars = byte_to_char()
        if self.merge_rule == "ranks":
            pair = concat_pair(vocab)
        else:
            pair = listed_pair(self._merge_ranks)
        return tuple(vocab[t] for t in bpe_merge([chars[b] for b in piece], pair))

    def check_bytes(self, data: np.ndarray, what: str = "the text") -> None:
        """Raise :class:`~toknz.errors.InputError` for a byte of ``data`` (uint8) that this
        byte-level vocabulary has no token for and no unknown token stands in for.

        ``tokenizers`` drops such a byte silently, so decoding loses it (KL3M's
        ``"ctrl\\x18char"`` comes back as ``"ctrlchar"``); toknz refuses to encode it.
        A no-op for every vocabulary that holds all 256 bytes.
        """
        if not (self._bytes_mode and self._missing_bytes and self._unk_id < 0) or not data.size:
            return
        bad = np.flatnonzero(self._byte_ids[data] < 0)
        if bad.size:
            at = int(bad[0])
            near = bytes(data[max(0, at - 12) : at + 12]).decode("utf-8", "replace")
            raise InputError(
                f"byte 0x{int(data[at]):02x} at byte offset {at} of {what} (near {near!r}) has no "
                "token in this byte-level vocabulary and there is no unknown token: it would be "
                "lost; `toknz inspect --check` lists the bytes this tokenizer cannot encode"
            )

    def _unknown_bytes(self, word: np.ndarray) -> np.ndarray:
        out: list[int] = []
        for s in word.tolist():
            if s >= 0:
                out.append(s)
            elif self._unk_id >= 0:
                if not (self.fuse_unk and out and out[-1] == self._unk_id):
                    out.append(self._unk_id)
        return np.array(out, dtype=np.int32)

    def _encode_char_pieces(self, pieces: Sequence[str]) -> list[int]:
        return self._encode_cached(pieces, self._fill_chars)

    def _initial_symbols(self, word: str) -> list[int]:
        vocab = self.vocab
        prefix = self.continuing_subword_prefix or ""
        suffix = self.end_of_word_suffix or ""
        unk = vocab[self.unk_token] if self.unk_token is not None else -1
        out: list[int] = []
        last_unk = False
        n = len(word)
        for i, c in enumerate(word):
            tok = c
            if prefix and i > 0:
                tok = prefix + tok
            if suffix and i == n - 1:
                tok = tok + suffix
            tid = vocab.get(tok)
            if tid is not None:
                out.append(tid)
                last_unk = False
                continue
            if self.byte_fallback:
                fb = [vocab.get(f"<0x{b:02X}>") for b in c.encode("utf-8")]
                if all(x is not None for x in fb):
                    out.extend(x for x in fb if x is not None)
                    last_unk = False
                    continue
            if unk >= 0:
                if not (self.fuse_unk and last_unk):
                    out.append(unk)
                last_unk = True
        return out

    def _fill_chars(self, todo: list[str]) -> dict[str, tuple[int, ...]]:
        cache = self._cache
        filled: dict[str, tuple[int, ...]] = {}
        words: list[list[int]] = []
        keys_todo: list[str] = []
        for p in todo:
            word = bytes_to_chars(p.encode("utf-8")) if self.byte_level else p
            if self.ignore_merges and word in self.vocab:
                filled[p] = cache[p] = (self.vocab[word],)
                continue
            words.append(self._initial_symbols(word))
            keys_todo.append(p)
        if not keys_todo:
            return filled
        lengths = np.array([len(w) for w in words], dtype=np.int64)
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        symbols = np.fromiter((s for w in words for s in w), dtype=np.int32, count=int(offsets[-1]))
        merged, out_offsets = _kernels().merge_words(symbols, offsets, *self.table)
        merged_list = merged.tolist()
        bounds = out_offsets.tolist()
        for w, p in enumerate(keys_todo):
            filled[p] = cache[p] = tuple(merged_list[bounds[w] : bounds[w + 1]])
        return filled

    # ----------------------------------------------------------------- merges

    def derived_merges(self) -> list[tuple[str, str]]:
        """For a ranks model: the merge list that reproduces its encodings.

        Each multi-byte token, in rank order, is split into the two tokens
        that BPE over the lower ranks produces from its bytes. A token whose
        bytes do not reduce to exactly two lower-ranked tokens is unreachable
        by merging; those are skipped (they still decode).
        """
        if self.merge_rule != "ranks":
            return list(self.merges)
        items = sorted(
            ((i, chars_to_bytes(t)) for t, i in self.vocab.items()),
            key=lambda x: x[0],
        )
        multi = [(i, raw) for i, raw in items if raw is not None and len(raw) > 1]
        if not multi:
            return []
        flat = np.frombuffer(b"".join(raw for _, raw in multi), dtype=np.uint8)
        symbols = self._byte_ids[flat].astype(np.int32)
        lengths = np.array([len(raw) for _, raw in multi], dtype=np.int64)
        offsets = np.zeros(len(multi) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        limits = np.array([i for i, _ in multi], dtype=np.int32)
        parts, part_offsets = _kernels().merge_words_below(symbols, offsets, limits, *self.table)
        out: list[tuple[str, str]] = []
        id_to_token = self.id_to_token
        for w in range(len(multi)):
            s, e = part_offsets[w], part_offsets[w + 1]
            if e - s == 2:
                a, b = id_to_token[int(parts[s])], id_to_token[int(parts[s + 1])]
                if a is not None and b is not None:
                    out.append((a, b))
        return out


def merges_from_json(items: Iterable[Any], where: str = "model.merges") -> list[tuple[str, str]]:
    """Read merges spelled ``"a b"`` (older files) or ``["a", "b"]`` (newer files)."""
    out: list[tuple[str, str]] = []
    for i, m in enumerate(items):
        if isinstance(m, str):
            parts = m.split(" ")
            if len(parts) != 2:
                raise FormatError(
                    f"{where}[{i}]: merge {m!r} must be two tokens separated by one space"
                )
            out.append((parts[0], parts[1]))
        elif isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m):
            out.append((m[0], m[1]))
        else:
            raise FormatError(f"{where}[{i}]: expected 'a b' or ['a', 'b'], got {m!r}")
    return out
