"""``threadpool_plus.dask.DaskExecutor`` on a real ``distributed.LocalCluster``: an
executor like the thread pool, its arguments, admission, counters and bad input.

The cluster, the gates and the executor factory are ``tests/integration/conftest.py``'s;
every executor is shut down at teardown, after which Dask must hold no key of ours and the
books must balance. Failures, deadlines and shutdown: ``test_dask_lifecycle.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests._support import wait_until
from tests.conftest import PoolFactory
from tests.integration._require import library
from tests.integration.conftest import Factory, balanced
from tests.test_failures import test_chained_exceptions_are_in_the_text, test_records_pin_no_frames
from threadpool_plus import PoolOverloaded, PoolStats

library("distributed")

import distributed  # noqa: E402  (after the check that skips or fails when it is missing)

from tests.integration.dask_tasks import (  # noqa: E402
    DaskGate,
    blocked,
    echo,
    fail,
    kwargs_of,
)
from threadpool_plus.dask import DaskExecutor  # noqa: E402

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
    make_executor: Factory, dask_gate: DaskGate
) -> None:
    pool = make_executor(max_in_flight=1, max_queue_size=1)
    held = pool.submit(blocked, dask_gate.name, 0)
    pool.submit(echo, 1)

    async def main() -> int:
        waiting = asyncio.ensure_future(pool.asubmit(echo, 2))
        deadline = asyncio.get_running_loop().time() + 10
        while pool.stats().waiting_submitters != 1:  # the loop keeps running meanwhile
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert not waiting.done()
        dask_gate.open()
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


def test_overload_counts_in_flight_and_queued(make_executor: Factory, dask_gate: DaskGate) -> None:
    """The ``max_in_flight + max_queue_size + 1``-th ``try_submit`` raises
    ``PoolOverloaded``; ``stats()`` shows what is in flight and what is queued."""
    pool = make_executor(max_in_flight=2, max_queue_size=3, name="bounded")
    futures = [pool.try_submit(blocked, dask_gate.name, n) for n in range(5)]
    with pytest.raises(PoolOverloaded, match=r"'bounded'.*capacity 3"):
        pool.try_submit(blocked, dask_gate.name, 5)
    s = pool.stats()
    assert (s.active, s.queued, s.submitted, s.rejected) == (2, 3, 5, 1), s
    assert (s.queue_capacity, s.idle_workers) == (3, 0), s
    assert [f.running() for f in futures] == [True, True, False, False, False]
    dask_gate.open()
    assert [f.result(timeout=30) for f in futures] == list(range(5))
    s = pool.stats()
    assert (s.completed, s.active, s.queued, s.peak_workers) == (5, 0, 0, 2), s


def test_submit_times_out_or_waits_for_room(make_executor: Factory, dask_gate: DaskGate) -> None:
    impatient = make_executor(max_in_flight=1, max_queue_size=1, submit_timeout=0.05)
    first = impatient.submit(blocked, dask_gate.name, 1)
    second = impatient.submit(echo, 2)
    with pytest.raises(PoolOverloaded):
        impatient.submit(echo, 3)
    assert impatient.stats().rejected == 1
    patient = make_executor(max_in_flight=1, max_queue_size=1)  # waits as long as it takes
    held = patient.submit(blocked, dask_gate.name, 5)
    patient.submit(echo, 6)
    admitted: list[concurrent.futures.Future[int]] = []
    waiter = threading.Thread(target=lambda: admitted.append(patient.submit(echo, 7)))
    waiter.start()
    wait_until(lambda: patient.stats().waiting_submitters == 1)
    assert not admitted
    dask_gate.open()
    waiter.join(30)
    assert [f.result(timeout=30) for f in (first, second, held, admitted[0])] == [1, 2, 5, 7]


def test_overflow_policies(make_executor: Factory, dask_gate: DaskGate) -> None:
    runs = make_executor(
        max_in_flight=1, max_queue_size=1, submit_timeout=0, overflow="caller_runs"
    )
    runs.submit(blocked, dask_gate.name, 0)
    runs.submit(echo, 1)
    ran_here = runs.submit(threading.current_thread)
    assert ran_here.result(timeout=0) is threading.current_thread()
    drops = make_executor(
        max_in_flight=1, max_queue_size=1, submit_timeout=0, overflow="drop_oldest"
    )
    drops.submit(blocked, dask_gate.name, 0)
    oldest = drops.submit(echo, 1)
    newest = drops.submit(echo, 2)
    assert oldest.cancelled()
    dask_gate.open()
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


def test_an_asynchronous_client_is_refused_at_construction() -> None:
    async def build() -> str:
        async with (
            distributed.LocalCluster(  # type: ignore[no-untyped-call]
                processes=False, n_workers=1, dashboard_address=":0", asynchronous=True
            ) as cluster,
            distributed.Client(cluster, asynchronous=True) as client,  # type: ignore[no-untyped-call]
        ):
            with pytest.raises(ValueError, match=r"synchronous distributed\.Client") as caught:
                DaskExecutor(client)
            return str(caught.value)

    assert "asubmit" in asyncio.run(build())


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
