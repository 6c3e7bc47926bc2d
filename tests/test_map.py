"""``map``: input order, zipping, lazy ``buffersize``, timeouts, errors and the queue bound."""

from __future__ import annotations

import concurrent.futures
import gc
import itertools
import operator
import threading
import weakref
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import pytest

from tests import _probe as probe
from tests._support import Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import ThreadPoolExecutor


class Counting:
    """An iterator over ``source`` that counts how many items were taken from it."""

    def __init__(self, source: Iterable[int]) -> None:
        self._source = iter(source)
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        item = next(self._source)
        self.taken += 1
        return item


class Box:
    """A result that supports weak references, so a test can see when it is freed."""

    def __init__(self, value: int) -> None:
        self.value = value


def double(x: int) -> int:
    return 2 * x


def settled(pool: ThreadPoolExecutor) -> bool:
    """True when no task of ``pool`` is running or queued (from one snapshot)."""
    stats = pool.stats()
    return stats.active == stats.queued == 0


def test_results_come_in_input_order_when_tasks_finish_out_of_order(
    make_pool: PoolFactory,
) -> None:
    """Results follow the input order even when the tasks finish in reverse."""
    count = 5
    pool = make_pool(count)
    releases = [threading.Event() for _ in range(count)]
    finished: list[int] = []

    def task(i: int) -> int:
        if not releases[i].wait(10):
            raise AssertionError(f"task {i} was never released")
        finished.append(i)
        return i * 10

    results = pool.map(task, range(count))
    for i in reversed(range(count)):
        releases[i].set()
        wait_until(partial(operator.contains, finished, i))
    assert finished == [4, 3, 2, 1, 0]
    assert list(results) == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("buffersize", [None, 1, 2, 100])
def test_several_iterables_zip_like_builtin_map(
    make_pool: PoolFactory, buffersize: int | None
) -> None:
    """Several iterables are zipped and the shortest one ends the map, as builtin ``map``."""
    pool = make_pool(3)
    bases, exponents = [2, 3, 4, 5], [5, 6, 7]
    results = pool.map(pow, bases, exponents, buffersize=buffersize)
    assert list(results) == list(map(pow, bases, exponents)) == [32, 729, 16384]


def test_chunksize_is_accepted_and_changes_no_result(make_pool: PoolFactory) -> None:
    """``chunksize`` is accepted for parity with the standard library; results are the same."""
    pool = make_pool(2)
    assert list(pool.map(double, range(10), chunksize=4)) == [double(i) for i in range(10)]


def test_empty_input_gives_an_empty_iterator(make_pool: PoolFactory) -> None:
    """An empty input submits nothing and yields nothing."""
    pool = make_pool(1)
    assert list(pool.map(double, [])) == []
    assert list(pool.map(double, [], buffersize=3)) == []
    assert pool.stats().submitted == 0


def test_buffersize_reads_only_that_many_items_before_iteration(make_pool: PoolFactory) -> None:
    """With ``buffersize=N``, ``map()`` returns having read and submitted only N items."""
    pool = make_pool(2)
    source = Counting(range(1000))
    results = pool.map(double, source, buffersize=3)
    assert source.taken == 3
    assert pool.stats().submitted == 3
    assert list(results) == [double(i) for i in range(1000)]
    assert source.taken == 1000


def test_buffersize_keeps_at_most_that_many_tasks_ahead_of_the_consumer(
    make_pool: PoolFactory,
) -> None:
    """While iterating, never more than ``buffersize`` tasks are read or submitted ahead."""
    buffersize, count = 4, 60
    pool = make_pool(8)
    source = Counting(range(count))
    consumed = 0
    ahead: list[int] = []  # for each task: how far past the result being awaited it is

    def task(i: int) -> int:
        ahead.append(i - consumed)
        return double(i)

    results = pool.map(task, source, buffersize=buffersize)
    for expected, result in enumerate(results):
        assert result == double(expected)
        consumed += 1
        assert source.taken - consumed <= buffersize
        assert pool.stats().submitted - consumed <= buffersize
    assert consumed == count
    assert len(ahead) == count
    assert max(ahead) <= buffersize


def test_buffersize_handles_an_endless_input(make_pool: PoolFactory) -> None:
    """An endless input with ``buffersize`` works when only the first results are taken."""
    pool = make_pool(2)
    results = pool.map(double, itertools.count(), buffersize=4)
    assert list(itertools.islice(results, 10)) == [double(i) for i in range(10)]
    assert pool.stats().submitted <= 10 + 4
    del results  # closing the iterator cancels what it has not yielded
    wait_until(partial(settled, pool))
    stats = pool.stats()
    assert stats.submitted <= 10 + 4
    assert stats.submitted == stats.completed + stats.cancelled


@pytest.mark.parametrize("buffersize", [None, 3])
def test_timeout_raises_and_cancels_the_tasks_not_started(
    make_pool: PoolFactory, gate: Gate, buffersize: int | None
) -> None:
    """``timeout`` raises ``TimeoutError`` on iteration and the queued tasks never run."""
    pool = make_pool(1)
    results = pool.map(gate.wait, range(6), timeout=0.05, buffersize=buffersize)
    with pytest.raises(concurrent.futures.TimeoutError):
        next(results)
    gate.open()
    wait_until(partial(settled, pool))
    stats = pool.stats()
    assert gate.entered == 1, "only the task that was running when time ran out ran"
    assert stats.completed == 1
    assert stats.cancelled == stats.submitted - 1 > 0
    with pytest.raises(StopIteration):
        next(results)


def test_exception_surfaces_at_its_position(make_pool: PoolFactory) -> None:
    """A task's exception is raised when its result is reached; earlier results arrive."""

    def task(i: int) -> int:
        if i == 3:
            raise LookupError(f"no {i}")
        return i

    pool = make_pool(2)
    results = pool.map(task, range(8))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(LookupError, match="no 3"):
        next(results)
    with pytest.raises(StopIteration):
        next(results)


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "dropped"])
def test_unconsumed_map_runs_every_task_before_shutdown_returns(
    make_pool: PoolFactory, keep: bool
) -> None:
    """A map never iterated (no ``buffersize``) still runs all its tasks by ``shutdown()``."""
    pool = make_pool(2)
    ran: list[int] = []
    results: Iterator[None] | None = pool.map(ran.append, range(50))
    if not keep:
        results = None
        gc.collect()
    pool.shutdown(wait=True)
    assert sorted(ran) == list(range(50))
    assert pool.stats().completed == 50
    del results


def test_iterator_keeps_no_reference_to_yielded_results(
    make_pool: PoolFactory, gate: Gate
) -> None:
    """A result already yielded is freed once the caller drops it, while the map lives on."""

    def make(i: int) -> Box:
        if i:
            gate.wait()
        return Box(i)

    pool = make_pool(1)
    results = pool.map(make, range(4))
    first = next(results)
    # The only thread has moved on to task 1, so it holds nothing of task 0 either.
    gate.wait_entered(1)
    ref = weakref.ref(first)
    del first
    gc.collect()
    assert ref() is None
    gate.open()
    assert [box.value for box in results] == [1, 2, 3]


@pytest.mark.parametrize("buffersize", [None, 10])
def test_map_waits_for_room_in_a_bounded_queue(
    make_pool: PoolFactory, gate: Gate, buffersize: int | None
) -> None:
    """``map`` waits for room in a full queue instead of raising ``PoolOverloaded``."""
    pool = make_pool(2, max_queue_size=2, submit_timeout=0)
    collected: list[list[object]] = []

    def consume() -> None:
        collected.append(list(pool.map(gate.wait, range(50), buffersize=buffersize)))

    consumer = threading.Thread(target=consume)
    consumer.start()
    gate.wait_entered(2)
    wait_until(lambda: probe.waiting(pool) == 1)
    assert pool.stats().queued == 2
    gate.open()
    consumer.join()
    assert collected == [list(range(50))]
    stats = pool.stats()
    assert (stats.rejected, stats.submitted) == (0, 50)


def test_non_callable_fn_raises_type_error(make_pool: PoolFactory) -> None:
    """A non-callable ``fn`` raises ``TypeError`` at once and submits nothing."""
    pool = make_pool(1)
    not_callable: Any = 42
    with pytest.raises(TypeError):
        pool.map(not_callable, [1, 2])
    assert pool.stats().submitted == 0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"buffersize": 0}, ValueError),
        ({"buffersize": -1}, ValueError),
        ({"buffersize": "x"}, TypeError),
        ({"buffersize": 1.5}, TypeError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": "x"}, TypeError),
    ],
    ids=repr,
)
def test_bad_arguments_raise_at_once(
    make_pool: PoolFactory, options: dict[str, Any], error: type[Exception]
) -> None:
    """Invalid ``buffersize`` or ``timeout`` raise at once; nothing is read."""
    pool = make_pool(1)
    source = Counting(range(5))
    with pytest.raises(error):
        pool.map(double, source, **options)
    assert source.taken == 0
    assert pool.stats().submitted == 0


@pytest.mark.parametrize("buffersize", [None, 2])
def test_map_after_shutdown_raises_runtime_error(
    make_pool: PoolFactory, buffersize: int | None
) -> None:
    """``map`` after ``shutdown()`` raises ``RuntimeError``, as ``submit`` does."""
    pool = make_pool(1)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.map(double, range(5), buffersize=buffersize)


def test_lazy_map_keeps_a_dropped_pool_alive_until_its_input_is_read() -> None:
    """A ``buffersize`` map over a pool nobody else references still reads all its input."""
    pool = ThreadPoolExecutor(2, name="dropped-map")
    results = pool.map(abs, range(-10, 0), buffersize=2)
    del pool
    gc.collect()
    assert list(results) == list(range(10, 0, -1))
    del results
    gc.collect()
    wait_until(lambda: not threads_named("dropped-map"))
