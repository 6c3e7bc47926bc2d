"""TrackedFuture behaves as ``concurrent.futures.Future`` does, without its Condition.

Most tests run against both classes, so the standard future is the reference: a
difference between the two is a bug in ours.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any

import pytest

from tests._support import DEADLINE, wait_until
from threadpool_plus import ThreadPoolExecutor, _future
from threadpool_plus._future import LeanFuture, ObservedFuture, TrackedFuture

FutureFactory = Callable[[], "Future[Any]"]

factories = pytest.mark.parametrize(
    "make", [Future, LeanFuture, ObservedFuture], ids=["stdlib", "lean", "observed"]
)


def waiting_threads(future: LeanFuture[Any]) -> int:
    """How many threads are parked in ``result()`` or ``exception()`` on ``future``."""
    with future._lock:
        return len(future._sleepers or ())


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Runs ``call`` in a new thread; the list receives what it returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)  # a hung one must not block exit
    thread.start()
    return thread, outcome


# -- the outcome ------------------------------------------------------------------------


@factories
def test_result_and_states(make: FutureFactory) -> None:
    future = make()
    assert not future.running()
    assert not future.done()
    assert not future.cancelled()
    assert future.set_running_or_notify_cancel() is True
    assert future.running()
    assert not future.done()
    future.set_result(42)
    assert future.done()
    assert not future.running()
    assert not future.cancelled()
    assert future.result() == 42
    assert future.exception() is None
    assert "state=finished returned int" in repr(future)


@factories
def test_exception_is_raised_with_its_traceback(make: FutureFactory) -> None:
    future = make()
    try:
        raise ValueError("boom")
    except ValueError as exc:
        future.set_exception(exc)
    with pytest.raises(ValueError, match="boom") as raised:
        future.result()
    assert raised.value.__traceback__ is not None
    assert future.exception() is raised.value
    assert "raised ValueError" in repr(future)


@factories
@pytest.mark.parametrize("timeout", [0, -1, 0.01])
def test_waiting_on_a_pending_future_times_out(make: FutureFactory, timeout: float) -> None:
    future = make()
    with pytest.raises(cf.TimeoutError):
        future.result(timeout)
    with pytest.raises(cf.TimeoutError):
        future.exception(timeout)
    future.set_result(1)  # a timed-out waiter left nothing behind that breaks this
    assert future.result(timeout) == 1


@factories
def test_resolving_twice_raises_invalid_state(make: FutureFactory) -> None:
    future = make()
    future.set_result(1)
    with pytest.raises(InvalidStateError, match="FINISHED"):
        future.set_result(2)
    with pytest.raises(InvalidStateError, match="FINISHED"):
        future.set_exception(ValueError())
    with pytest.raises(RuntimeError, match="unexpected state"):
        future.set_running_or_notify_cancel()
    assert future.result() == 1


# -- cancelling ----------------------------------------------------------------------------


@factories
def test_cancel_pending(make: FutureFactory) -> None:
    future = make()
    assert future.cancel() is True
    assert future.cancel() is True  # again: still cancelled
    assert future.cancelled()
    assert future.done()
    with pytest.raises(CancelledError):
        future.result()
    with pytest.raises(CancelledError):
        future.exception(0)
    with pytest.raises(InvalidStateError, match="CANCELLED"):
        future.set_result(1)
    assert future.set_running_or_notify_cancel() is False
    assert future.cancelled()


@factories
def test_cannot_cancel_running_or_finished(make: FutureFactory) -> None:
    running, finished = make(), make()
    running.set_running_or_notify_cancel()
    finished.set_result(None)
    assert running.cancel() is False
    assert finished.cancel() is False
    assert not running.cancelled()
    assert not finished.cancelled()


# -- callbacks ------------------------------------------------------------------------------


@factories
def test_callbacks_run_once_in_order_with_the_future(make: FutureFactory) -> None:
    future = make()
    seen: list[tuple[str, object]] = []
    future.add_done_callback(lambda f: seen.append(("before", f)))
    future.set_result(1)
    future.add_done_callback(lambda f: seen.append(("after", f)))  # runs at once
    assert seen == [("before", future), ("after", future)]


@factories
def test_cancel_runs_callbacks(make: FutureFactory) -> None:
    future = make()
    seen: list[bool] = []
    future.add_done_callback(lambda f: seen.append(f.cancelled()))
    future.cancel()
    assert seen == [True]


@factories
def test_a_raising_callback_is_logged_and_the_others_still_run(
    make: FutureFactory, caplog: pytest.LogCaptureFixture
) -> None:
    future = make()
    seen: list[int] = []

    def bad(_: Future[Any]) -> None:
        raise RuntimeError("callback broke")

    future.add_done_callback(bad)
    future.add_done_callback(lambda f: seen.append(f.result()))
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        future.set_result(7)
        future.add_done_callback(bad)  # on a done future: called at once, also logged
    assert seen == [7]
    records = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert len(records) == 2
    assert all("exception calling callback for" in r.getMessage() for r in records)


# -- waiting threads -----------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["result", "exception", "cancel"])
def test_every_waiting_thread_is_woken(outcome: str) -> None:
    future: LeanFuture[int] = LeanFuture()
    # No timeout: a waiter that is never woken hangs, and the test fails on it.
    waiters = [in_thread(future.result) for _ in range(8)]
    wait_until(lambda: waiting_threads(future) == 8)
    if outcome == "result":
        future.set_result(5)
    elif outcome == "exception":
        future.set_exception(KeyError("k"))
    else:
        assert future.cancel()
    for thread, _ in waiters:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    got = [seen[0] for _, seen in waiters]
    if outcome == "result":
        assert got == [5] * 8
    elif outcome == "exception":
        assert all(isinstance(e, KeyError) for e in got)
    else:
        assert all(isinstance(e, CancelledError) for e in got)
    assert waiting_threads(future) == 0


def test_a_timed_out_waiter_stops_waiting() -> None:
    future: LeanFuture[int] = LeanFuture()
    with pytest.raises(cf.TimeoutError):
        future.result(0.01)
    assert waiting_threads(future) == 0
    thread, seen = in_thread(future.exception)
    wait_until(lambda: waiting_threads(future) == 1)
    future.set_result(3)
    thread.join(DEADLINE)
    assert seen == [None]


def test_the_condition_is_built_on_demand_around_the_same_lock() -> None:
    future: LeanFuture[int] = LeanFuture()
    assert future._wakeup is None  # nothing built it yet
    condition = future._condition
    assert future._condition is condition
    woken = threading.Event()

    def wait_on_condition() -> None:  # what code written for the stdlib future may do
        with condition:
            while not future.done():
                condition.wait()  # no timeout: only set_result's notify ends this
        woken.set()

    thread = threading.Thread(target=wait_on_condition, daemon=True)
    thread.start()
    wait_until(lambda: waiting_threads(future) == 1)
    with condition:  # holding the condition holds the future's lock: set_result waits
        probe, acquired = in_thread(lambda: future._lock.acquire(blocking=False))
        probe.join(DEADLINE)
    assert acquired == [False]
    future.set_result(1)
    assert woken.wait(DEADLINE)
    thread.join(DEADLINE)


def test_condition_wait_times_out_and_needs_the_lock() -> None:
    future: LeanFuture[int] = LeanFuture()
    condition = future._condition
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        condition.wait(0)
    assert waiting_threads(future) == 0
    assert waiting_threads(future) == 0
    with condition:
        assert condition.wait(0.01) is False  # nobody notifies: it times out
    assert waiting_threads(future) == 0

    def notify_once_the_lock_is_free() -> None:  # only possible if wait() released it
        with condition:
            condition.notify()

    with condition, condition:  # held twice: wait() releases both, then takes both back
        helper, _ = in_thread(notify_once_the_lock_is_free)
        assert condition.wait(DEADLINE) is True
        assert future._lock.acquire(False)  # still ours (an RLock: held a third time)
        future._lock.release()
    helper.join(DEADLINE)
    assert not helper.is_alive()


def test_condition_notify_wakes_the_longest_waiting_thread_first() -> None:
    future: LeanFuture[int] = LeanFuture()
    condition = future._condition
    order: list[int] = []

    def wait(number: int) -> None:
        with condition:
            assert condition.wait(DEADLINE)
            order.append(number)

    first = threading.Thread(target=wait, args=(1,), daemon=True)
    first.start()
    wait_until(lambda: waiting_threads(future) == 1)
    second = threading.Thread(target=wait, args=(2,), daemon=True)
    second.start()
    wait_until(lambda: waiting_threads(future) == 2)
    with condition:
        condition.notify()
    first.join(DEADLINE)
    assert order == [1]
    assert waiting_threads(future) == 1
    with condition:
        condition.notify_all()
    second.join(DEADLINE)
    assert order == [1, 2]


@factories
def test_resolving_by_hand_through_the_condition_wakes_waiters(make: FutureFactory) -> None:
    """Code written against the stdlib sets the state and notifies ``_condition`` itself
    (CPython's own tests do); a thread already parked in ``result()`` must wake."""
    future = make()
    thread, seen = in_thread(future.result)  # no timeout: a missed wake-up hangs it
    if isinstance(future, LeanFuture):
        wait_until(lambda: waiting_threads(future) == 1)
    else:
        wait_until(lambda: len(future._condition._waiters) == 1)  # type: ignore[attr-defined]
    with future._condition:
        future._result = "by hand"
        future._state = "FINISHED"
        future._condition.notify_all()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    assert seen == ["by hand"]


def race_one_resolution(value: int) -> None:
    """Three waiters (no timeout, a long one, zero) race one set_result."""
    future: LeanFuture[int] = LeanFuture()
    barrier = threading.Barrier(4)
    results: list[object] = []
    lock = threading.Lock()

    def wait(timeout: float | None) -> None:
        barrier.wait(DEADLINE)
        try:
            seen: object = future.result(timeout)
        except cf.TimeoutError as exc:
            seen = exc
        with lock:
            results.append(seen)

    threads = [threading.Thread(target=wait, args=(t,)) for t in (None, DEADLINE, 0)]
    for thread in threads:
        thread.start()
    barrier.wait(DEADLINE)
    future.set_result(value)
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 3
    # The zero-timeout waiter may have looked before the result existed.
    assert sum(r == value for r in results) >= 2
    assert all(r == value or isinstance(r, cf.TimeoutError) for r in results)
    assert waiting_threads(future) == 0


def test_stress_waiters_racing_the_resolution() -> None:
    for value in range(300):
        race_one_resolution(value)


# -- the standard library's helpers --------------------------------------------------------


@factories
def test_wait_and_as_completed(make: FutureFactory) -> None:
    done_early, later, cancelled = make(), make(), make()
    done_early.set_result("early")
    cancelled.cancel()
    cancelled.set_running_or_notify_cancel()
    finished, pending = cf.wait([done_early, later], timeout=0)
    assert finished == {done_early}
    assert pending == {later}

    resolver = threading.Timer(0.01, later.set_result, args=("later",))
    resolver.start()
    finished, pending = cf.wait([later], timeout=DEADLINE, return_when=cf.ALL_COMPLETED)
    resolver.join()
    assert finished == {later}
    assert not pending
    order = list(cf.as_completed([done_early, later, cancelled], timeout=DEADLINE))
    assert set(order) == {done_early, later, cancelled}


def test_wait_is_woken_by_a_tracked_future() -> None:
    future: TrackedFuture[int] = TrackedFuture()
    thread, seen = in_thread(
        lambda: cf.wait([future], timeout=DEADLINE, return_when=cf.FIRST_COMPLETED)
    )
    wait_until(lambda: len(future._waiters) == 1)
    future.set_result(9)
    thread.join(DEADLINE)
    assert seen == [cf.wait([future], timeout=0)]
    assert seen[0] == ({future}, set())


def test_asyncio_wraps_a_tracked_future() -> None:
    async def main() -> tuple[int, str]:
        ok: TrackedFuture[int] = TrackedFuture()
        bad: TrackedFuture[int] = TrackedFuture()
        loop = asyncio.get_running_loop()
        loop.call_soon_threadsafe(ok.set_result, 4)
        loop.call_soon_threadsafe(bad.set_exception, ValueError("no"))
        value = await asyncio.wrap_future(ok)
        try:
            await asyncio.wrap_future(bad)
        except ValueError as exc:
            return value, str(exc)
        raise AssertionError("the exception was lost")

    assert asyncio.run(main()) == (4, "no")


@pytest.mark.skipif(
    os.environ.get(_future.STANDARD_FUTURE_VARIABLE, "") not in ("", "0"),
    reason="the standard future was asked for",
)
def test_the_lean_future_is_in_use_on_every_supported_python() -> None:
    # Fails on a Python whose Future changed: the pool still works (ObservedFuture), but
    # LeanFuture must be brought up to date, or dropped there, before claiming support.
    assert _future.LEAN
    assert TrackedFuture is LeanFuture


def test_a_changed_standard_future_turns_the_lean_one_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Future.__init__

    def grown(self: Future[Any]) -> None:  # a future Python adds an attribute
        original(self)
        self._new_state = None  # type: ignore[attr-defined]

    monkeypatch.setattr(Future, "__init__", grown)
    assert _future._matches_the_standard_future() is False
    monkeypatch.setattr(Future, "__init__", original)
    monkeypatch.setattr(_future, "CANCELLED", "cancelled")  # renamed states
    assert _future._matches_the_standard_future() is False
    monkeypatch.undo()
    assert _future._matches_the_standard_future() is True


def test_the_pool_returns_tracked_futures() -> None:
    with ThreadPoolExecutor(2) as pool:
        future = pool.submit(int, "12")
        assert isinstance(future, TrackedFuture)
        assert isinstance(future, Future)
        assert future.result(DEADLINE) == 12
    assert TrackedFuture[int] is not None  # subscriptable, as Future is
