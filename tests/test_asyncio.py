"""asyncio integration: the pool as an executor for ``run_in_executor`` and as the default."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests._support import DEADLINE, Gate, threads_named, wait_until
from tests.conftest import PoolFactory


class Boom(Exception):
    """Raised by a task so that its propagation can be recognised."""


def current_thread_name() -> str:
    return threading.current_thread().name


def power_and_thread(base: int, exponent: int) -> tuple[int, str]:
    return base**exponent, current_thread_name()


def explode(message: str) -> None:
    raise Boom(message)


def test_run_in_executor_runs_the_call_on_the_pool(make_pool: PoolFactory) -> None:
    """``loop.run_in_executor(pool, fn, *args)`` runs ``fn(*args)`` on a pool thread."""
    pool = make_pool(2)

    async def main() -> tuple[int, str]:
        return await asyncio.get_running_loop().run_in_executor(pool, power_and_thread, 2, 10)

    result, thread = asyncio.run(main())
    assert result == 1024
    assert thread.startswith(pool.name + "_")
    assert pool.stats().completed == 1


def test_pool_is_accepted_as_the_default_executor(make_pool: PoolFactory) -> None:
    """``set_default_executor(pool)`` is accepted, and ``asyncio.to_thread`` and
    ``run_in_executor(None, ...)`` then run on the pool's threads."""
    pool = make_pool(2)

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        return [
            await asyncio.to_thread(current_thread_name),
            await loop.run_in_executor(None, current_thread_name),
        ]

    names = asyncio.run(main())
    assert all(name.startswith(pool.name + "_") for name in names), names
    assert pool.stats().completed == 2


def test_shutdown_default_executor_shuts_the_pool_down(make_pool: PoolFactory) -> None:
    """``loop.shutdown_default_executor()`` (which ``asyncio.run`` also calls on its way
    out) shuts the pool down and returns once its threads have exited."""
    pool = make_pool(2, min_workers=2, idle_timeout=None)
    gate = Gate()
    finished: list[str] = []

    def refused() -> bool:
        try:
            pool.submit(int)
        except RuntimeError:
            return True
        return False

    def open_once_shut_down() -> None:
        wait_until(refused)
        gate.open()

    def last_task() -> None:
        gate.wait()
        finished.append("last task")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        assert await loop.run_in_executor(None, pow, 2, 5) == 32
        running = loop.run_in_executor(None, last_task)
        # The task can only finish after shutdown has begun, so returning before it
        # finishes would show here.
        opener = threading.Thread(target=open_once_shut_down)
        opener.start()
        await loop.shutdown_default_executor()
        assert finished == ["last task"]
        assert not threads_named(pool.name)
        await running
        opener.join()
        with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
            pool.submit(int)

    asyncio.run(main())


def test_exception_propagates_to_the_awaiting_coroutine(make_pool: PoolFactory) -> None:
    """A task's exception is raised in the coroutine that awaits it; the pool carries on."""
    pool = make_pool(1)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        with pytest.raises(Boom, match="from the pool") as caught:
            await loop.run_in_executor(pool, explode, "from the pool")
        assert caught.traceback[-1].name == "explode"  # the task's own frame is kept
        return await loop.run_in_executor(pool, pow, 3, 3)

    assert asyncio.run(main()) == 27
    stats = pool.stats()
    assert (stats.failed, stats.completed) == (1, 1)


def test_cancelling_an_awaiting_coroutine_leaves_the_pool_working(
    make_pool: PoolFactory, gate: Gate
) -> None:
    """Cancelling coroutines that await a running and a queued task leaves the pool
    usable: the running task finishes, the queued one is discarded, counters add up."""
    pool = make_pool(1)

    async def call_on_pool(value: str) -> object:
        return await asyncio.get_running_loop().run_in_executor(pool, gate.wait, value)

    async def main() -> int:
        running = asyncio.create_task(call_on_pool("running"))
        queued = asyncio.create_task(call_on_pool("queued"))
        await asyncio.sleep(0)  # one loop turn: both tasks have submitted their calls
        gate.wait_entered(1)
        assert pool.stats().queued == 1
        running.cancel()
        queued.cancel()
        outcomes = await asyncio.gather(running, queued, return_exceptions=True)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes
        gate.open()
        after = asyncio.get_running_loop().run_in_executor(pool, pow, 2, 6)
        return await asyncio.wait_for(after, DEADLINE)

    assert asyncio.run(main()) == 64
    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.cancelled) == (3, 2, 1), stats
    assert (stats.active, stats.queued, stats.failed) == (0, 0, 0), stats
