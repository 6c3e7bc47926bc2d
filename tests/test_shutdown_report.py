"""``shutdown(timeout=)`` and the ``ShutdownReport`` every shutdown returns: nothing
accepted is lost, even at a deadline: the dropped tasks come back to be persisted or
resubmitted, and the tasks still running are named and asked to stop."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from typing import Any

import pytest

from tests._support import DEADLINE, Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import DroppedTask, ShutdownReport, ThreadPoolExecutor, current_task

pytestmark = pytest.mark.timeout(30)

SHORT = 0.2  # a shutdown timeout, in seconds
MARGIN = 0.5  # how far from it the test accepts the return


def invariant_holds(pool: ThreadPoolExecutor) -> bool:
    s = pool.stats()
    return s.submitted == s.completed + s.failed + s.cancelled + s.expired + s.active + s.queued


def scaled(x: int, *, by: int) -> int:
    return x * by


def test_a_plain_shutdown_returns_an_empty_report(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    pool.submit(abs, -1).result()
    assert pool.shutdown() == ShutdownReport(timed_out=False, dropped=(), running=())


def test_drain_false_hands_back_the_dropped_tasks_in_queue_order(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 1)
    queued = [pool.submit(pow, n, 2) for n in range(3)]
    named = pool.options(name="kept").submit(scaled, 7, by=2)
    # The gate opens only after the queue is dropped: a free thread could take a task first.
    report = pool.shutdown(wait=False, drain=False)
    gate.open()
    pool.shutdown()
    assert not report.timed_out
    assert [(d.fn, d.args, d.kwargs) for d in report.dropped] == [
        (pow, (0, 2), {}),
        (pow, (1, 2), {}),
        (pow, (2, 2), {}),
        (scaled, (7,), {"by": 2}),  # the callable as given, not the option wrapper
    ]
    assert [d.future for d in report.dropped] == [*queued, named]
    assert all(isinstance(d, DroppedTask) and d.future.cancelled() for d in report.dropped)
    assert invariant_holds(pool)


def test_a_timeout_drops_the_queue_names_the_running_and_asks_them_to_stop(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(1)
    release = threading.Event()
    seen: dict[str, Any] = {}

    def stubborn() -> str:
        handle = current_task()
        seen["started"] = True
        release.wait(DEADLINE)  # does not look at its handle until released
        seen["cancelled"] = handle.cancelled
        return "done late"

    running = pool.options(name="stubborn").submit(stubborn)
    wait_until(lambda: "started" in seen)
    queued = [pool.submit(abs, -n) for n in range(4)]
    started = time.monotonic()
    report = pool.shutdown(timeout=SHORT)
    assert abs(time.monotonic() - started - SHORT) < MARGIN
    assert report.timed_out
    assert report.running == ("stubborn",)
    assert [d.future for d in report.dropped] == queued
    assert all(f.cancelled() for f in queued)
    assert invariant_holds(pool)
    release.set()
    assert running.result(timeout=DEADLINE) == "done late"  # it counts as usual
    assert seen["cancelled"] is True
    wait_until(lambda: pool.stats().active == 0)
    s = pool.stats()
    assert (s.completed, s.cancelled, s.queued) == (1, 4, 0)


def test_a_cooperative_task_stops_when_a_shutdown_times_out(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    started = threading.Barrier(3)

    def polite(step: float) -> int:
        started.wait(DEADLINE)
        steps = 0
        while not current_task().wait(step):
            steps += 1
        return steps

    futures = [pool.submit(polite, 0.01) for _ in range(2)]
    started.wait(DEADLINE)
    report = pool.shutdown(timeout=SHORT)
    assert report.timed_out
    assert (
        sorted(report.running)
        == ["test_a_cooperative_task_stops_when_a_shutdown_times_out.<locals>.polite"] * 2
    )
    assert all(f.result(timeout=DEADLINE) >= 0 for f in futures)  # they returned early
    wait_until(lambda: pool.stats().workers == 0)


def test_dropped_tasks_can_be_resubmitted_elsewhere(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1)
    pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 1)
    for n in range(5):
        pool.submit(pow, n, 3)
    report = pool.shutdown(timeout=0.05)
    gate.open()
    with ThreadPoolExecutor(2) as other:
        again = [other.submit(d.fn, *d.args, **d.kwargs) for d in report.dropped]
        assert [f.result() for f in again] == [n**3 for n in range(5)]


def test_within_the_timeout_it_is_a_plain_shutdown(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    futures = [pool.submit(abs, -n) for n in range(10)]
    report = pool.shutdown(timeout=DEADLINE)
    assert report == ShutdownReport()
    assert [f.result() for f in futures] == list(range(10))


def test_without_wait_it_never_times_out(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1)
    pool.submit(gate.wait)
    started = time.monotonic()
    report = pool.shutdown(wait=False, timeout=SHORT)
    assert time.monotonic() - started < SHORT
    assert report == ShutdownReport(timed_out=False)
    gate.open()


def test_a_second_shutdown_with_a_timeout_returns_promptly(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 1)
    assert pool.shutdown(timeout=0.05).timed_out
    started = time.monotonic()
    second = pool.shutdown(timeout=0.05)
    assert time.monotonic() - started < MARGIN
    assert second.timed_out
    assert second.dropped == ()  # nothing left to drop
    gate.open()


def test_a_timed_out_shutdown_on_the_way_out_never_hides_the_blocks_exception(
    make_pool: PoolFactory, gate: Gate
) -> None:
    # CPython's proposal raised TimeoutError here, which would replace the ValueError.
    pool = make_pool(1)
    reports: list[ShutdownReport] = []

    def block() -> None:
        with contextlib.ExitStack() as stack:
            stack.callback(lambda: reports.append(pool.shutdown(timeout=0.05)))
            pool.submit(gate.wait)
            wait_until(lambda: gate.entered == 1)
            raise ValueError("the block's own")

    with pytest.raises(ValueError, match="the block's own"):
        block()
    assert reports[0].timed_out
    assert reports[0].running == ("Gate.wait",)
    gate.open()


@pytest.mark.parametrize(
    ("value", "error"), [(-1.0, ValueError), (math.nan, ValueError), ("1", TypeError)]
)
def test_a_bad_timeout_raises_at_the_call(
    make_pool: PoolFactory, value: Any, error: type[Exception]
) -> None:
    pool = make_pool(1)
    with pytest.raises(error, match="timeout"):
        pool.shutdown(timeout=value)
    assert pool.submit(abs, -1).result() == 1  # the pool was not shut down
