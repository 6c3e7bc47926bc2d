"""What a ``DaskExecutor`` task runs on a Dask worker: the caller's ``fn`` behind a trampoline.

``client.submit(fn, *args, **kwargs)`` would take some of ``fn``'s keyword arguments for
itself (``key``, ``pure``, ``workers``, ``retries``, ``resources``, ``priority``...). The
executor submits ``call(fn, args, kwargs)`` instead, so every argument reaches ``fn``
untouched, and the trampoline measures the task's run time where it runs (the client
cannot: it only sees when the scheduler reports back).

This module is what workers unpickle by reference, so it imports nothing of the pool's and
nothing but the standard library: ``threadpool_plus`` must be importable on the workers,
and importing it there costs only this.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from time import perf_counter, time
from typing import Any

__all__ = ["TIMING", "call"]

# The attribute a failed task's exception carries back to the client, popped there:
# (time.time() when it started, seconds it ran, where it ran).
TIMING = "_threadpool_plus_timing"


def call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Runs ``fn(*args, **kwargs)``; returns ``(result, seconds it ran)``. An exception
    goes back to the client through Dask (with its traceback), carrying ``TIMING``."""
    started_at = time()
    started = perf_counter()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        ran = perf_counter() - started
        # An exception without a __dict__ (a C type's) simply carries no timing.
        with contextlib.suppress(Exception):
            setattr(exc, TIMING, (started_at, ran, _where()))
        raise
    return result, perf_counter() - started


def _where() -> str:
    """``<worker address> <thread name>``, for ``TaskFailure.thread``."""
    thread = threading.current_thread().name
    distributed = sys.modules.get("distributed")  # always there on a worker
    try:
        address: str = distributed.get_worker().address  # type: ignore[union-attr]
    except Exception:
        return thread
    return f"{address} {thread}"
