"""Bad configuration fails at construction (or resize) with a clear error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PoolFactory
from threadpool_plus import ThreadPoolExecutor


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_workers": 0}, ValueError, "max_workers must be greater than 0"),
        ({"max_workers": -3}, ValueError, "max_workers must be greater than 0"),
        ({"max_workers": 2.5}, TypeError, "max_workers must be an int"),
        ({"max_workers": "4"}, TypeError, "max_workers must be an int"),
        ({"max_workers": True}, TypeError, "max_workers must be an int"),
        ({"min_workers": -1}, ValueError, "min_workers must be >= 0"),
        ({"min_workers": 1.0}, TypeError, "min_workers must be an int"),
        (
            {"min_workers": 3, "max_workers": 2},
            ValueError,
            r"min_workers \(3\).*max_workers \(2\)",
        ),
        ({"max_queue_size": -1}, ValueError, "max_queue_size must be >= 0"),
        ({"max_queue_size": None}, TypeError, "max_queue_size must be an int"),
        ({"submit_timeout": -0.1}, ValueError, "submit_timeout must be None or >= 0"),
        ({"submit_timeout": float("nan")}, ValueError, "submit_timeout"),
        ({"submit_timeout": "1"}, TypeError, "submit_timeout must be a number"),
        ({"idle_timeout": 0}, ValueError, "idle_timeout must be None or > 0"),
        ({"idle_timeout": -5}, ValueError, "idle_timeout must be None or > 0"),
        ({"idle_timeout": [1]}, TypeError, "idle_timeout must be a number"),
        ({"initializer": 42}, TypeError, "initializer must be a callable"),
        ({"initargs": 42}, TypeError, "initargs must be an iterable, not int"),
        ({"thread_name_prefix": 7}, TypeError, "thread_name_prefix must be a str"),
        ({"name": 7}, TypeError, "name must be a str"),
        ({"name": ""}, ValueError, "name must not be empty"),
    ],
)
def test_bad_configuration_raises(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ThreadPoolExecutor(**kwargs)


def test_valid_configuration_is_kept(make_pool: PoolFactory) -> None:
    pool = make_pool(
        6, min_workers=2, max_queue_size=9, submit_timeout=0.5, idle_timeout=None, name="svc"
    )
    stats = pool.stats()
    assert (stats.min_workers, stats.max_workers, stats.queue_capacity) == (2, 6, 9)
    assert pool.name == "svc"


def test_default_max_workers_never_contradicts_min_workers(make_pool: PoolFactory) -> None:
    pool = make_pool(min_workers=40, idle_timeout=None)
    assert pool.stats().max_workers == 40


def test_infinite_timeouts_mean_no_limit(make_pool: PoolFactory) -> None:
    pool = make_pool(2, submit_timeout=float("inf"), idle_timeout=float("inf"))
    assert pool.submit(int, "5").result() == 5


def test_list_initargs_are_accepted_like_the_stdlib(make_pool: PoolFactory) -> None:
    seen: list[int] = []
    pool = make_pool(1, initializer=seen.append, initargs=[7])
    pool.submit(int).result()
    assert seen == [7]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_workers": 0}, ValueError, "max_workers must be greater than 0"),
        ({"min_workers": -1}, ValueError, "min_workers must be >= 0"),
        ({"max_workers": "2"}, TypeError, "max_workers must be an int"),
        ({"min_workers": 5}, ValueError, r"min_workers \(5\).*max_workers \(4\)"),
        ({"min_workers": 3, "max_workers": 1}, ValueError, "min_workers"),
    ],
)
def test_bad_resize_raises_and_keeps_limits(
    make_pool: PoolFactory, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    pool = make_pool(4, min_workers=1)
    with pytest.raises(error, match=match):
        pool.resize(**kwargs)
    stats = pool.stats()
    assert (stats.min_workers, stats.max_workers) == (1, 4)


def test_resize_after_shutdown_raises(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.resize(max_workers=3)
