"""asyncio with the pool as the loop's *default* executor: ``asyncio.to_thread``,
``run_in_executor(None, ...)``, ``shutdown_default_executor`` and ``asyncio.run``'s cleanup.

``tests/test_asyncio.py`` covers the basics (an explicit pool, the default executor running
calls, an explicit ``shutdown_default_executor()``, errors and cancellation); these tests
cover what real asyncio code does beyond them: context variables through ``to_thread``, the
default and an explicit pool side by side, ``asyncio.run`` cleaning up a pool with work still
in it, the shutdown timeout of Python 3.13+, and a bounded pool as the default executor (its
``submit`` runs on the event loop's thread).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading

import pytest

from tests import _probe as probe
from tests._support import Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, ThreadPoolExecutor

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def refuses_work(pool: ThreadPoolExecutor) -> bool:
    """Whether ``pool`` has been shut down (its ``submit`` raises RuntimeError)."""
    try:
        pool.submit(int)
    except PoolOverloaded:
        return False
    except RuntimeError:
        return True
    return False


def thread_name() -> str:
    return threading.current_thread().name


@pytest.mark.timeout(20)
def test_to_thread_carries_each_tasks_context_to_the_pool(make_pool: PoolFactory) -> None:
    """``asyncio.to_thread`` runs the call in a copy of the calling task's context on the
    default executor: every call sees its own task's value, on threads the pool reuses, and
    a value the call sets does not leak back into the task."""
    pool = make_pool(2)
    barrier = threading.Barrier(2)

    def read_then_overwrite(index: int) -> tuple[str, str]:
        if index < 2:
            barrier.wait()  # the first two calls meet: both threads of the pool run
        seen = request_id.get()
        request_id.set("set inside the call")
        return seen, thread_name()

    async def handle(index: int) -> tuple[str, str, str]:
        request_id.set(f"request-{index}")
        seen, thread = await asyncio.to_thread(read_then_overwrite, index)
        return seen, thread, request_id.get()

    async def main() -> list[tuple[str, str, str]]:
        asyncio.get_running_loop().set_default_executor(pool)
        return await asyncio.gather(*(handle(i) for i in range(10)))

    results = asyncio.run(main())
    for index, (seen, thread, after) in enumerate(results):
        assert seen == f"request-{index}"
        assert after == f"request-{index}"  # the call's own set() stayed in its copy
        assert thread.startswith(pool.name + "_"), thread
    assert len({thread for _, thread, _ in results}) == 2  # ten calls, two reused threads
    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.peak_workers) == (10, 10, 2), stats
    assert request_id.get() == "unset"  # nothing leaked into the test's own context


def test_default_and_explicit_executors_side_by_side(make_pool: PoolFactory) -> None:
    """``run_in_executor(None, ...)`` and ``to_thread`` use the default pool, while
    ``run_in_executor(pool, ...)`` uses the pool it is given, each counting its own calls."""
    default_pool = make_pool(2)
    explicit_pool = make_pool(2)

    async def main() -> tuple[list[str], list[str]]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(default_pool)
        by_default = [
            await loop.run_in_executor(None, thread_name),
            await asyncio.to_thread(thread_name),
        ]
        explicit = [await loop.run_in_executor(explicit_pool, thread_name) for _ in range(3)]
        return by_default, explicit

    by_default, explicit = asyncio.run(main())
    assert all(name.startswith(default_pool.name + "_") for name in by_default), by_default
    assert all(name.startswith(explicit_pool.name + "_") for name in explicit), explicit
    assert default_pool.stats().completed == 2
    assert explicit_pool.stats().completed == 3
    # asyncio.run shut the default executor down, and only that one.
    assert refuses_work(default_pool)
    assert not threads_named(default_pool.name)
    assert explicit_pool.submit(pow, 2, 3).result() == 8


@pytest.mark.timeout(20)
def test_asyncio_run_drains_the_default_executor_on_exit(make_pool: PoolFactory) -> None:
    """``asyncio.run`` cancels the tasks still pending when ``main()`` returns, then shuts
    the default executor down and waits for it: a call already running finishes, a queued
    call whose awaiting task was cancelled is discarded (``cancelled``), and no pool thread
    outlives ``asyncio.run``."""
    pool = make_pool(1)
    gate = Gate()
    finished: list[str] = []
    abandoned: list[asyncio.Future[None]] = []

    def running_call() -> None:
        gate.wait()
        finished.append("running call")

    def queued_call() -> None:
        finished.append("queued call")  # never runs: its awaiting task is cancelled

    def open_once_shut_down() -> None:
        wait_until(lambda: probe.closed(pool))  # asyncio.run's shutdown has begun
        gate.open()

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(pool)
        assert await asyncio.to_thread(pow, 2, 4) == 16
        # Fire and forget: main() returns while one call runs and one waits in the queue.
        abandoned.append(asyncio.ensure_future(asyncio.to_thread(running_call)))
        abandoned.append(asyncio.ensure_future(asyncio.to_thread(queued_call)))
        await asyncio.sleep(0)  # one loop turn: both tasks have submitted their calls
        gate.wait_entered(1)
        assert (pool.stats().active, pool.stats().queued) == (1, 1)

    opener = threading.Thread(target=open_once_shut_down)
    opener.start()
    asyncio.run(main())
    opener.join()
    assert [task.cancelled() for task in abandoned] == [True, True]
    assert finished == ["running call"]
    assert not threads_named(pool.name)
    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.cancelled) == (3, 2, 1), stats
    assert (stats.active, stats.queued, stats.workers) == (0, 0, 0), stats


@pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason="the timeout is new in 3.12, and 3.12.1 applies it only after the whole "
    "shutdown has finished; 3.13 bounds the wait itself",
)
@pytest.mark.timeout(20)
def test_shutdown_default_executor_timeout_leaves_the_running_call_to_finish(
    make_pool: PoolFactory,
) -> None:
    """``shutdown_default_executor(timeout)`` with a call still running: it warns after
    ``timeout`` seconds and calls ``pool.shutdown(wait=False)`` while its own helper thread
    still waits in ``pool.shutdown(wait=True)``. The pool refuses new work at once, the
    running call finishes, both shutdowns return and the threads exit."""
    pool = make_pool(1)
    gate = Gate()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        running = asyncio.ensure_future(asyncio.to_thread(gate.wait, "finished late"))
        await asyncio.sleep(0)
        gate.wait_entered(1)
        if sys.version_info >= (3, 13):  # for mypy, which checks this file as 3.10
            with pytest.warns(RuntimeWarning, match="did not finishing joining its threads"):
                await loop.shutdown_default_executor(timeout=0.05)
        assert refuses_work(pool)
        assert pool.stats().active == 1  # still running: the timeout interrupts nothing
        gate.open()
        assert await running == "finished late"

    asyncio.run(main())
    wait_until(lambda: not threads_named(pool.name))
    # asyncio's helper thread returns from its shutdown(wait=True) too.
    wait_until(lambda: not any(t.name.endswith("(_do_shutdown)") for t in threading.enumerate()))
    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.workers) == (1, 1, 0), stats


def fill_default_executor(pool: ThreadPoolExecutor, gate: Gate) -> list[asyncio.Future[object]]:
    """Makes ``pool`` the running loop's default executor and fills its one thread and its
    one queue slot with calls held on ``gate``; returns their futures."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(pool)
    accepted = [
        loop.run_in_executor(None, gate.wait, "running"),
        loop.run_in_executor(None, gate.wait, "queued"),
    ]
    gate.wait_entered(1)
    return accepted


@pytest.mark.timeout(20)
def test_bounded_default_executor_that_fails_fast(make_pool: PoolFactory) -> None:
    """A bounded default executor with ``submit_timeout=0``: when it is full,
    ``run_in_executor(None, ...)`` raises ``PoolOverloaded`` at the call (``submit`` runs
    there) and ``to_thread`` raises it from the ``await``; the loop carries on and the
    accepted calls finish."""
    pool = make_pool(1, max_queue_size=1, submit_timeout=0)
    gate = Gate()

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        accepted = fill_default_executor(pool, gate)
        with pytest.raises(PoolOverloaded, match="capacity 1"):
            loop.run_in_executor(None, int)  # raises before there is anything to await
        with pytest.raises(PoolOverloaded):
            await asyncio.to_thread(int)
        assert await asyncio.sleep(0, "loop still runs") == "loop still runs"
        gate.open()
        return list(await asyncio.gather(*accepted))

    assert asyncio.run(main()) == ["running", "queued"]
    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.rejected) == (2, 2, 2), stats


@pytest.mark.timeout(20)
def test_bounded_default_executor_waiting_for_room_blocks_the_loop(
    make_pool: PoolFactory,
) -> None:
    """A bounded default executor that waits for room (``submit_timeout=None``) waits on
    the event loop's thread: while ``to_thread`` waits for a slot, nothing else on the loop
    runs. A callback scheduled during the wait runs only after room was made."""
    pool = make_pool(1, max_queue_size=1)
    gate = Gate()
    order: list[str] = []

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        accepted = fill_default_executor(pool, gate)

        def make_room_once_the_loop_waits() -> None:
            wait_until(lambda: probe.waiting(pool) == 1)
            loop.call_soon_threadsafe(order.append, "loop ran")
            order.append("room made")
            gate.open()

        helper = threading.Thread(target=make_room_once_the_loop_waits)
        helper.start()
        waited = await asyncio.to_thread(thread_name)  # blocks the loop in submit()
        helper.join()
        return [*await asyncio.gather(*accepted), waited]

    running, queued, waited = asyncio.run(main())
    assert (running, queued) == ("running", "queued")
    assert isinstance(waited, str)
    assert waited.startswith(pool.name + "_")
    assert order == ["room made", "loop ran"]
    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.rejected) == (3, 3, 0), stats
