"""Submitting: futures, the bounded queue, fail-fast and timed waits, refusals."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from tests import _probe as probe
from tests._support import Gate, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, ThreadPoolExecutor


def test_submit_returns_a_future_with_the_result(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    future = pool.submit(pow, 2, 10)
    assert isinstance(future, Future)
    assert future.result() == 1024


def test_fn_is_positional_only_so_tasks_may_take_fn_and_self(make_pool: PoolFactory) -> None:
    def task(*, fn: str, self: str) -> str:
        return fn + self

    pool = make_pool(1)
    assert pool.submit(task, fn="a", self="b").result() == "ab"
    assert pool.try_submit(task, fn="c", self="d").result() == "cd"


@pytest.mark.parametrize("method", ["submit", "try_submit"])
def test_non_callable_raises_type_error(make_pool: PoolFactory, method: str) -> None:
    pool = make_pool(1)
    with pytest.raises(TypeError, match="callable"):
        getattr(pool, method)(42)
    assert pool.stats().submitted == 0


@pytest.mark.parametrize("method", ["submit", "try_submit"])
def test_submit_after_shutdown_raises_the_stdlib_error(
    make_pool: PoolFactory, method: str
) -> None:
    pool = make_pool(1)
    pool.shutdown()
    with pytest.raises(RuntimeError, match=r"^cannot schedule new futures after shutdown$"):
        getattr(pool, method)(int)


def fill(pool: ThreadPoolExecutor, gate: Gate, workers: int, queued: int) -> list[Future[object]]:
    """Blocks ``workers`` threads on the gate and queues ``queued`` more gated tasks."""
    futures = [pool.submit(gate.wait, i) for i in range(workers)]
    gate.wait_entered(workers)
    futures += [pool.submit(gate.wait, workers + i) for i in range(queued)]
    return futures


def test_full_queue_fails_fast_with_zero_timeout(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(2, max_queue_size=3, submit_timeout=0, name="fast")
    futures = fill(pool, gate, workers=2, queued=3)
    ran = threading.Event()
    with pytest.raises(PoolOverloaded, match=r"'fast'.*capacity 3"):
        pool.submit(ran.set)
    stats = pool.stats()
    assert (stats.submitted, stats.rejected, stats.queued, stats.active) == (5, 1, 3, 2)
    gate.open()
    assert [f.result() for f in futures] == [0, 1, 2, 3, 4]
    pool.shutdown()
    assert not ran.is_set(), "a rejected task must never run"


def test_try_submit_never_waits(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1, submit_timeout=None)
    fill(pool, gate, workers=1, queued=1)
    with pytest.raises(PoolOverloaded):
        pool.try_submit(int)
    assert pool.stats().rejected == 1


def test_try_submit_accepts_when_there_is_room(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1)
    fill(pool, gate, workers=1, queued=0)
    future = pool.try_submit(int, "3")
    assert pool.stats().queued == 1
    gate.open()
    assert future.result() == 3


def test_timed_submit_raises_after_its_timeout(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1, submit_timeout=0.05)
    fill(pool, gate, workers=1, queued=1)
    with pytest.raises(PoolOverloaded):
        pool.submit(int)
    assert pool.stats().rejected == 1


def test_timed_submit_succeeds_when_room_appears(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1, submit_timeout=30)
    futures = fill(pool, gate, workers=1, queued=1)
    result: list[Future[object]] = []
    submitter = threading.Thread(target=lambda: result.append(pool.submit(str, "late")))
    submitter.start()
    wait_until(lambda: probe.waiting(pool) == 1)
    gate.open()
    submitter.join()
    assert result[0].result() == "late"
    assert [f.result() for f in futures] == [0, 1]
    assert pool.stats().rejected == 0


def test_waiting_submit_blocks_until_room(make_pool: PoolFactory, gate: Gate) -> None:
    """``submit_timeout=None`` waits as long as it takes, and accepts in the end."""
    pool = make_pool(1, max_queue_size=2)
    fill(pool, gate, workers=1, queued=2)
    accepted = threading.Event()

    def produce() -> None:
        pool.submit(int)
        accepted.set()

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: probe.waiting(pool) == 1)
    assert not accepted.is_set()
    gate.open()
    producer.join()
    assert accepted.is_set()


def test_blocked_submitter_is_woken_by_shutdown(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1)
    futures = fill(pool, gate, workers=1, queued=1)
    errors: list[BaseException] = []
    ran = threading.Event()

    def produce() -> None:
        try:
            pool.submit(ran.set)
        except BaseException as exc:
            errors.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: probe.waiting(pool) == 1)
    pool.shutdown(wait=False)
    producer.join()
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert not isinstance(errors[0], PoolOverloaded)
    assert "cannot schedule new futures" in str(errors[0])
    gate.open()
    assert [f.result() for f in futures] == [0, 1], "accepted tasks still run"
    pool.shutdown()
    assert not ran.is_set()


def test_unbounded_queue_accepts_everything(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, submit_timeout=0)
    futures = fill(pool, gate, workers=1, queued=500)
    assert pool.stats().queued == 500
    gate.open()
    assert [f.result() for f in futures] == list(range(501))


def test_queue_is_fifo(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1)
    order: list[int] = []
    fill(pool, gate, workers=1, queued=0)
    futures = [pool.submit(order.append, i) for i in range(50)]
    gate.open()
    for future in futures:
        future.result()
    assert order == list(range(50))


def test_rejection_leaks_no_slot(make_pool: PoolFactory, gate: Gate) -> None:
    """After many rejections the queue still holds exactly its capacity."""
    pool = make_pool(1, max_queue_size=2, submit_timeout=0)
    fill(pool, gate, workers=1, queued=2)
    for _ in range(20):
        with pytest.raises(PoolOverloaded):
            pool.submit(int)
    gate.open()
    wait_until(lambda: pool.stats().active == 0)
    # Room for one running task plus two queued, no more.
    blocker = Gate()
    running = pool.submit(blocker.wait)
    blocker.wait_entered(1)
    queued = [pool.submit(int), pool.submit(int)]
    with pytest.raises(PoolOverloaded):
        pool.submit(int)
    blocker.open()
    assert running.result() is None
    assert [f.result() for f in queued] == [0, 0]
    assert pool.stats().rejected == 21
