"""``map`` schedules every item through ``self.submit``, as the standard library does, yet
never raises ``PoolOverloaded``: subclasses and wrappers of ``submit`` see every task."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

from tests._support import DEADLINE, Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, ThreadPoolExecutor

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")


class CountingPool(ThreadPoolExecutor):
    """Overrides ``submit`` the way subclasses in the wild do: count, then delegate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[Any, ...]] = []

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.seen.append(args)
        return super().submit(fn, *args, **kwargs)


def square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("buffersize", [None, 3])
def test_a_subclass_that_overrides_submit_sees_every_map_task(
    buffersize: int | None,
) -> None:
    with CountingPool(2) as pool:
        assert list(pool.map(square, range(20), buffersize=buffersize)) == [
            x * x for x in range(20)
        ]
    assert pool.seen == [(x,) for x in range(20)]
    assert pool.stats().submitted == 20


def test_a_submit_replaced_on_the_instance_sees_every_map_task(
    make_pool: PoolFactory,
) -> None:
    # What tqdm's thread_map does to tick its progress bar.
    pool = make_pool(3)
    original = pool.submit
    done: list[int] = []

    def counting_submit(*args: Any, **kwargs: Any) -> Future[Any]:
        future = original(*args, **kwargs)
        future.add_done_callback(lambda _: done.append(1))
        return future

    pool.submit = counting_submit  # type: ignore[method-assign]
    assert list(pool.map(square, range(12))) == [x * x for x in range(12)]
    wait_until(lambda: len(done) == 12)


def test_map_through_submit_waits_in_a_full_pool_that_fails_fast(gate: Gate) -> None:
    # submit_timeout=0: a plain submit fails at once when the pool is full; map waits.
    with CountingPool(1, max_queue_size=1, submit_timeout=0) as pool:
        pool.submit(gate.wait)
        pool.submit(gate.wait)  # the thread is busy and the queue is full
        results: list[list[int]] = []
        mapper = threading.Thread(target=lambda: results.append(list(pool.map(square, [2, 3]))))
        mapper.start()
        wait_until(lambda: len(pool.seen) == 3)  # map's first submit is waiting for room
        assert pool.stats().rejected == 0
        gate.open()
        mapper.join(DEADLINE)
        assert results == [[4, 9]]
        assert pool.stats().rejected == 0


def test_the_map_mark_is_cleared_after_map_and_after_a_failed_submit(gate: Gate) -> None:
    pool = ThreadPoolExecutor(1, max_queue_size=1, submit_timeout=0)
    try:
        assert list(pool.map(square, [1, 2])) == [1, 4]
        pool.submit(gate.wait)
        pool.submit(gate.wait)
        with pytest.raises(PoolOverloaded):  # this thread no longer waits like map
            pool.submit(square, 1)
        gate.open()
    finally:
        pool.shutdown()
    with pytest.raises(RuntimeError, match="shut"):
        pool.map(square, [1])  # its submit raised inside map
    with ThreadPoolExecutor(1, max_queue_size=1, submit_timeout=0) as other:
        blocker = Gate()
        other.submit(blocker.wait)
        other.submit(blocker.wait)
        with pytest.raises(PoolOverloaded):
            other.submit(square, 1)
        blocker.open()


def test_try_submit_never_waits_even_inside_map(gate: Gate) -> None:
    class TryingPool(ThreadPoolExecutor):
        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            return self.try_submit(fn, *args, **kwargs)

    with TryingPool(1, max_queue_size=1) as pool:
        pool.submit(gate.wait)
        pool.submit(gate.wait)
        with pytest.raises(PoolOverloaded):
            pool.map(square, [1])
        gate.open()


def test_the_map_mark_belongs_to_the_thread_inside_map(gate: Gate) -> None:
    # While one thread's map waits for room, another thread's plain submit still fails
    # fast, as its submit_timeout says.
    with CountingPool(1, max_queue_size=1, submit_timeout=0) as pool:
        pool.submit(gate.wait)
        pool.submit(gate.wait)
        mapper = threading.Thread(target=lambda: list(pool.map(square, [5])))
        mapper.start()
        wait_until(lambda: len(pool.seen) == 3)
        with pytest.raises(PoolOverloaded):
            pool.submit(square, 1)
        gate.open()
        mapper.join(DEADLINE)
        assert not mapper.is_alive()
