"""Cooperative cancellation: ``future.cancel(interrupt=True)`` and a task's handle
(``current_task()``). A thread is never interrupted by force: the task is told, and the pool
counts it as cancelled when it returns.

``pool.submit`` is typed as the standard pool's (returning ``Future``, whose ``cancel()``
takes no argument), so that subclasses overriding it keep type-checking; typed code reaches
``cancel(interrupt=True)`` through ``TaskFuture``, as ``interrupt()`` below does. A view's
``submit`` returns ``TaskFuture`` already."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Any, cast

import pytest

from tests._support import DEADLINE, Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import TaskCancelled, TaskFuture, TaskHandle, current_task

pytestmark = pytest.mark.timeout(30)


def interrupt(future: concurrent.futures.Future[Any]) -> bool:
    return cast(TaskFuture[Any], future).cancel(interrupt=True)


class Running:
    """A task that reports its handle, then waits on it for cancellation."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.handle: TaskHandle | None = None
        self.woken: bool | None = None

    def __call__(self) -> str:
        self.handle = current_task()
        self.started.set()
        self.woken = self.handle.wait(DEADLINE)
        return "finished anyway"


@pytest.mark.parametrize("with_options", [False, True])
def test_interrupt_cancels_a_running_task_at_once_and_counts_it_when_it_returns(
    make_pool: PoolFactory, with_options: bool
) -> None:
    pool = make_pool(1)
    task = Running()
    if with_options:
        future: concurrent.futures.Future[str] = pool.options(name="long").submit(task)
    else:
        future = pool.submit(task)
    assert task.started.wait(DEADLINE)
    assert not future.cancel()  # the standard meaning: too late
    assert interrupt(future)
    assert future.cancelled()
    assert future.done()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(timeout=0)
    wait_until(lambda: task.woken is not None)
    assert task.woken is True
    assert task.handle is not None
    assert task.handle.cancelled
    wait_until(lambda: pool.stats().active == 0)
    stats = pool.stats()
    assert (stats.cancelled, stats.completed, stats.failed) == (1, 0, 0)


def test_interrupt_wakes_result_and_wait_at_once(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(2)
    future = pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 1)
    woke: dict[str, Any] = {}

    def in_result() -> None:
        try:
            future.result(timeout=DEADLINE)
        except concurrent.futures.CancelledError:
            woke["result"] = time.monotonic()

    def in_wait() -> None:
        done, _ = concurrent.futures.wait([future], timeout=DEADLINE)
        woke["wait"] = (time.monotonic(), len(done))

    waiters = [threading.Thread(target=in_result), threading.Thread(target=in_wait)]
    for waiter in waiters:
        waiter.start()
    wait_until(lambda: future._waiters != [])  # wait() has registered
    cancelled_at = time.monotonic()
    assert interrupt(future)
    for waiter in waiters:
        waiter.join(DEADLINE)
    assert woke["result"] - cancelled_at < 1.0
    assert woke["wait"][1] == 1
    assert woke["wait"][0] - cancelled_at < 1.0
    assert pool.stats().active == 1  # the task itself has not returned
    gate.open()
    wait_until(lambda: pool.stats().cancelled == 1)


def test_interrupt_of_a_task_not_started_is_a_plain_cancel(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    pool.submit(gate.wait)
    queued = pool.submit(abs, -1)
    assert interrupt(queued)
    gate.open()
    wait_until(lambda: pool.stats().cancelled == 1)
    assert pool.stats().active == 0


def test_interrupt_of_a_finished_task_does_nothing(make_pool: PoolFactory) -> None:
    future = make_pool(1).submit(abs, -4)
    assert future.result() == 4
    assert not interrupt(future)
    assert future.result() == 4


def test_a_handle_is_per_task_never_per_thread(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    first = Running()
    future = pool.submit(first)
    assert first.started.wait(DEADLINE)
    interrupt(future)
    wait_until(lambda: pool.stats().active == 0)
    handles = [pool.submit(current_task).result() for _ in range(2)]
    assert handles[0] is not handles[1]
    assert first.handle not in handles
    assert not any(h.cancelled for h in handles)
    assert [h.name for h in handles] == ["current_task"] * 2
    assert handles[0].deadline is None
    assert handles[0].remaining() is None


def test_check_raises_task_cancelled_once_cancelled(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    task = Running()
    future = pool.submit(task)
    assert task.started.wait(DEADLINE)
    assert task.handle is not None
    task.handle.check()  # not cancelled yet: nothing
    interrupt(future)
    with pytest.raises(TaskCancelled, match="cancelled") as caught:
        task.handle.check()
    assert isinstance(caught.value, concurrent.futures.CancelledError)


def test_on_cancel_runs_once_and_at_once_when_already_cancelled(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(1)
    calls: list[str] = []
    registered = threading.Event()
    release = threading.Event()

    def task() -> None:
        handle = current_task()
        handle.on_cancel(lambda: calls.append("first"))
        handle.on_cancel(lambda: 1 / 0)  # logged, harms nothing
        handle.on_cancel(lambda: calls.append("after the failing one"))
        registered.set()
        release.wait(DEADLINE)
        handle.on_cancel(lambda: calls.append("late"))  # already cancelled: runs now

    future = pool.submit(task)
    assert registered.wait(DEADLINE)
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        interrupt(future)
        interrupt(future)  # a second request runs nothing again
    assert calls == ["first", "after the failing one"]
    assert any("on_cancel" in r.getMessage() for r in caplog.records)
    release.set()
    wait_until(lambda: calls[-1:] == ["late"])
    wait_until(lambda: pool.stats().cancelled == 1)


def test_outside_a_task_the_handle_is_never_cancelled() -> None:
    handle = current_task()
    assert not handle.cancelled
    handle.check()
    assert handle.remaining() is None
    started = time.monotonic()
    assert handle.wait(0.01) is False
    assert time.monotonic() - started >= 0.005
    handle.on_cancel(lambda: None)  # accepted, never called


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda h: h.wait(-1), ValueError),
        (lambda h: h.wait(float("nan")), ValueError),
        (lambda h: h.wait("1"), TypeError),
        (lambda h: h.on_cancel(42), TypeError),
    ],
)
def test_bad_handle_arguments_raise(call: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        call(current_task())


def test_futures_are_task_futures_and_a_views_are_typed_so(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    plain = pool.submit(abs, -1)
    viewed: TaskFuture[int] = pool.options(name="typed").submit(abs, -2)
    assert isinstance(plain, TaskFuture)
    assert isinstance(viewed, TaskFuture)
    assert isinstance(plain, concurrent.futures.Future)
    assert (plain.result(), viewed.result()) == (1, 2)
    assert viewed.cancel(interrupt=True) is False  # done: type-checks without a cast
