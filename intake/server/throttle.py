"""Slowing down guessing without knowing who guesses, and without letting a
guesser slow anyone else.

Behind Tor every client has the same address, so limits are kept per lookup
id (a codename's derived id): a guess counts against the id it derives to,
and only ids that belong to no witness ever fail, so no one's failures can
make a genuine witness wait. There is no global limit: with codenames of
about 90 random bits guessing is hopeless (2^90 guesses), and a global limit
would only have handed anyone a switch that locks every witness out.
Counters live in the worker's memory only: nothing about attempts is written
to disk. Memory stays bounded under a flood.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_TRACKED = 100_000


@dataclass
class Window:
    start: float
    failures: int = 0


@dataclass
class Throttle:
    per_id_limit: int = 5
    window_seconds: int = 600
    clock: Callable[[], float] = time.monotonic
    _per_id: dict[str, Window] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _current(self, w: Window | None, now: float) -> Window:
        if w is None or now - w.start >= self.window_seconds:
            return Window(now)
        return w

    def wait_seconds(self, key: str | None = None) -> int:
        """0 if an attempt for `key` may go ahead, else how long until it may."""
        if key is None:
            return 0
        now = self.clock()
        with self._lock:
            if key not in self._per_id:
                return 0
            w = self._per_id[key] = self._current(self._per_id[key], now)
            if w.failures >= self.per_id_limit:
                return math.ceil(w.start + self.window_seconds - now)
            return 0

    def failed(self, key: str | None = None) -> None:
        if key is None:
            return
        now = self.clock()
        with self._lock:
            w = self._per_id[key] = self._current(self._per_id.get(key), now)
            w.failures += 1
            if len(self._per_id) > MAX_TRACKED:
                self._per_id = {k: v for k, v in self._per_id.items()
                                if now - v.start < self.window_seconds}
                while len(self._per_id) > MAX_TRACKED:  # all recent: drop the oldest
                    self._per_id.pop(next(iter(self._per_id)))

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._per_id.pop(key, None)
