"""The public methods every executor built on the pool core shares: submitting (``submit``,
``try_submit``, ``asubmit``, ``arun``, ``map``), reading (``stats``, ``recent_failures``) and
``shutdown``. ``ThreadPoolExecutor`` and ``threadpool_plus.dask.DaskExecutor`` inherit them
and differ only in their constructors, ``options()`` and their cores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._admission import OVERFLOW_POLICIES, TRY_ONLY
from ._config import Settings, check_count, check_timeout
from ._failures import TaskFailure
from ._histogram import check_buckets
from ._map import map_results, waiting_for_room
from ._options import (
    ContextMode,
    CoreSubmit,
    Watch,
    check_timeout_option,
    submit_with_defaults,
)
from ._report import ShutdownReport
from ._stats import PoolStats

if TYPE_CHECKING:
    from ._pool import PoolCore

__all__ = ["PoolFront", "check_settings"]

P = ParamSpec("P")
T = TypeVar("T")


def check_settings(
    *,
    max_queue_size: int,
    submit_timeout: float | None,
    overflow: str,
    failure_history: int,
    on_task_error: Callable[[TaskFailure], object] | None,
    histogram_buckets: Sequence[float] | None,
    task_timeout: float | None,
) -> Settings:
    """Validates the arguments every executor shares; raises ``TypeError``/``ValueError``."""
    capacity = check_count("max_queue_size", max_queue_size, minimum=0)
    patience = check_timeout("submit_timeout", submit_timeout, allow_zero=True)
    history = check_count("failure_history", failure_history, minimum=0)
    if on_task_error is not None and not callable(on_task_error):
        raise TypeError("on_task_error must be a callable or None")
    buckets = check_buckets(histogram_buckets)
    timeout = check_timeout_option("task_timeout", task_timeout)
    if not isinstance(overflow, str):
        raise TypeError(f"overflow must be a str, not {type(overflow).__name__}")
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}")
    return Settings(capacity, patience, overflow, history, on_task_error, buckets, timeout)


class PoolFront:
    """A mixin: the executor sets ``_core``, ``_submit``, ``_submit_timeout`` and
    ``_task_timeout`` in its constructor."""

    if TYPE_CHECKING:
        _core: PoolCore
        _submit: CoreSubmit  # the core's submit, or a wrapper adding the pool's defaults
        _submit_timeout: float | None
        _task_timeout: float | None

    def _open_front(
        self, submit: CoreSubmit, settings: Settings, context: ContextMode, watch: Watch
    ) -> None:
        """Sets what the shared methods read, once the core exists."""
        self._submit_timeout = settings.submit_timeout
        self._task_timeout = settings.task_timeout
        # What submit and try_submit hand a task to: the core itself, unless every task
        # needs a Task around it. Decided once, so a pool without defaults pays nothing.
        self._submit = submit
        if context != "thread" or settings.task_timeout not in (None, math.inf):
            self._submit = submit_with_defaults(submit, context, settings.task_timeout, watch)

    @property
    def name(self) -> str:
        """The pool's name, as used in logs, errors and metrics (and thread names)."""
        return self._core.name

    @property
    def task_timeout(self) -> float | None:
        """Each task's default timeout, in seconds from submission; None: no deadline."""
        return self._task_timeout

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedules ``fn(*args, **kwargs)`` and returns its future.

        When no runner can take it (every thread busy, ``max_in_flight`` tasks on the
        cluster) and the queue is full, waits for room as ``submit_timeout`` says.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolOverloaded: There was no room within ``submit_timeout``.
            RuntimeError: The pool has been shut down.
            BrokenThreadPool: An initializer failed (threads).
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, not {type(fn).__name__}")
        return self._submit(fn, args, kwargs, self._submit_timeout)

    def try_submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Like ``submit``, but never waits: ``PoolOverloaded`` at once if there is no room.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolOverloaded: No runner is free and the queue is full.
            RuntimeError: The pool has been shut down.
            BrokenThreadPool: An initializer failed (threads).
        """
        if not callable(fn):
            raise TypeError(f"try_submit() needs a callable, not {type(fn).__name__}")
        return self._submit(fn, args, kwargs, TRY_ONLY)

    async def asubmit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """``submit`` for coroutines: waits for room without blocking the event loop, in
        one FIFO line with blocked threads, then returns the task's future.

        Cancelling the awaiting coroutine before the task is accepted submits nothing.
        Raises as ``submit`` does, ``overflow="caller_runs"`` refused (``PoolOverloaded``):
        running the task on the loop's thread would freeze the loop.
        """
        if not callable(fn):
            raise TypeError(f"asubmit() needs a callable, not {type(fn).__name__}")
        from ._aio import submit_async  # not at import: it imports asyncio

        return await submit_async(self._core, lambda: self.submit(fn, *args, **kwargs))

    async def arun(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``asubmit``, then awaits the task's result. Cancelling the awaiting coroutine
        after the task was accepted cancels it if still queued, or requests its
        cancellation if it runs (``current_task()`` on threads; on the cluster for Dask)."""
        from ._aio import run_async

        return await run_async(await self.asubmit(fn, *args, **kwargs))

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """Returns ``fn`` applied to the items of ``iterables``, in input order.

        It waits for room in a full queue (it never raises ``PoolOverloaded``). With
        ``buffersize=N`` at most N tasks run ahead of the consumer and the input is read
        lazily, so an endless iterable needs bounded memory.

        Args:
            fn: Called with one item from each iterable.
            iterables: The inputs, zipped.
            timeout: Seconds from this call after which taking a result raises
                ``TimeoutError``; the tasks not yet finished are then cancelled.
            chunksize: Accepted for compatibility; each item is one task.
            buffersize: The most tasks submitted ahead of the consumer.

        Raises:
            TypeError, ValueError: An argument is invalid.
            RuntimeError: The pool has been shut down.
        """

        # Through self.submit, as the standard library does, so that a subclass or a
        # wrapper of submit (tqdm's progress bar, OpenTelemetry's context) sees every task.
        # (Holding self also keeps the pool alive as long as a lazy map needs it.)
        def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
            return self.submit(fn, *args)  # looked up per item, as the standard map does

        return map_results(waiting_for_room(submit), fn, iterables, timeout, chunksize, buffersize)

    # The standard pool's shutdown() returns None; this one returns a report, which code
    # written for the standard pool simply does not look at (hence the executors' ignores).
    def shutdown(
        self,
        wait: bool = True,
        *,
        cancel_futures: bool = False,
        drain: bool = True,
        timeout: float | None = None,
    ) -> ShutdownReport:
        """Stops accepting tasks; the runners stop once the work is done.

        Calling it again is harmless. It never deadlocks, not even from a task or a
        done-callback (threads: it then waits for every *other* thread; Dask: from the
        client's event loop it does not wait).

        Args:
            wait: Return only when every worker thread has exited (Dask: nothing is queued
                or in flight and Dask released every key), or ``timeout`` ran out.
                ``wait=False`` alone cancels nothing.
            cancel_futures: Cancel the tasks that have not started (as ``drain=False``).
            drain: Run every accepted task, the queued ones included. With ``False`` the
                queued tasks are cancelled; running tasks finish on threads, while Dask
                cancels those in flight on the cluster and names them in ``running``.
            timeout: With ``wait``, wait at most this many seconds; then cancel the tasks
                still queued and request the cancellation of those still running (their
                handles are cancelled; Dask cancels them on the cluster), and return.
                ``None`` waits as long as it takes.

        Returns:
            A ``ShutdownReport``: ``timed_out``, the tasks it cancelled (``dropped``, to
            persist or resubmit) and the names of those still ``running``.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
        """
        limit = check_timeout("timeout", timeout, allow_zero=True)
        return self._core.shutdown(wait=wait, cancel=cancel_futures or not drain, timeout=limit)

    def recent_failures(self) -> list[TaskFailure]:
        """Returns the newest ``TaskFailure`` records, oldest first.

        At most ``failure_history`` are kept; the records hold no frame of the failed
        tasks, so keeping them keeps no task's local variables alive.
        """
        return self._core.recent_failures()

    def stats(self) -> PoolStats:
        """Returns one consistent snapshot of the pool's runners, queue and counters."""
        return self._core.snapshot()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # After Ctrl-C nobody wants to wait for a long queue to drain: cancel what has
        # not started and wait only for the running tasks (a second Ctrl-C stops that).
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        self.shutdown(wait=True, cancel_futures=interrupted)
