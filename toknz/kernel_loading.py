"""When a tokenizer leaves the Python start-up path for the compiled kernels.

A short text encoded before the Numba kernels are loaded takes the Python path (regex
split, BPE merges in Python), so a process that encodes a few words never waits for a
kernel load (about 1-3 s: importing the kernels, loading them from Numba's cache, building
the pair tables). A process that goes on encoding short texts must not stay there: the
Python path is several times slower than the kernels. :class:`StartupPath` adds up the
seconds a tokenizer spends on the Python path and, once they pass ``load_after_s``, loads
the kernels on a background thread; the tokenizer's calls take the compiled path as soon
as the load is done (:attr:`StartupPath.ready`). A process that encodes in a tight loop
holds the GIL the loader needs (the `regex` split does not release it), so once the Python
path has taken ``wait_after_s`` in all, the next call waits for the load to finish: no
process stays on the Python path for more than a quarter of a second plus one kernel load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: Seconds on the Python path (after the first call, which builds the Python tables) after
#: which the kernels load in the background: a small fraction of a kernel load.
LOAD_AFTER_S = 0.05
#: Seconds on the Python path after which a call waits for the background load to finish
#: (a loader starved of the GIL by a tight loop of encodes would otherwise take many times
#: its own cost).
WAIT_AFTER_S = 0.25


class StartupPath:
    """The Python-path time of one tokenizer and the background kernel load it triggers.

    ``load_after_s`` and ``wait_after_s`` default to :data:`LOAD_AFTER_S` and
    :data:`WAIT_AFTER_S` as they are when the object is made. ``load`` builds everything the compiled path needs; it runs once, on a daemon thread
    named ``toknz-kernel-load``. If it raises, :attr:`error` keeps the exception and the
    Python path stays in use (its answers are the same).

    >>> import time
    >>> loads = []
    >>> path = StartupPath(lambda: loads.append(1), load_after_s=0.01, wait_after_s=60.0)
    >>> path.spent(1.0)  # the first call builds the Python tables: not counted
    >>> path.ready, path.started
    (False, False)
    >>> path.spent(0.02)
    >>> path.wait(10.0), loads
    (True, [1])
    """

    def __init__(
        self,
        load: Callable[[], object],
        load_after_s: float | None = None,
        wait_after_s: float | None = None,
    ) -> None:
        self._load = load
        self._after = LOAD_AFTER_S if load_after_s is None else load_after_s
        self._wait_after = WAIT_AFTER_S if wait_after_s is None else wait_after_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._calls = 0
        self.spent_s = 0.0
        self.ready = False
        self.error: BaseException | None = None

    @property
    def started(self) -> bool:
        """True once the background load has been started."""
        return self._thread is not None

    def spent(self, seconds: float) -> None:
        """Count ``seconds`` of one call on the Python path; start the load, or wait for it, when due."""
        self._calls += 1
        if self._calls > 1:
            self.spent_s += seconds
            if self.spent_s > self._after and self._thread is None:
                self.start()
            if self.spent_s > self._wait_after and not self.ready:
                self.wait()

    def start(self) -> None:
        """Start the background load now (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="toknz-kernel-load", daemon=True)
            thread.start()
            # Published only once started: another thread's wait() may join it at once.
            self._thread = thread

    def _run(self) -> None:
        try:
            self._load()
        except BaseException as exc:  # the Python path stays correct; keep the reason
            self.error = exc
        else:
            self.ready = True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for a started load; True when the kernels are ready."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.ready
