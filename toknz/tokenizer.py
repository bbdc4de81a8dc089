"""`Tokenizer`: text -> normalize -> pre-tokenize -> BPE -> ids, and back.

A :class:`Tokenizer` is a pipeline of small stages (see docs/architecture.md): an
optional normalizer, a pre-tokenizer, a :class:`~toknz.pipeline.bpe.BPE` model, added
tokens, a decoder and a post-processor. It encodes exactly as ``tiktoken``
(for rank files) and ``tokenizers`` (for ``tokenizer.json``) do.

Special tokens follow tiktoken's rule: text that spells a special token is
refused with :class:`~toknz.errors.SpecialTokenError` unless it is allowed
(``allowed_special``) or explicitly treated as text (``disallowed_special=()``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, overload

import numpy as np

from toknz.derived import DerivedState
from toknz.errors import InputError, SpecialTokenError, UsageError
from toknz.kernel_loading import StartupPath
from toknz.pipeline.added_tokens import AddedToken, AddedTokenMatcher
from toknz.pipeline.bpe import BPE
from toknz.pipeline.decoders import Decoder, split_per_token
from toknz.pipeline.normalizers import Normalizer
from toknz.pipeline.postprocess import NoPostProcess, PostProcessor
from toknz.pipeline.pretokenize import PreTokenizer, pre_tokenize
from toknz.thread_pool import shared_pool
from toknz.validate import check_added_tokens

if TYPE_CHECKING:
    from toknz.dynamic import DynamicBatch, DynamicOptions

AllSpecial = Literal["all"]

#: Texts shorter than this, encoded before the compiled path is ready, take the `regex`
#: path with BPE in Python, so that a first short encode costs no kernel loading; the
#: first longer text (or batch) loads the compiled path for good, and so does a process
#: that keeps encoding short texts (in the background: :mod:`toknz.kernel_loading`).
PYTHON_PATH_CHARS = 2048
#: Texts of at most this many characters (so at most 65,536 UTF-8 bytes: one id per byte at
#: most) take the three-argument kernel once the compiled path is ready (:meth:`Tokenizer._short`).
SHORT_TEXT_CHARS = 1 << 14
#: ``allowed`` when no special token is allowed (one object, no set built per call).
_NO_SPECIAL: frozenset[str] = frozenset()


def replace_surrogates(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD and surrogate pairs joined, as tiktoken does."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8; lone surrogates become U+FFFD, as tiktoken does."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return replace_surrogates(text).encode("utf-8")


SpecialSet = AllSpecial | Collection[str]

#: Per-text ids of a batch: lists (:meth:`Tokenizer.encode_batch`) or arrays (``_to_numpy``).
_Ids = TypeVar("_Ids", list[int], np.ndarray)


class _DecodeTables(NamedTuple):
    """What decoding needs, built together from the vocabulary and the decoder."""

    piece_bytes: list[bytes]  # each id's bytes after the per-token decoder steps
    hole_ids: frozenset[int]  # ids no token has
    seq_decoders: list[Decoder]  # the decoder steps that run on the whole sequence


class Tokenizer(DerivedState):
    """A BPE tokenizer. Build one with :meth:`from_file` or :func:`toknz.load`.

    ``name`` is a label for messages; ``pattern`` the split regex when the
    tokenizer is a tiktoken-style one (one regex, byte-level BPE).

    The constructor's arguments are the tokenizer; everything computed from them
    (token lookups, matchers, the compiled encoders, decoding tables) is a cached
    property, built on first use and left out of pickles
    (:class:`toknz.derived.DerivedState`).
    """

    def __init__(
        self,
        model: BPE,
        pre_tokenizer: PreTokenizer,
        *,
        normalizer: Normalizer | None = None,
        added_tokens: Iterable[AddedToken] = (),
        decoder: Decoder | None = None,
        post_processor: PostProcessor | None = None,
        name: str = "tokenizer",
        pattern: str | None = None,
        source: str | None = None,
    ) -> None:
        self.model = model
        self.pre_tokenizer = pre_tokenizer
        self.normalizer = normalizer
        self.added_tokens: tuple[AddedToken, ...] = tuple(sorted(added_tokens, key=lambda t: t.id))
        self.decoder = decoder
        self.post_processor: PostProcessor = post_processor or NoPostProcess(None)
        self.name = name
        self.pattern = pattern
        self.source = source
        self._check()

    def _check(self) -> None:
        """Refuse a pipeline whose parts do not fit together."""
        if self.pre_tokenizer.byte_level != self.model.byte_level:
            raise UsageError(
                f"{self.name}: the pre-tokenizer is {'' if self.pre_tokenizer.byte_level else 'not '}byte-level "
                f"but the model is {'' if self.model.byte_level else 'not '}byte-level"
            )
        model_tokens = self.model.id_to_token
        check_added_tokens(self.added_tokens, model_tokens.__getitem__, len(model_tokens))

    # ------------------------------------------------------------- derived state

    @cached_property
    def _added_by_content(self) -> dict[str, AddedToken]:
        return {t.content: t for t in self.added_tokens}

    @cached_property
    def _added_by_id(self) -> dict[int, AddedToken]:
        return {t.id: t for t in self.added_tokens}

    @cached_property
    def special_tokens(self) -> dict[str, int]:
        """Content -> id of every added token marked special."""
        return {t.content: t.id for t in self.added_tokens if t.special}

    @cached_property
    def special_tokens_set(self) -> frozenset[str]:
        """The contents of the special tokens."""
        return frozenset(self.special_tokens)

    @cached_property
    def _matchers(self) -> dict[tuple[frozenset[str], bool], AddedTokenMatcher]:
        """Added-token matchers by (allowed specials, normalized), made on demand (:meth:`_matcher`)."""
        return {}

    @cached_property
    def _finders(self) -> dict[frozenset[str], AddedTokenMatcher]:
        """Special-token finders by the tokens sought, made on demand (:meth:`find_special`)."""
        return {}

    @cached_property
    def _special_finder(self) -> AddedTokenMatcher:
        return AddedTokenMatcher([t for t in self.added_tokens if t.special])

    @cached_property
    def _decode_tables(self) -> _DecodeTables:
        per_token, rest = split_per_token(self.decoder)
        n = self.n_vocab
        raw: list[bytes] = [b""] * n
        used = [False] * n
        for i, tok in enumerate(self.model.id_to_token):
            if tok is not None:
                raw[i] = tok.encode("utf-8")
                used[i] = True
        for t in self.added_tokens:
            raw[t.id] = t.content.encode("utf-8")
            used[t.id] = True
        for step in per_token:
            raw = step.decode_chain(raw)
        return _DecodeTables(raw, frozenset(i for i, u in enumerate(used) if not u), rest)

    @cached_property
    def _scanner_kind(self) -> int | None:
        """The compiled scanner for this pipeline, when it is byte-level BPE after one GPT-style split."""
        if not self.model.has_fast_path:
            return None
        from toknz.pipeline.fast_pretokenize import kind_of
        from toknz.pipeline.pretokenize import PATTERNS, ByteLevel, PreTokenizerSequence, Split

        pre = self.pre_tokenizer
        steps = pre.steps if isinstance(pre, PreTokenizerSequence) else (pre,)
        if (
            len(steps) == 2
            and isinstance(steps[0], Split)
            and isinstance(steps[1], ByteLevel)
            and not steps[1].use_regex
            and not steps[1].add_prefix_space
            and steps[0].is_regex
            and (steps[0].behavior, steps[0].invert) in (("Removed", True), ("Isolated", False))
        ):
            # The compiled patterns match every character, so keeping
            # the matches (Removed + invert) and Isolated agree.
            return kind_of(steps[0].pattern)
        if (
            len(steps) == 1
            and isinstance(steps[0], ByteLevel)
            and steps[0].use_regex
            and not steps[0].add_prefix_space
        ):
            return kind_of(PATTERNS["gpt2"])
        return None

    def _with_scanner(self, build: Callable[[int, np.ndarray], Any]) -> Any:
        """``build(kind, class_table)`` (a :class:`BPE` encoder factory), or None without a scanner."""
        kind = self._scanner_kind
        if kind is None:
            return None
        from toknz.pipeline.unicode_tables import load_table

        return build(kind, load_table())

    @cached_property
    def _text_encoder(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The compiled bytes -> ids function of :meth:`BPE.text_encoder`, or None without one."""
        return self._with_scanner(self.model.text_encoder)  # type: ignore[no-any-return]

    @cached_property
    def _short_encoder(self) -> Callable[[bytes, bool], list[int] | np.ndarray | None] | None:
        """:meth:`BPE.short_encoder` (split and encode the bytes of a normalized text with no
        added token in it), or None without a compiled split."""
        return self._with_scanner(self.model.short_encoder)  # type: ignore[no-any-return]

    @cached_property
    def _short_guard(self) -> Callable[[str], str | None] | None:
        """What a text needs before the short kernel, when no special token is allowed:
        None when nothing (no normalizer, no added token to match); else a function giving
        the normalized text, or None when an added token may occur in it (then the
        general steps split the text around it). Qwen's NFC and its non-special
        ``<think>``... are such steps."""
        raw = self._matcher(frozenset(), False)
        normalized = self._matcher(frozenset(), True)
        norm = self.normalizer
        if not raw and not normalized and norm is None:
            return None

        def guard(text: str) -> str | None:
            if raw and raw.may_occur(text):
                return None
            if norm is not None:
                text = norm.normalize(text)
            if normalized and normalized.may_occur(text):
                return None
            return text

        return guard

    @cached_property
    def _short_ready(self) -> Callable[[bytes, bool], list[int] | np.ndarray | None] | None:
        """:attr:`_short_encoder`, read once the compiled path has run; :meth:`_short` looks
        it up in the instance's ``__dict__``, so short texts take it only from then on."""
        return self._short_encoder

    @cached_property
    def _batch_encoder(
        self,
    ) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
        """The compiled many-documents function of :meth:`BPE.batch_encoder`, or None without one."""
        return self._with_scanner(self.model.batch_encoder)  # type: ignore[no-any-return]

    @cached_property
    def _marked_batch_encoder(
        self,
    ) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]] | None:
        """:attr:`_batch_encoder` that also flags where each pre-token's ids start."""
        return self._with_scanner(  # type: ignore[no-any-return]
            lambda kind, table: self.model.batch_encoder(kind, table, marked=True)
        )

    @cached_property
    def _startup(self) -> StartupPath:
        """Time on the Python start-up path, and the background load it triggers."""
        return StartupPath(self._load_kernels)

    def _load_kernels(self) -> None:
        """Build and run once everything the compiled path needs (the background load)."""
        if self._scanner_kind is not None:
            fn = self._text_encoder
            if fn is not None:
                fn(np.frombuffer(b"load", dtype=np.uint8))  # loads the kernel's machine code
                return
        self.model.load_kernels()

    @property
    def encode_path(self) -> str:
        """Where a short text goes now: ``"compiled"`` (the kernels) or ``"python"`` (start-up).

        Texts of :data:`PYTHON_PATH_CHARS` characters or more always take the kernels.
        """
        return "python" if self._python_path(("",)) else "compiled"

    def __repr__(self) -> str:
        return f"<toknz.Tokenizer {self.name!r} n_vocab={self.n_vocab}>"

    # ------------------------------------------------------------- loading

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, pattern: str | None = None, **kwargs: Any
    ) -> Tokenizer:
        """Load a ``tokenizer.json``, a ``.tiktoken`` rank file or GPT-2 ``encoder.json`` (+ ``vocab.bpe``).

        The format is detected from the content. A rank file carries no split
        pattern: well-known files (recognized by sha256) get theirs and their
        special tokens; for others pass ``pattern=`` (a name such as
        ``"cl100k"`` or a regex) and optionally ``special_tokens={...}``.
        Raises :class:`~toknz.errors.FormatError` naming the file and place.
        """
        from toknz.formats import load_tokenizer

        return load_tokenizer(path, pattern=pattern, **kwargs)

    def save(self, path: str | os.PathLike[str], *, format: str | None = None) -> None:
        """Write ``tokenizer.json`` (default) or a ``.tiktoken`` rank file, atomically.

        The format follows ``format`` (``"json"`` or ``"tiktoken"``) or the
        file suffix. A rank file needs a byte-level model whose ids are ranks.
        """
        from toknz.formats import save_tokenizer

        save_tokenizer(self, path, format=format)

    # ------------------------------------------------------------- vocabulary

    @cached_property
    def n_vocab(self) -> int:
        """One more than the largest id (model tokens and added tokens)."""
        top = max((t.id for t in self.added_tokens), default=-1)
        return max(self.model.n_vocab, top + 1)

    def token_to_id(self, token: str | bytes) -> int | None:
        """Id of an added token's content, a model token as spelled in ``tokenizer.json``, or token bytes."""
        if isinstance(token, bytes):
            from toknz.pipeline.byte_alphabet import bytes_to_chars

            if self.model.byte_level:
                return self.model.vocab.get(bytes_to_chars(token))
            try:
                return self.model.vocab.get(token.decode("utf-8"))
            except UnicodeDecodeError:
                return None
        added = self._added_by_content.get(token)
        if added is not None:
            return added.id
        return self.model.vocab.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        """The token string of an id as ``tokenizer.json`` spells it, or None for an unused id."""
        added = self._added_by_id.get(token_id)
        if added is not None:
            return added.content
        if 0 <= token_id < self.model.n_vocab:
            return self.model.id_to_token[token_id]
        return None

    # ------------------------------------------------------------- encoding

    def _resolve_special(
        self, allowed_special: SpecialSet, disallowed_special: SpecialSet
    ) -> tuple[frozenset[str], frozenset[str]]:
        if allowed_special == _NO_SPECIAL and disallowed_special == "all":  # the defaults
            return _NO_SPECIAL, self.special_tokens_set
        if allowed_special == "all":
            allowed = self.special_tokens_set
        else:
            allowed = frozenset(allowed_special)
            unknown = allowed - self.special_tokens_set
            if unknown:
                raise UsageError(
                    f"{self.name}: unknown special tokens in allowed_special: {sorted(unknown)}"
                )
        if disallowed_special == "all":
            disallowed = self.special_tokens_set - allowed
        else:
            disallowed = frozenset(disallowed_special)
            unknown = disallowed - self.special_tokens_set
            if unknown:
                raise UsageError(
                    f"{self.name}: unknown special tokens in disallowed_special: {sorted(unknown)}"
                )
        return allowed, disallowed

    def _matcher(self, allowed: frozenset[str], normalized: bool) -> AddedTokenMatcher:
        key = (allowed, normalized)
        m = self._matchers.get(key)
        if m is None:
            toks = [
                t
                for t in self.added_tokens
                if t.normalized == normalized and (not t.special or t.content in allowed)
            ]
            m = AddedTokenMatcher(toks)
            self._matchers[key] = m
        return m

    def _check_disallowed(self, text: str, disallowed: frozenset[str]) -> None:
        if not disallowed or self._special_finder.find_first(text) is None:
            return
        hit = self.find_special(text, disallowed)
        if hit is not None:
            offset, content = hit
            raise SpecialTokenError(
                f"{self.name}: the text contains the special token {content!r} at character offset {offset}. "
                f"Pass allowed_special={{{content!r}}} (or 'all') to encode it as a special token, or "
                "disallowed_special=() to encode it as plain text."
            )

    def find_special(self, text: str, among: SpecialSet = "all") -> tuple[int, str] | None:
        """The character offset and content of the first special token spelled in ``text``, or None.

        ``among`` limits the search to some special tokens (default: all).
        """
        wanted = self.special_tokens_set if among == "all" else frozenset(among)
        if not wanted:
            return None
        matcher = self._finders.get(wanted)
        if matcher is None:
            matcher = AddedTokenMatcher([t for t in self.added_tokens if t.content in wanted])
            self._finders[wanted] = matcher
        return matcher.find_first(text)

    def _encode_parts(self, text: str, allowed: frozenset[str]) -> list[np.ndarray | list[int]]:
        """Ids of ``text`` as consecutive parts: int32 arrays from the compiled path, lists otherwise.

        Lone surrogates (``"a\\ud800b"``, which no UTF-8 text holds) become U+FFFD first, on
        every path, as tiktoken does; a surrogate pair becomes the character it spells.
        """
        try:
            return self._encode_parts_of(text, allowed)
        except UnicodeEncodeError:
            return self._encode_parts_of(replace_surrogates(text), allowed)

    def _encode_parts_of(self, text: str, allowed: frozenset[str]) -> list[np.ndarray | list[int]]:
        raw_matcher = self._matcher(allowed, False)
        norm_matcher = self._matcher(allowed, True)
        started: float | None = None
        if len(text) < PYTHON_PATH_CHARS and self._python_path((text,)):
            # A short text before the kernels are ready: the regex path, merging in Python.
            compiled = None
            started = time.perf_counter()
        else:
            compiled = self._compiled_encoder()
        if compiled is not None and "_short_ready" not in self.__dict__:
            # From now on short texts take the three-argument kernel (:meth:`_short`).
            _ = self._short_ready
        if compiled is not None and not raw_matcher and not norm_matcher:
            if self.normalizer is not None:
                text = self.normalizer.normalize(text)
            return [self._encode_compiled(text)] if text else []
        parts: list[np.ndarray | list[int]] = []
        first = True
        for segment, token_id in (
            raw_matcher.split(text) if raw_matcher else ([(text, None)] if text else [])
        ):
            if token_id is not None:
                parts.append([token_id])
                first = False
                continue
            normalized = self.normalizer.normalize(segment) if self.normalizer else segment
            pieces = norm_matcher.split(normalized) if norm_matcher else [(normalized, None)]
            for piece, piece_id in pieces:
                if piece_id is not None:
                    parts.append([piece_id])
                elif compiled is not None:
                    parts.append(self._encode_compiled(piece))
                else:
                    parts.append(
                        self.model.encode_pieces(pre_tokenize(self.pre_tokenizer, piece, first))
                    )
                first = False
        if started is not None:
            self._startup.spent(time.perf_counter() - started)
        return parts

    def _short(self, text: str, allowed: frozenset[str], as_list: bool) -> Any:
        """The ids of a ``text`` of at most :data:`SHORT_TEXT_CHARS` characters through the
        three-argument kernel (:meth:`BPE.short_encoder`), or None to take
        the general steps (not ready yet, special tokens allowed, long or unusual text)."""
        short = self.__dict__.get("_short_ready")
        if short is None or allowed or len(text) > SHORT_TEXT_CHARS:
            return None
        guard = self._short_guard
        if guard is not None:
            ready = guard(text)
            if ready is None:
                return None
            text = ready
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return short(raw, as_list)

    def _encode_text(self, text: str, allowed: frozenset[str]) -> list[int]:
        short = self._short(text, allowed, True)
        if short is not None:
            return short  # type: ignore[no-any-return]
        parts = self._encode_parts(text, allowed)
        if len(parts) == 1:
            only = parts[0]
            return only.tolist() if isinstance(only, np.ndarray) else only
        ids: list[int] = []
        for part in parts:
            ids.extend(part.tolist() if isinstance(part, np.ndarray) else part)
        return ids

    def _encode_array(self, text: str, allowed: frozenset[str]) -> np.ndarray:
        short = self._short(text, allowed, False)
        if short is not None:
            return short  # type: ignore[no-any-return]
        parts = self._encode_parts(text, allowed)
        if len(parts) == 1 and isinstance(parts[0], np.ndarray):
            return parts[0].astype(np.uint32)
        if not parts:
            return np.empty(0, dtype=np.uint32)
        return np.concatenate([np.asarray(p, dtype=np.uint32) for p in parts])

    def _compiled_kind(self) -> int | None:
        """The compiled scanner for this pipeline (:attr:`_scanner_kind`), or None."""
        return self._scanner_kind

    def _compiled_encoder(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The compiled bytes -> ids function of :meth:`BPE.text_encoder`, or None without one."""
        return self._text_encoder

    def _encode_compiled(self, text: str) -> np.ndarray:
        fn = self._compiled_encoder()
        assert fn is not None
        return fn(np.frombuffer(_utf8(text), dtype=np.uint8))

    def _python_path(self, texts: Sequence[str]) -> bool:
        """True for a few short texts while the compiled path is not ready: the Python path is cheaper.

        Ready: loaded by an earlier long text or batch, or by the background load that
        time spent on the Python path starts (:class:`~toknz.kernel_loading.StartupPath`).
        """
        if "_text_encoder" in self.__dict__ or self._startup.ready:
            return False
        total = 0
        for t in texts:
            total += len(t) if isinstance(t, str) else 0
            if total >= PYTHON_PATH_CHARS:
                return False
        return True

    def _compiled_batch(
        self,
        texts: Sequence[str],
        allowed: frozenset[str],
        disallowed: frozenset[str],
        threads: int,
        as_lists: bool,
        marked: bool = False,
    ) -> tuple[np.ndarray, ...] | list[list[int]] | None:
        """The ids of ``texts`` in a few kernel calls, or None without that path:
        ``(uint32 ids, int64 offsets)``, or one list per text with ``as_lists``; with
        ``marked``, ``(ids, offsets, starts)``, ``starts`` (uint8 per id) 1 at the first id
        of every pre-token (:func:`toknz_core.docencode.encode_documents_marked`).

        Not taken (None) when an added token may be matched: one matched after
        normalization, or one found in a text. The texts are cut into contiguous
        groups of about equal length, one compiled call per group, spread over
        ``threads`` threads. Each group checks, normalizes
        and converts its own texts (and, with ``as_lists``, makes its lists) on its
        thread: those steps hold the GIL, but they overlap the other threads' kernel
        calls, which release it, so threads share nothing but the read-only tables.
        """
        if self._matcher(allowed, True):
            return None
        if self._python_path(texts):
            return None
        fn = self._marked_batch_encoder if marked else self._batch_encoder
        if fn is None:
            return None
        for text in texts:
            if not isinstance(text, str):
                raise UsageError(f"batch encoding expects str items, got {type(text).__name__}")
        raw = self._matcher(allowed, False)  # as Qwen's non-special <think>: matched in raw text
        if raw and any(raw.find_first(text) is not None for text in texts):
            return None
        chars = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=chars[1:])
        n_groups = max(1, min(len(texts), threads * 4 if threads > 1 else 1))
        cuts = np.searchsorted(chars, np.linspace(0, chars[-1], n_groups + 1), side="left")
        cuts[0], cuts[-1] = 0, len(texts)
        bounds = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
        norm = self.normalizer
        check = self._check_disallowed

        def group(bound: tuple[int, int]) -> tuple[np.ndarray, ...] | list[list[int]]:
            a, b = bound
            datas = []
            for text in texts[a:b]:
                check(text, disallowed)
                datas.append(_utf8(norm.normalize(text) if norm is not None else text))
            sizes = np.zeros(len(datas) + 1, dtype=np.int64)
            np.cumsum(np.fromiter(map(len, datas), dtype=np.int64, count=len(datas)), out=sizes[1:])
            ids, offsets, *starts = fn(np.frombuffer(b"".join(datas), dtype=np.uint8), sizes)
            ids = ids.view(np.uint32)  # ids are never negative: the same numbers, no copy
            if not as_lists:
                return (ids, offsets, *starts)
            ends = offsets.tolist()
            return [ids[ends[i] : ends[i + 1]].tolist() for i in range(len(datas))]

        results: list[Any]
        if threads <= 1 or len(bounds) <= 1:
            results = [group(bd) for bd in bounds]
        else:
            results = list(shared_pool(threads).map(group, bounds))
        if as_lists:
            return [ids for lists in results for ids in lists]
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        base = 0
        for (a, b), r in zip(bounds, results, strict=True):
            offsets[a + 1 : b + 1] = r[1][1:] + base
            base += int(r[1][-1])
        # One copy of each kind: the kernel's buffers have room for one id per byte.
        kinds = [0, 2] if marked else [0]
        if len(results) == 1:
            flat = [results[0][j].copy() for j in kinds]
        elif results:
            flat = [np.concatenate([r[j] for r in results]) for j in kinds]
        else:
            flat = [np.empty(0, np.uint32), np.empty(0, np.uint8)][: len(kinds)]
        return (flat[0], offsets, *flat[1:])

    def _encode_many(
        self,
        texts: Sequence[str],
        num_threads: int | None,
        allowed_special: SpecialSet,
        disallowed_special: SpecialSet,
        add_special_tokens: bool,
        what: str,
        encode_one: Callable[[str, frozenset[str]], _Ids],
        post_process: Callable[[_Ids], _Ids],
        as_lists: bool,
    ) -> tuple[tuple[np.ndarray, np.ndarray] | None, list[_Ids]]:
        """The one batch path of :meth:`encode_batch` and :meth:`encode_batch_to_numpy`.

        Returns ``((uint32 ids, offsets), [])`` when the whole batch went through the
        compiled batch kernel (``(None, per-text lists)`` with ``as_lists``), else
        ``(None, per-text ids)`` from ``encode_one(text,
        allowed)`` (then ``post_process`` with ``add_special_tokens``), in order. Whether
        to load the kernels is decided once, here, by :meth:`_python_path`: a
        few short texts before the kernels are ready take the Python path on this
        thread; any other batch builds the compiled encoder (or the Python merge table)
        once, then spreads the texts over ``num_threads`` threads (default: all cores).
        """
        threads = num_threads or os.cpu_count() or 1
        allowed, disallowed = self._resolve_special(allowed_special, disallowed_special)
        if not add_special_tokens:
            fast = self._compiled_batch(texts, allowed, disallowed, threads, as_lists)
            if isinstance(fast, list):
                return None, fast  # type: ignore[return-value]
            if fast is not None:
                return (fast[0], fast[1]), []

        def one(text: str) -> _Ids:
            if not isinstance(text, str):
                raise UsageError(f"{what} expects str items, got {type(text).__name__}")
            self._check_disallowed(text, disallowed)
            ids = encode_one(text, allowed)
            return post_process(ids) if add_special_tokens else ids

        if self._python_path(texts):
            return None, [one(t) for t in texts]
        # Build the tables once, before the threads race to do it.
        if self._compiled_encoder() is None:
            _ = self.model.table
        if threads <= 1 or len(texts) <= 1:
            return None, [one(t) for t in texts]
        # Threads help because the regex engine and the Numba kernel release the GIL.
        chunk = max(1, len(texts) // (threads * 4))
        return None, list(shared_pool(threads).map(one, texts, chunksize=chunk))

    def encode(
        self,
        text: str,
        *,
        allowed_special: SpecialSet = _NO_SPECIAL,
        disallowed_special: SpecialSet = "all",
        add_special_tokens: bool = False,
    ) -> list[int]:
        """Encode ``text`` (a ``str``) to token ids.

        Special tokens (added tokens marked special) in the text raise
        :class:`~toknz.errors.SpecialTokenError` unless listed in
        ``allowed_special`` (then they encode as their id) or left out of
        ``disallowed_special`` (then they encode as ordinary text).
        ``add_special_tokens=True`` applies the file's post-processor (BOS,
        EOS...) as ``tokenizers`` does by default.
        """
        if (
            allowed_special is _NO_SPECIAL
            and disallowed_special == "all"
            and not add_special_tokens
            and type(text) is str
            and not self._special_finder.may_occur(text)
        ):  # the defaults, and no special token can be in the text: straight to the kernel
            short = self._short(text, _NO_SPECIAL, True)
            if short is not None:
                return short  # type: ignore[no-any-return]
        if not isinstance(text, str):
            raise UsageError(f"encode expects str, got {type(text).__name__}; decode bytes first")
        allowed, disallowed = self._resolve_special(allowed_special, disallowed_special)
        self._check_disallowed(text, disallowed)
        ids = self._encode_text(text, allowed)
        if add_special_tokens:
            ids = self.post_processor.process(ids)
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` treating special-token strings as plain text."""
        if not isinstance(text, str):
            raise UsageError(f"encode_ordinary expects str, got {type(text).__name__}")
        return self._encode_text(text, _NO_SPECIAL)

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: SpecialSet = _NO_SPECIAL,
        disallowed_special: SpecialSet = "all",
        add_special_tokens: bool = False,
    ) -> np.ndarray:
        """Like :meth:`encode`, returning a ``uint32`` array (no Python list in between)."""
        if not isinstance(text, str):
            raise UsageError(f"encode_to_numpy expects str, got {type(text).__name__}")
        allowed, disallowed = self._resolve_special(allowed_special, disallowed_special)
        self._check_disallowed(text, disallowed)
        ids = self._encode_array(text, allowed)
        if add_special_tokens:
            return np.asarray(self.post_processor.process(ids.tolist()), dtype=np.uint32)
        return ids

    def encode_ordinary_to_numpy(self, text: str) -> np.ndarray:
        """:meth:`encode_ordinary` as a ``uint32`` array."""
        if not isinstance(text, str):
            raise UsageError(f"encode_ordinary_to_numpy expects str, got {type(text).__name__}")
        return self._encode_array(text, frozenset())

    @overload
    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        num_threads: int | None = ...,
        allowed_special: SpecialSet = ...,
        disallowed_special: SpecialSet = ...,
        add_special_tokens: bool = ...,
        dynamic: None = ...,
    ) -> list[list[int]]: ...

    @overload
    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        num_threads: int | None = ...,
        allowed_special: SpecialSet = ...,
        disallowed_special: SpecialSet = ...,
        add_special_tokens: bool = ...,
        dynamic: DynamicOptions | dict[str, Any],
    ) -> DynamicBatch: ...

    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        num_threads: int | None = None,
        allowed_special: SpecialSet = _NO_SPECIAL,
        disallowed_special: SpecialSet = "all",
        add_special_tokens: bool = False,
        dynamic: DynamicOptions | dict[str, Any] | None = None,
    ) -> list[list[int]] | DynamicBatch:
        """Encode many texts on ``num_threads`` threads (default: all cores), in order.

        With ``dynamic`` (:class:`toknz.dynamic.DynamicOptions` or a dict of
        them) the batch is then merged by :func:`toknz.dynamic.merge_batch` and
        a :class:`~toknz.dynamic.DynamicBatch` is returned.
        """
        if dynamic is not None:
            from toknz.dynamic import FlatIds, encode_dynamic

            if add_special_tokens:
                raise UsageError("dynamic merging needs add_special_tokens=False")
            allowed, disallowed = self._resolve_special(allowed_special, disallowed_special)
            threads = num_threads or os.cpu_count() or 1
            marked = self._compiled_batch(texts, allowed, disallowed, threads, False, marked=True)
            if isinstance(marked, tuple):  # the encoder reports where each pre-token's ids start
                ids, offsets, starts = marked
                return encode_dynamic(self, texts, FlatIds(ids, offsets), dynamic, starts=starts)
            base = self.encode_batch_to_numpy(
                texts,
                num_threads=num_threads,
                allowed_special=allowed_special,
                disallowed_special=disallowed_special,
            )
            return encode_dynamic(self, texts, FlatIds(*base), dynamic)
        fast, per_text = self._encode_many(
            texts,
            num_threads,
            allowed_special,
            disallowed_special,
            add_special_tokens,
            "encode_batch",
            self._encode_text,
            self.post_processor.process,
            as_lists=True,
        )
        if fast is not None:
            ids, offsets = fast
            bounds = offsets.tolist()
            return [ids[bounds[i] : bounds[i + 1]].tolist() for i in range(len(texts))]
        return per_text

    def encode_batch_to_numpy(
        self,
        texts: Sequence[str],
        *,
        num_threads: int | None = None,
        allowed_special: SpecialSet = _NO_SPECIAL,
        disallowed_special: SpecialSet = "all",
        add_special_tokens: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode many texts into one flat ``uint32`` array plus ``int64`` offsets (``len(texts) + 1``).

        Text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``. Keyword arguments are
        those of :meth:`encode`; texts are spread over ``num_threads`` threads
        (the compiled kernels release the GIL).
        """
        fast, parts = self._encode_many(
            texts,
            num_threads,
            allowed_special,
            disallowed_special,
            add_special_tokens,
            "encode_batch_to_numpy",
            self._encode_array,
            lambda ids: np.asarray(self.post_processor.process(ids.tolist()), dtype=np.uint32),
            as_lists=False,
        )
        if fast is not None:
            return fast
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([p.shape[0] for p in parts], out=offsets[1:])
        ids = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint32)
        return ids.astype(np.uint32, copy=False), offsets

    def encode_ordinary_batch(
        self, texts: Sequence[str], *, num_threads: int | None = None
    ) -> list[list[int]]:
        """:meth:`encode_ordinary` over many texts."""
        return self.encode_batch(texts, num_threads=num_threads, disallowed_special=())

    # ------------------------------------------------------------- decoding

    def _per_token_bytes(self) -> list[bytes]:
        return self._decode_tables.piece_bytes

    def _check_ids(self, ids: Sequence[int], *, holes: bool = False) -> None:
        n = self.n_vocab
        for pos, i in enumerate(ids):
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
                raise InputError(
                    f"{self.name}: token id {i!r} at position {pos} is a {type(i).__name__}, "
                    "expected an integer"
                )
            if not (0 <= i < n):
                raise InputError(
                    f"{self.name}: token id {i} at position {pos} is outside the vocabulary (0..{n - 1})"
                )
            if holes and i in self._decode_tables.hole_ids:
                raise InputError(
                    f"{self.name}: token id {i} at position {pos} is unused (a hole in the "
                    "vocabulary: no token has it), so it has no text"
                )

    def decode_tokens_bytes(self, ids: Sequence[int]) -> list[bytes]:
        """The bytes of each token, after the per-token part of the decoder.

        An unused id (a hole between the ids, as cl100k_base's 100256) gives
        ``b""`` here (see :meth:`decode_bytes`).
        Booleans and ids out of range raise :class:`~toknz.errors.InputError`.
        """
        table = self._per_token_bytes()
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        elif not isinstance(ids, (list, tuple, range)):
            ids = list(ids)
        try:
            out = [table[i] for i in ids]
        except (IndexError, TypeError):
            return self._bad_ids(ids)
        if out and (min(ids) < 0 or bool in set(map(type, ids))):
            return self._bad_ids(ids)
        return out

    def _bad_ids(self, ids: Sequence[int], *, holes: bool = False) -> list[bytes]:
        self._check_ids(ids, holes=holes)
        raise AssertionError("unreachable")

    def decode_bytes(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> bytes:
        """Decode ids to the exact bytes they stand for.

        An id outside the vocabulary or a boolean raises
        :class:`~toknz.errors.InputError`. An unused id (a hole, as cl100k_base's
        100256) follows the reference of the file's format: a tiktoken rank file's
        tokenizer raises, as tiktoken does; a ``tokenizer.json`` one decodes it to
        nothing, as ``tokenizers`` does.
        """
        ids = list(ids)
        if skip_special_tokens:
            specials = {t.id for t in self.added_tokens if t.special}
            ids = [i for i in ids if i not in specials]
        pieces = self.decode_tokens_bytes(ids)
        holes = self._decode_tables.hole_ids
        if holes and self.model.merge_rule == "ranks" and not holes.isdisjoint(ids):
            self._bad_ids(ids, holes=True)  # tiktoken refuses them; tokenizers decodes them to ''
        for step in self._decode_tables.seq_decoders:
            pieces = step.decode_chain(pieces)
        return b"".join(pieces)

    def decode(
        self, ids: Sequence[int], *, errors: str = "replace", skip_special_tokens: bool = False
    ) -> str:
        """Decode ids to text; invalid UTF-8 is handled per ``errors`` (as ``bytes.decode``)."""
        return self.decode_bytes(ids, skip_special_tokens=skip_special_tokens).decode(
            "utf-8", errors=errors
        )

    def decode_single_token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token (after the per-token part of the decoder); ``b""`` for a hole."""
        return self.decode_tokens_bytes([token_id])[0]

    def decode_batch(self, batch: Sequence[Sequence[int]], *, errors: str = "replace") -> list[str]:
        return [self.decode(ids, errors=errors) for ids in batch]
