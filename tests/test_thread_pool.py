"""The worker threads shared by batch calls (toknz.thread_pool)."""

from __future__ import annotations

import multiprocessing
import os

import pytest

import toknz
from toknz.thread_pool import shared_pool

TEXTS = [f"document {i}: some words to encode, {i * 7} times over." * 30 for i in range(40)]


def test_one_pool_per_size_reused_by_batches() -> None:
    tok = toknz.load("cl100k_base")
    one = tok.encode_batch(TEXTS, num_threads=1)
    assert tok.encode_batch(TEXTS, num_threads=2) == one
    pool = shared_pool(2)
    assert tok.encode_batch(TEXTS, num_threads=2) == one
    assert shared_pool(2) is pool and shared_pool(3) is not pool


def _child_batch(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    tok = toknz.load("cl100k_base")
    queue.put((os.getpid(), id(shared_pool(2)), tok.encode_batch(TEXTS, num_threads=2)))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_working_pool() -> None:
    """The parent's threads do not exist in a forked child: its pool must be new."""
    tok = toknz.load("cl100k_base")
    expected = tok.encode_batch(TEXTS, num_threads=2)  # the parent's pool is started
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_batch, args=(queue,))
    child.start()
    pid, _, got = queue.get(timeout=120)
    child.join(timeout=60)
    assert pid != os.getpid() and child.exitcode == 0
    assert got == expected
