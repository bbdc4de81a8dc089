"""The encoders benchmarks/encode.py races: toknz and every exact peer that is installed.

Each contender is built inside the process that times it, from the local tokenizer files
of ``toknz.fetch`` (no network), as a function from a list of documents to per-document
ids in the library's own output type (lists, NumPy arrays, flat ids + offsets, awkward
arrays; :func:`as_lists` turns any of them into lists).

- ``single``: one ``encode`` call per document on the calling thread;
- ``batch``: one call of the library's batch API on ``threads`` threads (the ``num_threads``
  argument where there is one, else ``RAYON_NUM_THREADS``, set by the caller before the
  library is imported).

Peers: tiktoken, `tokenizers`, gigatoken, fastokens, bpe-openai, kitoken, tokie. A peer
that is not installed is left out (:func:`available`); none is a dependency of toknz.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from typing import Any

Encoder = Callable[[Sequence[str]], Any]

PEERS = ("tiktoken", "tokenizers", "gigatoken", "fastokens", "bpe-openai", "kitoken", "tokie")
CONTENDERS = ("toknz", "toknz-numpy", *PEERS)
MODULE = {
    "toknz": "toknz",
    "toknz-numpy": "toknz",
    "tiktoken": "tiktoken",
    "tokenizers": "tokenizers",
    "gigatoken": "gigatoken",
    "fastokens": "fastokens",
    "bpe-openai": "bpe_openai",
    "kitoken": "kitoken",
    "tokie": "tokie",
}
#: The tokenizer.json equivalent of each tiktoken encoding (for the peers that read only that).
HF_JSON = {"cl100k_base": "gpt35turbo", "o200k_base": "gpt4o"}
#: Which toknz API returns the same kind of output, per mode: the one a ratio is taken against.
NUMPY_OUT = {
    "single": {"toknz-numpy", "gigatoken"},
    "batch": {"toknz-numpy", "gigatoken", "fastokens", "tokie"},
}

API_TEXT = {
    "single": {
        "toknz": "`encode_ordinary(doc)` -> list",
        "toknz-numpy": "`encode_ordinary_to_numpy(doc)` -> numpy uint32",
        "tiktoken": "`encode_ordinary(doc)` -> list",
        "tokenizers": "`encode(doc, add_special_tokens=False).ids` -> list",
        "gigatoken": "`encode(doc)` -> numpy uint32",
        "fastokens": "`encode_ordinary(doc).ids` -> list",
        "bpe-openai": "`encode_ordinary(doc)` -> list",
        "kitoken": "`encode(doc)` -> list",
        "tokie": "`encode(doc, add_special_tokens=False).ids` -> list",
    },
    "batch": {
        "toknz": "`encode_ordinary_batch(docs, num_threads={n})` -> lists",
        "toknz-numpy": "`encode_batch_to_numpy(docs, disallowed_special=(), "
        "num_threads={n})` -> flat numpy uint32 + offsets",
        "tiktoken": "`encode_ordinary_batch(docs, num_threads={n})` -> lists",
        "tokenizers": "`encode_batch(docs, add_special_tokens=False)` + `.ids`, "
        "RAYON_NUM_THREADS={n}",
        "gigatoken": "`encode_batch(docs)` -> awkward array, RAYON_NUM_THREADS={n}",
        "fastokens": "`encode_batch_flat(docs)` -> flat uint32 + offsets, RAYON_NUM_THREADS={n}",
        "bpe-openai": "`encode_ordinary_batch(docs, num_threads={n})` -> lists",
        "kitoken": "`encode_all(docs)` -> lists, RAYON_NUM_THREADS={n}",
        "tokie": "`encode_batch_flat(docs, add_special_tokens=False)` -> flat uint32 + "
        "lengths, RAYON_NUM_THREADS={n}",
    },
}


def available(names: Sequence[str] = CONTENDERS) -> list[str]:
    """The contenders of ``names`` whose library is installed, in order."""
    return [n for n in names if importlib.util.find_spec(MODULE[n]) is not None]


def same_output(name: str, mode: str) -> str:
    """The toknz contender whose output type matches ``name``'s in ``mode``."""
    if name.startswith("toknz"):
        return name
    return "toknz-numpy" if name in NUMPY_OUT[mode] else "toknz"


def tiktoken_encoding(name: str, path: str) -> Any:
    """tiktoken's own constructor for ``name`` (pattern, special tokens), ranks from ``path``.

    The file's sha256 is checked against the hash tiktoken expects for ``name``.
    """
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the local file, never a cache or the network
    import tiktoken
    import tiktoken.load
    from tiktoken_ext import openai_public

    real = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda _url, expected_hash=None: (
        tiktoken.load.load_tiktoken_bpe(path, expected_hash)
    )
    try:
        return tiktoken.Encoding(**openai_public.ENCODING_CONSTRUCTORS[name]())
    finally:
        openai_public.load_tiktoken_bpe = real


def load(name: str, encoding: str) -> Any:
    """The library object of contender ``name`` for ``encoding``, from the local files."""
    from toknz import fetch

    if name.startswith("toknz"):
        import toknz

        return toknz.load(encoding)
    rank_path = str(fetch.require(encoding))
    if name == "tiktoken":
        return tiktoken_encoding(encoding, rank_path)
    if name == "tokenizers":
        import tokenizers

        return tokenizers.Tokenizer.from_file(str(fetch.require(HF_JSON[encoding])))
    if name == "gigatoken":
        import gigatoken

        return gigatoken.Tokenizer.from_tiktoken(rank_path)
    if name == "fastokens":
        import fastokens

        return fastokens.Tokenizer.from_tiktoken(rank_path, encoding=encoding)
    if name == "bpe-openai":
        import bpe_openai

        return bpe_openai.get_encoding(encoding)  # ships its own copy of the ranks
    if name == "kitoken":
        import kitoken

        return kitoken.Kitoken.from_tiktoken_file(rank_path)
    if name == "tokie":
        import tokie

        return tokie.Tokenizer.from_json(str(fetch.require(HF_JSON[encoding])))
    raise ValueError(f"unknown contender {name!r}")


def one_doc(name: str, obj: Any) -> Callable[[str], Any]:
    """``name``'s single-document encoder over its library object ``obj``."""
    return {
        "toknz": lambda d: obj.encode_ordinary(d),
        "toknz-numpy": lambda d: obj.encode_ordinary_to_numpy(d),
        "tiktoken": lambda d: obj.encode_ordinary(d),
        "tokenizers": lambda d: obj.encode(d, add_special_tokens=False).ids,
        "gigatoken": lambda d: obj.encode(d),
        "fastokens": lambda d: obj.encode_ordinary(d).ids,
        "bpe-openai": lambda d: obj.encode_ordinary(d),
        "kitoken": lambda d: obj.encode(d),
        "tokie": lambda d: obj.encode(d, add_special_tokens=False).ids,
    }[name]


def _flat(ids: Any, offsets: Any) -> tuple[Any, Any]:
    import numpy as np

    return np.frombuffer(ids, dtype=np.uint32), np.frombuffer(offsets, dtype=np.uint64)


def _from_lengths(ids: Any, lengths: Any) -> tuple[Any, Any]:
    import numpy as np

    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ids, offsets


def batch_docs(name: str, obj: Any, n: int) -> Encoder:
    """``name``'s batch encoder over ``obj`` on ``n`` threads."""
    return {
        "toknz": lambda docs: obj.encode_ordinary_batch(list(docs), num_threads=n),
        "toknz-numpy": lambda docs: obj.encode_batch_to_numpy(
            list(docs), disallowed_special=(), num_threads=n
        ),
        "tiktoken": lambda docs: obj.encode_ordinary_batch(list(docs), num_threads=n),
        "tokenizers": lambda docs: [
            e.ids for e in obj.encode_batch(list(docs), add_special_tokens=False)
        ],
        "gigatoken": lambda docs: obj.encode_batch(list(docs)),
        "fastokens": lambda docs: _flat(*obj.encode_batch_flat(list(docs))),
        "bpe-openai": lambda docs: obj.encode_ordinary_batch(list(docs), num_threads=n),
        "kitoken": lambda docs: obj.encode_all(list(docs)),
        "tokie": lambda docs: _from_lengths(
            *obj.encode_batch_flat(list(docs), add_special_tokens=False)
        ),
    }[name]


class PerDoc:
    """docs -> ``[one(doc) for doc in docs]``; ``one`` is the single-document encoder."""

    def __init__(self, one: Callable[[str], Any]) -> None:
        self.one = one

    def __call__(self, docs: Sequence[str]) -> list[Any]:
        one = self.one
        return [one(d) for d in docs]


def build(name: str, encoding: str, threads: int | None) -> Encoder:
    """Contender ``name`` as docs -> ids: one call per document (``threads=None``: a
    :class:`PerDoc`) or one call of the batch API on ``threads`` threads."""
    obj = load(name, encoding)
    if threads is None:
        return PerDoc(one_doc(name, obj))
    return batch_docs(name, obj, threads)


def as_lists(result: Any) -> list[list[int]]:
    """Per-document ids as plain lists, whatever the library returned."""
    if isinstance(result, tuple) and len(result) == 2:  # flat ids + offsets
        ids, offsets = result
        return [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]
    if hasattr(result, "tolist") and not isinstance(result, list):  # numpy
        return result.tolist()  # type: ignore[no-any-return]
    if type(result).__module__.startswith("awkward"):
        import awkward

        return awkward.to_list(result)  # type: ignore[no-any-return]
    return [d.tolist() if hasattr(d, "tolist") else [int(x) for x in d] for d in result]
