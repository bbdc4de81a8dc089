"""AddedTokenMatcher.find_first against a brute-force search (leftmost, then longest)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from toknz.pipeline.added_tokens import AddedToken, AddedTokenMatcher

ALPHABET = "ab<|>xé\n"


def brute_first(contents: list[str], text: str) -> tuple[int, str] | None:
    """The leftmost occurrence of any content, the longest among those at that offset."""
    hits = [(text.find(c), -len(c), c) for c in contents if c in text]
    if not hits:
        return None
    offset, _, content = min(hits)
    return offset, content


@given(
    st.lists(st.text(ALPHABET, min_size=1, max_size=4), min_size=1, max_size=8, unique=True),
    st.text(ALPHABET, max_size=30),
)
def test_find_first_equals_brute_force(contents: list[str], text: str) -> None:
    matcher = AddedTokenMatcher([AddedToken(c, i) for i, c in enumerate(contents)])
    assert matcher.find_first(text) == brute_first(contents, text)


def test_find_first_with_many_first_characters() -> None:
    """More than a handful of distinct first characters: the regex search alone."""
    contents = [f"{c}tok" for c in "abcdefgh"]
    matcher = AddedTokenMatcher([AddedToken(c, i) for i, c in enumerate(contents)])
    assert matcher.find_first("xx htok atok") == (3, "htok")
    assert matcher.find_first("no tokens here") is None
    assert AddedTokenMatcher([]).find_first("atok") is None
