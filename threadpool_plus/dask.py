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
import weakref
from collections.abc import Callable, Sequence
from typing import Literal, ParamSpec, TypeVar

try:
    import distributed
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "threadpool_plus.dask needs Dask's distributed scheduler: "
        "pip install threadpool-plus[dask]"
    ) from error

from ._config import check_count, check_name
from ._dask_core import DaskCore
from ._failures import TaskFailure
from ._front import PoolFront, check_settings
from ._options import (
    ContextMode,
    TaskOptions,
    check_deadline,
    check_task_name,
    check_timeout_option,
)

__all__ = ["DaskExecutor"]

P = ParamSpec("P")
T = TypeVar("T")

_pool_numbers = itertools.count()


# The ignore: PoolFront.shutdown returns a report where Executor.shutdown returns None.
class DaskExecutor(PoolFront, concurrent.futures.Executor):  # type: ignore[misc]
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

    ``stats()``: ``active`` counts the tasks handed to the scheduler, ``queued`` those
    waiting here; ``max_workers`` is ``max_in_flight``, ``workers`` the cluster's threads
    when the executor was made, ``idle_workers`` those not taken by this executor's
    tasks, ``peak_workers`` the most tasks in flight at once. ``shutdown(drain=False)``
    cancels the queue (``dropped``) and what is in flight, on the cluster (named in
    ``running``; a frame already running on a worker runs to its end, its result unused);
    ``shutdown(wait=True)`` returns once Dask has released every key of this executor.
    Done-callbacks and ``on_task_error`` run on the client's event-loop thread.

    Raises:
        TypeError: ``client`` is not a ``distributed.Client``, or a value has the wrong type.
        ValueError: A limit or timeout is out of range.
    """

    _core: DaskCore

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
        # Its calls return coroutines, and this executor calls it from any thread.
        if getattr(client, "_asynchronous", False):
            raise ValueError(
                "DaskExecutor needs a synchronous distributed.Client, not one made with "
                "asynchronous=True; from asyncio, use the executor's asubmit/arun instead"
            )
        if max_in_flight is not None:
            check_count("max_in_flight", max_in_flight, minimum=1)
        settings = check_settings(
            max_queue_size=max_queue_size,
            submit_timeout=submit_timeout,
            overflow=overflow,
            failure_history=failure_history,
            on_task_error=on_task_error,
            histogram_buckets=histogram_buckets,
            task_timeout=task_timeout,
        )
        if name is None:
            name = f"DaskExecutor-{next(_pool_numbers)}"
        else:
            check_name("name", name, allow_empty=False)
        # Read once: a later scale-up is not followed (max_in_flight can say more).
        nthreads = sum(client.nthreads().values())  # type: ignore[no-untyped-call]
        self._core = core = DaskCore(
            client,
            name=name,
            max_in_flight=max(1, nthreads) if max_in_flight is None else max_in_flight,
            nthreads=nthreads,
            settings=settings,
        )
        self._open_front(core.submit, settings, "thread", core.deadlines.watch)
        # Collected without shutdown(): what was accepted still runs, then nothing is left.
        # The weakref lives on the core, as the thread pool's does (see _executor).
        core.owner = weakref.ref(self, lambda _: core.abandon())

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

    def __repr__(self) -> str:
        s = self.stats()
        capacity = s.queue_capacity or "unbounded"
        return (
            f"<{type(self).__name__} {self.name!r} in_flight={s.active}/{s.max_workers} "
            f"queued={s.queued}/{capacity} expired={s.expired}>"
        )
