"""The pool's contract on a Dask cluster: ``DaskExecutor``.

Needs the ``dask`` extra (``pip install threadpool-plus[dask]``)::

    from distributed import Client
    from threadpool_plus.dask import DaskExecutor

    with Client() as client, DaskExecutor(client, max_queue_size=1000) as pool:
        print(list(pool.map(pow, range(10), range(10), buffersize=100)))

The same admission (``try_submit``, ``PoolOverloaded``, ``max_queue_size``), counters and
invariant, failure records (with the remote traceback), deadlines, ``map(buffersize=)`` and
shutdown report as ``ThreadPoolExecutor``; what differs is in ``docs/dask.md``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar

try:
    import distributed
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "threadpool_plus.dask needs Dask's distributed scheduler: "
        "pip install threadpool-plus[dask]"
    ) from error

from ._admission import OVERFLOW_POLICIES, TRY_ONLY
from ._config import check_count, check_name, check_timeout
from ._dask_core import DaskCore
from ._failures import TaskFailure
from ._histogram import check_buckets
from ._map import map_results, waiting_for_room
from ._options import (
    ContextMode,
    CoreSubmit,
    TaskOptions,
    check_deadline,
    check_task_name,
    check_timeout_option,
    submit_with_defaults,
)
from ._report import ShutdownReport
from ._stats import PoolStats

__all__ = ["DaskExecutor"]

P = ParamSpec("P")
T = TypeVar("T")

_pool_numbers = itertools.count()


class DaskExecutor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` that runs tasks on a Dask ``distributed`` cluster,
    behind the bounded admission, counters and failure records of ``ThreadPoolExecutor``.

    At most ``max_in_flight`` tasks are handed to the scheduler at once; the rest wait in
    this executor's queue (``max_queue_size``, 0 = unbounded), so a lazy ``map`` over a
    huge input holds bounded memory on the client. Every call is its own task (never
    merged, as Dask's ``pure=True`` would), and every keyword argument reaches ``fn``, one
    named ``key`` included. The executor never closes ``client``.

    Args:
        client: A connected ``distributed.Client``.
        max_in_flight: The most tasks handed to the scheduler at once; ``None``: the
            cluster's total threads when the executor is made (at least 1).
        max_queue_size: The most accepted tasks waiting here for room in flight; 0 is
            unbounded.
        submit_timeout: How long ``submit`` waits for room when the queue is full:
            ``None`` as long as it takes, 0 not at all, more that long.
        overflow: What ``submit`` does when ``submit_timeout`` runs out: ``"reject"``
            raises ``PoolOverloaded``; ``"caller_runs"`` runs the task in the submitting
            thread, on the client; ``"drop_oldest"`` cancels the oldest queued task.
        name: The executor's name in logs, errors and metrics; default
            ``"DaskExecutor-<k>"``.
        failure_history: How many ``TaskFailure`` records ``recent_failures()`` keeps.
        on_task_error: Called with the ``TaskFailure`` of every failed task before its
            future resolves, on the client's event-loop thread (it must not block).
        histogram_buckets: Bucket bounds, in seconds, of the queue-wait and run-time
            histograms; ``None`` spans 10 microseconds to 5 minutes.
        task_timeout: Each task's default timeout in seconds from submission; ``None`` or
            ``math.inf``: no deadline.

    Raises:
        TypeError: ``client`` is not a ``distributed.Client``, or a value has the wrong type.
        ValueError: A limit or timeout is out of range.
    """

    def __init__(
        self,
        client: distributed.Client,
        *,
        max_in_flight: int | None = None,
        max_queue_size: int = 0,
        submit_timeout: float | None = None,
        overflow: Literal["reject", "caller_runs", "drop_oldest"] = "reject",
        name: str | None = None,
        failure_history: int = 100,
        on_task_error: Callable[[TaskFailure], object] | None = None,
        histogram_buckets: Sequence[float] | None = None,
        task_timeout: float | None = None,
    ) -> None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, not {type(client).__name__}")
        if max_in_flight is not None:
            check_count("max_in_flight", max_in_flight, minimum=1)
        capacity = check_count("max_queue_size", max_queue_size, minimum=0)
        self._submit_timeout = check_timeout("submit_timeout", submit_timeout, allow_zero=True)
        if not isinstance(overflow, str):
            raise TypeError(f"overflow must be a str, not {type(overflow).__name__}")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}")
        if name is None:
            name = f"DaskExecutor-{next(_pool_numbers)}"
        else:
            check_name("name", name, allow_empty=False)
        history = check_count("failure_history", failure_history, minimum=0)
        if on_task_error is not None and not callable(on_task_error):
            raise TypeError("on_task_error must be a callable or None")
        buckets = check_buckets(histogram_buckets)
        self._task_timeout = check_timeout_option("task_timeout", task_timeout)
        # Read once: a later scale-up is not followed (max_in_flight can say more).
        nthreads = sum(client.nthreads().values())  # type: ignore[no-untyped-call]
        self._core = core = DaskCore(
            client,
            name=name,
            max_in_flight=max(1, nthreads) if max_in_flight is None else max_in_flight,
            nthreads=nthreads,
            capacity=capacity,
            overflow=overflow,
            failure_history=history,
            on_task_error=on_task_error,
            histogram_buckets=buckets,
        )
        self._submit: CoreSubmit = core.submit
        if self._task_timeout not in (None, math.inf):
            self._submit = submit_with_defaults(
                core.submit, "thread", self._task_timeout, core.deadlines.watch
            )

    @property
    def name(self) -> str:
        """The executor's name, as used in logs, errors and metrics."""
        return self._core.name

    @property
    def client(self) -> distributed.Client:
        """The client tasks are submitted through (the caller's: never closed here)."""
        return self._core.client

    @property
    def max_in_flight(self) -> int:
        """The most tasks handed to the scheduler at once."""
        return self._core.max_in_flight

    @property
    def context(self) -> ContextMode:
        """Always "thread": a task runs in its Dask worker's own context."""
        return "thread"

    @property
    def task_timeout(self) -> float | None:
        """Each task's default timeout, in seconds from submission; None: no deadline."""
        return self._task_timeout

    def options(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        name: str | None = None,
        context: None = None,
    ) -> TaskOptions:
        """Returns a view whose ``submit``, ``try_submit``, ``map``, ``asubmit`` and
        ``arun`` apply these options to each task; the executor is shared.

        A task still queued at its deadline is never sent; one in flight is cancelled on
        the cluster. Either way its future fails with ``TaskTimeout`` at the deadline and
        it counts in ``stats().expired``.

        Args:
            timeout: Seconds from submission to the task's deadline; ``None``: the
                executor's ``task_timeout``; ``math.inf``: no deadline.
            deadline: The deadline itself, a ``time.monotonic()`` value (on the client).
            name: The task's name in ``TaskFailure.task``, logs and its Dask key.
            context: Not supported: a task runs in another process (or thread) of the
                cluster, where the submitter's ``contextvars`` do not reach.

        Raises:
            TypeError: ``context`` is given, or a value has the wrong type.
            ValueError: Both ``timeout`` and ``deadline``; a negative or NaN one; an
                empty ``name``.
        """
        if context is not None:
            raise TypeError(
                "DaskExecutor.options() does not take context=: tasks run on Dask workers, "
                "where the submitter's contextvars do not reach; pass what the task needs "
                "as arguments"
            )
        return TaskOptions(
            self,
            self._core.deadlines.watch,
            context=None,
            name=check_task_name(name),
            timeout=check_timeout_option("timeout", timeout),
            deadline=check_deadline(deadline),
        )

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedules ``fn(*args, **kwargs)`` on the cluster and returns its future.

        ``fn``, its arguments and its result must be picklable. When ``max_in_flight``
        tasks are in flight and the queue is full, waits for room as ``submit_timeout``
        says.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolOverloaded: There was no room within ``submit_timeout``.
            RuntimeError: The executor has been shut down.
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, not {type(fn).__name__}")
        return self._submit(fn, args, kwargs, self._submit_timeout)

    def try_submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Like ``submit``, but never waits: ``PoolOverloaded`` at once if there is no room.

        Raises:
            TypeError: ``fn`` is not callable.
            PoolOverloaded: ``max_in_flight`` tasks are in flight and the queue is full.
            RuntimeError: The executor has been shut down.
        """
        if not callable(fn):
            raise TypeError(f"try_submit() needs a callable, not {type(fn).__name__}")
        return self._submit(fn, args, kwargs, TRY_ONLY)

    async def asubmit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """``submit`` for coroutines: waits for room without blocking the event loop, in
        one FIFO line with blocked threads, then returns the task's future."""
        if not callable(fn):
            raise TypeError(f"asubmit() needs a callable, not {type(fn).__name__}")
        from ._aio import submit_async

        return await submit_async(self._core, lambda: self.submit(fn, *args, **kwargs))

    async def arun(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``asubmit``, then awaits the result. Cancelling the awaiting coroutine after
        the task was accepted cancels it (on the cluster, if it was sent)."""
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

        It waits for room (it never raises ``PoolOverloaded``). With ``buffersize=N`` at
        most N tasks are submitted ahead of the consumer and the input is read lazily.

        Args:
            fn: Called with one item from each iterable.
            iterables: The inputs, zipped.
            timeout: Seconds from this call after which taking a result raises
                ``TimeoutError``; the tasks not yet finished are then cancelled.
            chunksize: Accepted for compatibility; each item is one Dask task.
            buffersize: The most tasks submitted ahead of the consumer.
        """

        def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
            return self.submit(fn, *args)

        return map_results(waiting_for_room(submit), fn, iterables, timeout, chunksize, buffersize)

    def shutdown(  # type: ignore[override]  # returns a report, as ThreadPoolExecutor's
        self,
        wait: bool = True,
        *,
        cancel_futures: bool = False,
        drain: bool = True,
        timeout: float | None = None,
    ) -> ShutdownReport:
        """Stops accepting tasks. Calling it again is harmless; the client stays open.

        Args:
            wait: Return once nothing is queued or in flight and Dask has released every
                key of this executor (or ``timeout`` ran out). ``wait=False`` alone
                cancels nothing: queued tasks are still sent as room frees up.
            cancel_futures: As ``drain=False``.
            drain: With ``False``, cancel the queued tasks (reported in ``dropped``) and
                those in flight: their futures at once, their Dask futures on the cluster
                (reported by name in ``running``; a frame already running on a worker
                runs to its end, its result unused).
            timeout: With ``wait``, wait at most this many seconds; then cancel what is
                still queued (``dropped``) and in flight (``running``) and return.

        Returns:
            A ``ShutdownReport``.

        Raises:
            ValueError: ``timeout`` is negative or NaN.
        """
        limit = check_timeout("timeout", timeout, allow_zero=True)
        return self._core.shutdown(wait=wait, cancel=cancel_futures or not drain, timeout=limit)

    def recent_failures(self) -> list[TaskFailure]:
        """Returns the newest ``TaskFailure`` records, oldest first, each with the
        traceback formatted from the worker's."""
        return self._core.recent_failures()

    def stats(self) -> PoolStats:
        """One consistent snapshot. ``active``: tasks handed to the scheduler; ``queued``:
        waiting here; ``max_workers``: ``max_in_flight``; ``workers``: the cluster's
        threads when the executor was made; ``idle_workers``: those not taken by this
        executor's tasks; ``peak_workers``: the most tasks in flight at once."""
        return self._core.snapshot()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        self.shutdown(wait=True, cancel_futures=interrupted)

    def __repr__(self) -> str:
        s = self.stats()
        capacity = s.queue_capacity or "unbounded"
        return (
            f"<{type(self).__name__} {self.name!r} in_flight={s.active}/{s.max_workers} "
            f"queued={s.queued}/{capacity} expired={s.expired}>"
        )
