"""Checks shared by every tokenizer loader: as strict as ``tokenizers`` and tiktoken, in one place.

The ``tokenizer.json``, tiktoken and ``encoder.json`` loaders and
:class:`toknz.Tokenizer` itself call these functions, so a file is refused
for the same reason, with the same words, whichever way it comes in. Each
refusal is a :class:`~toknz.errors.FormatError` (or
:class:`~toknz.errors.UsageError` for a value given in code) on one line that
names the field and says what to do; the loaders put the file's path in front.

What is refused, and why:

- ids that are not u32 (``tokenizers``: "expected u32"): negative, booleans,
  floats, strings, and ``>= 2**32``;
- ids so large that the id tables would be absurd (above :func:`id_bound`):
  ``tokenizers`` would allocate them too, toknz says so instead of running out
  of memory;
- booleans that are not JSON booleans (``"false"`` is true in Python;
  ``tokenizers``: "expected a boolean");
- strings that are not strings (``"unk_token": 5``);
- an added token whose id is another token's id (the one would silently
  replace the other when decoding);
- a byte-level rank file without all 256 single-byte tokens: text holding a
  missing byte cannot be encoded (tiktoken panics there; toknz would drop it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from toknz.errors import FormatError, ToknzError

U32_LIMIT = 1 << 32

#: Ids may exceed the number of tokens (tiktoken's special tokens sit after
#: holes), but not by more than this factor plus :data:`ID_SLACK`.
ID_FACTOR = 10
ID_SLACK = 1 << 20


def id_bound(n_tokens: int) -> int:
    """The largest id a tokenizer of ``n_tokens`` tokens may use: ``10 * n_tokens + 2**20``.

    Every table indexed by id has ``max id + 1`` entries; a bound keeps a typo
    (``1000000000000``) from becoming a MemoryError. The real tokenizers are
    far inside it (o200k_base: 200,019 ids for 200,000 tokens).
    """
    return ID_FACTOR * n_tokens + ID_SLACK


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_u32(value: Any) -> bool:
    """True for a Python ``int`` (not ``bool``) in ``0 <= value < 2**32``."""
    return type(value) is int and 0 <= value < U32_LIMIT


def check_id(value: Any, where: str) -> int:
    """``value`` if it is a u32 id, else a :class:`FormatError` naming ``where``."""
    if is_u32(value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        what = "negative" if value < 0 else "2**32 or more"
        raise FormatError(
            f"{where}: id {_show(value)} is {what}; ids must be integers from 0 to 2**32 - 1 "
            "(tokenizers refuses it too): fix the id"
        )
    raise FormatError(
        f"{where}: id {_show(value)} is a {_json_type(value)}, expected an integer from 0 to "
        "2**32 - 1 (tokenizers refuses it too): write the id as a plain number"
    )


def check_ids_bounded(ids: Iterable[int], n_tokens: int, where: str) -> None:
    """Refuse an id above :func:`id_bound` of ``n_tokens`` (checked after :func:`check_id`)."""
    top = max(ids, default=-1)
    bound = id_bound(n_tokens)
    if top > bound:
        raise FormatError(
            f"{where}: id {top:,} is absurdly large for {n_tokens:,} tokens (toknz allows ids up to "
            f"10 x tokens + 2**20 = {bound:,}; every id table has max id + 1 entries): fix the id"
        )


def check_vocab(vocab: Any, where: str = "model.vocab") -> dict[str, int]:
    """A ``token -> id`` object: string keys, u32 ids, bounded."""
    if not isinstance(vocab, dict):
        raise FormatError(
            f"{where} must be an object of token -> integer id, got a {_json_type(vocab)}"
        )
    for key, value in vocab.items():
        if not isinstance(key, str):  # pragma: no cover - JSON keys are strings
            raise FormatError(f"{where} must be an object of token -> integer id")
        if not is_u32(value):
            if not isinstance(value, int) or isinstance(value, bool):
                raise FormatError(
                    f"{where} must be an object of token -> integer id: {where}[{_show(key)}] is "
                    f"a {_json_type(value)} ({_show(value)}), expected an integer from 0 to 2**32 - 1"
                )
            check_id(value, f"{where}[{_show(key)}]")
    check_ids_bounded(vocab.values(), len(vocab), where)
    if len(set(vocab.values())) != len(vocab):
        first: dict[int, str] = {}
        for key, value in vocab.items():
            if value in first:
                raise FormatError(
                    f"{where}: {_show(first[value])} and {_show(key)} both have id {value}; "
                    "decoding that id cannot give both: give each token its own id"
                )
            first[value] = key
    return vocab


def check_bool(obj: Mapping[str, Any], key: str, where: str, default: bool, *, null: bool) -> bool:
    """``obj[key]`` when it is a JSON boolean; ``default`` when absent (or null, if ``null``)."""
    if key not in obj or (null and obj[key] is None):
        return default
    value = obj[key]
    if isinstance(value, bool):
        return value
    raise FormatError(
        f"{where}.{key}: expected true or false, got the {_json_type(value)} {_show(value)} "
        "(tokenizers refuses it too): write a JSON boolean without quotes"
    )


def check_optional_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    """``obj[key]`` when it is a string or null/absent."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise FormatError(
        f"{where}.{key}: expected a string or null, got the {_json_type(value)} {_show(value)}"
    )


def check_type(value: Any, kind: type | tuple[type, ...], where: str, expected: str) -> Any:
    """``value`` when it is an instance of ``kind``, else a :class:`FormatError`."""
    if isinstance(value, kind) and not (isinstance(value, bool) and bool not in _types(kind)):
        return value
    raise FormatError(f"{where}: expected {expected}, got the {_json_type(value)} {_show(value)}")


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def check_token_text(
    content: Any,
    where: str,
    *,
    what: str = "an added token",
    error: type[ToknzError] = FormatError,
) -> str:
    """The text of an added or special token (``content``); the one check that it is not empty.

    ``where`` names the place (``added_tokens[1]``, ``--special``), ``what`` the kind of
    token, ``error`` the error type (:class:`~toknz.errors.FormatError` for a file,
    :class:`~toknz.errors.UsageError` for an argument). Loaders, the tokenizer and
    training all refuse an empty token here: it would match between every two characters.

    >>> check_token_text("<|eot|>", "added_tokens[0]")
    '<|eot|>'
    >>> check_token_text("", "added_tokens[1]")
    Traceback (most recent call last):
    toknz.errors.FormatError: added_tokens[1]: an added token may not be empty: remove it or give it text
    """
    if isinstance(content, str) and content:
        return content
    if isinstance(content, str):
        raise error(f"{where}: {what} may not be empty: remove it or give it text")
    raise error(f"{where}: {what} must be a string, got the {_json_type(content)} {_show(content)}")


def check_added_tokens(added: Iterable[Any], model_token_at: Any, n_model: int) -> None:
    """Added tokens against each other and the model.

    ``added`` are :class:`~toknz.pipeline.added_tokens.AddedToken`; ``model_token_at(id)``
    gives the model's token string at an id (or None). Refused: an empty
    token, a non-u32 id, an id another added token uses, an id a different
    model token uses.
    """
    by_id: dict[int, str] = {}
    ids: list[int] = []
    for t in added:
        where = f"added token {_show(t.content)}"
        check_token_text(t.content, where)
        check_id(t.id, where)
        other = by_id.get(t.id)
        if other is not None and other != t.content:
            raise FormatError(
                f"{where}: id {t.id} is also the id of the added token {_show(other)}; "
                "give each added token its own id"
            )
        by_id[t.id] = t.content
        ids.append(t.id)
        model_tok = model_token_at(t.id) if t.id < n_model else None
        if model_tok is not None and model_tok != t.content:
            raise FormatError(
                f"{where}: id {t.id} is the id of the vocabulary token {_show(model_tok)}, which "
                "it would silently replace; give the added token an unused id "
                f"(the vocabulary ends at {n_model - 1})"
            )
    check_ids_bounded(ids, n_model + len(by_id), "added_tokens")


def check_all_bytes(present: Iterable[int], where: str) -> None:
    """Refuse a byte-level vocabulary that lacks a single-byte token (tiktoken needs all 256)."""
    missing = sorted(set(range(256)) - set(present))
    if missing:
        shown = ", ".join(f"0x{b:02x}" for b in missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        raise FormatError(
            f"{where}: {len(missing)} of the 256 single-byte tokens missing ({shown}); text holding "
            "such a byte cannot be encoded (tiktoken fails there too): add a line for each byte"
        )
