"""Overflow policies: what ``submit`` does once ``submit_timeout`` runs out on a full pool.

``"reject"`` (the default) raises ``PoolOverloaded``; ``"drop_oldest"`` cancels the oldest
queued task (never silently: its future reports ``cancelled()``, and it is counted) and queues
the new one; ``"caller_runs"`` runs the new task in the submitting thread. ``try_submit``
always raises, and ``map`` always waits.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests import _probe
from tests._support import DEADLINE, Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, TaskFailure, ThreadPoolExecutor

pytestmark = pytest.mark.timeout(30)


def full_pool(
    make_pool: PoolFactory, gate: Gate, *, fill: bool = True, **options: Any
) -> ThreadPoolExecutor:
    """One thread held on ``gate`` and a queue of two, filled (unless ``fill`` is False)."""
    pool = make_pool(1, max_queue_size=2, **{"submit_timeout": 0, **options})
    pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 1)
    if fill:
        pool.submit(abs, -1)
        pool.submit(abs, -2)
    return pool


def counters_add_up(pool: ThreadPoolExecutor) -> bool:
    s = pool.stats()
    return s.submitted == s.completed + s.failed + s.cancelled + s.expired + s.active + s.queued


@pytest.mark.parametrize("wait", [0, 0.05])
def test_drop_oldest_cancels_the_oldest_queued_task_and_queues_the_new_one(
    make_pool: PoolFactory, gate: Gate, wait: float
) -> None:
    pool = full_pool(make_pool, gate, fill=False, overflow="drop_oldest", submit_timeout=wait)
    ran: list[str] = []
    oldest = pool.submit(ran.append, "oldest")
    second = pool.submit(ran.append, "second")
    newest = pool.submit(ran.append, "newest")  # no room: the oldest makes way
    assert oldest.cancelled()
    s = pool.stats()
    assert (s.dropped, s.cancelled, s.rejected, s.queued) == (1, 1, 0, 2)
    assert counters_add_up(pool)
    gate.open()
    second.result(timeout=DEADLINE)
    newest.result(timeout=DEADLINE)
    assert ran == ["second", "newest"]


def test_caller_runs_runs_the_task_in_the_submitting_thread(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = full_pool(make_pool, gate, overflow="caller_runs")
    seen: dict[str, Any] = {}

    def here(x: int) -> int:
        seen["thread"] = threading.current_thread()
        seen["lock held"] = _probe.lock_held(pool)
        seen["stats"] = pool.stats()  # a task run by the caller may use the pool
        return x * 10

    future = pool.submit(here, 4)
    assert future.done()
    assert future.result() == 40
    assert seen["thread"] is threading.current_thread()
    assert seen["lock held"] is False
    assert seen["stats"].active == 2  # the held task, and this one
    s = pool.stats()
    assert (s.caller_ran, s.completed, s.rejected, s.submitted) == (1, 1, 0, 4)
    assert counters_add_up(pool)
    gate.open()


def test_a_failure_run_by_the_caller_is_recorded_like_a_workers(
    make_pool: PoolFactory, gate: Gate
) -> None:
    failures: list[TaskFailure] = []
    pool = full_pool(make_pool, gate, overflow="caller_runs", on_task_error=failures.append)

    def broken() -> None:
        raise ValueError("in the caller")

    future = pool.submit(broken)
    with pytest.raises(ValueError, match="in the caller"):
        future.result(timeout=0)
    [failure] = failures
    assert (
        failure.task
        == "test_a_failure_run_by_the_caller_is_recorded_like_a_workers.<locals>.broken"
    )
    assert failure.thread == threading.current_thread().name
    assert pool.recent_failures() == [failure]
    s = pool.stats()
    assert (s.failed, s.caller_ran) == (1, 1)
    gate.open()


def test_ctrl_c_in_a_task_the_caller_runs_reaches_the_caller(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = full_pool(make_pool, gate, overflow="caller_runs")

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pool.submit(interrupted)
    s = pool.stats()
    assert (s.failed, s.caller_ran, s.active) == (1, 1, 1)  # counted; only the held task runs
    assert counters_add_up(pool)
    gate.open()


def test_caller_runs_refuses_on_a_thread_that_runs_an_event_loop(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = full_pool(make_pool, gate, overflow="caller_runs")

    async def main() -> None:
        with pytest.raises(PoolOverloaded):
            pool.submit(abs, -3)  # running it here would freeze the loop

    asyncio.run(main())
    assert (pool.stats().rejected, pool.stats().caller_ran) == (1, 0)
    gate.open()


def test_a_worker_submitting_to_its_own_full_pool_runs_the_task_itself(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(1, max_queue_size=1, submit_timeout=0, overflow="caller_runs")
    release = threading.Event()
    pool.submit(abs, -1)  # (the thread exists)

    def outer() -> int:
        pool.submit(release.wait, DEADLINE)  # fills the queue behind this task
        return pool.submit(pow, 2, 5).result(timeout=0)  # no room: run here, on the worker

    assert pool.submit(outer).result(timeout=DEADLINE) == 32
    release.set()
    wait_until(lambda: pool.stats().active == 0)
    assert pool.stats().caller_ran == 1


@pytest.mark.parametrize("policy", ["caller_runs", "drop_oldest"])
def test_try_submit_always_raises_and_map_always_waits(
    make_pool: PoolFactory, gate: Gate, policy: str
) -> None:
    pool = full_pool(make_pool, gate, overflow=policy)
    with pytest.raises(PoolOverloaded):
        pool.try_submit(abs, -3)
    results: list[list[int]] = []
    mapper = threading.Thread(target=lambda: results.append(list(pool.map(abs, [-4, -5]))))
    mapper.start()
    wait_until(lambda: pool.stats().waiting_submitters == 1)  # waiting, not overflowing
    gate.open()
    mapper.join(DEADLINE)
    assert results == [[4, 5]]
    s = pool.stats()
    assert (s.rejected, s.dropped, s.caller_ran) == (1, 0, 0)


@pytest.mark.parametrize(("value", "error"), [("drop_newest", ValueError), (1, TypeError)])
def test_a_bad_policy_raises_at_construction(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="overflow"):
        ThreadPoolExecutor(1, overflow=value)
