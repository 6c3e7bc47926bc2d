"""The pools under test, behind one small interface.

Every scenario drives a pool through a ``PoolHandle``: ``submit(fn, *args)`` returning a
``concurrent.futures.Future`` and ``close()`` that waits for every accepted task and every
thread. For the standard library and threadpool_plus ``submit`` is the pool's own bound
method, so the benchmark adds no call of its own; pebble's ``schedule(fn, args=...)`` needs
a one-line adapter, which costs it one extra Python call per task.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import importlib.metadata
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import threadpool_plus

# Optional: without it, its column is left out. Imported by name so that the type
# checker is content whether or not it is installed.
pebble: ModuleType | None
try:
    pebble = importlib.import_module("pebble")
except ImportError:
    pebble = None

__all__ = [
    "PEBBLE",
    "POOLS",
    "STDLIB",
    "TPP",
    "PoolHandle",
    "available_pools",
    "make_pool",
    "pool_versions",
]

STDLIB = "stdlib"
TPP = "threadpool_plus"
PEBBLE = "pebble"
POOLS = (STDLIB, TPP, PEBBLE)  # table column order


@dataclass(frozen=True)
class PoolHandle:
    """One pool as the scenarios see it."""

    name: str
    submit: Callable[..., Future[Any]]
    close: Callable[[], object]
    pool: object  # the pool itself, for what only one kind offers (threadpool_plus stats)


def available_pools() -> tuple[str, ...]:
    """The pools this interpreter can run: pebble only when it is installed."""
    return tuple(name for name in POOLS if name != PEBBLE or pebble is not None)


def pool_versions() -> dict[str, str]:
    """Version of each pool's package, for the report header."""
    import platform

    versions = {STDLIB: platform.python_version(), TPP: threadpool_plus.__version__}
    if pebble is not None:
        versions[PEBBLE] = importlib.metadata.version("pebble")
    return versions


def make_pool(name: str, workers: int, **tpp_options: Any) -> PoolHandle:
    """Creates pool ``name`` with ``workers`` threads at most.

    ``tpp_options`` are keyword arguments for threadpool_plus only (``idle_timeout``,
    ``max_queue_size``, ``submit_timeout``...); the other pools have no equivalent.
    """
    if name == STDLIB:
        std = concurrent.futures.ThreadPoolExecutor(workers)
        return PoolHandle(name, std.submit, std.shutdown, std)
    if name == TPP:
        plus = threadpool_plus.ThreadPoolExecutor(workers, **tpp_options)
        return PoolHandle(name, plus.submit, plus.shutdown, plus)
    if name == PEBBLE:
        if pebble is None:
            raise RuntimeError("pebble is not installed")
        peb = pebble.ThreadPool(max_workers=workers)
        schedule = peb.schedule

        def submit(fn: Callable[..., Any], *args: Any) -> Future[Any]:
            future: Future[Any] = schedule(fn, args=args)
            return future

        def close() -> None:
            peb.close()
            peb.join()

        return PoolHandle(name, submit, close, peb)
    raise ValueError(f"unknown pool {name!r}")
