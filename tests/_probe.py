"""The one way tests reach a pool's internals.

Everything a test needs to see or provoke inside a pool goes through a function here, so a
refactor of the core changes this file and no test. Nothing here replaces the pool's lock
or writes its fields: faults are injected where the real ones come from (a thread's
``start()``, a signal arriving while the main thread holds the lock).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol

from threadpool_plus import ThreadPoolExecutor, _process
from threadpool_plus._histogram import HistogramSnapshot
from threadpool_plus._pool import PoolCore, State
from threadpool_plus._stats import PoolStats
from threadpool_plus._threads import ThreadCore
from threadpool_plus._workers import WorkerThread

__all__ = [
    "State",
    "closed",
    "core_of",
    "delayed_thread_runs",
    "failing_thread_starts",
    "holding_lock",
    "holding_registry_lock",
    "idle_thread_names",
    "idle_timeouts",
    "is_broken",
    "joiners",
    "lock_held",
    "metrics",
    "signal_in_thread_start",
    "signal_when_locked",
    "small_otel_taps",
    "state",
    "tapped_timings",
    "waiting",
    "yields_gil",
]


def core_of(pool: ThreadPoolExecutor) -> ThreadCore:
    """The state a pool's threads share (what outlives a dropped executor)."""
    return pool._core


def waiting(pool: ThreadPoolExecutor) -> int:
    """How many callers wait for room in the queue."""
    core = pool._core
    with core.lock:
        return len(core.waiters)


def state(pool: ThreadPoolExecutor) -> State:
    core = pool._core
    with core.lock:
        return core.state


def closed(pool: ThreadPoolExecutor) -> bool:
    """Whether the pool refuses new work (shut down, broken, or its shutdown requested)."""
    return pool._core.refusal is not None


def is_broken(pool: ThreadPoolExecutor) -> bool:
    core = pool._core
    with core.lock:
        return core.broken


def idle_thread_names(pool: ThreadPoolExecutor) -> list[str]:
    """The idle threads' names, the most recently idle last."""
    core = pool._core
    with core.lock:
        return [worker.thread.name for worker in core.idle]


def idle_timeouts(pool: ThreadPoolExecutor) -> list[float | None]:
    """How long each idle thread will wait before it retires (None: for good)."""
    core = pool._core
    with core.lock:
        return [worker.wait_timeout for worker in core.idle]


def lock_held(pool: ThreadPoolExecutor) -> bool:
    """Whether some thread holds the pool's lock (for a signal handler to check where it ran)."""
    return pool._core.lock.locked()


class _Pooled(Protocol):
    """Any executor built on the pool core (``ThreadPoolExecutor``, ``DaskExecutor``)."""

    @property
    def _core(self) -> PoolCore: ...


def metrics(pool: _Pooled) -> tuple[PoolStats, HistogramSnapshot, HistogramSnapshot]:
    return pool._core.metrics()


def tapped_timings(pool: ThreadPoolExecutor) -> int:
    """How many queue-wait timings the pool's taps hold, not yet taken by an exporter."""
    core = pool._core
    with core.lock:
        return sum(len(tap.waits) for tap in core.taps)


@contextmanager
def small_otel_taps(limit: int) -> Iterator[None]:
    """Pools instrumented meanwhile wake the OpenTelemetry recorder past ``limit`` values."""
    from threadpool_plus import otel  # only the tests that use it need the otel extra

    saved, otel.TAP_LIMIT = otel.TAP_LIMIT, limit
    try:
        yield
    finally:
        otel.TAP_LIMIT = saved


@contextmanager
def holding_lock(pool: ThreadPoolExecutor) -> Iterator[None]:
    """Holds the pool's lock, as a thread of the pool would at an unlucky moment."""
    with pool._core.lock:
        yield


@contextmanager
def deadline_watcher_stalled(pool: ThreadPoolExecutor) -> Iterator[None]:
    """Keeps the pool's deadline watcher from acting (as a busy machine would delay it):
    holds its lock, so it can neither look at its deadlines nor expire anything."""
    with pool._core.deadlines._lock:
        yield


def deadline_thread(pool: ThreadPoolExecutor) -> threading.Thread | None:
    """The pool's deadline watcher thread, if one runs."""
    with pool._core.deadlines._lock:
        return pool._core.deadlines._thread


@contextmanager
def holding_registry_lock() -> Iterator[None]:
    """Holds the lock of the process-wide pool registry (the exit and fork hooks' list), as
    a thread creating a pool would at an unlucky moment."""
    with _process._live_lock:  # looked up now: a forked child replaces it
        yield


@contextmanager
def failing_thread_starts(
    error: Callable[[], BaseException],
    *,
    times: int | None = None,
    after_start: bool = False,
    before: Callable[[], object] | None = None,
) -> Iterator[list[str]]:
    """Makes every pool thread's ``start()`` raise ``error()`` (the next ``times`` only).

    With ``after_start`` the thread really starts first, as when Ctrl-C lands while
    ``start()`` waits for the new thread to report in. ``before`` runs first, in the
    starting thread, as another caller could between the pool's reservation of the thread
    and its start. Yields the names of the threads whose start failed.
    """
    real_start = WorkerThread.start
    failed: list[str] = []
    lock = threading.Lock()

    def start(thread: WorkerThread) -> None:
        with lock:
            fail = times is None or len(failed) < times
            if fail:
                failed.append(thread.name)
        if not fail:
            real_start(thread)
            return
        if before is not None:
            before()
        if after_start:
            real_start(thread)
        raise error()

    with _worker_thread_method("start", start):
        yield failed


@contextmanager
def signal_when_locked(
    pool: ThreadPoolExecutor, signum: int = signal.SIGUSR1
) -> Iterator[Callable[[], None]]:
    """Yields ``arm()``: once armed, the next time the main thread takes the pool's lock it
    raises ``signum`` while holding it, so the handler runs inside the critical section.

    It watches the main thread's calls with ``sys.setprofile`` and leaves the lock alone.
    """
    lock = pool._core.lock
    armed = False

    def arm() -> None:
        nonlocal armed
        armed = True

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal armed
        if (
            armed
            and event == "c_return"
            and getattr(arg, "__self__", None) is lock
            and getattr(arg, "__name__", "") == "acquire"
            and lock.locked()
        ):
            armed = False
            signal.raise_signal(signum)

    sys.setprofile(profile)
    try:
        yield arm
    finally:
        sys.setprofile(None)


def yields_gil(pool: ThreadPoolExecutor) -> bool:
    """Whether ``submit`` hands the GIL over after a contended lock or a rejection."""
    return pool._core.yield_gil


@contextmanager
def signal_in_thread_start(signum: int = signal.SIGUSR1) -> Iterator[None]:
    """Raises ``signum`` in the thread that starts a pool thread, before the thread
    exists: the handler runs on top of a launch the pool has counted but not begun."""
    real_start = WorkerThread.start

    def start(thread: WorkerThread) -> None:
        signal.raise_signal(signum)
        real_start(thread)

    with _worker_thread_method("start", start):
        yield


def joiners(pool: ThreadPoolExecutor) -> int:
    """How many ``shutdown(wait=True)`` callers wait for a thread to exit right now."""
    core = pool._core
    with core.lock:
        return len(core.exit_sleepers)


@contextmanager
def delayed_thread_runs(release: threading.Event) -> Iterator[None]:
    """New pool threads start (``start()`` returns) but wait for ``release`` before they
    run any of the pool's code: the window in which a thread exists but has not reported
    in, widened at will."""
    real_run = WorkerThread.run

    def run(thread: WorkerThread) -> None:
        release.wait(10)
        real_run(thread)

    with _worker_thread_method("run", run):
        yield


@contextmanager
def _worker_thread_method(
    name: str, replacement: Callable[[WorkerThread], None]
) -> Iterator[None]:
    """Replaces a method of the pools' thread class for the duration of the block."""
    real = getattr(WorkerThread, name)
    setattr(WorkerThread, name, replacement)
    try:
        yield
    finally:
        setattr(WorkerThread, name, real)
