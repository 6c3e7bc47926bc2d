"""``Executor.map`` with a bounded queue and Python 3.14's lazy ``buffersize``."""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from time import monotonic
from typing import Any, TypeVar

from ._admission import map_scope

__all__ = ["map_results", "waiting_for_room"]

T = TypeVar("T")


def waiting_for_room(submit: Callable[..., Future[T]]) -> Callable[..., Future[T]]:
    """``submit`` made to wait for room in a full pool, whatever ``submit_timeout`` says,
    as ``map`` must (it never raises ``PoolOverloaded``). ``submit`` is the pool's own, so
    whatever wraps or overrides it sees every item (see ``_admission.map_scope``)."""

    def submit_waiting(fn: Callable[..., T], *args: Any) -> Future[T]:
        scope = map_scope
        outer, scope.waits = scope.waits, True
        try:
            return submit(fn, *args)
        finally:
            scope.waits = outer

    return submit_waiting


def map_results(
    submit: Callable[..., Future[T]],
    fn: Callable[..., T],
    iterables: tuple[Iterable[Any], ...],
    timeout: float | None,
    chunksize: int,
    buffersize: int | None,
) -> Iterator[T]:
    """Submits ``fn`` over ``zip(*iterables)``; yields the results in input order.

    Without ``buffersize`` every task is submitted before this returns, as the standard
    library does, so even a never-iterated map runs. With it only ``buffersize`` tasks are
    submitted here and one more each time a result is taken, reading the input lazily.
    ``submit`` must wait for room rather than raise ``PoolOverloaded``.
    """
    if not callable(fn):
        raise TypeError(f"map() needs a callable, not {type(fn).__name__}")
    # As in the standard library: chunksize means nothing to threads, so any value goes,
    # and a timeout that is negative has simply run out by the first result.
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
        if math.isnan(timeout):
            raise ValueError("timeout must not be NaN")
    if buffersize is not None:
        if isinstance(buffersize, bool) or not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
    end_time = None if timeout is None else monotonic() + timeout
    args_iter = zip(*iterables, strict=False)
    if buffersize is not None:
        args_iter = iter(args_iter)
        first: Iterable[tuple[Any, ...]] = itertools.islice(args_iter, buffersize)
    else:
        first = args_iter
    futures = deque(submit(fn, *args) for args in first)
    return _results(futures, submit, fn, args_iter if buffersize is not None else None, end_time)


def _results(
    futures: deque[Future[T]],
    submit: Callable[..., Future[T]],
    fn: Callable[..., T],
    more: Iterator[tuple[Any, ...]] | None,
    end_time: float | None,
) -> Iterator[T]:
    try:
        while futures:
            if more is not None and (args := next(more, None)) is not None:
                futures.append(submit(fn, *args))
            # Pass the popped future straight on: no name here may keep a yielded result.
            if end_time is None:
                yield _result_or_cancel(futures.popleft())
            else:
                yield _result_or_cancel(futures.popleft(), end_time - monotonic())
    finally:
        for future in futures:
            future.cancel()


def _result_or_cancel(future: Future[T], timeout: float | None = None) -> T:
    try:
        try:
            return future.result(timeout)
        finally:
            future.cancel()
    finally:
        del future  # break the reference cycle through the traceback
