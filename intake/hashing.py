"""SHA-256 on the other core while the upload is being encrypted.

hashlib releases the GIL for large buffers, and so does libsodium: hashing an
upload's bytes (and its envelope's) in one helper thread overlaps with sealing
them, instead of adding two more passes over every byte in the request's thread.
"""

from __future__ import annotations

import queue
import threading


class BackgroundHasher:
    def __init__(self, depth: int = 64):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)  # bounded: bounded memory
        self._thread = threading.Thread(target=self._run, name="intake-hash", daemon=True)
        self._thread.start()
        self._stopped = False

    def update(self, digest, data: bytes) -> None:
        """Feeds `data` to `digest`, in order; `data` must not change afterwards."""
        if self._stopped:
            raise RuntimeError("the hasher is stopped")
        self._queue.put((digest, data))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                digest, data = job
                digest.update(data)
            finally:
                self._queue.task_done()

    def drain(self) -> None:
        """Waits until every byte fed so far is hashed; more may follow."""
        self._queue.join()

    def stop(self) -> None:
        """Drains and ends the thread. Idempotent."""
        if not self._stopped:
            self._stopped = True
            self._queue.put(None)
            self._thread.join()
