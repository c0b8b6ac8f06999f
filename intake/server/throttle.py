"""Slowing down guessing without knowing who guesses.

Behind Tor every client has the same address, so limits are kept per lookup id
(a codename's derived id, or a staff name) and globally. Counters live in the
worker's memory only: nothing about attempts is ever written to disk. With W
worker processes the effective limits are W times the settings.

Trade-off: a flood of failures can make everyone wait, but only for the rest
of a fixed window (minutes, never longer), and a correct credential is never
counted against its own id; no one is locked out for good.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Window:
    start: float
    failures: int = 0


@dataclass
class Throttle:
    per_id_limit: int = 5
    global_limit: int = 100
    window_seconds: int = 600
    clock: Callable[[], float] = time.monotonic
    _per_id: dict[str, Window] = field(default_factory=dict)
    _global: Window | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _current(self, w: Window | None, now: float) -> Window:
        if w is None or now - w.start >= self.window_seconds:
            return Window(now)
        return w

    def wait_seconds(self, key: str | None = None) -> int:
        """0 if an attempt may go ahead, else how long until it may."""
        now = self.clock()
        with self._lock:
            self._global = g = self._current(self._global, now)
            waits = []
            if g.failures >= self.global_limit:
                waits.append(g.start + self.window_seconds - now)
            if key is not None and key in self._per_id:
                w = self._per_id[key] = self._current(self._per_id[key], now)
                if w.failures >= self.per_id_limit:
                    waits.append(w.start + self.window_seconds - now)
            return math.ceil(max(waits)) if waits else 0

    def failed(self, key: str | None = None) -> None:
        now = self.clock()
        with self._lock:
            self._global = self._current(self._global, now)
            self._global.failures += 1
            if key is not None:
                w = self._per_id[key] = self._current(self._per_id.get(key), now)
                w.failures += 1
            if len(self._per_id) > 100_000:  # bounded memory under a flood
                self._per_id = {k: v for k, v in self._per_id.items()
                                if now - v.start < self.window_seconds}

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._per_id.pop(key, None)
