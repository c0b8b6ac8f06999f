"""Opening a bundle's envelopes a few at a time, and deciding on them one at
a time, in the bundle's order.

`intake decrypt` and `vault import` read a bundle member by member. Opening
a member (reading, hashing, decrypting, hashing and writing it: a job) takes
time; deciding on it (checking it against the manifest and the vault, naming
and recording it) takes little, and must happen in order: a later member of
the same name gets its turn only if the earlier one was refused, and names
and rows are given in the bundle's order. So in_order() runs up to WORKERS
jobs at once, for the members after the one the caller is deciding on, and
hands the caller each member with its job, in order.

The caller's decisions stay what they would be one member at a time:

- start(candidate) is asked, in order, whether a member needs a job; never
  while an earlier member of the same name is still undecided (that member
  waits until the caller has decided on the earlier one);
- the caller decides on each member only after every earlier one;
- a job whose result the caller did not take before asking for the next
  member is dropped: waited for, and what it made removed (`discard`); so
  are the jobs still running when the caller stops, for whatever reason.

A large envelope opened while another large one is being opened gets one
thread (intake.workstation.unseal, `alone=False`); one opened alone gets the
threads that unseal gives it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from intake.workstation.unseal import SMALL

T = TypeVar("T")

WORKERS = max(1, min(4, len(os.sched_getaffinity(0))))  # jobs at once: one per core, up to 4


class Member(Protocol):
    """What in_order needs of a member (intake.format.bundle.Candidate)."""

    name: str
    size: int


Job = Callable[[bool], T]  # called with `alone`: no other large job runs beside it


class Opening(Generic[T]):
    """A member's job, as the caller gets it: result() waits for it and
    returns what it made, or raises what it raised."""

    def __init__(self, future: Future, discard: Callable[[T], None],
                 cancelled: Callable[[], None]):
        self._future = future
        self._discard = discard
        self._cancelled = cancelled
        self._taken = False

    def result(self) -> T:
        self._taken = True
        return self._future.result()

    def drop(self) -> None:
        """Unless the caller took the result: waits for the job (or cancels it
        before it starts) and discards what it made."""
        if self._taken:
            return
        self._taken = True
        if self._future.cancel():
            self._cancelled()
            return
        try:
            made = self._future.result()
        except BaseException:  # the job cleaned up after what it made
            return
        self._discard(made)


class _Running:
    """The large members whose jobs are queued or running, for `alone`."""

    def __init__(self, large: int):
        self._large = large
        self._lock = threading.Lock()
        self._members: set[int] = set()

    def wrap(self, member: Member, job: Job) -> Callable[[], object]:
        key = id(member)
        large = member.size > self._large
        if large:
            with self._lock:
                self._members.add(key)

        def run() -> object:
            with self._lock:
                alone = not (self._members - {key})
            try:
                return job(alone)
            finally:
                self.forget(member)

        return run

    def forget(self, member: Member) -> None:
        """The member's job ended, or will never start."""
        with self._lock:
            self._members.discard(id(member))


def in_order(members: Iterable[Member], start: Callable[[Member], Job | None],
             discard: Callable[[T], None], *, workers: int | None = None,
             large: int = SMALL) -> Iterator[tuple[Member, Opening[T] | None]]:
    """Yields (member, its Opening or None) for every member, in order;
    start(member) gives the member's job, or None when it needs none. Use
    it with contextlib.closing(), so that an early stop drops the jobs
    still running at once. `workers` defaults to WORKERS."""
    workers = max(1, WORKERS if workers is None else workers)
    window: deque[tuple[Member, Opening[T] | None]] = deque()
    running = _Running(large)
    source = iter(members)
    held: Member | None = None  # waits for an earlier member of its name to be decided
    done = False
    pool = ThreadPoolExecutor(workers, thread_name_prefix="intake-open")

    def submit(new: list[tuple[Member, Job | None]]) -> None:
        # All are counted before any starts, so each job knows whether it is alone.
        runs = [(member, None if job is None else running.wrap(member, job))
                for member, job in new]
        for member, run in runs:
            window.append((member, None if run is None else Opening(
                pool.submit(run), discard, lambda member=member: running.forget(member))))

    try:
        while True:
            if held is not None and all(m.name != held.name for m, _ in window):
                submit([(held, start(held))])
                held = None
            new: list[tuple[Member, Job | None]] = []
            while not done and held is None and len(window) + len(new) < 2 * workers:
                member = next(source, None)
                if member is None:
                    done = True
                elif any(m.name == member.name for m, _ in [*window, *new]):
                    held = member
                else:
                    new.append((member, start(member)))
            submit(new)
            if not window:
                if held is None:
                    return
                continue
            member, opening = window.popleft()
            try:
                yield member, opening
            finally:
                if opening is not None:
                    opening.drop()
    finally:
        for _, opening in window:
            if opening is not None:
                with contextlib.suppress(Exception):  # the error that stopped the caller counts
                    opening.drop()
        pool.shutdown(wait=True, cancel_futures=True)
