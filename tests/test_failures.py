"""Failure visibility: records, the ring, the error hook and never-retrieved reports."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from concurrent.futures import CancelledError, Future
from pathlib import Path

import pytest

from tests import _probe as probe
from tests._support import Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import TaskFailure, ThreadPoolExecutor

ROOT = Path(__file__).resolve().parent.parent


class Payload:
    """A large-ish object whose lifetime a weak reference can watch."""

    def __init__(self) -> None:
        self.data = bytearray(1_000_000)


def explode(message: str) -> None:
    raise ValueError(message)


def explode_after(gate: Gate, message: str) -> None:
    gate.wait()
    explode(message)


def unretrieved_reports(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_failure_is_recorded(make_pool: PoolFactory) -> None:
    pool = make_pool(1, name="rec")
    before = time.time()
    future = pool.submit(explode, "kaput")
    assert isinstance(future.exception(), ValueError)
    after = time.time()
    [failure] = pool.recent_failures()
    assert isinstance(failure, TaskFailure)
    assert failure.task == "explode"
    assert isinstance(failure.exception, ValueError)
    assert failure.exception.args == ("kaput",)
    assert "in explode" in failure.traceback
    assert "ValueError: kaput" in failure.traceback
    assert failure.thread == "rec_0"
    assert before - 0.01 <= failure.started_at <= after
    assert 0 <= failure.duration <= after - before + 0.01


def test_record_is_frozen(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    pool.submit(explode, "x").exception()
    with pytest.raises(AttributeError):
        pool.recent_failures()[0].task = "other"  # type: ignore[misc]


def test_base_exceptions_are_recorded(make_pool: PoolFactory) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    pool = make_pool(1)
    assert isinstance(pool.submit(interrupt).exception(), KeyboardInterrupt)
    assert [type(f.exception) for f in pool.recent_failures()] == [KeyboardInterrupt]
    assert pool.recent_failures()[0].task.endswith("interrupt")


def test_the_ring_is_bounded_and_ordered(make_pool: PoolFactory) -> None:
    pool = make_pool(1, failure_history=3)
    for i in range(7):
        pool.submit(explode, str(i)).exception()
    assert [f.exception.args[0] for f in pool.recent_failures()] == ["4", "5", "6"]
    assert pool.stats().failed == 7


def test_zero_history_keeps_no_records(make_pool: PoolFactory) -> None:
    pool = make_pool(1, failure_history=0)
    pool.submit(explode, "x").exception()
    assert pool.recent_failures() == []
    assert pool.stats().failed == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"failure_history": -1}, ValueError),
        ({"failure_history": 2.0}, TypeError),
        ({"on_task_error": "print"}, TypeError),
    ],
)
def test_bad_failure_options_raise(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        ThreadPoolExecutor(1, **kwargs)  # type: ignore[arg-type]


def test_records_pin_no_frames(make_pool: PoolFactory) -> None:
    """A large local of the failed task dies with its future, though the record lives on."""
    watched: list[weakref.ref[Payload]] = []

    def task() -> None:
        big = Payload()
        watched.append(weakref.ref(big))
        raise ValueError("with a big local")

    pool = make_pool(1)
    future = pool.submit(task)
    assert future.exception() is not None
    del future
    gc.collect()
    [failure] = pool.recent_failures()
    assert failure.exception.__traceback__ is None
    assert watched[0]() is None
    assert "with a big local" in failure.traceback


def test_chained_exceptions_are_in_the_text(make_pool: PoolFactory) -> None:
    def task() -> None:
        try:
            {"other": 1}["key"]
        except KeyError as exc:
            raise RuntimeError("lookup failed") from exc

    pool = make_pool(1)
    pool.submit(task).exception()
    text = pool.recent_failures()[0].traceback
    assert "KeyError: 'key'" in text
    assert "RuntimeError: lookup failed" in text
    assert pool.recent_failures()[0].exception.__cause__ is None


def test_uncopyable_exception_is_still_recorded(make_pool: PoolFactory) -> None:
    class Stubborn(Exception):
        def __init__(self, a: int, b: int) -> None:  # copy() would call it with one arg
            super().__init__(a + b)

    def task() -> None:
        raise Stubborn(1, 2)

    pool = make_pool(1)
    pool.submit(task).exception()
    [failure] = pool.recent_failures()
    assert isinstance(failure.exception, Stubborn)


def test_unretrieved_failure_is_logged(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(1, name="fire")
    secret = "hunter2-do-not-log"
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        future = pool.submit(explode, secret)
        wait_until(future.done)
        del future
        gc.collect()
        wait_until(lambda: bool(unretrieved_reports(caplog)))
    [record] = unretrieved_reports(caplog)
    assert record.levelno == logging.ERROR
    assert record.name == "threadpool_plus"
    text = record.getMessage()
    assert "explode" in text
    assert "'fire'" in text
    assert "Traceback" in text
    assert "ValueError" in text
    assert record.__dict__["pool"] == "fire"
    assert record.__dict__["task"] == "explode"
    assert record.__dict__["worker"] == "fire_0"
    assert record.__dict__["exc_type"] == "ValueError"
    assert record.__dict__["duration"] >= 0


def test_unretrieved_failure_never_logs_arguments(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def task(password: str) -> None:
        raise PermissionError("denied")

    pool = make_pool(1)
    with caplog.at_level(logging.DEBUG):
        future = pool.submit(task, "s3cr3t-value")
        wait_until(future.done)
        del future
        gc.collect()
        wait_until(lambda: bool(unretrieved_reports(caplog)))
    assert all("s3cr3t-value" not in r.getMessage() for r in caplog.records)
    assert "s3cr3t-value" not in caplog.text


@pytest.mark.parametrize("how", ["result", "exception", "callback", "callback-before"])
def test_observed_failure_is_not_reported(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    pool = make_pool(1)
    gate = Gate()
    seen = threading.Event()
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        future = pool.submit(explode_after, gate, "handled")
        if how == "callback-before":
            future.add_done_callback(lambda _: seen.set())
        gate.open()
        wait_until(future.done)
        if how == "result":
            with pytest.raises(ValueError, match="handled"):
                future.result()
        elif how == "exception":
            assert isinstance(future.exception(), ValueError)
        elif how == "callback":
            future.add_done_callback(lambda _: seen.set())
        del future
        gc.collect()
        # A report would be logged synchronously by the collection above; to be sure
        # nothing is pending, let a second failure be reported and look for just that one.
        canary = pool.submit(explode, "canary")
        wait_until(canary.done)
        del canary
        gc.collect()
        wait_until(lambda: bool(unretrieved_reports(caplog)))
    reports = unretrieved_reports(caplog)
    assert len(reports) == 1
    assert "canary" in reports[0].getMessage()


def test_waiting_caller_observes_the_failure(
    make_pool: PoolFactory, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller already blocked in result() has seen it, whatever the race."""
    pool = make_pool(1)
    futures = [pool.submit(explode_after, gate, "raced")]
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            futures[0].result()
        except ValueError as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        thread.start()
        gate.wait_entered(1)
        gate.open()
        thread.join()
        futures.clear()
        gc.collect()
    assert len(errors) == 1
    assert unretrieved_reports(caplog) == []


def test_unretrieved_failure_in_a_reference_cycle_is_reported(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(1)
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        future = pool.submit(explode, "cyclic")
        wait_until(future.done)
        holder: list[object] = [future]
        future.cycle = holder  # type: ignore[attr-defined]
        del future, holder
        gc.collect()
        wait_until(lambda: bool(unretrieved_reports(caplog)))
    assert "cyclic" in unretrieved_reports(caplog)[0].getMessage()


def test_cancelled_and_successful_futures_are_never_reported(
    make_pool: PoolFactory, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(1)
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        blocker = pool.submit(gate.wait)
        gate.wait_entered(1)
        cancelled = pool.submit(int)
        assert cancelled.cancel()
        ok = pool.submit(int)
        gate.open()
        blocker.result()
        wait_until(ok.done)
        with pytest.raises(CancelledError):
            cancelled.result()
        del cancelled, ok
        gc.collect()
    assert unretrieved_reports(caplog) == []


def test_error_hook_gets_the_record_before_the_future_resolves(make_pool: PoolFactory) -> None:
    seen: list[tuple[TaskFailure, str, bool, int]] = []
    futures: list[Future[None]] = []

    def hook(failure: TaskFailure) -> None:
        seen.append(
            (failure, threading.current_thread().name, futures[0].done(), pool.stats().failed)
        )

    pool = make_pool(1, name="hooked", on_task_error=hook)
    gate = Gate()
    futures.append(pool.submit(explode_after, gate, "hooked"))
    gate.open()
    assert isinstance(futures[0].exception(), ValueError)
    [(failure, thread, done, failed)] = seen
    assert failure is pool.recent_failures()[0]
    assert (thread, done, failed) == ("hooked_0", False, 1)


def test_raising_error_hook_is_logged_and_the_worker_survives(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(failure: TaskFailure) -> None:
        raise RuntimeError("hook broke")

    pool = make_pool(1, name="badhook", on_task_error=hook)
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        future = pool.submit(explode, "original")
        with pytest.raises(ValueError, match="original"):
            future.result()
        assert pool.submit(int, "5").result() == 5
    [record] = [r for r in caplog.records if "on_task_error" in r.getMessage()]
    assert record.exc_info is not None
    assert "hook broke" in caplog.text
    assert record.__dict__["pool"] == "badhook"
    assert record.__dict__["task"] == "explode"
    assert pool.stats().workers == 1


def test_with_block_left_by_ctrl_c_cancels_the_queue(make_pool: PoolFactory, gate: Gate) -> None:
    """Ctrl-C in a ``with`` body: queued tasks are cancelled, the running one finishes."""
    pool = make_pool(1)

    def open_once_closed() -> None:
        wait_until(lambda: probe.closed(pool))
        gate.open()

    opener = threading.Thread(target=open_once_closed)
    interrupted = False
    try:
        with pool:
            running = pool.submit(gate.wait, "ran")
            gate.wait_entered(1)
            queued = [pool.submit(int) for _ in range(10)]
            opener.start()
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
    opener.join()
    assert interrupted
    assert running.result() == "ran"
    assert all(f.cancelled() for f in queued)
    stats = pool.stats()
    assert (stats.completed, stats.cancelled, stats.workers) == (1, 10, 0)


def test_with_block_left_by_an_exception_still_drains(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    futures: list[Future[int]] = []
    with pytest.raises(LookupError), pool:  # noqa: PT012 - the body is what is tested
        futures += [pool.submit(int, str(i)) for i in range(20)]
        raise LookupError
    assert [f.result() for f in futures] == list(range(20))


def test_unretrieved_report_at_interpreter_exit_is_safe() -> None:
    """A failed future still alive at exit is reported there, without a crash."""
    script = (
        "from threadpool_plus import ThreadPoolExecutor\n"
        "def boom(): raise ValueError('late failure')\n"
        "pool = ThreadPoolExecutor(1)\n"
        "KEEP = pool.submit(boom)\n"
        "import concurrent.futures as cf; cf.wait([KEEP])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" not in done.stderr
    assert "never retrieved" in done.stderr
    assert "ValueError: late failure" in done.stderr


def test_failure_that_cannot_be_formatted_is_still_recorded(
    make_pool: PoolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Formatting a traceback can fail (here simulated); the worker must survive it."""

    def broken(*args: object) -> list[str]:
        raise RuntimeError("formatter broke")

    monkeypatch.setattr("threadpool_plus._failures.traceback.format_exception", broken)
    pool = make_pool(1)
    assert isinstance(pool.submit(explode, "x").exception(), ValueError)
    assert pool.submit(int, "7").result() == 7, "the worker survived"
    [failure] = pool.recent_failures()
    assert "traceback of ValueError unavailable" in failure.traceback
    assert "formatter broke" in failure.traceback
