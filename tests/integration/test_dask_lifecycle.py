"""``threadpool_plus.dask.DaskExecutor`` on a real ``distributed.LocalCluster``: failure
records with the remote traceback, deadlines and cancellation that reach the cluster, and
every kind of shutdown leaving nothing on the scheduler.

The cluster, the gates and the executor factory are ``tests/integration/conftest.py``'s.
"""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import math
import threading

import pytest

from tests import _probe
from tests._support import wait_until
from tests.integration._require import library
from tests.integration.conftest import Factory, balanced
from threadpool_plus import TaskFailure, TaskTimeout

library("distributed")

import distributed  # noqa: E402  (after the check that skips or fails when it is missing)

from tests.integration.dask_tasks import (  # noqa: E402
    DaskGate,
    blocked,
    echo,
    fail,
    mark_and_return,
    slow,
)
from threadpool_plus.dask import DaskExecutor  # noqa: E402

# -- failures -------------------------------------------------------------------------------


def test_failure_record_carries_the_remote_traceback(make_executor: Factory) -> None:
    seen: list[tuple[TaskFailure, bool]] = []
    holder: list[concurrent.futures.Future[None]] = []

    def hook(failure: TaskFailure) -> None:
        seen.append((failure, holder[0].done()))

    pool = make_executor(on_task_error=hook)
    holder.append(pool.submit(fail, "bad input"))
    error = holder[0].exception(timeout=30)
    assert isinstance(error, ValueError)
    assert str(error) == "bad input"
    assert error.__traceback__ is not None
    [record] = pool.recent_failures()
    assert record.task == "fail"
    assert "raise ValueError(message)" in record.traceback
    assert "dask_tasks.py" in record.traceback
    assert "_dask_call" not in record.traceback  # the trampoline's frame is left out
    assert record.traceback.rstrip().endswith("ValueError: bad input")
    assert record.thread.startswith("inproc://"), record.thread
    assert record.duration >= 0
    assert str(record.exception) == "bad input"
    assert seen == [(record, False)]  # called before the future resolved
    s = pool.stats()
    assert (s.failed, s.completed) == (1, 0), s


def test_unpicklable_argument_fails_the_task_and_leaves_no_key(
    client: distributed.Client, make_executor: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``client.submit`` cannot serialize the task: the task fails (counted and recorded),
    the executor carries on, and the key Dask made for it is released."""
    # Dask logs the failure with its exc_info, whose frames hold the key; pytest keeps
    # every record of a test until its teardown, which would keep the key alive.
    monkeypatch.setattr(logging.getLogger("distributed.protocol.pickle"), "disabled", True)
    pool = make_executor()
    future = pool.submit(echo, threading.Lock())
    assert isinstance(future.exception(timeout=30), TypeError)
    [record] = pool.recent_failures()
    assert (record.task, record.thread) == ("echo", "client")
    assert "pickle" in record.traceback
    assert pool.submit(echo, 2).result(timeout=30) == 2
    s = pool.stats()
    assert (s.failed, s.completed, s.active) == (1, 1, 0), s
    wait_until(lambda: not client.futures)


def test_client_closed_under_the_executor(client: distributed.Client, dask_gate: DaskGate) -> None:
    """Closing the client first (the executor does not own it) cancels what is in flight;
    what is queued fails instead of waiting for an answer that never comes, and
    ``shutdown`` returns at once."""
    other = distributed.Client(client.cluster)  # type: ignore[no-untyped-call]
    pool = DaskExecutor(other, max_in_flight=1)
    running = pool.submit(blocked, dask_gate.name, 0)
    queued = pool.submit(echo, 1)
    assert dask_gate.started()
    other.close()  # type: ignore[no-untyped-call]
    assert running.cancelled() or isinstance(running.exception(timeout=30), Exception)
    with pytest.raises(RuntimeError, match=r"client of pool .* is closed"):
        queued.result(timeout=30)
    report = pool.shutdown(timeout=10)
    assert not report.timed_out
    s = pool.stats()
    assert (s.active, s.queued, s.failed) == (0, 0, 1), s
    assert balanced(s)


def test_named_task_failure_and_history_bound(make_executor: Factory) -> None:
    pool = make_executor(failure_history=2, max_in_flight=1)  # one at a time: in order
    named = pool.options(name="parse-order")
    futures = [named.submit(fail, str(n)) for n in range(3)]
    concurrent.futures.wait(futures, timeout=30)
    assert [r.task for r in pool.recent_failures()] == ["parse-order", "parse-order"]
    assert [str(r.exception) for r in pool.recent_failures()] == ["1", "2"]
    assert pool.stats().failed == 3


def test_run_time_is_measured_on_the_worker_queue_wait_on_the_client(
    make_executor: Factory, dask_gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=1)
    held = pool.submit(blocked, dask_gate.name, 0)
    queued = pool.submit(slow, 0.2)
    assert dask_gate.started()
    threading.Event().wait(0.1)  # the queued task waits at least this long on the client
    dask_gate.open()
    assert queued.result(timeout=30) == 0.2
    held.result(timeout=30)
    _, waits, runs = _probe.metrics(pool)
    assert (waits.count, runs.count) == (2, 2)
    assert runs.sum >= 0.2  # slow() ran 0.2 s on the worker
    assert waits.sum >= 0.1  # slow() waited for room on the client


# -- deadlines and cancellation -------------------------------------------------------------


def test_queued_task_past_its_deadline_is_never_sent(
    make_executor: Factory, dask_gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=1)
    held = pool.submit(blocked, dask_gate.name, 0)
    doomed = pool.options(timeout=0.1).submit(mark_and_return, dask_gate.name, 1)
    with pytest.raises(TaskTimeout):
        doomed.result(timeout=10)
    s = pool.stats()
    assert (s.expired, s.queued, s.active) == (1, 0, 1), s
    dask_gate.open()
    assert held.result(timeout=30) == 0
    pool.shutdown()
    assert not dask_gate.ran()


def test_running_task_past_its_deadline_is_cancelled_on_the_cluster(
    client: distributed.Client, make_executor: Factory, dask_gate: DaskGate
) -> None:
    pool = make_executor(task_timeout=0.5)
    doomed = pool.submit(blocked, dask_gate.name, 0)
    assert dask_gate.started()
    with pytest.raises(TaskTimeout, match="passed its deadline"):
        doomed.result(timeout=10)
    wait_until(lambda: pool.stats().expired == 1)
    s = pool.stats()
    assert (s.active, s.overrunning, s.failed) == (0, 0, 0), s
    assert not client.futures  # cancelled on the cluster, released
    assert pool.options(timeout=math.inf).submit(echo, 1).result(timeout=30) == 1


def test_interrupt_cancels_on_the_cluster(
    client: distributed.Client, make_executor: Factory, dask_gate: DaskGate
) -> None:
    pool = make_executor()
    future = pool.submit(blocked, dask_gate.name, 0)
    assert dask_gate.started()
    assert not future.cancel()  # the standard meaning: it runs
    assert future.cancel(interrupt=True)  # type: ignore[call-arg]  # the pool's TaskFuture
    assert future.cancelled()
    wait_until(lambda: pool.stats().cancelled == 1)
    assert pool.stats().active == 0
    assert not client.futures


# -- shutdown -------------------------------------------------------------------------------


def test_shutdown_wait_false_cancels_nothing(make_executor: Factory, dask_gate: DaskGate) -> None:
    pool = make_executor(max_in_flight=2)
    futures = [pool.submit(blocked, dask_gate.name, n) for n in range(4)]
    report = pool.shutdown(wait=False)
    assert (report.dropped, report.running, report.timed_out) == ((), (), False)
    with pytest.raises(RuntimeError):
        pool.submit(echo, 1)
    dask_gate.open()
    assert [f.result(timeout=30) for f in futures] == [0, 1, 2, 3]
    assert pool.stats().completed == 4


def test_shutdown_without_drain_cancels_queue_and_in_flight(
    client: distributed.Client, make_executor: Factory, dask_gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=2)
    futures = [pool.submit(blocked, dask_gate.name, n) for n in range(5)]
    report = pool.shutdown(drain=False)
    assert [d.args for d in report.dropped] == [(dask_gate.name, n) for n in (2, 3, 4)]
    assert all(d.fn is blocked and d.kwargs == {} for d in report.dropped)
    assert [d.future for d in report.dropped] == futures[2:]
    assert report.running == ("blocked", "blocked")
    assert all(f.cancelled() for f in futures)
    s = pool.stats()
    assert (s.cancelled, s.active, s.queued, s.completed) == (5, 0, 0, 0), s
    assert not client.futures


def test_shutdown_timeout_gives_up_on_what_is_left(
    client: distributed.Client, make_executor: Factory, dask_gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=1)
    running = pool.submit(blocked, dask_gate.name, 0)
    queued = pool.submit(echo, 1)
    report = pool.shutdown(timeout=0.2)
    assert report.timed_out
    assert [d.future for d in report.dropped] == [queued]
    assert report.running == ("blocked",)
    assert queued.cancelled()
    assert running.cancelled()
    wait_until(lambda: pool.stats().active == 0)
    assert pool.stats().cancelled == 2
    wait_until(lambda: not client.futures)


def test_drain_runs_everything_and_releases_every_key(
    client: distributed.Client, make_executor: Factory
) -> None:
    pool = make_executor(max_in_flight=1, max_queue_size=0)
    futures = [pool.submit(echo, n) for n in range(10)]
    report = pool.shutdown()
    assert report == type(report)()
    assert [f.result(timeout=0) for f in futures] == list(range(10))
    assert not client.futures
    assert pool.shutdown() == report  # harmless again


def test_an_executor_dropped_without_shutdown_runs_what_it_accepted_and_ends(
    client: distributed.Client, dask_gate: DaskGate
) -> None:
    pool = DaskExecutor(client, max_in_flight=1, name="dropped")
    view = pool.options(timeout=60)  # a deadline: the pool's watcher thread starts
    futures = [view.submit(blocked, dask_gate.name, n) for n in range(3)]  # 1 sent, 2 queued
    assert dask_gate.started()
    watcher = [t for t in threading.enumerate() if t.name == "dropped-deadlines"]
    assert len(watcher) == 1
    del pool, view
    gc.collect()
    dask_gate.open()
    assert [f.result(timeout=30) for f in futures] == [0, 1, 2]  # the queue still drained
    watcher[0].join(timeout=10)  # it ends once nothing is left, not at the 60 s deadline
    assert not watcher[0].is_alive()
    wait_until(lambda: not client.futures)
