"""The pipeline an upload's bytes go through in the front: each batch sealed,
then hashed, in order; at most `depth` batches in flight; the first error
stops it and reaches the event loop; a pipeline that is settled waits for the
step that is running and drops the rest; uploads sharing a pool take turns."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from intake.server.pipeline import TURN, Pipeline


@pytest.fixture
def pools():
    sealers, hashers = ThreadPoolExecutor(2), ThreadPoolExecutor(2)
    yield sealers, hashers
    sealers.shutdown()
    hashers.shutdown()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_every_batch_is_sealed_then_hashed_in_order(pools):
    sealed, hashed = [], []

    def seal(n):
        sealed.append(n)
        return n * 2

    async def main():
        pipeline = Pipeline(asyncio.get_running_loop(), 3, (pools[0], seal),
                            (pools[1], hashed.append))
        for n in range(200):
            await pipeline.room()
            pipeline.put(n)
        await pipeline.finish()

    run(main())
    assert sealed == list(range(200))
    assert hashed == [n * 2 for n in range(200)]


def test_at_most_depth_batches_are_in_flight(pools):
    release = threading.Event()
    hashed = []

    def seal(n):
        release.wait(10)
        return n

    async def main():
        pipeline = Pipeline(asyncio.get_running_loop(), 4, (pools[0], seal),
                            (pools[1], hashed.append))
        for n in range(4):  # room for four: none of these waits
            await asyncio.wait_for(pipeline.room(), 1)
            pipeline.put(n)
        with pytest.raises(TimeoutError):  # the fifth waits for the sealing thread
            await asyncio.wait_for(asyncio.shield(pipeline.room()), 0.3)
        release.set()
        await pipeline.room()
        pipeline.put(4)
        await pipeline.finish()

    run(main())
    assert hashed == [0, 1, 2, 3, 4]


def test_the_first_error_stops_the_pipeline_and_reaches_the_loop(pools):
    sealed, hashed = [], []

    def seal(n):
        if n == 3:
            raise OSError(28, "No space left on device")
        sealed.append(n)
        return n

    async def main():
        pipeline = Pipeline(asyncio.get_running_loop(), 100, (pools[0], seal),
                            (pools[1], hashed.append))
        for n in range(10):
            pipeline.put(n)
        with pytest.raises(OSError, match="No space"):
            await pipeline.finish()
        with pytest.raises(OSError):  # and at the next put as well
            await pipeline.room()
        pipeline.put(99)  # taken nowhere
        await pipeline.settle()

    run(main())
    assert sealed == [0, 1, 2]
    assert hashed == sealed[:len(hashed)]  # what waited to be hashed was dropped


def test_settling_waits_for_the_running_step_and_drops_the_rest(pools):
    started, release = threading.Event(), threading.Event()
    sealed, hashed = [], []

    def seal(n):
        started.set()
        release.wait(10)
        sealed.append(n)
        return n

    async def main():
        loop = asyncio.get_running_loop()
        pipeline = Pipeline(loop, 100, (pools[0], seal), (pools[1], hashed.append))
        for n in range(5):
            pipeline.put(n)
        await loop.run_in_executor(None, started.wait, 10)
        settling = asyncio.ensure_future(pipeline.settle())
        await asyncio.sleep(0.3)
        assert not settling.done()  # batch 0 is still being sealed
        release.set()
        await settling

    run(main())
    assert sealed == [0]  # the one running was finished, the rest dropped
    assert hashed == []


def test_uploads_sharing_one_thread_take_turns():
    one = ThreadPoolExecutor(1)
    order = []
    gate = threading.Event()

    def seal_as(name):
        def seal(n):
            gate.wait(10)
            order.append((name, n))
            return n
        return seal

    async def main():
        loop = asyncio.get_running_loop()
        hashers = ThreadPoolExecutor(1)
        first = Pipeline(loop, 100, (one, seal_as("first")), (hashers, lambda n: None))
        second = Pipeline(loop, 100, (one, seal_as("second")), (hashers, lambda n: None))
        for n in range(3 * TURN):
            first.put(n)
        second.put(0)
        gate.set()
        await first.finish()
        await second.finish()
        hashers.shutdown()

    try:
        run(main())
    finally:
        one.shutdown()
    # The second upload's batch went through after the first's first turn,
    # not after all of its batches.
    assert order.index(("second", 0)) == TURN
