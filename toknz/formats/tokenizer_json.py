"""``tokenizer.json`` (the ``tokenizers`` format): read into a :class:`Tokenizer`, write back.

Only BPE models are read. Every stage is built by its module's ``*_from_json``
function, which refuses what toknz does not implement; nothing is silently
approximated. Written files load in ``tokenizers.Tokenizer.from_file`` and
``transformers`` and give the same ids as toknz.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toknz.errors import FormatError, ToknzError, UnsupportedFeatureError
from toknz.formats._io import atomic_write, decode_utf8
from toknz.pipeline.added_tokens import AddedToken
from toknz.pipeline.bpe import BPE, merges_from_json
from toknz.pipeline.decoders import decoder_from_json
from toknz.pipeline.normalizers import normalizer_from_json
from toknz.pipeline.postprocess import NoPostProcess, postprocessor_from_json
from toknz.pipeline.pretokenize import (
    ByteLevel,
    PreTokenizerSequence,
    Split,
    pretokenizer_from_json,
)
from toknz.validate import check_bool, check_optional_str, check_type, check_vocab

if TYPE_CHECKING:
    from toknz.tokenizer import Tokenizer


def parse_json(data: bytes, path: str | os.PathLike[str]) -> Any:
    """Parse JSON; a syntax error or truncation names the file, line, column and offset."""
    text = decode_utf8(data, path)
    if not text.strip():
        raise FormatError(f"{path}: empty file, expected JSON")
    if text.startswith("\ufeff"):
        raise FormatError(
            f"{path}: starts with a UTF-8 byte-order mark (tokenizers refuses it too): "
            "save the file as UTF-8 without BOM"
        )
    try:
        return json.loads(text)
    except RecursionError:
        raise FormatError(
            f"{path}: JSON nested too deeply to be a tokenizer file; the file is damaged"
        ) from None
    except json.JSONDecodeError as exc:
        # A string cut by the end of the file is reported at its start (a string
        # that ends anywhere else stops at a newline: "Invalid control character").
        truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        what = "truncated JSON" if truncated else "malformed JSON"
        raise FormatError(
            f"{path}, line {exc.lineno}, column {exc.colno} (character offset {exc.pos}): {what}: {exc.msg}"
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise FormatError(f"{path}: malformed JSON: {exc}") from None


def tokenizer_from_json(
    obj: Any, path: str | os.PathLike[str], name: str | None = None
) -> Tokenizer:
    """Build a :class:`Tokenizer` from a parsed ``tokenizer.json`` object."""
    try:
        return _tokenizer_from_json(obj, name or _name_from_path(path), str(path))
    except ToknzError as exc:
        msg = str(exc)
        if not msg.startswith(str(path)):
            msg = f"{path}: {msg}"
        raise type(exc)(msg) from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # A field of an unexpected shape that no check above names: still one line, never a
        # traceback. (Every shape `tokenizers` documents is checked where it is read.)
        raise FormatError(
            f"{path}: a field has an unexpected type or value ({type(exc).__name__}: {exc}); "
            "compare the file with one that tokenizers writes"
        ) from None
    except RecursionError:
        raise FormatError(f"{path}: a field is nested too deeply; the file is damaged") from None


def _name_from_path(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    return p.parent.name if p.name == "tokenizer.json" and p.parent.name else p.stem


def _tokenizer_from_json(obj: Any, name: str, source: str) -> Tokenizer:
    from toknz.tokenizer import Tokenizer

    if not isinstance(obj, dict):
        raise FormatError("top level must be a JSON object")
    if "model" not in obj:
        raise FormatError("no 'model' field; this is not a tokenizer.json file")
    for feature in ("truncation", "padding"):
        if obj.get(feature) is not None:
            raise UnsupportedFeatureError(
                f"'{feature}' is set; toknz encodes without {feature}: set it to null in the file to load it"
            )
    model_obj = obj["model"]
    if not isinstance(model_obj, dict):
        raise FormatError("'model' must be an object")
    kind = model_obj.get("type", "BPE" if "merges" in model_obj else None)
    if kind != "BPE":
        raise UnsupportedFeatureError(f"model type {kind!r} is not supported by toknz (only BPE)")
    if model_obj.get("dropout") not in (None, 0, 0.0):
        raise UnsupportedFeatureError(
            f"model.dropout is {model_obj['dropout']!r}: BPE dropout (random merges) is not "
            "supported by toknz; set it to null to load the file"
        )
    vocab = check_vocab(model_obj.get("vocab"))
    merges = merges_from_json(
        check_type(
            model_obj.get("merges", []),
            list,
            "model.merges",
            "a list of merges ('a b' or ['a', 'b'])",
        )
    )

    if obj.get("normalizer") is not None and isinstance(obj["normalizer"], dict):
        if obj["normalizer"].get("type") in ("ByteLevel", "BertNormalizer", "Precompiled"):
            raise UnsupportedFeatureError(
                f"normalizer: the {obj['normalizer']['type']!r} normalizer is not supported by toknz"
            )
    normalizer = normalizer_from_json(obj.get("normalizer"))
    pre = pretokenizer_from_json(obj.get("pre_tokenizer"))
    decoder = decoder_from_json(obj.get("decoder"))
    post = postprocessor_from_json(obj.get("post_processor"))
    added_raw = obj.get("added_tokens", [])
    if added_raw is None:
        added_raw = []
    if not isinstance(added_raw, list):
        raise FormatError("added_tokens must be a list")
    added: list[AddedToken] = []
    seen: set[str] = set()
    for i, a in enumerate(added_raw):
        token = AddedToken.from_json(a, f"added_tokens[{i}]")
        if token.content in seen:
            continue  # the same content twice: the first id wins, as in tokenizers
        seen.add(token.content)
        added.append(token)

    model = BPE(
        vocab=vocab,
        merges=merges,
        byte_level=pre.byte_level,
        merge_rule="merges",
        unk_token=check_optional_str(model_obj, "unk_token", "model"),
        byte_fallback=check_bool(model_obj, "byte_fallback", "model", False, null=True),
        fuse_unk=check_bool(model_obj, "fuse_unk", "model", False, null=True),
        continuing_subword_prefix=check_optional_str(
            model_obj, "continuing_subword_prefix", "model"
        ),
        end_of_word_suffix=check_optional_str(model_obj, "end_of_word_suffix", "model"),
        ignore_merges=check_bool(model_obj, "ignore_merges", "model", False, null=True),
    )
    model.pair_arrays()  # validate merges now, so a bad file fails at load time
    return Tokenizer(
        model,
        pre,
        normalizer=normalizer,
        added_tokens=added,
        decoder=decoder,
        post_processor=post,
        name=name,
        source=source,
    )


def tokenizer_to_json(tok: Tokenizer) -> dict[str, Any]:
    """The ``tokenizer.json`` object of a tokenizer (tiktoken-style ones get explicit merges)."""
    model = tok.model
    merges = model.derived_merges()
    model_obj: dict[str, Any] = {
        "type": "BPE",
        "dropout": None,
        "unk_token": model.unk_token,
        "continuing_subword_prefix": model.continuing_subword_prefix,
        "end_of_word_suffix": model.end_of_word_suffix,
        "fuse_unk": model.fuse_unk,
        "byte_fallback": model.byte_fallback,
        # tiktoken's rule "a piece that is a token encodes to that token" is ignore_merges.
        "ignore_merges": model.ignore_merges or model.merge_rule == "ranks",
        "vocab": _vocab_with_added(tok),
        "merges": [[a, b] for a, b in merges],
    }
    pre = tok.pre_tokenizer
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [t.to_json() for t in tok.added_tokens],
        "normalizer": tok.normalizer.to_json() if tok.normalizer else None,
        "pre_tokenizer": pre.to_json() or None,
        "post_processor": tok.post_processor.to_json()
        if not isinstance(tok.post_processor, NoPostProcess) or tok.post_processor.raw
        else None,
        "decoder": tok.decoder.to_json() if tok.decoder else None,
        "model": model_obj,
    }


def _vocab_with_added(tok: Tokenizer) -> dict[str, int]:
    """``model.vocab``, plus the added tokens when ``tokenizers`` would renumber them.

    ``tokenizers`` ignores the ``id`` of an added token that is not in the model
    vocabulary: it numbers such tokens from ``len(vocab)`` up, in order. When the
    ids are not exactly that (tiktoken's specials sit after holes, e.g.
    cl100k's ``<|endoftext|>`` is 100257 with 100256 unused), the added tokens
    are written into the vocabulary too, as the published GPT-4 files do.
    """
    vocab = dict(sorted(tok.model.vocab.items(), key=lambda kv: kv[1]))
    outside = [t for t in tok.added_tokens if t.content not in vocab]
    if [t.id for t in outside] != list(range(len(vocab), len(vocab) + len(outside))):
        for t in outside:
            vocab[t.content] = t.id
    return vocab


def write_tokenizer_json(tok: Tokenizer, path: str | os.PathLike[str]) -> None:
    """Write ``tokenizer.json`` atomically."""
    # Compact separators let the C JSON encoder do the work (indent=2 falls back to pure Python).
    data = json.dumps(tokenizer_to_json(tok), ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )
    atomic_write(path, data)


def tiktoken_pretokenizer(pattern: str) -> PreTokenizerSequence:
    """The pre-tokenizer of a tiktoken encoding: keep the pattern's matches, then byte-level."""
    return PreTokenizerSequence((Split(pattern, "Removed", invert=True), ByteLevel(False, False)))
