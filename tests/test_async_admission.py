"""asyncio backpressure: ``await pool.asubmit(...)`` and ``await pool.arun(...)`` wait for room
without blocking the event loop, in one FIFO line with blocked threads."""

from __future__ import annotations

import asyncio
import math
import threading
from concurrent.futures import Future
from typing import Any

import pytest

from tests._support import DEADLINE, Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, TaskTimeout, ThreadPoolExecutor, current_task

pytestmark = pytest.mark.timeout(30)


def full_pool(make_pool: PoolFactory, gate: Gate, **options: Any) -> ThreadPoolExecutor:
    """One thread held on ``gate`` and a queue of one, full."""
    pool = make_pool(1, max_queue_size=1, **options)
    pool.submit(gate.wait)
    pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 1)
    return pool


async def until(predicate: Any) -> None:
    """Polls ``predicate`` without blocking the loop; fails after the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not predicate():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.001)


def counters_add_up(pool: ThreadPoolExecutor) -> bool:
    s = pool.stats()
    return s.submitted == s.completed + s.failed + s.cancelled + s.expired + s.active + s.queued


def test_arun_waits_for_room_without_blocking_the_loop(make_pool: PoolFactory, gate: Gate) -> None:
    pool = full_pool(make_pool, gate)

    async def main() -> tuple[int, int]:
        running = asyncio.ensure_future(pool.arun(pow, 2, 10))
        await until(lambda: pool.stats().waiting_submitters == 1)
        ticks = 0
        for _ in range(5):  # the loop runs while the coroutine waits for room
            await asyncio.sleep(0)
            ticks += 1
        assert not running.done()
        gate.open()
        return await running, ticks

    assert asyncio.run(main()) == (1024, 5)
    assert counters_add_up(pool)


def test_asubmit_returns_the_future_once_accepted(make_pool: PoolFactory) -> None:
    pool = make_pool(2)

    async def main() -> Future[int]:
        return await pool.asubmit(abs, -7)

    future = asyncio.run(main())
    assert future.result(timeout=DEADLINE) == 7


def test_threads_and_coroutines_share_one_fifo_line(make_pool: PoolFactory, gate: Gate) -> None:
    pool = full_pool(make_pool, gate)
    order: list[str] = []
    threads: list[threading.Thread] = []

    def thread_submits(tag: str) -> None:
        thread = threading.Thread(target=pool.submit, args=(order.append, tag))
        thread.start()
        threads.append(thread)

    async def main() -> None:
        thread_submits("thread 1")
        await until(lambda: pool.stats().waiting_submitters == 1)
        coroutine = asyncio.ensure_future(pool.asubmit(order.append, "coroutine"))
        await until(lambda: pool.stats().waiting_submitters == 2)
        thread_submits("thread 2")
        await until(lambda: pool.stats().waiting_submitters == 3)
        gate.open()
        (await coroutine).result(timeout=DEADLINE)

    asyncio.run(main())
    for thread in threads:
        thread.join(DEADLINE)
    wait_until(lambda: len(order) == 3)
    assert order == ["thread 1", "coroutine", "thread 2"]


def test_a_coroutine_whose_timeout_runs_out_is_refused(make_pool: PoolFactory, gate: Gate) -> None:
    pool = full_pool(make_pool, gate, submit_timeout=0.1)

    async def main() -> None:
        with pytest.raises(PoolOverloaded):
            await pool.asubmit(abs, -1)

    asyncio.run(main())
    s = pool.stats()
    assert (s.rejected, s.waiting_submitters, s.submitted) == (1, 0, 2)
    gate.open()


def test_cancelling_before_acceptance_submits_nothing(make_pool: PoolFactory, gate: Gate) -> None:
    pool = full_pool(make_pool, gate)
    ran: list[int] = []

    async def main() -> None:
        waiting = asyncio.ensure_future(pool.asubmit(ran.append, 1))
        await until(lambda: pool.stats().waiting_submitters == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())
    assert pool.stats().waiting_submitters == 0
    gate.open()
    wait_until(lambda: pool.stats().active == 0)
    assert ran == []
    s = pool.stats()
    assert (s.submitted, s.completed, s.rejected) == (2, 2, 0)
    assert counters_add_up(pool)


def test_cancelling_arun_cancels_a_queued_task_or_asks_a_running_one_to_stop(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(1)
    started = threading.Event()

    def polite() -> str:
        started.set()
        return "stopped" if current_task().wait(DEADLINE) else "not told"

    async def main() -> None:
        running = asyncio.ensure_future(pool.arun(polite))
        await until(started.is_set)
        queued = asyncio.ensure_future(pool.arun(abs, -1))
        await until(lambda: pool.stats().queued == 1)
        queued.cancel()
        running.cancel()
        for task in (queued, running):
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    wait_until(lambda: pool.stats().active == 0)
    s = pool.stats()
    assert (s.cancelled, s.completed) == (2, 0)  # the queued one never ran; the other stopped


def test_several_loops_on_several_threads(make_pool: PoolFactory) -> None:
    pool = make_pool(2, max_queue_size=2)
    results: dict[int, list[int]] = {}

    def loop_thread(k: int) -> None:
        async def main() -> list[int]:
            return list(await asyncio.gather(*(pool.arun(pow, k, n) for n in range(6))))

        results[k] = asyncio.run(main())

    threads = [threading.Thread(target=loop_thread, args=(k,)) for k in (2, 3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert results == {k: [k**n for n in range(6)] for k in (2, 3, 5)}
    s = pool.stats()
    assert (s.submitted, s.completed, s.rejected) == (18, 18, 0)


def test_a_shutdown_refuses_waiting_coroutines(make_pool: PoolFactory, gate: Gate) -> None:
    pool = full_pool(make_pool, gate)

    async def main() -> None:
        waiting = asyncio.ensure_future(pool.asubmit(abs, -1))
        await until(lambda: pool.stats().waiting_submitters == 1)
        pool.shutdown(wait=False)
        with pytest.raises(RuntimeError, match="shutdown"):
            await waiting

    asyncio.run(main())
    gate.open()


def test_caller_runs_is_refused_in_an_event_loop(make_pool: PoolFactory, gate: Gate) -> None:
    pool = full_pool(make_pool, gate, submit_timeout=0, overflow="caller_runs")

    async def main() -> None:
        with pytest.raises(PoolOverloaded):
            await pool.asubmit(abs, -1)

    asyncio.run(main())
    assert (pool.stats().rejected, pool.stats().caller_ran) == (1, 0)
    gate.open()


def test_coroutines_count_against_max_waiting_submitters(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = full_pool(make_pool, gate, max_waiting_submitters=1)

    async def main() -> None:
        waiting = asyncio.ensure_future(pool.asubmit(abs, -1))
        await until(lambda: pool.stats().waiting_submitters == 1)
        with pytest.raises(PoolOverloaded):
            pool.submit(abs, -2)  # a thread now finds the line full
        gate.open()
        assert (await waiting).result(timeout=DEADLINE) == 1

    asyncio.run(main())


def test_a_views_deadline_counts_from_submission_even_while_waiting(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = full_pool(make_pool, gate)
    ran: list[int] = []

    async def main() -> None:
        view = pool.options(timeout=0.1, name="late")
        waiting = asyncio.ensure_future(view.arun(ran.append, 1))
        await until(lambda: pool.stats().waiting_submitters == 1)
        await asyncio.sleep(0.2)  # not synchronisation: the deadline passes in line
        gate.open()
        with pytest.raises(TaskTimeout):
            await waiting

    asyncio.run(main())
    wait_until(lambda: pool.stats().active == 0)
    s = pool.stats()
    assert (s.expired, s.overrunning) == (1, 0)
    assert ran == []


def test_asubmit_refuses_a_non_callable(make_pool: PoolFactory) -> None:
    pool = make_pool(1)

    async def main() -> None:
        with pytest.raises(TypeError, match="callable"):
            await pool.asubmit(42)  # type: ignore[arg-type]

    asyncio.run(main())


def test_a_pool_deadline_is_watched_only_once_a_waiting_coroutine_is_accepted(
    make_pool: PoolFactory, gate: Gate
) -> None:
    # task_timeout passes while the coroutine waits in line, then its submit_timeout runs
    # out: it is refused, and the watcher never counted the task it never accepted.
    pool = make_pool(1, max_queue_size=1, task_timeout=0.05, submit_timeout=0.3)
    forever = pool.options(timeout=math.inf)  # the pool's blockers have no deadline
    forever.submit(gate.wait)
    forever.submit(gate.wait)

    async def main() -> None:
        with pytest.raises(PoolOverloaded):
            await pool.asubmit(abs, -1)

    asyncio.run(main())
    gate.open()
    wait_until(lambda: pool.stats().active == 0)
    s = pool.stats()
    assert (s.overrunning, s.rejected) == (0, 1), s
    assert counters_add_up(pool)
