"""Running tasks: failures never kill a worker, initializers, and no leftover references."""

from __future__ import annotations

import gc
import logging
import threading
import traceback
import weakref
from concurrent.futures import Future
from concurrent.futures.thread import BrokenThreadPool

import pytest

from tests import _probe as probe
from tests._support import Gate, wait_until
from tests.conftest import PoolFactory


def current_name() -> str:
    return threading.current_thread().name


def raise_(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad"), KeyboardInterrupt(), SystemExit(3), GeneratorExit(), MemoryError()],
    ids=lambda e: type(e).__name__,
)
def test_any_exception_goes_onto_the_future(make_pool: PoolFactory, exc: BaseException) -> None:
    pool = make_pool(1)
    first = pool.submit(current_name).result()
    future = pool.submit(raise_, exc)
    assert future.exception() is exc
    with pytest.raises(type(exc)):
        future.result()
    assert pool.submit(current_name).result() == first, "the same worker survived"
    stats = pool.stats()
    assert (stats.failed, stats.completed, stats.workers) == (1, 2, 1)


def test_exception_keeps_its_traceback(make_pool: PoolFactory) -> None:
    def deep() -> None:
        raise LookupError("deep down")

    def task() -> None:
        deep()

    pool = make_pool(1)
    exc = pool.submit(task).exception()
    assert exc is not None
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert "in task" in text
    assert "in deep" in text
    assert "deep down" in text


def test_builtin_failure_keeps_a_traceback(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    exc = pool.submit(int, "x").exception()
    assert isinstance(exc, ValueError)
    assert exc.__traceback__ is not None


def test_raising_done_callback_is_logged_and_the_worker_survives(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(1)
    first = pool.submit(current_name).result()
    gate = threading.Event()

    def bad_callback(_: Future[int]) -> None:
        raise RuntimeError("callback broke")

    def exiting_callback(_: Future[int]) -> None:
        gate.set()
        raise SystemExit("callback exits")

    with caplog.at_level(logging.ERROR):
        pool.submit(int).add_done_callback(bad_callback)
        pool.submit(int).add_done_callback(exiting_callback)
        assert gate.wait(10)
        assert pool.submit(current_name).result() == first
    messages = [r.getMessage() for r in caplog.records]
    assert any("exception calling callback" in m for m in messages)
    [ours] = [r for r in caplog.records if r.name == "threadpool_plus"]
    assert ours.exc_info is not None
    assert (ours.__dict__["pool"], ours.__dict__["worker"]) == (pool.name, first)
    assert pool.stats().workers == 1


def test_initializer_runs_once_in_every_thread(make_pool: PoolFactory, gate: Gate) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def init(tag: str) -> None:
        with lock:
            seen.append(f"{tag}:{current_name()}")

    pool = make_pool(3, initializer=init, initargs=("x",))
    futures = [pool.submit(gate.wait, i) for i in range(3)]
    gate.wait_entered(3)
    gate.open()
    for future in futures:
        future.result()
    for _ in range(20):
        pool.submit(int).result()
    assert len(seen) == 3
    assert len(set(seen)) == 3
    assert all(entry.startswith("x:") for entry in seen)


def failing_init() -> None:
    raise OSError("no database")


def test_initializer_failure_breaks_the_pool(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def init() -> None:
        release.wait(10)
        failing_init()

    with caplog.at_level(logging.CRITICAL, logger="threadpool_plus"):
        pool = make_pool(1, initializer=init)
        futures = [pool.submit(int) for _ in range(5)]
        release.set()
        for future in futures:
            with pytest.raises(BrokenThreadPool):
                future.result(timeout=10)
    with pytest.raises(BrokenThreadPool, match="initializer failed"):
        pool.submit(int)
    stats = pool.stats()
    assert (stats.submitted, stats.failed, stats.queued, stats.active) == (5, 5, 0, 0)
    assert any("initializer" in r.getMessage() and r.exc_info for r in caplog.records)
    wait_until(lambda: pool.stats().workers == 0)


def test_initializer_failure_in_a_thread_started_later(
    make_pool: PoolFactory, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    """The first thread initialises fine; a scale-up thread fails and breaks the pool."""
    calls: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def init() -> None:
        with lock:
            calls.append(1)
            later = len(calls) > 1
        if later:
            release.wait(10)
            raise OSError("second thread cannot connect")

    with caplog.at_level(logging.CRITICAL, logger="threadpool_plus"):
        pool = make_pool(2, initializer=init)
        running = pool.submit(gate.wait, "first")
        gate.wait_entered(1)
        doomed = [pool.submit(int) for _ in range(4)]
        release.set()
        for future in doomed:
            with pytest.raises(BrokenThreadPool):
                future.result(timeout=10)
    with pytest.raises(BrokenThreadPool):
        pool.submit(int)
    gate.open()
    assert running.result(timeout=10) == "first", "a task already running finishes"
    wait_until(lambda: pool.stats().active == 0)
    stats = pool.stats()
    assert (stats.failed, stats.completed) == (4, 1)
    assert stats.submitted == stats.failed + stats.completed


def test_initializer_failure_with_min_workers(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.CRITICAL, logger="threadpool_plus"):
        pool = make_pool(2, min_workers=2, initializer=failing_init)
        wait_until(lambda: probe.is_broken(pool))
    with pytest.raises(BrokenThreadPool):
        pool.submit(int)
    wait_until(lambda: pool.stats().workers == 0)


class Payload:
    """Something a weak reference can watch."""


def test_finished_task_leaves_no_reference(make_pool: PoolFactory) -> None:
    def task(arg: Payload, *, key: Payload) -> Payload:
        return Payload()

    pool = make_pool(1, idle_timeout=None)
    arg, key = Payload(), Payload()
    watched_arg, watched_key = weakref.ref(arg), weakref.ref(key)
    future = pool.submit(task, arg, key=key)
    watched_result = weakref.ref(future.result())
    del arg, key, future
    gc.collect()
    wait_until(lambda: pool.stats().idle_workers == 1)
    gc.collect()
    assert watched_arg() is None
    assert watched_key() is None
    assert watched_result() is None


def test_failed_task_leaves_no_reference(make_pool: PoolFactory) -> None:
    def task(arg: Payload) -> None:
        raise ValueError("boom")

    pool = make_pool(1, idle_timeout=None)
    arg = Payload()
    watched = weakref.ref(arg)
    future = pool.submit(task, arg)
    exc = future.exception()
    assert isinstance(exc, ValueError)
    del arg, future
    wait_until(lambda: pool.stats().idle_workers == 1)
    gc.collect()
    # The exception's traceback holds the task's own frame (and so its argument) only
    # while the caller keeps the exception.
    del exc
    gc.collect()
    assert watched() is None


def test_future_resolved_by_hand_before_its_task_starts(
    make_pool: PoolFactory, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    """Misuse of a queued future never kills a worker: its task is skipped, counted, logged."""
    pool = make_pool(1)
    running = pool.submit(gate.wait)
    gate.wait_entered(1)
    queued = pool.submit(int, "1")
    queued.set_result(99)  # not the pool's business to allow, but it must survive it
    with caplog.at_level(logging.WARNING, logger="threadpool_plus"):
        gate.open()
        running.result()
        assert pool.submit(int, "5").result() == 5, "the worker survived"
    assert queued.result() == 99
    stats = pool.stats()
    assert (stats.cancelled, stats.completed) == (1, 2)
    assert any("resolved before its task started" in r.getMessage() for r in caplog.records)
