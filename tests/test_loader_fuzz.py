"""Loader fuzz harness: mutated real tokenizer files load correctly or fail with one toknz error.

Real fetched files (``gpt2``'s and ``cl100k_base``'s ``.tiktoken`` rank files, Llama 3's
``tokenizer.json``) are mutated at random, with a fixed seed so a failure replays:
truncation at a random offset, a random field given a value of another type, id
collisions, huge and negative numbers, deep nesting, deleted keys, dropped and duplicated
rank lines. For every case the loader must either

- load, and then encode and decode a sample text raising nothing but a toknz error; a
  rank file that loads must round-trip the text, and a ``tokenizer.json`` that
  ``tokenizers`` loads too must give its ids; or
- raise a :class:`toknz.ToknzError` on one line that names the file.

Never another exception type, never a hang (each case has a time bound, enforced by an
alarm). ``TOKNZ_FUZZ_CASES`` sets the cases per file (default 40: the whole module runs in
well under a minute).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import require_file

import toknz

CASES = int(os.environ.get("TOKNZ_FUZZ_CASES", "40"))
CASE_SECONDS = 20
SAMPLE = "Hello world! It's 2024: ünïcödé 你好, the cat's   spaces\tand\nlines 12345."


class Hang(Exception):
    pass


@contextmanager
def time_bound(seconds: int) -> Iterator[None]:
    def alarm(*_: object) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------ JSON mutations

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    "false",
    "",
    "x",
    0,
    -1,
    5,
    1.5,
    10**12,
    2**32,
    [],
    [1, "a"],
    {},
    {"type": "Nope"},
]


def _containers(obj: Any, rng: random.Random, depth: int = 0) -> list[tuple[Any, Any]]:
    """(container, key) pairs along a random walk from the top (sampling big containers)."""
    out: list[tuple[Any, Any]] = []
    node = obj
    while isinstance(node, (dict, list)) and node and depth < 8:
        if isinstance(node, dict):
            keys = list(node) if len(node) < 64 else [rng.choice(list(node)) for _ in range(4)]
            key: Any = rng.choice(keys)
        else:
            key = rng.randrange(len(node))
        out.append((node, key))
        node = node[key]
        depth += 1
    return out


def _random_slot(obj: dict[str, Any], rng: random.Random) -> tuple[Any, Any]:
    # Walk from a random top-level field, or into the model, or into one added token.
    start = rng.choice(["top", "model", "model", "added", "pre", "vocab"])
    if start == "model":
        path = [(obj, "model")] + _containers(obj["model"], rng)
    elif start == "added" and obj.get("added_tokens"):
        i = rng.randrange(len(obj["added_tokens"]))
        path = [(obj["added_tokens"], i)] + _containers(obj["added_tokens"][i], rng)
    elif start == "pre" and obj.get("pre_tokenizer"):
        path = [(obj, "pre_tokenizer")] + _containers(obj["pre_tokenizer"], rng)
    elif start == "vocab":
        vocab = obj["model"]["vocab"]
        path = [(vocab, rng.choice(list(vocab)))]
    else:
        path = _containers(obj, rng)
    return rng.choice(path)


def mutate_json(obj: dict[str, Any], rng: random.Random) -> tuple[str, bytes]:
    """One mutation of a parsed tokenizer.json: its name and the file's bytes."""
    kind = rng.choice(["truncate", "type", "type", "collide", "huge", "deep", "delete"])
    if kind == "truncate":
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        return kind, data[: rng.randrange(len(data))]
    m = copy.copy(obj)
    m["model"] = dict(obj["model"])
    m["model"]["vocab"] = dict(obj["model"]["vocab"])
    m["added_tokens"] = [dict(t) for t in obj["added_tokens"]]
    m["pre_tokenizer"] = copy.deepcopy(obj.get("pre_tokenizer"))
    vocab = m["model"]["vocab"]
    if kind == "type":
        container, key = _random_slot(m, rng)
        container[key] = rng.choice(ODD_VALUES)
    elif kind == "collide":
        tok = rng.choice(list(vocab))
        if rng.random() < 0.5 and m["added_tokens"]:
            rng.choice(m["added_tokens"])["id"] = vocab[tok]
        else:
            vocab[rng.choice(list(vocab))] = vocab[tok]
    elif kind == "huge":
        value = rng.choice([2**31, 2**32, 10**10, 3 * 10**8, -(2**40), 10**30])
        if rng.random() < 0.5 and m["added_tokens"]:
            rng.choice(m["added_tokens"])["id"] = value
        else:
            vocab[rng.choice(list(vocab))] = value
    elif kind == "deep":  # json.dumps cannot write it: a placeholder, replaced in the text
        container, key = _random_slot(m, rng)
        container[key] = "@@DEEP@@"
    else:
        container, key = _random_slot(m, rng)
        del container[key]
    text = json.dumps(m, ensure_ascii=False)
    if kind == "deep":
        depth = rng.choice([50, 5_000, 100_000])
        text = text.replace('"@@DEEP@@"', "[" * depth + "]" * depth, 1)
    return kind, text.encode("utf-8")


# ------------------------------------------------------------------ rank-file mutations


def mutate_ranks(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    lines = data.split(b"\n")
    kind = rng.choice(["truncate", "drop-byte", "rank", "token", "duplicate", "garbage"])
    i = rng.randrange(len(lines) - 1)
    if kind == "truncate":
        return kind, data[: rng.randrange(len(data))]
    if kind == "drop-byte":
        del lines[rng.randrange(256)]
    elif kind == "rank":
        token = lines[i].split(b" ")[0]
        value = rng.choice(
            [b"-1", b"1.5", b"true", b"10000000000", b"300000000", b"4294967296", b"0", b"x"]
        )
        lines[i] = token + b" " + value
    elif kind == "token":
        rank = lines[i].split(b" ")[-1]
        token = rng.choice([b"", b"!!", b"YQ", base64.b64encode(os.urandom(rng.randrange(1, 9)))])
        lines[i] = token + b" " + rank
    elif kind == "duplicate":
        lines.insert(rng.randrange(len(lines)), lines[i])
    else:
        pos = rng.randrange(len(data))
        return kind, data[:pos] + bytes(rng.randrange(256) for _ in range(8)) + data[pos:]
    return kind, b"\n".join(lines)


# ------------------------------------------------------------------ the harness


def check_case(
    path: Path, load: Callable[[], toknz.Tokenizer], reference: Callable[[], Any] | None, label: str
) -> str:
    """Run one mutated file; return 'refused' or 'loaded' (or fail the test)."""
    try:
        with time_bound(CASE_SECONDS):
            try:
                tok = load()
            except toknz.ToknzError as exc:
                message = str(exc)
                assert "\n" not in message.strip(), f"{label}: error on several lines: {message}"
                assert str(path) in message, f"{label}: the error does not name the file: {message}"
                return "refused"
            try:
                ids = tok.encode(SAMPLE, disallowed_special=())
                back = tok.decode(ids)
            except toknz.ToknzError:
                return "loaded"
            if reference is None:  # a rank file: byte-level with every byte, so it round-trips
                assert back == SAMPLE, f"{label}: loads but does not round-trip: {back!r}"
            else:
                try:
                    ref = reference()
                except Exception:  # noqa: BLE001 - tokenizers refuses: toknz may be lenient
                    return "loaded"
                assert ids == ref.encode(SAMPLE).ids, f"{label}: loads, ids differ from tokenizers"
            return "loaded"
    except Hang:
        pytest.fail(f"{label}: hang (more than {CASE_SECONDS} s)")
    except (AssertionError, pytest.fail.Exception):
        raise
    except Exception as exc:  # noqa: BLE001 - the point of the harness
        pytest.fail(f"{label}: {type(exc).__name__} instead of a toknz error: {str(exc)[:300]}")


@pytest.mark.parametrize("name, pattern", [("gpt2", "r50k"), ("cl100k_base", "cl100k")])
def test_fuzz_rank_files(name: str, pattern: str, tmp_path: Path) -> None:
    data = require_file(name).read_bytes()
    rng = random.Random(f"ranks-{name}")
    start = time.perf_counter()
    outcomes: dict[str, int] = {}
    for case in range(CASES):
        kind, mutated = mutate_ranks(data, rng)
        path = tmp_path / f"{case}.tiktoken"
        path.write_bytes(mutated)
        result = check_case(
            path,
            lambda p=path: toknz.Tokenizer.from_file(p, pattern=pattern),
            None,
            f"{name} case {case} ({kind})",
        )
        outcomes[f"{kind}:{result}"] = outcomes.get(f"{kind}:{result}", 0) + 1
    assert any(k.endswith("refused") for k in outcomes), outcomes
    assert time.perf_counter() - start < max(60, 1.5 * CASES), outcomes


def test_fuzz_tokenizer_json(tmp_path: Path) -> None:
    import tokenizers

    source = require_file("llama3")
    obj = json.loads(source.read_text(encoding="utf-8"))
    rng = random.Random("json-llama3")
    start = time.perf_counter()
    outcomes: dict[str, int] = {}
    for case in range(CASES):
        kind, mutated = mutate_json(obj, rng)
        path = tmp_path / f"{case}" / "tokenizer.json"
        path.parent.mkdir()
        path.write_bytes(mutated)
        result = check_case(
            path,
            lambda p=path: toknz.Tokenizer.from_file(p),
            lambda p=path: tokenizers.Tokenizer.from_file(str(p)),
            f"llama3 case {case} ({kind})",
        )
        outcomes[f"{kind}:{result}"] = outcomes.get(f"{kind}:{result}", 0) + 1
        path.unlink()
    assert any(k.endswith("refused") for k in outcomes), outcomes
    assert time.perf_counter() - start < max(60, 1.5 * CASES), outcomes
