"""Added tokens: strings matched in the text before pre-tokenization, special or not.

An added token has an id outside (or overriding) the BPE merges and is found
in the input by literal matching, leftmost-longest, as ``tokenizers`` does,
with its ``lstrip``/``rstrip``/``single_word``/``normalized`` flags.

Special tokens follow tiktoken's safety rule in :class:`toknz.Tokenizer`:
text that spells a special token is refused unless the caller allows it;
allowed special tokens are matched; non-special added tokens always are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import regex

from toknz.errors import FormatError

_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True)
class AddedToken:
    content: str
    id: int
    special: bool = True
    lstrip: bool = False
    rstrip: bool = False
    single_word: bool = False
    normalized: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "content": self.content,
            "single_word": self.single_word,
            "lstrip": self.lstrip,
            "rstrip": self.rstrip,
            "normalized": self.normalized,
            "special": self.special,
        }

    @classmethod
    def from_json(cls, obj: Any, where: str) -> AddedToken:
        from toknz.validate import check_bool, check_id, check_token_text

        if not isinstance(obj, dict) or not isinstance(obj.get("content"), str) or "id" not in obj:
            shown = repr(obj) if len(repr(obj)) <= 200 else repr(obj)[:197] + "..."
            raise FormatError(
                f"{where}: an added token needs a string 'content' and an integer 'id', got {shown}"
            )
        check_token_text(obj["content"], where)
        token_id = check_id(obj["id"], f"{where}.id")
        special = check_bool(obj, "special", where, False, null=False)
        return cls(
            content=obj["content"],
            id=token_id,
            special=special,
            lstrip=check_bool(obj, "lstrip", where, False, null=False),
            rstrip=check_bool(obj, "rstrip", where, False, null=False),
            single_word=check_bool(obj, "single_word", where, False, null=False),
            normalized=check_bool(obj, "normalized", where, not special, null=False),
        )


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


class AddedTokenMatcher:
    """Finds a fixed set of added tokens in text (leftmost-longest, non-overlapping)."""

    def __init__(self, tokens: list[AddedToken]) -> None:
        self.tokens = {t.content: t for t in tokens}
        contents = sorted(self.tokens, key=lambda s: (-len(s), s))
        self._regex = (
            regex.compile("|".join(regex.escape(c) for c in contents)) if contents else None
        )
        # Every match starts with one of these characters: a text holding none of them has
        # no match, and ``in`` on a short text is far cheaper than a regex search.
        self._first_chars = tuple(sorted({c[0] for c in contents}))

    def __bool__(self) -> bool:
        return self._regex is not None

    def split(self, text: str) -> list[tuple[str, int | None]]:
        """Split ``text`` into ``(segment, None)`` plain parts and ``(content, id)`` token matches."""
        if self._regex is None or not text:
            return [(text, None)] if text else []
        out: list[tuple[str, int | None]] = []
        start_offset = 0
        for m in self._regex.finditer(text):
            start, stop = m.span()
            tok = self.tokens[m.group()]
            if tok.single_word:
                start_ok = start == 0 or not _is_word_char(text[start - 1])
                stop_ok = stop == len(text) or not _is_word_char(text[stop])
                if not (start_ok and stop_ok):
                    continue
            if tok.lstrip:
                s = start
                while s > 0 and text[s - 1] in _WHITE_SPACE:
                    s -= 1
                start = max(s, start_offset)
            if tok.rstrip:
                while stop < len(text) and text[stop] in _WHITE_SPACE:
                    stop += 1
            if start_offset < start:
                out.append((text[start_offset:start], None))
            out.append((text[start:stop], tok.id))
            start_offset = stop
        if start_offset < len(text):
            out.append((text[start_offset:], None))
        return out

    def may_occur(self, text: str) -> bool:
        """False when no token can occur in ``text``: none of their first characters is in it
        (checked for up to four distinct first characters; with more, always True).

        >>> m = AddedTokenMatcher([AddedToken(id=1, content="<|end|>", special=True)])
        >>> m.may_occur("a < b"), m.may_occur("a > b")
        (True, False)
        """
        if self._regex is None:
            return False
        if len(self._first_chars) > 4:
            return True
        for c in self._first_chars:  # a loop: a generator costs more than a short text's check
            if c in text:
                return True
        return False

    def find_first(self, text: str) -> tuple[int, str] | None:
        """The character offset and content of the first match, ignoring flags."""
        if not self.may_occur(text):
            return None
        assert self._regex is not None
        m = self._regex.search(text)
        return (m.start(), m.group()) if m else None
