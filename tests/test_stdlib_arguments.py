"""What the standard library's pool accepts, this pool accepts, with the same outcome.

Each case runs against ``concurrent.futures.ThreadPoolExecutor`` and against ours, and
compares what a caller can observe. Our own parameters stay strict (``test_config.py``).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._support import Gate
from threadpool_plus import ThreadPoolExecutor

Executor = Callable[..., concurrent.futures.ThreadPoolExecutor]
BOTH: list[Executor] = [concurrent.futures.ThreadPoolExecutor, ThreadPoolExecutor]


def outcome(make: Executor, fn: Callable[[concurrent.futures.ThreadPoolExecutor], Any]) -> Any:
    pool = make(2) if make is concurrent.futures.ThreadPoolExecutor else make(2, name="compat")
    try:
        return fn(pool)
    finally:
        pool.shutdown(wait=True)


@pytest.mark.parametrize("chunksize", [0, -3, "x", None, 4])
def test_map_accepts_any_chunksize(chunksize: Any) -> None:
    results = [
        outcome(make, lambda pool: list(pool.map(abs, [-1, -2, 3], chunksize=chunksize)))
        for make in BOTH
    ]
    assert results == [[1, 2, 3], [1, 2, 3]]


def test_map_with_a_negative_timeout_has_run_out_at_the_first_unfinished_result() -> None:
    def first_result(pool: concurrent.futures.ThreadPoolExecutor) -> str:
        gate = Gate()
        results = pool.map(gate.wait, ["a", "b"], timeout=-1)
        try:
            next(results)
        except concurrent.futures.TimeoutError:  # the builtin one from 3.11 on
            return "timed out"
        finally:
            gate.open()
        return "returned"

    assert [outcome(make, first_result) for make in BOTH] == ["timed out", "timed out"]


def test_an_integral_float_max_workers_is_that_many_threads() -> None:
    pool = ThreadPoolExecutor(4.0, name="float-workers")  # type: ignore[arg-type]
    std = concurrent.futures.ThreadPoolExecutor(4.0)  # type: ignore[call-overload]
    try:
        assert pool.stats().max_workers == 4
        assert pool._max_workers == std._max_workers == 4
    finally:
        pool.shutdown()
        std.shutdown()


def test_thread_name_prefix_none_names_threads_as_the_stdlib_does() -> None:
    def thread_name(pool: concurrent.futures.ThreadPoolExecutor) -> str:
        return pool.submit(lambda: threading.current_thread().name).result(timeout=5)

    std = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=None)  # type: ignore[call-overload]
    ours = ThreadPoolExecutor(1, thread_name_prefix=None)
    try:
        names = [thread_name(std), thread_name(ours)]
    finally:
        std.shutdown()
        ours.shutdown()
    assert all(name.startswith("ThreadPoolExecutor-") and name.endswith("_0") for name in names)


def generated() -> Iterator[int]:
    yield from (1, 2)


@pytest.mark.parametrize("initargs", [[1, 2], (1, 2), "ab", range(2), generated()], ids=repr)
def test_initargs_of_any_iterable_reach_the_initializer_alike(initargs: Any) -> None:
    seen: list[tuple[Any, ...]] = []

    def init(*args: Any) -> None:
        seen.append(args)

    # One interpreter-wide generator serves both pools: materialise it once.
    values = tuple(initargs)
    for make in BOTH:
        with make(1, initializer=init, initargs=iter(values)) as pool:
            pool.submit(int).result(timeout=5)
    assert seen == [values, values]
