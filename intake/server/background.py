"""A helper thread that works through byte pieces in order, off the request's thread.

hashlib, libsodium and file writes all release the GIL, so an upload's work
can be spread over cores: the request's thread parses the body, one helper
seals and writes the envelope, another computes the SHA-256s. Each helper
holds at most `budget` bytes in waiting, so memory stays flat however large
the upload. A job that fails stops the helper; the error is raised again in
the producer's thread at its next call, so a full disk still ends the request.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

DEFAULT_BUDGET = 2 * 1024 * 1024


class Background:
    def __init__(self, name: str, budget: int = DEFAULT_BUDGET):
        self._budget = budget
        self._jobs: deque[tuple[Callable[[bytes], object], bytes]] = deque()
        self._waiting = 0  # bytes queued or in progress
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[bytes], object], data: bytes) -> None:
        """Runs job(data) in the helper, after everything submitted before;
        `data` must not change afterwards. Waits while the budget is spent."""
        with self._cond:
            while self._jobs and self._waiting + len(data) > self._budget \
                    and self._error is None:
                self._cond.wait()
            self._raise_error()
            if self._stopping:
                raise RuntimeError(f"{self._thread.name} is stopped")
            self._jobs.append((job, data))
            self._waiting += len(data)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if not self._jobs:
                    return
                job, data = self._jobs[0]
                failed = self._error is not None
            if not failed:  # after a failure, later jobs are dropped, not run
                try:
                    job(data)
                except BaseException as exc:  # handed to the producer
                    with self._cond:
                        # Without its frames, which may hold views of buffers
                        # their owners must be able to release.
                        self._error = exc.with_traceback(None)
            with self._cond:
                self._jobs.popleft()
                self._waiting -= len(data)
                self._cond.notify_all()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def drain(self) -> None:
        """Waits until every job submitted so far is done; more may follow."""
        with self._cond:
            while self._jobs:
                self._cond.wait()
            self._raise_error()

    def stop(self) -> None:
        """Finishes what was submitted and ends the thread. Idempotent; raises
        a job's error, like drain()."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._raise_error()
