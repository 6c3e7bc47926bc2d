"""Pools dropped without ``shutdown()``: once the executor is garbage-collected, its queue
still runs and its threads exit."""

from __future__ import annotations

import functools
import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import _probe as probe
from tests._support import DEADLINE, Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import ThreadPoolExecutor


@pytest.fixture
def make_dropped_pool() -> Iterator[PoolFactory]:
    """Makes pools the test will drop (each needs a ``name``); keeps only their cores, which
    do not keep the executor alive, so that a failing test leaves no thread behind."""
    shutdowns: list[Callable[[], object]] = []
    names: list[str] = []

    def factory(*args: Any, **kwargs: Any) -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(*args, **kwargs)
        shutdowns.append(functools.partial(probe.core_of(pool).shutdown, wait=True, cancel=True))
        names.append(pool.name)
        return pool

    yield factory
    for shutdown in shutdowns:
        shutdown()
    wait_until(lambda: not any(threads_named(name) for name in names))


def test_dropped_pool_runs_its_queue_then_its_threads_exit(
    make_dropped_pool: PoolFactory,
) -> None:
    """A pool collected while its queue is full still runs every queued task, then its
    threads exit without waiting for the idle timeout."""
    pool = make_dropped_pool(1, name="dropped-busy")
    gate = Gate()
    ran: list[int] = []
    try:
        running = pool.submit(gate.wait, "running")
        gate.wait_entered(1)
        queued = [pool.submit(ran.append, i) for i in range(10)]
        assert pool.stats().queued == 10
        collected = weakref.ref(pool)
        del pool
        gc.collect()
        assert collected() is None
    finally:
        gate.open()
    assert running.result(timeout=DEADLINE) == "running"
    for future in queued:
        future.result(timeout=DEADLINE)
    assert ran == list(range(10))
    wait_until(lambda: not threads_named("dropped-busy"))


def test_dropped_pool_lets_its_permanent_threads_exit(make_dropped_pool: PoolFactory) -> None:
    """``min_workers`` threads that never time out exit once their pool is collected."""
    pool = make_dropped_pool(4, min_workers=2, idle_timeout=None, name="dropped-idle")
    assert pool.submit(pow, 2, 3).result() == 8
    assert len(threads_named("dropped-idle")) == 2
    collected = weakref.ref(pool)
    del pool
    gc.collect()
    assert collected() is None
    wait_until(lambda: not threads_named("dropped-idle"))


def test_dropped_pool_in_a_reference_cycle_lets_its_threads_exit(
    make_dropped_pool: PoolFactory,
) -> None:
    """A pool reachable only from a reference cycle (freed by the cyclic GC, not by
    reference counting) lets its permanent threads exit too."""
    pool = make_dropped_pool(2, min_workers=2, idle_timeout=None, name="dropped-cycle")
    assert pool.submit(pow, 2, 3).result() == 8
    owner: dict[str, object] = {"pool": pool}
    owner["self"] = owner
    collected = weakref.ref(pool)
    del pool, owner
    gc.collect()
    assert collected() is None
    wait_until(lambda: not threads_named("dropped-cycle"))
