"""The standard pool's private names that real code reads, side by side with the standard
pool: each is a read-only view of this pool's own state with the same meaning."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest

from tests._support import Gate, wait_until
from threadpool_plus import ThreadPoolExecutor

pytestmark = pytest.mark.timeout(30)

KINDS = ["standard", "plus"]


@pytest.fixture(params=KINDS)
def make(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Makes pools of one kind (typed Any: the standard pool's private names are what the
    test reads); shuts them down at the end."""
    pools: list[concurrent.futures.ThreadPoolExecutor] = []
    cls = (
        concurrent.futures.ThreadPoolExecutor
        if request.param == "standard"
        else (ThreadPoolExecutor)
    )

    def factory(*args: Any, **kwargs: Any) -> Any:
        pool = cls(*args, **kwargs)
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def fail() -> None:
    raise ValueError("initializer failed")


def test_threads_holds_the_started_threads(make: Any, gate: Gate) -> None:
    # celery's `inspect stats` reads len(pool._threads).
    pool = make(3, thread_name_prefix="named")
    assert len(pool._threads) == 0
    for _ in range(2):
        pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 2)
    threads = pool._threads
    assert len(threads) == 2
    assert all(t.is_alive() and t.name.startswith(pool._thread_name_prefix) for t in threads)
    gate.open()
    pool.shutdown(wait=True)
    assert not any(t.is_alive() for t in pool._threads)


def test_shutdown_tells_whether_shutdown_was_called(make: Any) -> None:
    # google-cloud-firestore's BulkWriter reads pool._shutdown.
    pool = make(2)
    assert pool._shutdown is False
    pool.shutdown(wait=False)
    assert pool._shutdown is True


def test_work_queue_qsize_counts_the_tasks_waiting_for_a_thread(make: Any, gate: Gate) -> None:
    pool = make(1)
    pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 1)
    assert pool._work_queue.qsize() == 0
    assert pool._work_queue.empty()
    for _ in range(3):
        pool.submit(gate.wait)
    assert pool._work_queue.qsize() == 3
    assert not pool._work_queue.empty()
    gate.open()
    wait_until(lambda: gate.entered == 4)
    wait_until(lambda: pool._work_queue.qsize() == 0)


def test_idle_semaphore_value_counts_idle_threads(make: Any, gate: Gate) -> None:
    pool = make(3)
    futures = [pool.submit(gate.wait) for _ in range(2)]
    wait_until(lambda: gate.entered == 2)
    assert pool._idle_semaphore._value == 0
    gate.open()
    for future in futures:
        future.result()
    wait_until(lambda: pool._idle_semaphore._value == 2)


@pytest.mark.parametrize("prefix", ["worker", ""])
def test_thread_name_prefix_prefixes_every_thread_name(make: Any, prefix: str) -> None:
    pool = make(2, thread_name_prefix=prefix)
    pool.submit(lambda: None).result()
    assert pool._thread_name_prefix
    if prefix:
        assert pool._thread_name_prefix == prefix
    assert all(t.name.startswith(pool._thread_name_prefix + "_") for t in pool._threads)


def test_broken_is_false_then_the_standard_message(make: Any) -> None:
    pool = make(1, initializer=fail)
    assert pool._broken is False
    future = pool.submit(lambda: None)
    with pytest.raises(concurrent.futures.thread.BrokenThreadPool):
        future.result()
    wait_until(lambda: bool(pool._broken))
    message: object = pool._broken  # (not narrowed to False by the first assert)
    assert message == "A thread initializer failed, the thread pool is not usable anymore"


def test_max_workers_reads_the_limit(make: Any) -> None:
    assert make(7)._max_workers == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("_threads", set()),
        ("_shutdown", True),
        ("_broken", "broken"),
        ("_work_queue", None),
        ("_idle_semaphore", None),
        ("_thread_name_prefix", "x"),
    ],
)
def test_the_views_are_read_only(name: str, value: object) -> None:
    with ThreadPoolExecutor(1) as pool:
        before = getattr(pool, name)
        with pytest.raises(AttributeError):
            setattr(pool, name, value)
        assert type(getattr(pool, name)) is type(before)


def test_the_views_read_this_pools_state_live() -> None:
    with ThreadPoolExecutor(2, name="live") as pool:
        queue, idle = pool._work_queue, pool._idle_semaphore
        pool.submit(lambda: None).result()
        wait_until(lambda: idle._value == 1)  # read through a view taken earlier
        assert queue.qsize() == 0
        assert "live" in repr(queue)
        assert "live" in repr(idle)


@pytest.mark.parametrize("name", ["_shutdown_lock", "_initializer", "_initargs"])
def test_machinery_of_the_standard_pool_is_not_offered(name: str) -> None:
    # _shutdown_lock would let foreign code hold the pool's lock; _initializer and
    # _initargs are gone from the standard pool since Python 3.14 (see docs/works-with.md).
    with ThreadPoolExecutor(1) as pool, pytest.raises(AttributeError):
        getattr(pool, name)
