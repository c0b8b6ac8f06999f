"""A form's file bytes, sealed and then hashed, in order, while more arrive.

The event loop parses the body; each batch of file bytes it hands over is
sealed in a sealing thread, then hashed in a hashing thread. Up to `depth`
batches are in flight at once, so the loop goes on parsing while both threads
work, and a pause in one step does not stall the other two. (Before, the loop
waited for batch n to be sealed and n-1 hashed before it handed over n+1: on a
fast upload a third of two cores stood idle; bench/README.md.) Memory stays
bounded: the loop waits while `depth` batches are in flight.

Both steps run in pools that every connection shares. Each step of one
pipeline runs one task at a time, so its batches keep their order, and a task
gives its thread back after a few batches so that other uploads get a turn.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

TURN = 4  # batches a task takes before it gives its thread back


class _Dropped(Exception):
    """The pipeline was settled before its batches were done."""


class _Step:
    def __init__(self, pool: Executor, fn: Callable[[Any], Any]):
        self.pool, self.fn = pool, fn
        self.items: deque = deque()
        self.running = False  # a task of this step is queued or running


class Pipeline:
    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int,
                 *steps: tuple[Executor, Callable[[Any], Any]]):
        self._loop = loop
        self._depth = depth
        self._steps = [_Step(pool, fn) for pool, fn in steps]
        self._lock = threading.Lock()
        self._in_flight = 0  # batches put and not through the last step
        self._error: BaseException | None = None
        self._waiter: asyncio.Future | None = None

    # -- the event loop's side ----------------------------------------------------
    def put(self, batch: Any) -> None:
        """Hands a batch to the first step (call room() first)."""
        with self._lock:
            if self._error is not None:
                return
            self._in_flight += 1
            start = self._queue(0, batch)
        if start:
            self._submit(0)

    async def room(self) -> None:
        """Until fewer than `depth` batches are in flight; raises a step's error."""
        await self._until(lambda: self._in_flight < self._depth)

    async def finish(self) -> None:
        """Until every batch is through; raises a step's error."""
        await self._until(lambda: self._in_flight == 0)

    async def settle(self) -> None:
        """Drops the batches not yet taken and waits until no step runs, so
        that what the steps write to can be closed; errors are not raised."""
        with self._lock:
            self._fail(_Dropped())
        await self._until(lambda: not any(step.running for step in self._steps), quiet=True)

    async def _until(self, ready: Callable[[], bool], quiet: bool = False) -> None:
        while True:
            with self._lock:
                if self._error is not None and not quiet:
                    raise self._error
                if ready():
                    return
                self._waiter = waiter = self._loop.create_future()
            await waiter

    # -- the threads' side --------------------------------------------------------
    def _queue(self, i: int, item: Any) -> bool:
        """Under the lock: True if step i must be started."""
        step = self._steps[i]
        step.items.append(item)
        if step.running:
            return False
        step.running = True
        return True

    def _submit(self, i: int) -> None:
        try:
            self._steps[i].pool.submit(self._run, i)
        except RuntimeError as exc:  # the pool is shut down: the worker is stopping
            with self._lock:
                self._steps[i].running = False
                self._fail(exc)

    def _run(self, i: int) -> None:
        step, last = self._steps[i], i == len(self._steps) - 1
        for _ in range(TURN):
            with self._lock:
                if not step.items:
                    step.running = False
                    self._wake()
                    return
                item = step.items.popleft()
            try:
                out = step.fn(item)
            except BaseException as exc:
                with self._lock:
                    step.running = False
                    self._fail(exc)
                return
            with self._lock:
                start = False
                if self._error is not None:
                    pass  # dropped: the next step takes nothing more
                elif last:
                    self._in_flight -= 1
                    self._wake()
                else:
                    start = self._queue(i + 1, out)
            if start:
                self._submit(i + 1)
        self._submit(i)  # a turn is over: to the back of the pool's queue

    def _fail(self, exc: BaseException) -> None:
        """Under the lock: records the first error and drops what waits."""
        if self._error is None:
            self._error = exc
        for step in self._steps:
            step.items.clear()
        self._wake()

    def _wake(self) -> None:
        """Under the lock: wakes the event loop if it waits."""
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            self._loop.call_soon_threadsafe(_set, waiter)


def _set(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)
