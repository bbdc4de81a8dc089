"""Required tokens: make listed terms encode as one token, through merges.

A required term such as ``EBITDA`` or ``pursuant`` must come out of
``encode`` as one token, both in running text (``" EBITDA"``, the form a
word takes after a space) and at the start of a text or line
(``"EBITDA"``). toknz does this the way BPE itself builds tokens: it appends
merges to the trained merge list, so the term is *reachable*. It is not
pasted on as an added token, which would be matched inside other words
("Hotel:" -> ``Ho|tel:``) and would change how text decodes.

For each form of each term (after the tokenizer's normalization), in the
order the terms are listed:

1. pre-tokenize the form with the split pattern. If the pattern cuts it into
   several pieces (``U.S.C.`` -> ``U|.S|.C|.`` under o200k), no BPE token
   can hold it whole: the form is *unreachable* and the report says where the
   pattern cuts. The same goes for a form that breaks ``max_token_length``
   or the character-level rules of ``max_token_chars``;
2. encode the form with the merges so far; while it is more than one token,
   append one merge of two adjacent tokens: the leftmost pair whose new token
   is not already in the vocabulary and that encodes as itself when alone,
   so the new token is not a dead entry (``toknz inspect --check``);
   failing that, the leftmost new pair.

Appended merges come after every trained one, so they only act where the
trained merges stop, and a term already made one token stays one token. The
vocabulary keeps its size: the last trained merges are dropped to make room
(:func:`add_required_merges`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from toknz.errors import UsageError
from toknz.pipeline.bpe_reference import bpe_merge, table_pair
from toknz.pipeline.normalizers import Normalizer
from toknz.pipeline.pretokenize import Split
from toknz.train.trainer import MergeResult

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer

__all__ = ["RequiredForm", "RequiredToken", "add_required_merges", "term_forms"]

#: How a term is written in running text (after a space) and at a text's start.
_PREFIXES = (" ", "")


@dataclass
class RequiredForm:
    """One form of a term (``" EBITDA"`` or ``"EBITDA"``) and what became of it."""

    text: str
    #: ``"trained"``: training already made it one token; ``"merged"``: merges were
    #: appended for it; ``"unreachable"``: it cannot be one token (``reason`` says why).
    status: str
    merges_added: int = 0
    reason: str | None = None
    #: The token ids ``encode`` gives the form in the finished tokenizer (filled in by
    #: :meth:`RequiredToken.check`).
    encodes_as: list[int] = field(default_factory=list)


@dataclass
class RequiredToken:
    """A required term and its forms."""

    term: str
    forms: list[RequiredForm]

    @property
    def one_token(self) -> bool:
        """True when every form of the term is one token (as checked, once :meth:`check` ran)."""
        return all(f.status != "unreachable" and len(f.encodes_as) in (0, 1) for f in self.forms)

    def check(self, tok: Tokenizer) -> None:
        """Record what ``tok`` encodes each form as (``encodes_as``)."""
        for form in self.forms:
            form.encodes_as = tok.encode(form.text)

    def to_json(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "one_token": self.one_token,
            "forms": [asdict(f) for f in self.forms],
        }


def term_forms(term: str, normalizer: Normalizer | None = None) -> list[str]:
    """The texts a required term must encode as one token: after a space, and alone.

    >>> term_forms("EBITDA")
    [' EBITDA', 'EBITDA']
    """
    text = normalizer.normalize(term) if normalizer is not None else term
    if not text or text[0].isspace():
        return [text] if text else []
    return list(dict.fromkeys(p + text for p in _PREFIXES))


def _bpe(symbols: list[int], rank: dict[tuple[int, int], tuple[int, int]]) -> list[int]:
    return bpe_merge(symbols, table_pair(rank))


class _Merger:
    """A merge list that grows: trained merges, then appended ones."""

    def __init__(self, result: MergeResult, n_merges: int) -> None:
        merges = result.merges[:n_merges]
        base = len(result.tokens) - len(result.merges)
        n_tokens = max([base] + [new + 1 for _, _, new in merges])
        self.result = result
        self.merges = list(merges)
        self.counts = list(result.counts[:n_merges])
        self.tokens = list(result.tokens[:n_tokens])
        self.rank = {(a, b): (i, new) for i, (a, b, new) in enumerate(self.merges)}
        self.id_of: dict[bytes, int] = {}
        for i, tok in enumerate(self.tokens):
            if i >= result.n_special:
                self.id_of.setdefault(tok, i)
        self.byte_id = [self.id_of[bytes([b])] for b in range(256)]

    def encode(self, raw: bytes) -> list[int]:
        return _bpe([self.byte_id[b] for b in raw], self.rank)

    def _self_reachable(self, pair: tuple[int, int]) -> bool:
        """Would ``pair``'s new token, appended as the next merge, encode as itself alone?"""
        raw = self.tokens[pair[0]] + self.tokens[pair[1]]
        # The pair is not a merge yet (the encoding it came from would have merged it):
        # try it in place instead of copying the whole merge table.
        self.rank[pair] = (len(self.merges), -1)
        try:
            return _bpe([self.byte_id[b] for b in raw], self.rank) == [-1]
        finally:
            del self.rank[pair]

    def append(self, pair: tuple[int, int]) -> None:
        raw = self.tokens[pair[0]] + self.tokens[pair[1]]
        new = self.id_of.get(raw)
        if new is None:
            new = len(self.tokens)
            self.tokens.append(raw)
            self.id_of[raw] = new
        self.rank[pair] = (len(self.merges), new)
        self.merges.append((pair[0], pair[1], new))
        self.counts.append(0)

    def make_one_token(self, raw: bytes, allowed: Any) -> int:
        """Append merges until ``raw`` encodes as one token; returns how many."""
        added = 0
        word = self.encode(raw)
        while len(word) > 1:
            pairs = [
                (word[i], word[i + 1])
                for i in range(len(word) - 1)
                if allowed(self.tokens[word[i]], self.tokens[word[i + 1]])
            ]
            fresh = [p for p in pairs if self.tokens[p[0]] + self.tokens[p[1]] not in self.id_of]
            pick = next((p for p in fresh if self._self_reachable(p)), None)
            pick = pick or (fresh or pairs)[0]
            self.append(pick)
            added += 1
            word = self.encode(raw)
        return added

    def merge_result(self) -> MergeResult:
        return replace(self.result, merges=self.merges, counts=self.counts, tokens=self.tokens)


def _why_not(
    form: str,
    splitter: Split,
    max_token_length: int | None,
    max_token_chars: int | None,
) -> str | None:
    pieces = splitter.split([form])
    if len(pieces) != 1:
        cut = " | ".join(repr(p) for p in pieces)
        return f"the split pattern cuts it into {len(pieces)} pieces: {cut}"
    raw = form.encode("utf-8")
    if max_token_length is not None and len(raw) > max_token_length:
        return f"it is {len(raw)} bytes, more than max_token_length {max_token_length}"
    if max_token_chars is not None:
        from toknz.train.chars import class_of

        classes = list(dict.fromkeys(class_of(c) for c in form))
        if len(form) > 1 and (len(classes) > 1 or classes == ["other"]):
            return (
                "character-level tokens hold characters of one class, and it mixes "
                + " and ".join(classes)
            )
        if len(form) > max_token_chars:
            return f"it is {len(form)} characters, more than max_token_chars {max_token_chars}"
    return None


def _plan(
    merger: _Merger,
    terms: Sequence[str],
    splitter: Split,
    normalizer: Normalizer | None,
    max_token_length: int | None,
    max_token_chars: int | None,
) -> list[RequiredToken]:
    from toknz.train.chars import may_merge

    def allowed(a: bytes, b: bytes) -> bool:
        return max_token_chars is None or may_merge(a, b, max_token_chars)

    out = []
    for term in terms:
        forms = []
        for text in term_forms(term, normalizer):
            reason = _why_not(text, splitter, max_token_length, max_token_chars)
            if reason is not None:
                forms.append(RequiredForm(text, "unreachable", reason=reason))
                continue
            added = merger.make_one_token(text.encode("utf-8"), allowed)
            forms.append(RequiredForm(text, "merged" if added else "trained", merges_added=added))
        out.append(RequiredToken(term, forms))
    return out


def add_required_merges(
    result: MergeResult,
    terms: Sequence[str],
    *,
    pattern: str,
    vocab_size: int,
    normalizer: Normalizer | None = None,
    max_token_length: int | None = None,
    max_token_chars: int | None = None,
) -> tuple[MergeResult, list[RequiredToken]]:
    """Append merges to a training result so each term encodes as one token.

    ``result``: what :func:`~toknz.train.trainer.learn_merges` returned for
    ``vocab_size``; ``pattern``: the split regex the tokenizer uses;
    ``normalizer``, ``max_token_length``, ``max_token_chars``: the training's
    settings, which the appended merges obey. Returns the new result (the
    last trained merges dropped so the vocabulary still has ``vocab_size``
    entries at most) and, per term, what became of each of its forms. Raises
    :class:`~toknz.errors.UsageError` when ``vocab_size`` leaves no room
    for the merges the terms need.

    >>> from toknz.train.trainer import learn_merges
    >>> r = learn_merges({b" the": 9, b" plaintiff": 1}, 262)
    >>> r2, report = add_required_merges(r, ["plaintiff"], pattern=r" ?\\w+|\\s+", vocab_size=290)
    >>> [(f.text, f.status) for f in report[0].forms]
    [(' plaintiff', 'merged'), ('plaintiff', 'merged')]
    >>> len(r2.tokens) <= 290
    True
    """
    splitter = Split(pattern, "Isolated")
    terms = list(dict.fromkeys(t for t in terms if t))
    base = len(result.tokens) - len(result.merges)
    room = vocab_size - base
    keep = min(len(result.merges), room)
    for _ in range(64):
        merger = _Merger(result, keep)
        report = _plan(merger, terms, splitter, normalizer, max_token_length, max_token_chars)
        if len(merger.tokens) <= vocab_size:
            return merger.merge_result(), report
        added = len(merger.merges) - keep
        keep = min(keep - 1, room - added)
        if keep < 0:
            break
    raise UsageError(
        f"vocab_size {vocab_size} leaves no room for the merges that {len(terms)} required "
        "token(s) need; raise vocab_size or list fewer terms"
    )
