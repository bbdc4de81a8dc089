"""Fill-in-the-middle (FIM) at byte level, exactly, with two token-level baselines.

FIM-trained code models read a prompt in PSM order,
``<fim_prefix> prefix <fim_suffix> suffix <fim_middle>``, and write the
middle until an end token. The sentinel spellings vary by family
(:func:`fim_tokens` finds them); prefix, suffix and middle are tokenized each
on its own, as in FIM training.

Users cut the text at arbitrary byte positions (a cursor inside an
identifier), so the prefix may end inside a token and the middle may start
inside one. Three ways to fill the middle, with one interface:

- :func:`fim` (exact): the prefix is cut at its last pre-token boundary
  (:func:`split_prefix`); the bytes after that boundary, the *tail* (often a
  partial word), are moved to the start of the middle. The prompt holds the
  rest of the prefix (the *head*); a :class:`~toknz.bytelevel.ByteLM` then
  gives the middle byte by byte after the byte prompt ``tail``, summing over
  every tokenization of the middle (the tail may end inside a token). Only
  the bytes after the tail are returned.
- :func:`fim_token_prompting` (baseline): the whole prefix is encoded into
  the prompt and the middle is generated token by token.
- :func:`fim_token_healing` (baseline): the prefix's last token is taken out
  of the prompt and the first generated token must start with its bytes
  (token healing as in guidance and ``transformers``); generation then goes
  on token by token. The bytes after the removed ones are returned.

What is exact, and what is a modelling choice. Given the head, the suffix
and the sentinels, :func:`fim` samples from (and :func:`fim_next_byte_logprobs`
returns) the model's own distribution of the middle's next byte conditioned
on the middle starting with ``tail`` (plus the bytes generated so far): the
sum over all token sequences of the middle whose bytes start that way. It is
exact under the canonical-tokenization assumption of
:class:`~toknz.bytelevel.ByteLM` (the model gives zero probability to token
sequences the tokenizer would not produce for their bytes; ``mode="all"``
drops the assumption at a cost that grows with the tail). Moving the tail
into the middle is the modelling choice: the model is asked for a middle
that begins with the tail after a prefix that ends at a word boundary, not
for a middle after a prefix that ends inside a word, which it rarely saw as
a token boundary. ``backoff`` picks how far back the cut goes.

The suffix may start inside a token too (the middle ends at the cursor's
other side). ``suffix_backoff`` (default ``"none"``) applies the same move on
that side: the suffix's first pre-token, its *head* (:func:`split_suffix`),
leaves the prompt and becomes the required end of the middle. The model then
writes a middle that ends with the head followed by an end token, and the
probability of ending there is exact, summed over every tokenization
(:class:`JoinedMiddle`). Token-level methods cannot do this: a middle that
ends inside a token is a token sequence they can neither score nor stop at.

The middle ends at the first end token (:attr:`FimTokens.end`) or FIM
sentinel token; other special tokens never occur in it (their probability is
dropped), under all three methods alike. Units: prefix, suffix, middle and
``max_bytes`` are bytes; prompts are token ids of ``tokenizer`` (a
:class:`toknz.Tokenizer` with a BPE model).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toknz.bytelevel.bytelm import ByteLM
from toknz.bytelevel.canonical import Canonicality, canonicality
from toknz.bytelevel.lm import TokenLM, check_logprobs
from toknz.bytelevel.sampling import EOT, as_bytes, check_sampling, logsumexp, pick, sample_bytes
from toknz.errors import FormatError, InputError, UsageError
from toknz.pipeline.pretokenize import NoSplit, pre_tokenize

__all__ = [
    "END_SPELLINGS",
    "FIM_SPELLINGS",
    "FimModel",
    "FimTokens",
    "JoinedMiddle",
    "fim",
    "fim_context",
    "fim_next_byte_logprobs",
    "fim_source",
    "fim_token_healing",
    "fim_token_prompting",
    "fim_tokens",
    "split_prefix",
    "split_suffix",
]

#: Sentinel spellings, one family per tuple: (prefix, suffix, middle), PSM order.
FIM_SPELLINGS: tuple[tuple[str, str, str], ...] = (
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder, CodeGemma
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder
    ("<fim-prefix>", "<fim-suffix>", "<fim-middle>"),  # SantaCoder
    ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),  # DeepSeek-Coder
    ("<PRE>", "<SUF>", "<MID>"),  # Code Llama
    ("▁<PRE>", "▁<SUF>", "▁<MID>"),
)

#: Tokens that end a middle, when the tokenizer has them.
END_SPELLINGS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|fim_pad|>",
    "<|file_sep|>",
    "<file_sep>",
    "<fim_pad>",
    "<fim-pad>",
    "<|file_separator|>",
    "<eos>",
    "</s>",
    "<EOT>",
    "▁<EOT>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
)


@dataclass(frozen=True)
class FimTokens:
    """The ids of a model's FIM sentinels: ``prefix``, ``suffix``, ``middle``, and ``end``.

    ``end``: the tokens that end the middle (any one of them). Build it by
    hand for a tokenizer whose sentinels :func:`fim_tokens` does not know.
    """

    prefix: int
    suffix: int
    middle: int
    end: tuple[int, ...] = ()

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """The tokens that end a middle: ``end`` and the three sentinels."""
        return tuple(dict.fromkeys((*self.end, self.prefix, self.suffix, self.middle)))


def fim_tokens(tokenizer: Any) -> FimTokens:
    """The FIM sentinels of ``tokenizer``, found among its added tokens by their usual spellings.

    The first family of :data:`FIM_SPELLINGS` whose three tokens are all
    present wins; ``end`` holds every token of :data:`END_SPELLINGS` present
    (possibly none: then only a sentinel or ``max_bytes`` ends the middle).
    Raises :class:`~toknz.errors.UsageError` when no family is complete.
    """
    added = {t.content: t.id for t in getattr(tokenizer, "added_tokens", ())}
    for family in FIM_SPELLINGS:
        if all(s in added for s in family):
            pre, suf, mid = (added[s] for s in family)
            end = tuple(dict.fromkeys(added[s] for s in END_SPELLINGS if s in added))
            return FimTokens(pre, suf, mid, end)
    name = getattr(tokenizer, "name", type(tokenizer).__name__)
    looked = ", ".join("/".join(f) for f in FIM_SPELLINGS)
    raise UsageError(
        f"tokenizer {name!r} has no FIM tokens (looked for {looked} among its added tokens); "
        "pass tokens=FimTokens(prefix=..., suffix=..., middle=..., end=(...)) with explicit ids"
    )


def _resolve_tokens(tokenizer: Any, tokens: FimTokens | None, canon: Canonicality) -> FimTokens:
    if tokens is None:
        return fim_tokens(tokenizer)
    if not isinstance(tokens, FimTokens):
        raise UsageError(f"tokens must be a FimTokens, got {type(tokens).__name__}")
    n = canon.n_vocab
    for i in (tokens.prefix, tokens.suffix, tokens.middle, *tokens.end):
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= int(i) < n:
            raise UsageError(f"FIM token id {i!r} is outside the vocabulary (0..{n - 1})")
    return tokens


# --------------------------------------------------------------------- encoding


def _encode_bytes(tokenizer: Any, data: bytes, what: str = "text") -> list[int]:
    """Token ids of ``data`` (bytes), special-token spellings treated as text.

    Valid UTF-8 goes through ``tokenizer.encode_ordinary``. Invalid UTF-8 (a
    cut inside a character) is encoded as :mod:`toknz.bytelevel.canonical`
    defines it for byte-level tokenizers (each stray byte its own character);
    for other tokenizers it raises :class:`~toknz.errors.InputError` naming
    the byte offset.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        model = tokenizer.model
        if not model.byte_level or tokenizer.normalizer is not None:
            raise InputError(
                f"{what} is not valid UTF-8 at byte offset {exc.start}; "
                f"{tokenizer.name} is not a byte-level tokenizer: cut the text between characters"
            ) from None
        raw = data.decode("utf-8", "surrogateescape")
        pieces = [
            p.encode("utf-8", "surrogateescape") for p in pre_tokenize(tokenizer.pre_tokenizer, raw)
        ]
        try:
            return [int(i) for i in model.encode_piece_bytes(pieces)]
        except FormatError as err:
            raise InputError(
                f"{what} is not valid UTF-8 at byte offset {exc.start}: {err}"
            ) from None
    return [int(i) for i in tokenizer.encode_ordinary(text)]


def _last_token_cut(tokenizer: Any, canon: Canonicality, prefix: bytes) -> int:
    ids = _encode_bytes(tokenizer, prefix, "prefix_bytes")
    if not ids:
        return len(prefix)
    head = b"".join(canon.token_bytes[i] for i in ids[:-1])
    if prefix.startswith(head):
        return len(head)
    head = tokenizer.decode_bytes(ids[:-1])  # sequence decoders (a SentencePiece word start)
    return len(head) if prefix.startswith(head) else 0


def _pretoken_bytes(tokenizer: Any, data: bytes, last: bool) -> int | None:
    """Bytes in the last (``last``) or first pre-token of ``data``; None where pre-tokens give no offsets."""
    pre = canonicality(tokenizer).pre_tokenizer  # the steps the normalizer leaves working
    if isinstance(pre, NoSplit):
        return None
    text = data.decode("utf-8", "surrogateescape")
    pieces = pre_tokenize(pre, text)
    if not pieces or "".join(pieces) != text:
        return None  # the pre-tokenizer rewrites the text (a Metaspace ▁): no byte offsets
    return len(pieces[-1 if last else 0].encode("utf-8", "surrogateescape"))


def _moved_bytes(
    data: bytes,
    backoff: str | int,
    what: str,
    side: str,
    token: Callable[[], int],
    pretoken: Callable[[], int | None],
) -> int:
    """How many bytes of ``data`` move into the middle under ``backoff`` (shared by both splits).

    ``token``/``pretoken``: the bytes of the token / pre-token at the cursor's
    side (``pretoken`` None: fall back to ``token``). UsageError, naming
    ``what``, for a backoff that is not one of the four kinds or an ``n``
    outside ``0..len(data)``.
    """
    if isinstance(backoff, bool) or not isinstance(backoff, int | str):
        raise UsageError(f"{what} must be 'pretoken', 'token', 'none' or an int, got {backoff!r}")
    if isinstance(backoff, int):
        if not 0 <= backoff <= len(data):
            raise UsageError(f"{what}={backoff} bytes is outside 0..{len(data)} ({side})")
        return backoff
    if backoff == "none":
        return 0
    if backoff == "token":
        return token()
    if backoff == "pretoken":
        found = pretoken() if data else 0
        return token() if found is None else found
    raise UsageError(f"{what} must be 'pretoken', 'token', 'none' or an int, got {backoff!r}")


def split_prefix(
    tokenizer: Any, prefix_bytes: bytes, backoff: str | int = "pretoken"
) -> tuple[bytes, bytes]:
    """``(head, tail)`` with ``head + tail == prefix_bytes``: where :func:`fim` cuts the prefix.

    ``backoff`` says how far back from the cursor (the prefix's end) the cut goes:

    - ``"pretoken"`` (default): the start of the prefix's last pre-token, as
      the tokenizer's pre-tokenizer splits the prefix (for a tokenizer whose
      pre-tokenizer does not split, or rewrites the text, the start of its
      last token);
    - ``"token"``: the start of the last token of the prefix's encoding;
    - ``"none"``: no cut (empty tail);
    - an int ``n``: the last ``n`` bytes form the tail.

    Raises :class:`~toknz.errors.UsageError` for a prefix that is not bytes,
    an unknown ``backoff`` or an ``n`` outside ``0..len(prefix_bytes)``.
    """
    prefix = as_bytes(prefix_bytes, "prefix_bytes")
    canon = canonicality(tokenizer)
    n = _moved_bytes(
        prefix,
        backoff,
        "backoff",
        "the prefix",
        lambda: len(prefix) - _last_token_cut(tokenizer, canon, prefix),
        lambda: _pretoken_bytes(tokenizer, prefix, last=True),
    )
    cut = len(prefix) - n
    return prefix[:cut], prefix[cut:]


def _first_token_cut(tokenizer: Any, canon: Canonicality, suffix: bytes) -> int:
    ids = _encode_bytes(tokenizer, suffix, "suffix_bytes")
    if not ids:
        return 0
    first = canon.token_bytes[ids[0]]
    return len(first) if suffix.startswith(first) else 0


def split_suffix(
    tokenizer: Any, suffix_bytes: bytes, backoff: str | int = "pretoken"
) -> tuple[bytes, bytes]:
    """``(head, rest)`` with ``head + rest == suffix_bytes``: the suffix's start that joins the middle.

    The mirror of :func:`split_prefix` on the cursor's other side, used by
    :func:`fim` with ``suffix_backoff``: ``head`` leaves the prompt and the
    middle must end with it. ``backoff``:

    - ``"pretoken"`` (default): the suffix's first pre-token, as the
      tokenizer's pre-tokenizer splits the suffix alone (a tokenizer whose
      pre-tokenizer does not split, or rewrites the text: its first token);
    - ``"token"``: the first token of the suffix's encoding;
    - ``"none"``: no head (empty);
    - an int ``n``: the first ``n`` bytes.

    Raises :class:`~toknz.errors.UsageError` for a suffix that is not bytes,
    an unknown ``backoff`` or an ``n`` outside ``0..len(suffix_bytes)``.
    """
    suffix = as_bytes(suffix_bytes, "suffix_bytes")
    canon = canonicality(tokenizer)
    cut = _moved_bytes(
        suffix,
        backoff,
        "suffix backoff",
        "the suffix",
        lambda: _first_token_cut(tokenizer, canon, suffix),
        lambda: _pretoken_bytes(tokenizer, suffix, last=False),
    )
    return suffix[:cut], suffix[cut:]


def fim_context(
    tokenizer: Any, prefix_bytes: bytes, suffix_bytes: bytes, tokens: FimTokens
) -> list[int]:
    """The PSM prompt ``[prefix] encode(prefix) [suffix] encode(suffix) [middle]`` (token ids)."""
    prefix = as_bytes(prefix_bytes, "prefix_bytes")
    suffix = as_bytes(suffix_bytes, "suffix_bytes")
    return [
        int(tokens.prefix),
        *_encode_bytes(tokenizer, prefix, "prefix_bytes"),
        int(tokens.suffix),
        *_encode_bytes(tokenizer, suffix, "suffix_bytes"),
        int(tokens.middle),
    ]


# --------------------------------------------------------------------- shared checks


def _check_lm(token_lm: Any) -> None:
    if not callable(getattr(token_lm, "next_token_logprobs", None)):
        raise UsageError("token_lm must have a next_token_logprobs(prefixes) method")


def _byte_lm(
    token_lm: TokenLM,
    tokenizer: Any,
    prefix: bytes,
    suffix: bytes,
    tokens: FimTokens | None,
    backoff: str | int,
    mode: str,
    suffix_backoff: str | int = "none",
) -> tuple[ByteLM, bytes, bytes]:
    """``(byte LM of the middle, tail of the prefix, head of the suffix)`` for the exact method."""
    _check_lm(token_lm)
    canon = canonicality(tokenizer)
    toks = _resolve_tokens(tokenizer, tokens, canon)
    head, tail = split_prefix(tokenizer, prefix, backoff)
    joined, rest = split_suffix(tokenizer, as_bytes(suffix, "suffix_bytes"), suffix_backoff)
    context = fim_context(tokenizer, head, rest, toks)
    blm = ByteLM(token_lm, tokenizer, mode=mode, context=context, stop_ids=toks.stop_ids)
    if blm.prefix_logprob(tail) == -np.inf:
        raise UsageError(
            f"the model gives probability zero to a middle starting with {tail[-40:]!r} "
            "(the end of the prefix moved into the middle); try backoff='none'"
        )
    return blm, tail, joined


def _log1mexp(a: float) -> float:
    """log(1 - exp(a)) for a <= 0 (-inf at a == 0)."""
    if a >= 0.0:
        return -np.inf
    return float(np.log(-np.expm1(a))) if a > -0.693 else float(np.log1p(-np.exp(a)))


class JoinedMiddle:
    """The next-byte distribution of a middle that must end with a given byte string, ``end``.

    ``blm`` is the :class:`~toknz.bytelevel.ByteLM` of the middle (the FIM
    prompt as its context), ``end`` the suffix head moved out of the prompt
    (:func:`split_suffix`). After the middle so far ``x``:

    - ending at ``x`` itself is ruled out (the suffix head would be missing);
      the other 256 outcomes of ``blm`` are renormalized;
    - entry 256 (:data:`EOT`) is *finish*: the middle is ``x + end`` and then
      an end token, with probability ``P(end[0] | x)`` (renormalized as
      above) times the model's own next-byte probabilities along the rest of
      ``end`` and of the end token after it;
    - entry ``b`` is *continue with byte b*, not finishing now: for
      ``b == end[0]`` the finish mass is taken out of it.

    The 257 entries sum to one; sampling from them and cutting the finish
    outcome's ``end`` gives the middle between prefix and suffix. An empty
    ``end`` is the ByteLM itself.

    Each step is exact; the constraint is applied step by step (ending
    without ``end`` is ruled out where the middle stands, not summed out of
    every future), so a sampled middle can still reach a point where the
    model gives every continuation probability zero; it then finishes there.
    The cost: the finish probability needs the model along ``end``, one
    next-byte distribution per byte of it; :meth:`greedy_choice` asks for it
    only when finishing can win.
    """

    def __init__(self, blm: ByteLM, end: bytes) -> None:
        self.blm = blm
        self.end = as_bytes(end, "end")

    def masked(self, prefix: bytes) -> np.ndarray:
        """The ByteLM's 257 log-probabilities after ``prefix``, ending right there ruled out."""
        lp = np.array(self.blm.next_byte_logprobs(prefix), dtype=np.float64)
        if not self.end:
            return lp
        lp[EOT] = -np.inf
        total = logsumexp(lp)
        if total == -np.inf:  # only ending here has mass: finish, the end follows as given
            out = np.full(257, -np.inf)
            out[EOT] = 0.0
            return out
        return np.asarray(lp - total)

    def finish_logprob(self, prefix: bytes, masked: np.ndarray | None = None) -> float:
        """Natural log of P(the middle is ``prefix + end``) given it starts with ``prefix``."""
        lp = self.masked(prefix) if masked is None else masked
        if not self.end:
            return float(lp[EOT])
        f = float(lp[self.end[0]])
        for i in range(1, len(self.end)):
            if f == -np.inf:
                return f
            f += float(self.blm.next_byte_logprobs(prefix + self.end[:i])[self.end[i]])
        if f == -np.inf:
            return f
        return f + float(self.blm.next_byte_logprobs(prefix + self.end)[EOT])

    def next_byte_logprobs(self, prefix: bytes) -> np.ndarray:
        """257 natural-log probabilities after ``prefix``: bytes (continue) and 256 (finish)."""
        return self._split(prefix, self.masked(prefix))

    def _split(self, prefix: bytes, lp: np.ndarray) -> np.ndarray:
        """:meth:`next_byte_logprobs` from ``lp``, the :meth:`masked` row after ``prefix``."""
        if not self.end or lp[EOT] == 0.0:
            return lp
        f = self.finish_logprob(prefix, lp)
        out = lp.copy()
        h = self.end[0]
        out[EOT] = f
        out[h] = lp[h] + _log1mexp(f - lp[h]) if f > -np.inf else lp[h]
        return out

    def source(self, temperature: float) -> Any:
        """What a sampling loop at ``temperature`` should draw from: this, or a greedy view.

        At temperature 0 only the argmax matters, so the view puts all mass
        on :meth:`greedy_choice` and skips the finish probability where it
        cannot win.
        """
        return self if temperature > 0 else _GreedyView(self)

    def greedy_choice(self, prefix: bytes) -> int:
        """``argmax(next_byte_logprobs(prefix))``, computing the finish mass only when it can win.

        Finishing is at most as likely as ``end[0]`` before the split, so
        unless ``end[0]`` is the most likely byte the argmax is that of
        :meth:`masked`.
        """
        lp = self.masked(prefix)
        b = int(np.argmax(lp))
        if not self.end or b != self.end[0]:
            return b
        return int(np.argmax(self._split(prefix, lp)))


class _GreedyView:
    """A :class:`JoinedMiddle` seen by a greedy loop: all the mass on :meth:`JoinedMiddle.greedy_choice`."""

    def __init__(self, joined: JoinedMiddle) -> None:
        self.joined = joined

    def next_byte_logprobs(self, prefix: bytes) -> np.ndarray:
        out = np.full(257, -np.inf)
        out[self.joined.greedy_choice(prefix)] = 0.0
        return out


# --------------------------------------------------------------------- exact


def fim(
    token_lm: TokenLM,
    tokenizer: Any,
    prefix_bytes: bytes,
    suffix_bytes: bytes,
    max_bytes: int = 256,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: Sequence[bytes] = (),
    tokens: FimTokens | None = None,
    backoff: str | int = "pretoken",
    suffix_backoff: str | int = "none",
    mode: str = "canonical",
) -> bytes:
    """Fill the middle between ``prefix_bytes`` and ``suffix_bytes`` byte by byte, exactly.

    Returns the middle (bytes, at most ``max_bytes``), the moved tail of the
    prefix not included: ``prefix_bytes + result + suffix_bytes`` is the
    filled text. See the module doc for the method and what is exact.

    ``token_lm``: an object with ``next_token_logprobs(prefixes)`` over the
    ids of ``tokenizer``; ``tokens``: the sentinels (default
    :func:`fim_tokens`). Sampling: ``temperature`` 0 is greedy (default),
    ``top_k``/``top_p`` filter the 257 outcomes of each byte, ``seed`` fixes
    the generator; the middle ends at an end token, after ``max_bytes``
    bytes, or once it ends with one of the ``stop`` byte strings (kept).
    ``backoff``: where the prefix is cut (:func:`split_prefix`);
    ``suffix_backoff``: how much of the suffix's start the middle must end
    with (:func:`split_suffix`; default ``"none"``; ``"pretoken"`` lets a
    middle end inside a token, :class:`JoinedMiddle`; the returned middle
    then leaves that head out, as it is in ``suffix_bytes``); ``mode``:
    ``"canonical"`` or ``"all"`` (:class:`~toknz.bytelevel.ByteLM`).

    Raises :class:`~toknz.errors.UsageError` for non-bytes prefix or suffix,
    a tokenizer without FIM tokens (and no ``tokens``), bad sampling options,
    or a tail the model gives probability zero.
    """
    prefix = as_bytes(prefix_bytes, "prefix_bytes")
    suffix = as_bytes(suffix_bytes, "suffix_bytes")
    check_sampling(max_bytes, temperature, top_k, top_p, seed)
    source, tail = fim_source(
        token_lm,
        tokenizer,
        prefix,
        suffix,
        temperature,
        tokens=tokens,
        backoff=backoff,
        suffix_backoff=suffix_backoff,
        mode=mode,
    )
    return sample_bytes(source, tail, max_bytes, temperature, top_k, top_p, seed, stop)


def fim_source(
    token_lm: TokenLM,
    tokenizer: Any,
    prefix_bytes: bytes,
    suffix_bytes: bytes,
    temperature: float = 0.0,
    *,
    tokens: FimTokens | None = None,
    backoff: str | int = "pretoken",
    suffix_backoff: str | int = "none",
    mode: str = "canonical",
) -> tuple[Any, bytes]:
    """``(source, tail)``: what :func:`fim` samples the middle from, after the byte prompt ``tail``.

    ``source`` has ``next_byte_logprobs(prefix)``: the middle's
    :class:`~toknz.bytelevel.ByteLM`, or with a joined suffix head the
    :class:`JoinedMiddle` seen as a loop at ``temperature`` needs it. Any
    sampling loop over it (:func:`~toknz.bytelevel.sampling.sample_bytes`,
    :func:`~toknz.bytelevel.sampling.stream_sample`) gives the middle.
    Arguments and errors as :func:`fim`.
    """
    blm, tail, joined = _byte_lm(
        token_lm, tokenizer, prefix_bytes, suffix_bytes, tokens, backoff, mode, suffix_backoff
    )
    return (JoinedMiddle(blm, joined).source(temperature) if joined else blm), tail


# --------------------------------------------------------------------- token level


_SUPPORT: weakref.WeakKeyDictionary[Canonicality, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _cached(canon: Canonicality) -> dict[Any, Any]:
    cache = _SUPPORT.get(canon)
    if cache is None:
        cache = {}
        _SUPPORT[canon] = cache
    return cache


def _support(canon: Canonicality, stop_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Bool masks ``(members, stops)`` over the vocabulary, as :class:`ByteLM` builds its trie.

    Members: tokens with bytes that are neither special nor stops; the rest
    never occur in a middle. Cached per tokenizer and stop set.
    """
    cache = _cached(canon)
    key = ("support", tuple(sorted(set(stop_ids))))
    hit = cache.get(key)
    if hit is not None:
        return hit
    n = canon.n_vocab
    stops = np.zeros(n, dtype=bool)
    stops[list(key[1])] = True
    model = canon.model
    members = np.zeros(n, dtype=bool)
    for i in range(n):
        if i in canon.special_ids or stops[i] or not canon.token_bytes[i]:
            continue
        members[i] = i in canon.added_ids or (
            i < model.n_vocab and model.id_to_token[i] is not None
        )
    cache[key] = (members, stops)
    return members, stops


def _first_bytes(canon: Canonicality) -> np.ndarray:
    """int64 first byte of every token (-1 for a token without bytes), cached."""
    cache = _cached(canon)
    hit = cache.get("first")
    if hit is None:
        hit = np.array([b[0] if b else -1 for b in canon.token_bytes], dtype=np.int64)
        cache["first"] = hit
    return np.asarray(hit)


@dataclass
class _TokenSetup:
    canon: Canonicality
    context: list[int]
    removed: bytes
    members: np.ndarray
    stops: np.ndarray
    first: np.ndarray | None


def _token_setup(
    token_lm: TokenLM,
    tokenizer: Any,
    prefix_bytes: bytes,
    suffix_bytes: bytes,
    tokens: FimTokens | None,
    heal: bool,
) -> _TokenSetup:
    prefix = as_bytes(prefix_bytes, "prefix_bytes")
    suffix = as_bytes(suffix_bytes, "suffix_bytes")
    _check_lm(token_lm)
    canon = canonicality(tokenizer)
    toks = _resolve_tokens(tokenizer, tokens, canon)
    members, stops = _support(canon, toks.stop_ids)
    ids = _encode_bytes(tokenizer, prefix, "prefix_bytes")
    removed = b""
    first = None
    if heal and ids:
        removed = canon.token_bytes[ids[-1]]
        ids = ids[:-1]
        starts = np.array([b.startswith(removed) for b in canon.token_bytes], dtype=bool)
        first = members & starts
    context = [
        int(toks.prefix),
        *ids,
        int(toks.suffix),
        *_encode_bytes(tokenizer, suffix, "suffix_bytes"),
        int(toks.middle),
    ]
    canon.check_ids(context)
    return _TokenSetup(canon, context, removed, members, stops, first)


def _next_token_lp(token_lm: TokenLM, setup: _TokenSetup, seq: list[int]) -> np.ndarray:
    n = setup.canon.n_vocab
    out = check_logprobs(
        token_lm.next_token_logprobs([setup.context + seq]), 1, n, type(token_lm).__name__
    )
    return np.asarray(out[0, :n])


def _masked(lp: np.ndarray, mask: np.ndarray, where: str) -> np.ndarray:
    lp = np.where(mask, lp, -np.inf)
    total = logsumexp(lp)
    if total == -np.inf:
        raise UsageError(f"the model gives probability zero to every allowed token {where}")
    return np.asarray(lp - total)


def _generate(
    token_lm: TokenLM,
    setup: _TokenSetup,
    max_bytes: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    stop: Sequence[bytes],
) -> bytes:
    """Token-by-token sampling after ``setup.context``; returns the bytes after ``setup.removed``."""
    check_sampling(max_bytes, temperature, top_k, top_p, seed)
    stops = [s for s in (as_bytes(s, "stop") for s in stop) if s]
    rng = np.random.default_rng(seed)
    skip = len(setup.removed)
    allowed = setup.members | setup.stops
    tb = setup.canon.token_bytes
    seq: list[int] = []
    out = bytearray()
    if max_bytes == 0:
        return b""
    while len(out) - skip < max_bytes:
        if not seq and setup.first is not None:
            lp = _masked(
                _next_token_lp(token_lm, setup, seq),
                setup.first,
                f"starting with {setup.removed!r} (token healing)",
            )
        else:
            lp = _masked(_next_token_lp(token_lm, setup, seq), allowed, "in the middle")
        t = pick(lp, temperature, top_k, top_p, rng)
        if setup.stops[t]:
            break
        seq.append(t)
        out += tb[t]
        if stops and any(s in out[skip:] for s in stops):
            break
    new = bytes(out[skip:])[:max_bytes]
    ends = [new.find(s) + len(s) for s in stops if s in new]
    return new[: min(ends)] if ends else new


def fim_token_prompting(
    token_lm: TokenLM,
    tokenizer: Any,
    prefix_bytes: bytes,
    suffix_bytes: bytes,
    max_bytes: int = 256,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: Sequence[bytes] = (),
    tokens: FimTokens | None = None,
) -> bytes:
    """Baseline: the whole prefix in the prompt, the middle generated token by token.

    Same arguments and result as :func:`fim` (``temperature``, ``top_k`` and
    ``top_p`` apply to tokens; the result is cut to ``max_bytes`` bytes and
    after the first ``stop`` string). Raises
    :class:`~toknz.errors.UsageError` as :func:`fim` does.
    """
    setup = _token_setup(token_lm, tokenizer, prefix_bytes, suffix_bytes, tokens, heal=False)
    return _generate(token_lm, setup, max_bytes, temperature, top_k, top_p, seed, stop)


def fim_token_healing(
    token_lm: TokenLM,
    tokenizer: Any,
    prefix_bytes: bytes,
    suffix_bytes: bytes,
    max_bytes: int = 256,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: Sequence[bytes] = (),
    tokens: FimTokens | None = None,
) -> bytes:
    """Baseline: token healing. The prefix's last token leaves the prompt; the first token must start with its bytes.

    Returns the bytes generated after the removed token's bytes (so
    ``prefix_bytes + result + suffix_bytes`` is the filled text); an empty
    prefix is plain prompting. Arguments and errors as
    :func:`fim_token_prompting`, plus :class:`~toknz.errors.UsageError` when
    the model gives probability zero to every token that starts with the
    removed bytes.
    """
    setup = _token_setup(token_lm, tokenizer, prefix_bytes, suffix_bytes, tokens, heal=True)
    return _generate(token_lm, setup, max_bytes, temperature, top_k, top_p, seed, stop)


def _first_byte_scores(
    lp: np.ndarray, setup: _TokenSetup, mask: np.ndarray, skip: int
) -> np.ndarray:
    """Probabilities of the byte at offset ``skip`` of the next token, among ``mask`` (``EOT``: a stop)."""
    out = np.zeros(257)
    p = np.where(mask, np.exp(lp), 0.0)
    out[EOT] = p[setup.stops].sum()
    p = np.where(setup.stops, 0.0, p)
    if skip == 0:
        fb = _first_bytes(setup.canon)
        keep = (p > 0) & (fb >= 0)
        out[:256] = np.bincount(fb[keep], weights=p[keep], minlength=256)
        return out
    tb = setup.canon.token_bytes
    for t in np.nonzero(p > 0)[0].tolist():
        if len(tb[t]) > skip:
            out[tb[t][skip]] += p[t]
    return out


def fim_next_byte_logprobs(
    token_lm: TokenLM,
    tokenizer: Any,
    prefix_bytes: bytes,
    suffix_bytes: bytes,
    middle_bytes: bytes = b"",
    *,
    method: str = "exact",
    tokens: FimTokens | None = None,
    backoff: str | int = "pretoken",
    suffix_backoff: str | int = "none",
    mode: str = "canonical",
) -> np.ndarray:
    """257 float64 natural-log probabilities of the middle's next byte (entry 256: the middle ends).

    ``method="exact"``: the distribution :func:`fim` samples from, after the
    middle so far ``middle_bytes`` (default: its first byte); exact as the
    module doc says. ``method="plain"`` / ``"healing"``: the distribution of
    the middle's first byte under :func:`fim_token_prompting` /
    :func:`fim_token_healing` sampling at temperature 1 (``middle_bytes``
    must then be empty). With ``suffix_backoff`` (exact method only) the
    distribution is that of :class:`JoinedMiddle`: entry 256 is finishing
    with the suffix head (the middle is then ``middle_bytes``). Raises
    :class:`~toknz.errors.UsageError` for non-bytes input, an unknown
    method, or a middle of probability zero.
    """
    middle = as_bytes(middle_bytes, "middle_bytes")
    if method == "exact":
        blm, tail, joined = _byte_lm(
            token_lm, tokenizer, prefix_bytes, suffix_bytes, tokens, backoff, mode, suffix_backoff
        )
        if joined:
            return JoinedMiddle(blm, joined).next_byte_logprobs(tail + middle)
        return blm.next_byte_logprobs(tail + middle)
    if suffix_backoff != "none":
        raise UsageError(f"suffix_backoff needs method='exact' (got method={method!r})")
    if method not in ("plain", "healing"):
        raise UsageError(f"method must be 'exact', 'plain' or 'healing', got {method!r}")
    if middle:
        raise UsageError(f"method={method!r} gives the first byte of the middle only")
    setup = _token_setup(
        token_lm, tokenizer, prefix_bytes, suffix_bytes, tokens, heal=method == "healing"
    )
    allowed = setup.members | setup.stops
    lp = _next_token_lp(token_lm, setup, [])
    if setup.first is None:
        scores = _first_byte_scores(_masked(lp, allowed, "in the middle"), setup, allowed, 0)
    else:
        skip = len(setup.removed)
        lp = _masked(lp, setup.first, f"starting with {setup.removed!r} (token healing)")
        scores = _first_byte_scores(lp, setup, setup.first, skip)
        # A first token equal to the removed bytes: the byte comes from the next token.
        tb = setup.canon.token_bytes
        for t in np.nonzero(setup.first & np.isfinite(lp))[0].tolist():
            if len(tb[t]) == skip:
                nxt = _masked(_next_token_lp(token_lm, setup, [t]), allowed, "in the middle")
                scores += np.exp(lp[t]) * _first_byte_scores(nxt, setup, allowed, 0)
    total = scores.sum()
    if total <= 0:
        raise UsageError("the model gives probability zero to every middle")
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(scores / total))


# --------------------------------------------------------------------- bundle


@dataclass
class FimModel:
    """A token LM, its tokenizer and its FIM sentinels, with the three fill methods.

    ``tokens`` defaults to :func:`fim_tokens` of the tokenizer (found once).
    Each method takes ``(prefix_bytes, suffix_bytes, max_bytes, **options)``
    as the function it calls and returns the middle (bytes).
    """

    token_lm: TokenLM
    tokenizer: Any
    tokens: FimTokens | None = None

    def __post_init__(self) -> None:
        _check_lm(self.token_lm)
        self.tokens = _resolve_tokens(self.tokenizer, self.tokens, canonicality(self.tokenizer))

    def _run(self, method: Any, prefix: bytes, suffix: bytes, extra: Any, options: Any) -> Any:
        return method(
            self.token_lm, self.tokenizer, prefix, suffix, extra, tokens=self.tokens, **options
        )

    def exact(
        self, prefix_bytes: bytes, suffix_bytes: bytes, max_bytes: int = 256, **options: Any
    ) -> bytes:
        """:func:`fim`."""
        return self._run(fim, prefix_bytes, suffix_bytes, max_bytes, options)

    def plain(
        self, prefix_bytes: bytes, suffix_bytes: bytes, max_bytes: int = 256, **options: Any
    ) -> bytes:
        """:func:`fim_token_prompting`."""
        return self._run(fim_token_prompting, prefix_bytes, suffix_bytes, max_bytes, options)

    def healing(
        self, prefix_bytes: bytes, suffix_bytes: bytes, max_bytes: int = 256, **options: Any
    ) -> bytes:
        """:func:`fim_token_healing`."""
        return self._run(fim_token_healing, prefix_bytes, suffix_bytes, max_bytes, options)

    def next_byte_logprobs(
        self, prefix_bytes: bytes, suffix_bytes: bytes, middle_bytes: bytes = b"", **options: Any
    ) -> np.ndarray:
        """:func:`fim_next_byte_logprobs`."""
        return self._run(fim_next_byte_logprobs, prefix_bytes, suffix_bytes, middle_bytes, options)
