"""Static types: ``submit`` is generic over the callable (checked by ``mypy --strict``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import Future

from tests.conftest import PoolFactory
from threadpool_plus import PoolStats

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover - typing_extensions comes with mypy
    from typing_extensions import assert_type


def greet(name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def test_submit_keeps_the_return_type(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    future = assert_type(pool.submit(greet, "ada", punctuation="?"), Future[str])
    assert future.result() == "hello ada?"
    other = assert_type(pool.try_submit(len, "four"), Future[int])
    assert other.result() == 4


def test_map_keeps_the_return_type(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    results = assert_type(pool.map(greet, ["a", "b"]), Iterator[str])
    assert list(results) == ["hello a!", "hello b!"]


def test_stats_is_typed(make_pool: PoolFactory) -> None:
    stats = assert_type(make_pool(1).stats(), PoolStats)
    assert_type(stats.submitted, int)
    assert stats.submitted == 0
