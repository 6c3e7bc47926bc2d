"""Fault injection: thread starts that fail or are interrupted, callbacks and initializers
that raise ``BaseException``, concurrent shutdowns, futures resolved by hand.

Each test checks the promises that matter under faults: every accepted future is settled,
the counters add up, the queue bound holds and no thread outlives ``shutdown(wait=True)``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copyreg
import gc
import logging
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from tests import _probe as probe
from tests._support import Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolStats, ThreadPoolExecutor


def cant_start() -> BaseException:
    return RuntimeError("can't start new thread")


def assert_adds_up(stats: PoolStats) -> None:
    accounted = stats.completed + stats.failed + stats.cancelled + stats.active + stats.queued
    assert stats.submitted == accounted, stats
    assert stats.queue_capacity == 0 or stats.queued <= stats.queue_capacity, stats
    assert stats.workers <= stats.max_workers, stats


def settled(futures: list[Future[Any]]) -> bool:
    return all(f.done() for f in futures)


def breaking_pool(
    make_pool: PoolFactory, gate: Gate, tasks: int
) -> tuple[ThreadPoolExecutor, list[Future[Any]]]:
    """A pool whose initializer fails once ``gate`` opens, with ``tasks`` submitted."""

    def init() -> None:
        gate.wait()
        raise OSError("no database")

    pool = make_pool(1, initializer=init)
    return pool, [pool.submit(pow, 2, n) for n in range(tasks)]


def occupy(
    pool: ThreadPoolExecutor, gate: Gate, queued: int
) -> tuple[Future[Any], list[Future[Any]]]:
    """Blocks the pool's only thread on ``gate`` and queues ``queued`` tasks behind it."""
    busy = pool.submit(gate.wait, "busy")
    gate.wait_entered(1)
    return busy, [pool.submit(pow, 2, n) for n in range(queued)]


# -- a thread that cannot start ----------------------------------------------------------


def test_a_failed_start_raises_to_the_submitter_and_the_pool_recovers(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(2)
    with probe.failing_thread_starts(cant_start) as failed, pytest.raises(RuntimeError):
        pool.submit(pow, 2, 3)
    assert len(failed) == 1
    stats = pool.stats()
    assert_adds_up(stats)
    # No thread was left to run it, so the task failed rather than wait forever.
    assert (stats.submitted, stats.failed, stats.workers) == (1, 1, 0)
    assert pool.submit(pow, 2, 5).result(timeout=5) == 32  # starting works again
    assert_adds_up(pool.stats())


def test_a_failed_start_requeues_its_task_for_the_threads_that_run(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(3)
    busy = pool.submit(gate.wait, "busy")
    gate.wait_entered(1)
    with probe.failing_thread_starts(cant_start, times=1), pytest.raises(RuntimeError):
        pool.submit(pow, 2, 3)
    stats = pool.stats()
    assert (stats.workers, stats.queued, stats.active) == (1, 1, 1)
    assert_adds_up(stats)
    gate.open()
    assert busy.result(timeout=5) == "busy"
    wait_until(lambda: pool.stats().completed == 2)  # the busy thread ran the requeued task
    assert_adds_up(pool.stats())


def _rebuild(cls: type[RuntimeError], args: tuple[Any, ...], tb: Any) -> RuntimeError:
    return cls(*args).with_traceback(tb)


@contextlib.contextmanager
def copying_tracebacks(copying: bool) -> Iterator[None]:
    """Makes ``copy.copy(RuntimeError)`` keep the traceback, as tblib's reducers (which
    importing Dask's ``distributed`` installs) do for every exception class."""
    if not copying:
        yield
        return
    copyreg.pickle(RuntimeError, lambda e: (_rebuild, (type(e), e.args, e.__traceback__)))
    try:
        yield
    finally:
        del copyreg.dispatch_table[RuntimeError]


@pytest.mark.parametrize("copying", [False, True], ids=["plain", "tblib-like reducer"])
def test_a_failed_start_keeps_the_queue_bound_and_fails_what_does_not_fit(
    make_pool: PoolFactory, gate: Gate, copying: bool
) -> None:
    """A resize reserves a thread for the queued task; the room it leaves goes to the
    caller waiting for it; then the start fails: the task cannot go back over the bound,
    so it fails with a copy of the error, which pins no frame of the resize; the waiter's
    task runs."""
    pool = make_pool(1, max_queue_size=1)
    busy = pool.submit(gate.wait, "busy")
    gate.wait_entered(1)
    queued = pool.submit(pow, 2, 2)
    waiter: list[Future[Any]] = []
    thread = threading.Thread(target=lambda: waiter.append(pool.submit(pow, 2, 4)))
    thread.start()
    wait_until(lambda: probe.waiting(pool) == 1)
    with (
        copying_tracebacks(copying),
        probe.failing_thread_starts(cant_start),
        pytest.raises(RuntimeError),
    ):
        pool.resize(max_workers=2)
    thread.join(5)
    stats = pool.stats()
    assert stats.queued == 1  # the waiter's task, admitted into the room
    assert_adds_up(stats)
    error = queued.exception(timeout=5)
    assert error is not None
    assert error.__traceback__ is None
    with pytest.raises(RuntimeError, match="can't start new thread"):
        queued.result(timeout=5)
    gate.open()
    assert busy.result(timeout=5) == "busy"
    assert waiter[0].result(timeout=5) == 16
    assert_adds_up(pool.stats())


def test_a_pool_whose_first_threads_cannot_start_raises_and_leaves_no_thread(
    make_pool: PoolFactory,
) -> None:
    name = "cannot-start"
    with probe.failing_thread_starts(cant_start, times=1), pytest.raises(RuntimeError):
        make_pool(4, min_workers=2, name=name)
    gc.collect()  # the half-built executor is dropped: its one started thread exits
    wait_until(lambda: not threads_named(name))


def test_a_failed_start_of_an_idle_reservation_hands_its_task_to_an_idle_thread(
    make_pool: PoolFactory,
) -> None:
    """``resize(min_workers=2)`` reserves an idle thread; before it starts, a submit hands
    that thread a task (it is the most recently idle); then its start fails. The task must
    go to the thread that is idle, not into a queue that no idle thread watches."""
    pool = make_pool(3, min_workers=1)
    handed: list[Future[Any]] = []
    with (
        probe.failing_thread_starts(
            cant_start, times=1, before=lambda: handed.append(pool.submit(pow, 2, 3))
        ),
        pytest.raises(RuntimeError),
    ):
        pool.resize(min_workers=2)
    assert handed[0].result(timeout=5) == 8
    stats = pool.stats()
    assert (stats.workers, stats.completed) == (1, 1)
    assert_adds_up(stats)


# -- Ctrl-C inside Thread.start() ----------------------------------------------------------


@pytest.mark.parametrize("after_start", [True, False], ids=["thread-exists", "no-thread"])
def test_an_interrupted_start_reaches_the_caller_and_leaves_nothing_behind(
    make_pool: PoolFactory, after_start: bool
) -> None:
    pool = make_pool(2, name=f"interrupted-start-{after_start}")
    with (
        probe.failing_thread_starts(KeyboardInterrupt, times=1, after_start=after_start),
        pytest.raises(KeyboardInterrupt),
    ):
        pool.submit(pow, 2, 3)
    assert_adds_up(pool.stats())
    assert pool.submit(pow, 2, 5).result(timeout=5) == 32
    wait_until(lambda: pool.stats().active == 0)
    stats = pool.stats()
    assert_adds_up(stats)
    assert stats.completed + stats.failed == 2  # the interrupted task ran or failed
    assert stats.peak_workers <= 2
    pool.shutdown(wait=True)
    assert not [t for t in threads_named(pool.name) if t.is_alive()]


def test_an_interrupted_resize_still_starts_every_reserved_thread(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(1, min_workers=1, name="interrupted-resize")
    with (
        probe.failing_thread_starts(KeyboardInterrupt, times=1, after_start=True),
        pytest.raises(KeyboardInterrupt),
    ):
        pool.resize(min_workers=3, max_workers=3)
    wait_until(lambda: len(threads_named(pool.name)) == 3)
    assert pool.stats().workers in (2, 3)  # the interrupted one is counted if it checked in
    pool.shutdown(wait=True)
    assert not [t for t in threads_named(pool.name) if t.is_alive()]


# -- callbacks and initializers that raise BaseException ------------------------------------


def test_a_callback_raising_systemexit_during_cancel_stops_no_settlement(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    busy, queued = occupy(pool, gate, queued=3)

    def exit_now(future: Future[Any]) -> None:
        raise SystemExit("from a callback")

    queued[0].add_done_callback(exit_now)
    with pytest.raises(SystemExit):
        pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    concurrent.futures.wait(queued, timeout=5)  # woken, not left waiting
    gate.open()
    assert busy.result(timeout=5) == "busy"
    pool.shutdown(wait=True)
    stats = pool.stats()
    assert (stats.cancelled, stats.completed) == (3, 1)
    assert_adds_up(stats)


def test_a_callback_raising_keyboardinterrupt_when_the_pool_breaks_stops_nothing(
    make_pool: PoolFactory, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    pool, futures = breaking_pool(make_pool, gate, tasks=3)

    def interrupt(future: Future[Any]) -> None:
        raise KeyboardInterrupt

    futures[0].add_done_callback(interrupt)
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        gate.open()
        # Logged by the worker once every future is settled.
        wait_until(lambda: "a done-callback raised while pool" in caplog.text)
    assert settled(futures)
    for future in futures:
        with pytest.raises(concurrent.futures.thread.BrokenThreadPool):
            future.result()
    stats = pool.stats()
    assert stats.failed == 3
    assert_adds_up(stats)


# -- two shutdowns at once ---------------------------------------------------------------


def test_two_tasks_shutting_down_with_wait_at_once_do_not_deadlock(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(2, name="two-shutdowns")
    both = threading.Barrier(2, timeout=5)

    def shut_down(label: str) -> str:
        both.wait()
        pool.shutdown(wait=True)
        return label

    futures = [pool.submit(shut_down, "a"), pool.submit(shut_down, "b")]
    assert sorted(f.result(timeout=10) for f in futures) == ["a", "b"]
    pool.shutdown(wait=True)
    assert not [t for t in threads_named(pool.name) if t.is_alive()]


def test_a_task_and_a_callback_shutting_down_at_once_do_not_deadlock(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(2, name="task-and-callback")
    both = threading.Barrier(2, timeout=5)
    done = threading.Event()

    def shut_down() -> None:
        both.wait()
        pool.shutdown(wait=True)

    def callback(future: Future[Any]) -> None:
        shut_down()
        done.set()

    first = pool.submit(gate.wait, "first")
    first.add_done_callback(callback)  # runs on the first worker once the gate opens
    second = pool.submit(shut_down)
    gate.open()
    assert first.result(timeout=5) == "first"
    second.result(timeout=10)
    assert done.wait(10)
    pool.shutdown(wait=True)


# -- futures resolved by hand while queued --------------------------------------------------


def test_cancelling_a_queue_with_a_future_resolved_by_hand(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    busy, queued = occupy(pool, gate, queued=3)
    queued[1].set_result(-1)  # a user resolving it themselves
    pool.shutdown(wait=False, cancel_futures=True)
    assert [queued[0].cancelled(), queued[1].result(), queued[2].cancelled()] == [True, -1, True]
    gate.open()
    busy.result(timeout=5)
    pool.shutdown(wait=True)
    stats = pool.stats()
    assert stats.cancelled == 3  # none of the three ran
    assert_adds_up(stats)


def test_a_broken_pool_with_a_future_resolved_by_hand_adds_up(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool, futures = breaking_pool(make_pool, gate, tasks=3)
    futures[2].set_result(-1)
    gate.open()
    wait_until(lambda: probe.is_broken(pool) and pool.stats().active == 0)
    stats = pool.stats()
    assert (stats.failed, stats.cancelled, stats.active) == (2, 1, 0)
    assert_adds_up(stats)
    assert futures[2].result() == -1


# -- signal handlers -----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_stats_from_a_signal_handler_while_the_main_thread_waits_for_room(
    make_pool: PoolFactory, gate: Gate
) -> None:
    assert threading.current_thread() is threading.main_thread()
    pool = make_pool(1, max_queue_size=1)
    pool.submit(gate.wait)
    gate.wait_entered(1)
    pool.submit(pow, 2, 2)
    seen: list[PoolStats] = []
    in_handler = threading.Event()

    def handler(signum: int, frame: object) -> None:
        in_handler.set()
        seen.append(pool.stats())
        gate.open()

    def interrupt() -> None:
        wait_until(lambda: probe.waiting(pool) == 1)
        # Another thread holds the lock as the handler asks for it (a worker finishing a
        # task does, often): the handler must wait for it, not refuse.
        with probe.holding_lock(pool):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
            assert in_handler.wait(5)

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        thread = threading.Thread(target=interrupt)
        thread.start()
        assert pool.submit(pow, 2, 3).result(timeout=5) == 8
        thread.join(5)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(seen) == 1
    assert seen[0].queued == 1
