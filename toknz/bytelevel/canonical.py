"""Canonicality: is a token sequence what the tokenizer itself would produce for its bytes?

A sequence of token ids is *canonical* for a tokenizer when encoding its bytes
gives the sequence back: ``tokenizer.encode_ordinary(text) == ids`` where
``text`` is ``tokenizer.decode_bytes(ids)`` decoded as UTF-8.

Bytes that are not valid UTF-8 (a byte-level token can hold half a character)
are given a meaning too, for byte-level tokenizers: the bytes are decoded with
``surrogateescape``, so each undecodable byte becomes one character that is
neither a letter, a number nor white space (Unicode category ``Cs``); the text
is pre-tokenized as usual and each piece is BPE-encoded from its own bytes. On
valid UTF-8 this is exactly ``encode_ordinary``. For a tokenizer that is not
byte-level (SentencePiece-style) a sequence whose bytes are not valid UTF-8 is
not canonical.

How it is decided (byte-level BPE): the decoded text is pre-tokenized once;
every pre-token boundary must be a token boundary; a pre-token that is one
token must be that token's own encoding; inside a pre-token of several tokens
every adjacent pair must pass the merge-history test of
:mod:`toknz_core.canon` (near O(1) per pair, on trees precomputed once per
tokenizer). Tokens whose merge tree cannot be walked, added tokens, and text
that a normalizer would change fall back to re-encoding (exact, slower).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from toknz.bytelevel.boundaries import BoundaryOracle, _never_outputs, effective_pre_tokenizer
from toknz.bytelevel.boundaries import text_of as _text_of
from toknz.errors import InputError, UsageError
from toknz.pipeline.pretokenize import NoSplit, pre_tokenize

_TABLES: weakref.WeakKeyDictionary[Any, Canonicality] = weakref.WeakKeyDictionary()


def _bytes_of(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class Canonicality:
    """Precomputed tables answering canonicality questions for one tokenizer.

    Build it once per tokenizer with :func:`canonicality` (cached). Token ids
    are those of ``tokenizer`` (model tokens and added tokens); an id outside
    ``0..n_vocab-1`` raises :class:`~toknz.errors.InputError`.
    """

    def __init__(self, tokenizer: Any) -> None:
        from toknz_core import canon

        self.tokenizer = tokenizer
        model = tokenizer.model
        self.model = model
        self.n_vocab: int = tokenizer.n_vocab
        self.n_model: int = model.n_vocab
        self.byte_level: bool = bool(model.byte_level)
        #: ranks rule / ignore_merges: a pre-token that is itself a token encodes to it.
        self.whole_piece_rule: bool = model.merge_rule == "ranks" or bool(model.ignore_merges)
        self.added_ids: frozenset[int] = frozenset(t.id for t in tokenizer.added_tokens)
        self.special_ids: frozenset[int] = frozenset(
            t.id for t in tokenizer.added_tokens if t.special
        )
        self._plain_added = tuple(t.content for t in tokenizer.added_tokens if not t.special)
        self.token_bytes: list[bytes] = [
            tokenizer.decode_single_token_bytes(i) for i in range(self.n_vocab)
        ]
        #: The pre-tokenizer as it acts on text before normalization (steps a
        #: normalizer makes inert dropped): the one boundary questions are about.
        self.pre_tokenizer = effective_pre_tokenizer(tokenizer.normalizer, tokenizer.pre_tokenizer)
        self.has_split = not isinstance(self.pre_tokenizer, NoSplit)
        self.pairs, self.rank_ids = model.table
        self.left_child, self.right_child, self.crank = self._merge_trees()
        self.irregular = self.crank == canon.IRREGULAR
        self._bytes_to_id: dict[bytes, int] = {}
        for i in range(self.n_model - 1, -1, -1):
            if model.id_to_token[i] is not None:
                self._bytes_to_id[self.token_bytes[i]] = i
        self._boundaries: BoundaryOracle | None = None
        self.fallback_byte = self._fallback_bytes()
        #: Whether some token is a byte-fallback token (``<0x41>``) of a non-byte-level model.
        self.has_fallback = bool((self.fallback_byte >= 0).any())
        self._fallback_char_ok: dict[str, bool] = {}
        self._unreachable: frozenset[int] | None = None
        self._symbols: tuple[np.ndarray, np.ndarray] | None = None
        #: Model tokens whose pairs the merges alone decide: not byte-fallback or
        #: unknown, and not an added token whose literal content decodes to
        #: itself (the text can then hold it, matched before the model runs).
        #: Gemma's runs of ``▁`` are added tokens too, but their decoded bytes
        #: are spaces, which only the model path produces.
        self._decidable = np.zeros(self.n_model, dtype=bool)
        for t in range(self.n_model):
            self._decidable[t] = model.id_to_token[t] is not None
        self._decidable[self.fallback_byte[: self.n_model] >= 0] = False
        for added in tokenizer.added_tokens:
            if added.id < self.n_model and (
                added.special or self.token_bytes[added.id] == added.content.encode()
            ):
                self._decidable[added.id] = False
        unk = getattr(model, "unk_token", None)
        if unk is not None and model.vocab.get(unk) is not None:
            self._decidable[model.vocab[unk]] = False
        self._crank_order: np.ndarray | None = None
        self._by_left: tuple[np.ndarray, np.ndarray, np.ndarray] = (
            np.zeros(1, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
        )

    @property
    def unreachable(self) -> frozenset[int]:
        """Model tokens that BPE never produces, not even from their own bytes: never canonical.

        A token of a canonical encoding is built by merges inside its own span,
        in the order BPE would apply them to its bytes alone, so a token whose
        own bytes encode to something else never occurs (ByteSampler drops
        these too). Only tokens whose merge tree cannot be walked are tried
        (re-encoding each); byte-fallback tokens, added tokens and models with
        subword affixes are left out. Computed on first use.
        """
        if self._unreachable is None:
            model = self.model
            out = set()
            affixes = model.continuing_subword_prefix or model.end_of_word_suffix
            if not affixes:
                for t in np.nonzero(self.irregular)[0].tolist():
                    tok = model.id_to_token[t]
                    if tok is None or t in self.added_ids or self.fallback_byte[t] >= 0:
                        continue
                    if self.byte_level:
                        if not model._bytes_mode:
                            break
                        ids = model.encode_piece_bytes([self.token_bytes[t]])
                    else:
                        ids = model.encode_pieces([tok])
                    if ids != [t]:
                        out.add(t)
            self._unreachable = frozenset(out)
        return self._unreachable

    # ------------------------------------------------------------ byte fallback

    def _fallback_bytes(self) -> np.ndarray:
        """int16 per id: the byte of a byte-fallback token (``<0x41>``), -1 for any other token."""
        out = np.full(self.n_vocab, -1, dtype=np.int16)
        model = self.model
        if self.byte_level or not getattr(model, "byte_fallback", False):
            return out
        for b in range(256):
            tid = model.vocab.get(f"<0x{b:02X}>")
            if tid is not None and tid < self.n_vocab:
                out[tid] = b
        return out

    def fallback_char_ok(self, char: str) -> bool:
        """Whether the encoder spells ``char`` (as it stands in decoded text) with byte-fallback tokens.

        That happens exactly when the normalized text can hold ``char`` and the
        vocabulary has no symbol for it. Cached per character.
        """
        hit = self._fallback_char_ok.get(char)
        if hit is None:
            normalizer = self.tokenizer.normalizer
            kept = normalizer is None or not _never_outputs(normalizer, char)
            hit = self._fallback_char_ok[char] = kept and self.model.vocab.get(char) is None
        return hit

    def fallback_pending(self, tokens: Sequence[int]) -> bytes:
        """The bytes of an unfinished character that byte-fallback tokens end ``tokens`` with (or b"").

        Assumes the fallback run is well formed (each continuation byte after
        its lead), as :meth:`fallback_allowed` keeps it.
        """
        tail: list[int] = []
        for t in reversed(tokens[-4:]):
            b = int(self.fallback_byte[t])
            if b < 0:
                break
            tail.append(b)
            if b & 0xC0 != 0x80:  # a lead byte or ASCII: the last character starts here
                need = _utf8_length(b)
                return bytes(reversed(tail)) if len(tail) < need else b""
        return b""

    def fallback_allowed(self, tokens: Sequence[int], ids: np.ndarray) -> np.ndarray:
        """Bool per id of ``ids``: may it follow ``tokens`` as far as byte fallback goes?

        A canonical sequence spells a character with byte-fallback tokens only
        when :meth:`fallback_char_ok`, and then with all its bytes in order;
        inside such a character nothing else may come. Other pairs are left to
        the merge test (True here).
        """
        fb = self.fallback_byte[np.asarray(ids, dtype=np.int64)].astype(np.int64)
        pending = self.fallback_pending(tokens)
        cont = (fb >= 0) & (fb & 0xC0 == 0x80)
        if pending:
            ok = cont.copy()
            if len(pending) + 1 == _utf8_length(pending[0]):
                for b in np.unique(fb[cont]).tolist():
                    char = (pending + bytes([b])).decode("utf-8", "replace")
                    good = len(char) == 1 and char != "\ufffd" and self.fallback_char_ok(char)
                    if not good:
                        ok[fb == b] = False
            return ok
        ok = ~cont
        for b in np.unique(fb[(fb >= 0) & ~cont]).tolist():
            if _utf8_length(b) == 0 or (b < 0x80 and not self.fallback_char_ok(chr(b))):
                ok[fb == b] = False
        return ok

    # ------------------------------------------------------------ merge trees

    def _initial_symbols(self, token_id: int) -> list[int] | None:
        model = self.model
        tok = model.id_to_token[token_id]
        if tok is None:
            return None
        if self.byte_level:
            raw = model.token_bytes(token_id)
            if raw is None:
                return None
            syms = [int(model._byte_ids[b]) for b in raw] if model._bytes_mode else None
            if syms is None:
                return None
        else:
            syms = model._initial_symbols(tok)
        return syms if all(s >= 0 for s in syms) else None

    def _merge_trees(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(left_child, right_child, crank)`` of every model token (see :mod:`toknz_core.canon`)."""
        from toknz_core import canon, encode

        n = self.n_model
        left_child = np.full(n, -1, dtype=np.int32)
        right_child = np.full(n, -1, dtype=np.int32)
        crank = np.full(n, canon.IRREGULAR, dtype=np.int64)
        _, _, p_rank, p_new = self.model.pair_arrays()
        # Candidate final merges of each token, by rank: the first one below which
        # BPE leaves exactly that merge's two parts is the token's last merge.
        order = np.lexsort((p_rank, p_new))
        cand_new = p_new[order].astype(np.int64)
        cand_rank = p_rank[order].astype(np.int64)
        starts = np.searchsorted(cand_new, np.arange(n + 1))
        symbols: dict[int, list[int]] = {}
        for t in range(n):
            if starts[t] == starts[t + 1]:
                syms = self._initial_symbols(t)
                if syms is not None and len(syms) == 1 and syms[0] == t:
                    crank[t] = -1
                continue
            syms = self._initial_symbols(t)
            if syms is None:
                continue
            if len(syms) == 1:
                if syms[0] == t:
                    crank[t] = -1
                continue
            symbols[t] = syms
        pairs, rank_ids = self.model.table
        todo = sorted(symbols)
        k = 0
        while todo:
            todo = [t for t in todo if starts[t] + k < starts[t + 1]]
            if not todo:
                break
            lengths = np.array([len(symbols[t]) for t in todo], dtype=np.int64)
            offsets = np.zeros(len(todo) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            flat = np.fromiter(
                (s for t in todo for s in symbols[t]), dtype=np.int32, count=int(offsets[-1])
            )
            limits = cand_rank[starts[np.array(todo, dtype=np.int64)] + k].astype(np.int32)
            parts, part_offsets = encode.merge_words_below(flat, offsets, limits, pairs, rank_ids)
            left_over: list[int] = []
            for w, t in enumerate(todo):
                s, e = int(part_offsets[w]), int(part_offsets[w + 1])
                if e - s == 2:
                    a, b = int(parts[s]), int(parts[s + 1])
                    if encode.pair_lookup(pairs, rank_ids, a, b) == (limits[w], t):
                        left_child[t], right_child[t] = a, b
                        crank[t] = int(limits[w])
                        continue
                left_over.append(t)
            todo = left_over
            k += 1
        # A tree is walkable when both children are, and ranks grow upwards.
        order = np.argsort(np.where(crank >= 0, crank, -1), kind="stable")
        regular = crank == -1
        for t in order.tolist():
            if crank[t] < 0:
                continue
            a, b = left_child[t], right_child[t]
            if regular[a] and regular[b] and crank[a] < crank[t] and crank[b] < crank[t]:
                regular[t] = True
        crank[~regular] = canon.IRREGULAR
        left_child[~regular] = -1
        right_child[~regular] = -1
        return left_child, right_child, crank

    # ------------------------------------------------------------ checks

    def check_ids(self, ids: Sequence[int]) -> None:
        """Raise :class:`~toknz.errors.InputError` for an id outside ``0..n_vocab-1``."""
        n = self.n_vocab
        for pos, i in enumerate(ids):
            if not isinstance(i, int | np.integer) or not (0 <= int(i) < n):
                raise InputError(
                    f"{self.tokenizer.name}: token id {i!r} at position {pos} is outside "
                    f"the vocabulary (0..{n - 1})"
                )

    def merge_compatible(self, left: int, right: int) -> bool | None:
        """Whether BPE keeps ``left`` and ``right`` apart inside one pre-token.

        Context-free: answers for the merge rules only (pre-tokenization and the
        whole-piece rule aside). None when a token's merge tree cannot be walked.
        """
        from toknz_core import canon

        self.check_ids([left, right])
        if left >= self.n_model or right >= self.n_model:
            return None
        r = canon.pair_ok(
            np.int64(left),
            np.int64(right),
            self.left_child,
            self.right_child,
            self.crank,
            self.pairs,
        )
        return None if r == canon.UNDECIDED else bool(r == canon.VALID)

    def _symbol_table(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR ``(offsets, flat)`` of every model token's initial symbols (none when it has none)."""
        if self._symbols is None:
            rows = [self._initial_symbols(t) or [] for t in range(self.n_model)]
            offsets = np.zeros(self.n_model + 1, dtype=np.int64)
            np.cumsum([len(r) for r in rows], out=offsets[1:])
            flat = np.fromiter((s for r in rows for s in r), dtype=np.int32, count=int(offsets[-1]))
            self._symbols = (offsets, flat)
        return self._symbols

    def merge_compatible_by_encoding(self, left: int, rights: np.ndarray) -> np.ndarray:
        """bool per model id of ``rights``: does BPE on ``left``'s and the right's symbols give them back?

        The exact answer :meth:`merge_compatible` gives where it can, for
        tokens whose merge tree cannot be walked (SentencePiece-converted
        vocabularies whose merge ranks do not grow upwards, such as Gemma's
        runs of ``▁``). One compiled batch of pair encodings; a token without
        initial symbols answers False.
        """
        from toknz_core import encode

        rights = np.asarray(rights, dtype=np.int64)
        offsets, flat = self._symbol_table()
        lsyms = flat[offsets[left] : offsets[left + 1]]
        sizes = offsets[rights + 1] - offsets[rights]
        word_offsets = np.zeros(rights.shape[0] + 1, dtype=np.int64)
        np.cumsum(sizes + lsyms.shape[0], out=word_offsets[1:])
        words = np.empty(int(word_offsets[-1]), dtype=np.int32)
        for k, r in enumerate(rights.tolist()):  # the words: left's symbols, then the right's
            at = int(word_offsets[k])
            words[at : at + lsyms.shape[0]] = lsyms
            words[at + lsyms.shape[0] : int(word_offsets[k + 1])] = flat[
                offsets[r] : offsets[r + 1]
            ]
        limits = np.full(rights.shape[0], np.iinfo(np.int32).max, dtype=np.int32)
        parts, part_offsets = encode.merge_words_below(
            words, word_offsets, limits, *self.model.table
        )
        two = (part_offsets[1:] - part_offsets[:-1]) == 2
        ok = np.zeros(rights.shape[0], dtype=bool)
        at = part_offsets[:-1][two]
        ok[two] = (parts[at] == left) & (parts[at + 1] == rights[two])
        return ok & (sizes > 0) & (lsyms.shape[0] > 0)

    def pair_row(self, left: int, rights: np.ndarray) -> np.ndarray:
        """bool per id of ``rights``: may it follow ``left`` inside one pre-token?

        :meth:`merge_compatible_row`, with its undecided model-token answers
        decided by :meth:`merge_compatible_by_encoding`; added tokens stay
        True (the covers' other checks handle them).
        """
        rights = np.asarray(rights, dtype=np.int64)
        raw = self.merge_compatible_row(left, rights)
        out = raw != 0
        if left >= self.n_model or not self._decidable[left]:
            return out
        todo = np.nonzero((raw < 0) & (rights < self.n_model))[0]
        todo = todo[self._decidable[rights[todo]]]
        if todo.size:
            out[todo] = self.merge_compatible_by_encoding(left, rights[todo])
        return out

    def merge_compatible_row(self, left: int, rights: np.ndarray) -> np.ndarray:
        """int8 answers of :meth:`merge_compatible` for one ``left`` against many model ids.

        1 valid, 0 invalid, -1 undecided (irregular token, or an added token).
        """
        from toknz_core import canon

        rights = np.asarray(rights, dtype=np.int64)
        out = np.full(rights.shape[0], -1, dtype=np.int8)
        if not (0 <= left < self.n_model):
            return out
        inside = rights < self.n_model
        if rights.shape[0] * 8 > self.n_model:
            # Many rights: every token's answer at about one pair lookup each.
            if self._crank_order is None:
                self._crank_order = np.argsort(self.crank, kind="stable").astype(np.int64)
                self._by_left = canon.pairs_by_left(self.pairs, self.n_model)
            full = canon.row_ok_all(
                np.int64(left),
                self._crank_order,
                self.left_child,
                self.right_child,
                self.crank,
                self.pairs,
                *self._by_left,
            )
            out[inside] = full[rights[inside]]
            return out
        out[inside] = canon.row_ok(
            np.int64(left),
            rights[inside],
            self.left_child,
            self.right_child,
            self.crank,
            self.pairs,
        )
        return out

    @property
    def boundaries(self) -> BoundaryOracle:
        """The pre-token boundary oracle of the tokenizer's pre-tokenizer (built on first use)."""
        if self._boundaries is None:
            self._boundaries = BoundaryOracle(self.pre_tokenizer)
        return self._boundaries

    def is_canonical(self, ids: Sequence[int]) -> bool:
        """Whether ``ids`` is what the tokenizer produces for its bytes (see the module doc)."""
        ids = [int(i) for i in ids]
        self.check_ids(ids)
        if not ids:
            return True
        data = b"".join(self.token_bytes[i] for i in ids)
        if not self.byte_level or any(i in self.added_ids or i >= self.n_model for i in ids):
            return self._reference(ids, data)
        text = _text_of(data)
        normalizer = self.tokenizer.normalizer
        if normalizer is not None and normalizer.normalize(text) != text:
            return False
        if any(c in text for c in self._plain_added):
            return self._reference(ids, data)
        pieces = pre_tokenize(self.tokenizer.pre_tokenizer, text)
        if "".join(pieces) != text:
            return self._reference(ids, data)
        return self._pieces_ok(ids, [_bytes_of(p) for p in pieces])

    def _pieces_ok(self, ids: list[int], pieces: list[bytes]) -> bool:
        from toknz_core import canon

        tb = self.token_bytes
        k = 0
        for piece in pieces:
            size = 0
            start = k
            while size < len(piece) and k < len(ids):
                size += len(tb[ids[k]])
                k += 1
            if size != len(piece):
                return False  # a token crosses a pre-token boundary
            mine = ids[start:k]
            if len(mine) == 1:
                t = mine[0]
                if self.whole_piece_rule and self._bytes_to_id.get(piece) is not None:
                    if self._bytes_to_id[piece] != t:
                        return False
                    continue
                if self.crank[t] != canon.IRREGULAR:
                    continue
                if self.model.encode_piece_bytes([piece]) != mine:
                    return False
                continue
            if self.whole_piece_rule and piece in self._bytes_to_id:
                return False
            answers = canon.pairs_ok(
                np.array(mine[:-1], dtype=np.int64),
                np.array(mine[1:], dtype=np.int64),
                self.left_child,
                self.right_child,
                self.crank,
                self.pairs,
            )
            if (answers == canon.INVALID).any():
                return False
            if (answers == canon.UNDECIDED).any() and self.model.encode_piece_bytes(
                [piece]
            ) != mine:
                return False
        return k == len(ids)

    def _reference(self, ids: list[int], data: bytes) -> bool:
        """``encode_ordinary(decode_bytes(ids)) == ids`` (``data``: the joined token bytes)."""
        if not self.byte_level:
            data = self.tokenizer.decode_bytes(ids)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return bool(self.tokenizer.encode_ordinary(text) == ids)

    def is_valid_pair(self, left: int, right: int) -> bool:
        """Whether the two-token sequence ``[left, right]`` is canonical.

        For a tokenizer that is not byte-level (SentencePiece-style, whose
        encoder adds a leading ``▁``) this answers whether the two tokens can
        stand side by side inside a word: the merge-history test when both
        trees can be walked, else re-encoding the pair behind a word start.
        """
        self.check_ids([left, right])
        if self.byte_level:
            return self.is_canonical([left, right])
        ok = self.merge_compatible(left, right) if max(left, right) < self.n_model else None
        if ok is not None:
            return ok
        return self._reference([left, right], self.token_bytes[left] + self.token_bytes[right])


def _utf8_length(lead: int) -> int:
    """Bytes of the UTF-8 character that starts with byte ``lead`` (0 for a byte that cannot lead)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def canonicality(tokenizer: Any) -> Canonicality:
    """The (cached) :class:`Canonicality` tables of ``tokenizer``.

    Raises :class:`~toknz.errors.UsageError` when the tokenizer's model is not BPE.
    """
    from toknz.pipeline.bpe import BPE

    if not isinstance(getattr(tokenizer, "model", None), BPE):
        raise UsageError(
            f"canonicality needs a toknz Tokenizer with a BPE model, got {type(tokenizer).__name__}"
        )
    tables = _TABLES.get(tokenizer)
    if tables is None:
        tables = Canonicality(tokenizer)
        _TABLES[tokenizer] = tables
    return tables


def is_canonical(ids: Sequence[int], tokenizer: Any) -> bool:
    """Whether token ids ``ids`` are exactly the tokenizer's encoding of their bytes.

    ``ids``: token ids of ``tokenizer`` (a :class:`toknz.Tokenizer` with a BPE
    model). The empty sequence is canonical. Raises
    :class:`~toknz.errors.InputError` for an id out of range and
    :class:`~toknz.errors.UsageError` for a tokenizer that is not BPE. See the
    module docstring for bytes that are not valid UTF-8.
    """
    return canonicality(tokenizer).is_canonical(ids)


def is_valid_pair(left: int, right: int, tokenizer: Any) -> bool:
    """Whether ``[left, right]`` is canonical: :meth:`Canonicality.is_valid_pair`."""
    return canonicality(tokenizer).is_valid_pair(left, right)
