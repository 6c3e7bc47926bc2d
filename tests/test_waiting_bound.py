"""``max_waiting_submitters``: a bound on the callers blocked waiting for room, so that an
overload cannot pile up an unbounded crowd of blocked threads."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pytest

from tests._support import DEADLINE, Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, ThreadPoolExecutor

pytestmark = pytest.mark.timeout(30)


def blocked_submitter(pool: ThreadPoolExecutor, value: int) -> tuple[threading.Thread, list[Any]]:
    """A thread that submits ``abs(-value)`` and keeps its future (or its error)."""
    out: list[Any] = []

    def submit() -> None:
        try:
            out.append(pool.submit(abs, -value))
        except PoolOverloaded as exc:
            out.append(exc)

    thread = threading.Thread(target=submit)
    thread.start()
    return thread, out


def test_the_caller_past_the_bound_is_refused_at_once(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1, max_waiting_submitters=2)
    pool.submit(gate.wait)
    pool.submit(gate.wait)  # the thread is busy, the queue full
    waiting = [blocked_submitter(pool, n) for n in (1, 2)]
    wait_until(lambda: pool.stats().waiting_submitters == 2)
    with pytest.raises(PoolOverloaded):
        pool.submit(abs, -3)  # submit_timeout=None, yet it does not wait: the line is full
    stats = pool.stats()
    assert (stats.rejected, stats.waiting_submitters) == (1, 2)
    gate.open()
    results: list[Future[int]] = []
    for thread, out in waiting:
        thread.join(DEADLINE)
        results.extend(out)
    assert sorted(f.result(timeout=DEADLINE) for f in results) == [1, 2]  # both admitted
    assert pool.stats().waiting_submitters == 0


def test_a_place_in_line_frees_up_when_a_waiter_is_admitted(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1, max_queue_size=1, max_waiting_submitters=1)
    first = pool.submit(gate.wait)
    pool.submit(abs, -10)  # queued
    thread, out = blocked_submitter(pool, 1)
    wait_until(lambda: pool.stats().waiting_submitters == 1)
    with pytest.raises(PoolOverloaded):
        pool.submit(abs, -2)
    gate.open()
    first.result(timeout=DEADLINE)
    thread.join(DEADLINE)
    assert out[0].result(timeout=DEADLINE) == 1
    assert pool.submit(abs, -4).result(timeout=DEADLINE) == 4  # room again


def test_map_still_waits_past_the_bound(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1, max_waiting_submitters=1)
    pool.submit(gate.wait)
    pool.submit(gate.wait)
    thread, _ = blocked_submitter(pool, 1)
    wait_until(lambda: pool.stats().waiting_submitters == 1)
    results: list[list[int]] = []
    mapper = threading.Thread(target=lambda: results.append(list(pool.map(abs, [-5, -6]))))
    mapper.start()  # map never raises PoolOverloaded: it waits beyond the bound
    wait_until(lambda: pool.stats().waiting_submitters == 2)
    gate.open()
    mapper.join(DEADLINE)
    thread.join(DEADLINE)
    assert results == [[5, 6]]


def test_without_a_bound_any_number_may_wait(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1)
    pool.submit(gate.wait)
    pool.submit(gate.wait)
    waiting = [blocked_submitter(pool, n) for n in range(5)]
    wait_until(lambda: pool.stats().waiting_submitters == 5)
    gate.open()
    for thread, out in waiting:
        thread.join(DEADLINE)
        assert not isinstance(out[0], PoolOverloaded)
    assert pool.stats().rejected == 0


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError)]
)
def test_a_bad_bound_raises_at_construction(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_waiting_submitters"):
        ThreadPoolExecutor(1, max_waiting_submitters=value)
