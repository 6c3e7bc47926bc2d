"""``threadpool_plus.dask.DaskExecutor`` on a real ``distributed.LocalCluster``.

One in-process cluster (two workers, one thread each) serves the module. Tasks are held on
the workers by ``distributed.Event`` gates (``dask_tasks``), never by sleeps; every
executor is shut down at teardown, after which Dask must hold no key of ours
(``client.futures`` is empty) and the books must balance.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import _probe
from tests._support import wait_until
from tests.conftest import PoolFactory
from tests.integration._require import library
from tests.test_failures import test_chained_exceptions_are_in_the_text, test_records_pin_no_frames
from threadpool_plus import PoolOverloaded, PoolStats, TaskFailure, TaskTimeout

library("distributed")

import distributed  # noqa: E402  (after the check that skips or fails when it is missing)

from tests.integration.dask_tasks import (  # noqa: E402
    DaskGate,
    blocked,
    echo,
    fail,
    kwargs_of,
    mark_and_return,
    slow,
)
from threadpool_plus.dask import DaskExecutor  # noqa: E402

Factory = Callable[..., DaskExecutor]


def balanced(s: PoolStats) -> bool:
    return s.submitted == (
        s.completed + s.failed + s.cancelled + s.expired + s.active + s.queued
    ) and (0 <= s.overrunning <= s.active)


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    with (
        distributed.LocalCluster(  # type: ignore[no-untyped-call]
            processes=False,
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=":0",  # 8787 may be taken
        ) as cluster,
        distributed.Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


@pytest.fixture
def make_executor(client: distributed.Client) -> Iterator[Factory]:
    """Makes executors; at teardown shuts each down and checks that Dask holds nothing."""
    executors: list[DaskExecutor] = []

    def factory(**kwargs: Any) -> DaskExecutor:
        executor = DaskExecutor(client, **kwargs)
        executors.append(executor)
        return executor

    yield factory
    for executor in executors:
        executor.shutdown(wait=True, cancel_futures=True)
        assert balanced(executor.stats()), executor.stats()
    assert not client.futures, client.futures


@pytest.fixture
def gate(client: distributed.Client) -> Iterator[DaskGate]:
    g = DaskGate(client)
    yield g
    g.open()  # before the executors shut down: no worker thread stays blocked


# -- a concurrent.futures executor ----------------------------------------------------------


def test_is_an_executor_whose_futures_work_with_wait_and_as_completed(
    make_executor: Factory,
) -> None:
    pool = make_executor()
    assert isinstance(pool, concurrent.futures.Executor)
    futures = [pool.submit(echo, n) for n in range(6)]
    assert all(isinstance(f, concurrent.futures.Future) for f in futures)
    done, not_done = concurrent.futures.wait(futures, timeout=30)
    assert (len(done), not_done) == (6, set())
    assert sorted(f.result() for f in concurrent.futures.as_completed(futures)) == list(range(6))


def test_with_block_drains_and_leaves_nothing_on_the_scheduler(
    client: distributed.Client,
) -> None:
    with DaskExecutor(client, max_in_flight=1) as pool:
        futures = [pool.submit(echo, n) for n in range(5)]
    assert [f.result(timeout=0) for f in futures] == list(range(5))
    s = pool.stats()
    assert (s.submitted, s.completed, s.active, s.queued) == (5, 5, 0, 0), s
    assert not client.futures, client.futures
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.submit(echo, 1)
    assert client.status == "running"  # the executor never closes its client


def test_asyncio_run_in_executor_and_arun(make_executor: Factory) -> None:
    pool = make_executor()

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        first = await loop.run_in_executor(pool, echo, 7)
        second = await pool.arun(echo, 8)
        return first, second

    assert asyncio.run(main()) == (7, 8)


def test_asubmit_waits_for_room_without_blocking_the_loop(
    make_executor: Factory, gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=1, max_queue_size=1)
    held = pool.submit(blocked, gate.name, 0)
    pool.submit(echo, 1)

    async def main() -> int:
        waiting = asyncio.ensure_future(pool.asubmit(echo, 2))
        deadline = asyncio.get_running_loop().time() + 10
        while pool.stats().waiting_submitters != 1:  # the loop keeps running meanwhile
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert not waiting.done()
        gate.open()
        return await asyncio.wrap_future(await waiting)

    assert asyncio.run(main()) == 2
    assert held.result(timeout=30) == 0
    assert pool.stats().rejected == 0


def test_defaults_and_stats_fields(client: distributed.Client, make_executor: Factory) -> None:
    """``max_in_flight`` defaults to the cluster's threads (2): ``max_workers``; ``workers``
    is that thread count; ``name`` has a default."""
    pool = make_executor()
    s = pool.stats()
    assert (pool.max_in_flight, s.max_workers, s.workers, s.min_workers) == (2, 2, 2, 0), s
    assert pool.name.startswith("DaskExecutor-")
    assert pool.client is client
    assert make_executor(name="crunch").name == "crunch"


# -- arguments, merging ---------------------------------------------------------------------


def test_every_keyword_reaches_fn_dask_names_included(make_executor: Factory) -> None:
    """``client.submit`` would take these for itself; the executor passes them to ``fn``."""
    pool = make_executor()
    kwargs = {
        "key": "mine",
        "pure": True,
        "workers": ["w"],
        "retries": 3,
        "resources": {"GPU": 1},
        "priority": 10,
        "allow_other_workers": False,
        "fifo_timeout": "1s",
        "actor": True,
    }
    assert pool.submit(kwargs_of, **kwargs).result(timeout=30) == kwargs


def test_identical_calls_are_never_merged(
    client: distributed.Client, make_executor: Factory
) -> None:
    """Two ``uuid4()`` calls are two tasks with two answers; ``client.get_executor()``
    (``pure=True``) merges them into one key."""
    pool = make_executor()
    first, second = pool.submit(uuid.uuid4), pool.submit(uuid.uuid4)
    assert first.result(timeout=30) != second.result(timeout=30)
    assert pool.stats().completed == 2

    theirs = client.get_executor()  # type: ignore[no-untyped-call]
    a, b = theirs.submit(uuid.uuid4), theirs.submit(uuid.uuid4)
    assert a.result(timeout=30) == b.result(timeout=30)  # the behaviour we do not have
    theirs.shutdown()
    del a, b, theirs
    wait_until(lambda: not client.futures)


# -- admission ------------------------------------------------------------------------------


def test_overload_counts_in_flight_and_queued(make_executor: Factory, gate: DaskGate) -> None:
    """The ``max_in_flight + max_queue_size + 1``-th ``try_submit`` raises
    ``PoolOverloaded``; ``stats()`` shows what is in flight and what is queued."""
    pool = make_executor(max_in_flight=2, max_queue_size=3, name="bounded")
    futures = [pool.try_submit(blocked, gate.name, n) for n in range(5)]
    with pytest.raises(PoolOverloaded, match=r"'bounded'.*capacity 3"):
        pool.try_submit(blocked, gate.name, 5)
    s = pool.stats()
    assert (s.active, s.queued, s.submitted, s.rejected) == (2, 3, 5, 1), s
    assert (s.queue_capacity, s.idle_workers) == (3, 0), s
    assert [f.running() for f in futures] == [True, True, False, False, False]
    gate.open()
    assert [f.result(timeout=30) for f in futures] == list(range(5))
    s = pool.stats()
    assert (s.completed, s.active, s.queued, s.peak_workers) == (5, 0, 0, 2), s


def test_submit_times_out_or_waits_for_room(make_executor: Factory, gate: DaskGate) -> None:
    impatient = make_executor(max_in_flight=1, max_queue_size=1, submit_timeout=0.05)
    first = impatient.submit(blocked, gate.name, 1)
    second = impatient.submit(echo, 2)
    with pytest.raises(PoolOverloaded):
        impatient.submit(echo, 3)
    assert impatient.stats().rejected == 1
    patient = make_executor(max_in_flight=1, max_queue_size=1)  # waits as long as it takes
    held = patient.submit(blocked, gate.name, 5)
    patient.submit(echo, 6)
    admitted: list[concurrent.futures.Future[int]] = []
    waiter = threading.Thread(target=lambda: admitted.append(patient.submit(echo, 7)))
    waiter.start()
    wait_until(lambda: patient.stats().waiting_submitters == 1)
    assert not admitted
    gate.open()
    waiter.join(30)
    assert [f.result(timeout=30) for f in (first, second, held, admitted[0])] == [1, 2, 5, 7]


def test_overflow_policies(make_executor: Factory, gate: DaskGate) -> None:
    runs = make_executor(
        max_in_flight=1, max_queue_size=1, submit_timeout=0, overflow="caller_runs"
    )
    runs.submit(blocked, gate.name, 0)
    runs.submit(echo, 1)
    ran_here = runs.submit(threading.current_thread)
    assert ran_here.result(timeout=0) is threading.current_thread()
    drops = make_executor(
        max_in_flight=1, max_queue_size=1, submit_timeout=0, overflow="drop_oldest"
    )
    drops.submit(blocked, gate.name, 0)
    oldest = drops.submit(echo, 1)
    newest = drops.submit(echo, 2)
    assert oldest.cancelled()
    gate.open()
    assert newest.result(timeout=30) == 2
    assert (runs.stats().caller_ran, drops.stats().dropped, drops.stats().cancelled) == (1, 1, 1)


def test_lazy_map_with_buffersize_reads_ahead_only_so_far(make_executor: Factory) -> None:
    pool = make_executor(max_queue_size=1, submit_timeout=0)
    read = 0

    def numbers() -> Iterator[int]:
        nonlocal read
        for n in range(1_000_000):
            read += 1
            yield n

    results = pool.map(echo, numbers(), buffersize=3)
    assert read == 3
    assert [next(results) for _ in range(10)] == list(range(10))
    assert read <= 13
    assert pool.stats().submitted <= 13
    del results  # closing the generator cancels what it submitted ahead
    wait_until(lambda: pool.stats().active == 0)
    assert pool.stats().rejected == 0  # map waits for room, whatever submit_timeout says


def test_map_without_buffersize_and_with_options(make_executor: Factory) -> None:
    pool = make_executor(max_in_flight=1, max_queue_size=2)
    assert list(pool.map(pow, range(8), range(8))) == [n**n for n in range(8)]
    named = pool.options(name="powers")
    assert list(named.map(pow, [2, 3], [2, 2], buffersize=1)) == [4, 9]


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


def test_client_closed_under_the_executor(client: distributed.Client, gate: DaskGate) -> None:
    """Closing the client first (the executor does not own it) cancels what is in flight;
    what is queued fails instead of waiting for an answer that never comes, and
    ``shutdown`` returns at once."""
    other = distributed.Client(client.cluster)  # type: ignore[no-untyped-call]
    pool = DaskExecutor(other, max_in_flight=1)
    running = pool.submit(blocked, gate.name, 0)
    queued = pool.submit(echo, 1)
    assert gate.started()
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
    make_executor: Factory, gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=1)
    held = pool.submit(blocked, gate.name, 0)
    queued = pool.submit(slow, 0.2)
    assert gate.started()
    threading.Event().wait(0.1)  # the queued task waits at least this long on the client
    gate.open()
    assert queued.result(timeout=30) == 0.2
    held.result(timeout=30)
    _, waits, runs = _probe.metrics(pool)
    assert (waits.count, runs.count) == (2, 2)
    assert runs.sum >= 0.2  # slow() ran 0.2 s on the worker
    assert waits.sum >= 0.1  # slow() waited for room on the client


# -- deadlines and cancellation -------------------------------------------------------------


def test_queued_task_past_its_deadline_is_never_sent(
    make_executor: Factory, gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=1)
    held = pool.submit(blocked, gate.name, 0)
    doomed = pool.options(timeout=0.1).submit(mark_and_return, gate.name, 1)
    with pytest.raises(TaskTimeout):
        doomed.result(timeout=10)
    s = pool.stats()
    assert (s.expired, s.queued, s.active) == (1, 0, 1), s
    gate.open()
    assert held.result(timeout=30) == 0
    pool.shutdown()
    assert not gate.ran()


def test_running_task_past_its_deadline_is_cancelled_on_the_cluster(
    client: distributed.Client, make_executor: Factory, gate: DaskGate
) -> None:
    pool = make_executor(task_timeout=0.5)
    doomed = pool.submit(blocked, gate.name, 0)
    assert gate.started()
    with pytest.raises(TaskTimeout, match="passed its deadline"):
        doomed.result(timeout=10)
    wait_until(lambda: pool.stats().expired == 1)
    s = pool.stats()
    assert (s.active, s.overrunning, s.failed) == (0, 0, 0), s
    assert not client.futures  # cancelled on the cluster, released
    assert pool.options(timeout=math.inf).submit(echo, 1).result(timeout=30) == 1


def test_interrupt_cancels_on_the_cluster(
    client: distributed.Client, make_executor: Factory, gate: DaskGate
) -> None:
    pool = make_executor()
    future = pool.submit(blocked, gate.name, 0)
    assert gate.started()
    assert not future.cancel()  # the standard meaning: it runs
    assert future.cancel(interrupt=True)  # type: ignore[call-arg]  # the pool's TaskFuture
    assert future.cancelled()
    wait_until(lambda: pool.stats().cancelled == 1)
    assert pool.stats().active == 0
    assert not client.futures


# -- shutdown -------------------------------------------------------------------------------


def test_shutdown_wait_false_cancels_nothing(make_executor: Factory, gate: DaskGate) -> None:
    pool = make_executor(max_in_flight=2)
    futures = [pool.submit(blocked, gate.name, n) for n in range(4)]
    report = pool.shutdown(wait=False)
    assert (report.dropped, report.running, report.timed_out) == ((), (), False)
    with pytest.raises(RuntimeError):
        pool.submit(echo, 1)
    gate.open()
    assert [f.result(timeout=30) for f in futures] == [0, 1, 2, 3]
    assert pool.stats().completed == 4


def test_shutdown_without_drain_cancels_queue_and_in_flight(
    client: distributed.Client, make_executor: Factory, gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=2)
    futures = [pool.submit(blocked, gate.name, n) for n in range(5)]
    report = pool.shutdown(drain=False)
    assert [d.args for d in report.dropped] == [(gate.name, 2), (gate.name, 3), (gate.name, 4)]
    assert all(d.fn is blocked and d.kwargs == {} for d in report.dropped)
    assert [d.future for d in report.dropped] == futures[2:]
    assert report.running == ("blocked", "blocked")
    assert all(f.cancelled() for f in futures)
    s = pool.stats()
    assert (s.cancelled, s.active, s.queued, s.completed) == (5, 0, 0, 0), s
    assert not client.futures


def test_shutdown_timeout_gives_up_on_what_is_left(
    client: distributed.Client, make_executor: Factory, gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=1)
    running = pool.submit(blocked, gate.name, 0)
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


# -- counters -------------------------------------------------------------------------------


def test_counted_before_the_future_resolves(make_executor: Factory) -> None:
    pool = make_executor()
    seen: list[PoolStats] = []
    future = pool.submit(echo, 1)
    future.add_done_callback(lambda _: seen.append(pool.stats()))
    future.result(timeout=30)
    wait_until(lambda: bool(seen))
    assert seen[0].completed == 1


def test_invariant_holds_in_every_snapshot(make_executor: Factory) -> None:
    pool = make_executor(max_in_flight=2, max_queue_size=4)
    stop = threading.Event()
    snapshots: list[PoolStats] = []

    def sample() -> None:
        while not stop.is_set():
            snapshots.append(pool.stats())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        futures: list[concurrent.futures.Future[Any]] = [
            pool.submit(echo, n) if n % 3 else pool.submit(fail, "x") for n in range(60)
        ]
        futures[-1].cancel()
        concurrent.futures.wait(futures, timeout=30)
    finally:
        stop.set()
        sampler.join()
    bad = [s for s in snapshots if not balanced(s)]
    assert not bad, bad[:3]
    assert len(snapshots) > 10
    wait_until(lambda: pool.stats().active + pool.stats().queued == 0)
    s = pool.stats()
    assert s.submitted == 60
    assert s.failed == 20
    assert s.completed + s.cancelled == 40, s


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_in_flight": 0}, ValueError, "max_in_flight must be greater than 0"),
        ({"max_in_flight": -3}, ValueError, "max_in_flight"),
        ({"max_in_flight": 2.0}, TypeError, "max_in_flight must be an int"),
        ({"max_in_flight": True}, TypeError, "max_in_flight must be an int"),
        ({"max_queue_size": -1}, ValueError, "max_queue_size"),
        ({"submit_timeout": -1}, ValueError, "submit_timeout"),
        ({"overflow": "shrug"}, ValueError, "overflow must be one of"),
        ({"overflow": 1}, TypeError, "overflow must be a str"),
        ({"name": ""}, ValueError, "name must not be empty"),
        ({"failure_history": -1}, ValueError, "failure_history"),
        ({"on_task_error": 3}, TypeError, "on_task_error must be a callable"),
        ({"histogram_buckets": [2, 1]}, ValueError, "bucket"),
        ({"task_timeout": -1}, ValueError, "task_timeout"),
    ],
)
def test_bad_configuration_raises_at_construction(
    client: distributed.Client, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        DaskExecutor(client, **kwargs)


def test_bad_client_and_bad_calls(client: distributed.Client, make_executor: Factory) -> None:
    with pytest.raises(TypeError, match=r"client must be a distributed\.Client, not str"):
        DaskExecutor("tcp://127.0.0.1:8786")  # type: ignore[arg-type]
    pool = make_executor()
    with pytest.raises(TypeError, match="does not take context="):
        pool.options(context="copy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        pool.options(timeout=1, deadline=2)
    with pytest.raises(TypeError, match="needs a callable"):
        pool.submit(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a callable"):
        pool.try_submit(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="buffersize"):
        pool.map(echo, [1], buffersize=0)
    with pytest.raises(ValueError, match="timeout"):
        pool.shutdown(timeout=-1)
    assert pool.stats().submitted == 0


# -- the thread pool beside Dask ------------------------------------------------------------


def test_thread_pool_records_pin_no_frames_once_distributed_is_imported(
    make_pool: PoolFactory,
) -> None:
    """Importing ``distributed`` installs tblib's reducers for every exception class, so
    ``copy.copy(exc)`` keeps ``__traceback__`` and the chain: a ``TaskFailure`` must still
    pin no frame. The thread pool's own tests, run with ``distributed`` imported."""
    assert "distributed" in sys.modules
    test_records_pin_no_frames(make_pool)
    test_chained_exceptions_are_in_the_text(make_pool)
