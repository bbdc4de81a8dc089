"""`ByteLM`: exact byte-level probabilities and sampling from a token-level LM.

A token LM defines a distribution over texts: sample tokens until an
end-of-text token, then join their bytes. :class:`ByteLM` gives that
distribution byte by byte. P(text starts with x) is the sum over the covers
of ``x`` (:mod:`toknz.bytelevel.covers`) of the LM probability of each cover
as a token prefix; next-byte probabilities are ratios of such sums. Covers
are maintained incrementally as bytes arrive, and the LM is called once per
byte for the batch of frontier nodes it has not seen.

Units: everything here is bytes (``bytes`` objects, byte offsets), except the
token LM's prefixes (token ids). The bytes of a token are
``tokenizer.decode_single_token_bytes(id)``: for SentencePiece-style
tokenizers this is before sequence-level decoder steps (the ``▁`` of a word
start is a space, and it is not stripped).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from toknz.bytelevel.canonical import Canonicality, canonicality
from toknz.bytelevel.covers import CoverSet, Node
from toknz.bytelevel.lm import TokenLM, check_logprobs
from toknz.bytelevel.sampling import EOT, as_bytes, logsumexp, sample_bytes
from toknz.bytelevel.trie import TokenTrie
from toknz.errors import UsageError

#: Vocabulary tries per Canonicality and excluded id set: building one walks the whole
#: vocabulary (about 0.25 s for 50k tokens), and FIM builds a ByteLM per request.
_TRIES: weakref.WeakKeyDictionary[Canonicality, dict[frozenset[int], TokenTrie]] = (
    weakref.WeakKeyDictionary()
)


def _trie_for(canon: Canonicality, tokenizer: Any, excluded: frozenset[int]) -> TokenTrie:
    """The trie of every token of ``tokenizer`` a text may contain, minus ``excluded`` (cached)."""
    per = _TRIES.setdefault(canon, {})
    trie = per.get(excluded)
    if trie is None:
        model = tokenizer.model
        members = [
            i
            for i in range(canon.n_vocab)
            if i not in excluded
            and (i in canon.added_ids or (i < model.n_vocab and model.id_to_token[i] is not None))
        ]
        trie = per[excluded] = TokenTrie(canon.token_bytes, members)
    return trie


class ByteLM:
    """An exact byte-level view of a token LM.

    ``token_lm``: an object with ``next_token_logprobs(prefixes)`` (see
    :mod:`toknz.bytelevel.lm`); ``tokenizer``: the :class:`toknz.Tokenizer`
    whose ids the LM uses (BPE, else :class:`~toknz.errors.UsageError`).

    ``mode="canonical"`` (default) assumes, as is standard, that the LM gives
    zero probability to non-canonical tokenizations (token sequences that the
    tokenizer would not produce for their bytes); under that assumption every
    result is exact, and the number of open covers stays small. Covers are
    pruned with the merge test and a pre-token boundary probe (see
    :mod:`toknz.bytelevel.covers`). ``mode="all"`` sums over every
    tokenization: exact for any LM, but the work can grow exponentially with
    the text (``max_nodes`` bounds it; beyond it a UsageError is raised).

    ``context``: token ids placed before every prefix (a BOS token, a prompt
    already tokenized); ``stop_ids``: tokens that end the text (default: the
    tokenizer's special tokens); other special tokens never occur.
    """

    def __init__(
        self,
        token_lm: TokenLM,
        tokenizer: Any,
        *,
        mode: str = "canonical",
        context: Sequence[int] = (),
        stop_ids: Iterable[int] | None = None,
        max_nodes: int = 100_000,
    ) -> None:
        if not callable(getattr(token_lm, "next_token_logprobs", None)):
            raise UsageError("token_lm must have a next_token_logprobs(prefixes) method")
        if mode not in ("canonical", "all"):
            raise UsageError(f"mode must be 'canonical' or 'all', got {mode!r}")
        self.token_lm = token_lm
        self.tokenizer = tokenizer
        self.canon = canonicality(tokenizer)
        self.mode = mode
        self.max_nodes = max_nodes
        self.context = [int(i) for i in context]
        self.canon.check_ids(self.context)
        specials = self.canon.special_ids
        self.stop_ids = np.array(
            sorted(specials if stop_ids is None else {int(i) for i in stop_ids}), dtype=np.int64
        )
        self.canon.check_ids(self.stop_ids.tolist())
        excluded = frozenset(specials | set(self.stop_ids.tolist()))
        if mode == "canonical":
            excluded |= self.canon.unreachable  # never in a canonical encoding
        self.trie = _trie_for(self.canon, tokenizer, excluded)
        self._state: CoverSet | None = None

    # ----------------------------------------------------------------- internals

    def _fetch(self, nodes: list[Node]) -> None:
        prefixes = [self.context + list(n.tokens) for n in nodes]
        out = check_logprobs(
            self.token_lm.next_token_logprobs(prefixes),
            len(prefixes),
            self.canon.n_vocab,
            type(self.token_lm).__name__,
        )
        for node, row in zip(nodes, out, strict=True):
            node.lp = row

    def _stop_lp(self, lp: np.ndarray) -> float:
        return logsumexp(lp[self.stop_ids]) if self.stop_ids.size else -np.inf

    def state(self, prefix: bytes) -> CoverSet:
        """The cover set of ``prefix``, reusing the last one when ``prefix`` extends it."""
        prefix = as_bytes(prefix, "prefix")
        st = self._state
        if st is None or not prefix.startswith(bytes(st.data)):
            st = CoverSet(
                self.trie, self.canon, self._fetch, mode=self.mode, max_nodes=self.max_nodes
            )
        for b in prefix[len(st.data) :]:
            st.push(b)
        self._state = st
        return st

    # ----------------------------------------------------------------- queries

    def prefix_logprob(self, prefix: bytes) -> float:
        """Natural log of P(the text starts with ``prefix``); 0.0 for ``b""``, -inf if impossible."""
        return self.state(prefix).prefix_logprob()

    def next_byte_logprobs(self, prefix: bytes) -> np.ndarray:
        """257 float64 natural-log probabilities of the next byte after ``prefix``.

        Entries 0..255 are bytes; entry 256 (:data:`EOT`) is the end of the
        text. They sum to 1 (in probability). Raises UsageError when
        ``prefix`` has probability zero.
        """
        scores = self.state(prefix).byte_scores(self._stop_lp)
        total = logsumexp(scores)
        if total == -np.inf:
            raise UsageError(f"the prefix {bytes(prefix)[-40:]!r} has probability zero")
        return np.asarray(scores - total)

    def logprob(self, text: bytes) -> float:
        """Natural log of P(the text is exactly ``text``) (ending with a stop token)."""
        return float(self.state(text).byte_scores(self._stop_lp)[EOT])

    # ----------------------------------------------------------------- generation

    def sample(
        self,
        prompt_bytes: bytes = b"",
        max_bytes: int = 256,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[bytes] = (),
    ) -> bytes:
        """Sample up to ``max_bytes`` bytes after ``prompt_bytes``; returns the new bytes only.

        Sampling stops at end of text, after ``max_bytes`` bytes, or once the
        output ends with one of the ``stop`` byte strings (kept in the
        output). ``temperature`` 0 is greedy; ``top_k`` keeps the k most
        likely of the 257 outcomes; ``top_p`` the smallest set whose
        probability reaches p. ``seed`` fixes the random generator.
        """
        return sample_bytes(self, prompt_bytes, max_bytes, temperature, top_k, top_p, seed, stop)

    def greedy(
        self, prompt_bytes: bytes = b"", max_bytes: int = 256, stop: Sequence[bytes] = ()
    ) -> bytes:
        """The most likely next byte, repeatedly: :meth:`sample` with temperature 0."""
        return self.sample(prompt_bytes, max_bytes, temperature=0.0, stop=stop)
