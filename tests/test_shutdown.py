"""Shutdown: drain or cancel, wait, idempotence, and no deadlock from inside the pool."""

from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import ALL_COMPLETED, Future, as_completed, wait

import pytest

from tests import _probe as probe
from tests._support import Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import ShutdownReport, ThreadPoolExecutor, current_task


def test_drain_runs_every_accepted_task(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(2, name="drain")
    futures = [pool.submit(gate.wait, i) for i in range(20)]
    gate.wait_entered(2)
    closer = threading.Thread(target=pool.shutdown)
    closer.start()
    wait_until(lambda: probe.closed(pool))
    gate.open()
    closer.join()
    assert [f.result() for f in futures] == list(range(20))
    stats = pool.stats()
    assert (stats.completed, stats.cancelled, stats.workers) == (20, 0, 0)
    assert threads_named("drain") == []


@pytest.mark.parametrize("how", ["drain=False", "cancel_futures=True"])
def test_cancel_mode_cancels_what_has_not_started(
    make_pool: PoolFactory, gate: Gate, how: str
) -> None:
    pool = make_pool(2)
    futures = [pool.submit(gate.wait, i) for i in range(10)]
    gate.wait_entered(2)
    if how == "drain=False":
        pool.shutdown(wait=False, drain=False)
    else:
        pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in futures[2:])
    stats = pool.stats()
    assert (stats.cancelled, stats.active, stats.queued) == (8, 2, 0)
    gate.open()
    pool.shutdown()
    assert [f.result() for f in futures[:2]] == [0, 1], "running tasks finish"
    assert pool.stats().completed == 2


def test_cancelled_by_shutdown_wakes_wait_and_as_completed(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    running = pool.submit(gate.wait)
    gate.wait_entered(1)
    queued = [pool.submit(int) for _ in range(3)]
    woken: list[int] = []

    def waiter() -> None:
        done, _ = wait(queued, timeout=10, return_when=ALL_COMPLETED)
        woken.append(len(done))
        woken.append(sum(1 for _ in as_completed(queued, timeout=10)))

    thread = threading.Thread(target=waiter)
    thread.start()
    pool.shutdown(wait=False, drain=False)
    thread.join()
    assert woken == [3, 3]
    gate.open()
    running.result()


def test_wait_true_returns_after_threads_exit(make_pool: PoolFactory) -> None:
    pool = make_pool(4, min_workers=4, idle_timeout=None, name="join")
    assert len(threads_named("join")) == 4
    pool.shutdown(wait=True)
    assert threads_named("join") == []
    assert pool.stats().workers == 0


def test_shutdown_twice_is_harmless(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    future = pool.submit(int, "4")
    pool.shutdown()
    pool.shutdown()
    pool.shutdown(wait=False, drain=False)
    assert future.result() == 4


def test_second_shutdown_can_cancel_what_the_first_left(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    pool.submit(gate.wait)
    gate.wait_entered(1)
    queued = [pool.submit(int) for _ in range(3)]
    pool.shutdown(wait=False)
    assert not any(f.cancelled() for f in queued)
    pool.shutdown(wait=False, drain=False)
    assert all(f.cancelled() for f in queued)


def test_shutdown_from_a_task_does_not_deadlock(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    future = pool.submit(lambda: pool.shutdown(wait=True))
    assert future.result(timeout=10) == ShutdownReport()  # returned: nothing dropped
    with pytest.raises(RuntimeError):
        pool.submit(int)


def test_shutdown_from_a_task_still_drains_the_queue(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1)

    def close_from_inside() -> None:
        gate.wait()
        pool.shutdown(wait=True)

    first = pool.submit(close_from_inside)
    gate.wait_entered(1)
    queued = [pool.submit(int, str(i)) for i in range(5)]
    gate.open()
    first.result(timeout=10)
    assert [f.result(timeout=10) for f in queued] == list(range(5))


def test_shutdown_from_a_done_callback_does_not_deadlock(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    called = threading.Event()

    def callback(_: Future[int]) -> None:
        pool.shutdown(wait=True)
        called.set()

    pool.submit(int).add_done_callback(callback)
    assert called.wait(10)


def test_with_block_drains_and_joins() -> None:
    results: list[int] = []
    with ThreadPoolExecutor(2, name="scoped") as pool:
        for i in range(50):
            pool.submit(results.append, i)
    assert sorted(results) == list(range(50))
    assert threads_named("scoped") == []
    with pytest.raises(RuntimeError):
        pool.submit(int)


def test_user_cancelled_queued_future_counts_when_discarded(
    make_pool: PoolFactory, gate: Gate
) -> None:
    """A future cancelled while queued keeps its slot until the pool reaches it."""
    pool = make_pool(1, max_queue_size=2, submit_timeout=0)
    running = pool.submit(gate.wait)
    gate.wait_entered(1)
    queued = pool.submit(int)
    assert queued.cancel()
    stats = pool.stats()
    assert (stats.queued, stats.cancelled) == (1, 0)
    gate.open()
    running.result()
    wait_until(lambda: pool.stats().cancelled == 1)
    stats = pool.stats()
    assert (stats.queued, stats.completed, stats.submitted) == (0, 1, 2)


def test_counters_include_a_task_when_its_future_resolves(make_pool: PoolFactory) -> None:
    pool = make_pool(3)
    for i in range(100):
        pool.submit(int).result()
        stats = pool.stats()
        assert stats.completed == i + 1
        assert stats.submitted == stats.completed + stats.active + stats.queued


def test_wait_true_right_after_a_submit_joins_the_thread_it_started(
    make_pool: PoolFactory,
) -> None:
    """The thread a submit just started may not have reported in yet when the same thread
    calls ``shutdown(wait=True)``: it must be waited for all the same."""
    pool = make_pool(1, name="fresh")
    release = threading.Event()

    def release_once_shutdown_waits() -> None:
        wait_until(lambda: probe.joiners(pool) == 1)
        release.set()

    with probe.delayed_thread_runs(release):
        future = pool.submit(pow, 2, 3)
    helper = threading.Thread(target=release_once_shutdown_waits)
    helper.start()
    pool.shutdown(wait=True)
    helper.join(5)
    assert future.result(timeout=0) == 8
    assert not [t for t in threads_named(pool.name) if t.is_alive()]


def test_a_shut_down_pool_keeps_no_dead_thread_alive(make_pool: PoolFactory) -> None:
    """After ``shutdown(wait=True)`` the pool holds no reference to its exited threads (code
    that counts live ``Thread`` objects, such as CPython's own tests, would see them), and
    no reference cycle does either: they go at once, not at the next garbage collection."""
    pool = make_pool(3, min_workers=3, name="no-dead-threads")
    assert pool.submit(current_task).result().name == "current_task"  # running_handle used
    threads = [weakref.ref(t) for t in threads_named(pool.name)]
    assert len(threads) == 3
    gc.collect()
    gc.disable()
    try:
        pool.shutdown(wait=True)
        assert [ref() for ref in threads] == [None, None, None]
    finally:
        gc.enable()
