"""Worker threads shared by every batch call of a process.

A batch call that made its own :class:`~concurrent.futures.ThreadPoolExecutor` paid for
starting and joining its threads each time: on a batch of a few hundred kilobytes that
cost more than the second thread gained (two threads measured slower than one). The
pools here are made once per size and reused; after ``fork`` the child starts with none
(the parent's threads do not exist there).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def shared_pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool of ``threads`` worker threads, made on first use.

    Tasks given to it must not wait for other tasks of the same pool (a batch's groups
    are independent), or a full pool could deadlock.

    >>> pool = shared_pool(2)
    >>> pool is shared_pool(2), list(pool.map(abs, [-1, 2]))
    (True, [1, 2])
    """
    pool = _pools.get(threads)
    if pool is None:
        with _lock:
            pool = _pools.get(threads)
            if pool is None:
                pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="toknz")
                _pools[threads] = pool
    return pool


def _forget_pools() -> None:
    global _lock
    _pools.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)
