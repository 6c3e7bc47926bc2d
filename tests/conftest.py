from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._support import Gate, threads_named, wait_until
from threadpool_plus import ThreadPoolExecutor

_names = itertools.count()

PoolFactory = Callable[..., ThreadPoolExecutor]


@pytest.fixture
def make_pool() -> Iterator[PoolFactory]:
    """Makes pools with unique names; shuts each down and checks no thread survives."""
    pools: list[ThreadPoolExecutor] = []

    def factory(*args: Any, **kwargs: Any) -> ThreadPoolExecutor:
        kwargs.setdefault("name", f"test-pool-{next(_names)}")
        pool = ThreadPoolExecutor(*args, **kwargs)
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)
    wait_until(lambda: not any(threads_named(pool.name) for pool in pools))


@pytest.fixture
def gate(make_pool: PoolFactory) -> Iterator[Gate]:
    """A gate opened at teardown before the pools shut down, so no task stays blocked."""
    g = Gate()
    yield g
    g.open()
