"""Failure capture: records, the error hook and never-retrieved reports.

When a task raises, the worker builds one ``TaskFailure`` (formatting the traceback
there and then), appends it to the pool's ring, passes it to ``on_task_error`` and only
then resolves the future. If that future is garbage-collected before anyone called
``result()``, ``exception()`` or ``add_done_callback()`` on it, the failure is logged at
ERROR on the ``threadpool_plus`` logger, as asyncio does for a task's exception: a
fire-and-forget task cannot fail silently, and a handled failure makes no noise.

Log records carry ``extra`` fields for log pipelines: ``pool``, ``task``, ``worker`` (the
thread's name), ``duration`` (seconds) and ``exc_type``. Task arguments are never logged.
"""

from __future__ import annotations

import copy
import logging
import threading
import traceback
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ._task import task_name

__all__ = [
    "Observation",
    "TaskFailure",
    "UnretrievedReport",
    "describe",
    "detached",
    "log_extra",
    "logger",
    "report_all_at_exit",
]

logger = logging.getLogger("threadpool_plus")


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised, as recorded by the pool.

    Attributes:
        task: The callable's qualified name (``functools.partial`` is looked through).
        exception: The exception, or a copy of it without ``__traceback__``, so that a
            record pins no frame (and no local variable) of the failed task.
        traceback: The formatted traceback, chained exceptions included.
        thread: The name of the worker thread that ran the task.
        started_at: ``time.time()`` when the task started.
        duration: Seconds the task ran before it raised.
    """

    task: str
    exception: BaseException
    traceback: str
    thread: str
    started_at: float
    duration: float


def detached(exc: BaseException) -> BaseException:
    """A copy of ``exc`` without traceback, cause or context; ``exc`` if it won't copy."""
    try:
        clone = copy.copy(exc)  # BaseException.__reduce__ keeps args and __dict__ only
    except Exception:
        return exc
    if type(clone) is not type(exc) or clone is exc:
        return exc
    # A reducer registered for every exception class (tblib's, which importing Dask's
    # distributed installs) copies these too: drop them, or the record pins the frames.
    clone.__traceback__ = None
    clone.__cause__ = clone.__context__ = None
    return clone


def describe(
    fn: Callable[..., Any], exc: BaseException, thread: str, started_at: float, duration: float
) -> TaskFailure:
    """Builds the record of a failure; the traceback is formatted here, once."""
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception as error:  # e.g. an exception whose __str__ raises: never kill a worker
        text = f"<traceback of {type(exc).__qualname__} unavailable: {error!r}>\n"
    return TaskFailure(
        task=task_name(fn),
        exception=detached(exc),
        traceback=text,
        thread=thread,
        started_at=started_at,
        duration=duration,
    )


def log_extra(pool: str, failure: TaskFailure) -> dict[str, object]:
    """The structured fields of every log record about a failed task."""
    return {
        "pool": pool,
        "task": failure.task,
        "worker": failure.thread,
        "duration": failure.duration,
        "exc_type": type(failure.exception).__qualname__,
    }


class UnretrievedReport:
    """Logs a failure when the future that holds it is collected unobserved.

    Reports still armed when the interpreter exits are logged by ``report_all_at_exit``
    (called by the exit hook, while logging still works): at exit, nobody will look at
    them any more, and a ``__del__`` that runs during module teardown may find the
    logging machinery gone (it does on free-threaded builds).
    """

    __slots__ = ("__weakref__", "armed", "failure", "pool")

    def __init__(self, pool: str, failure: TaskFailure) -> None:
        self.armed = True
        self.pool = pool
        self.failure = failure  # a record: strings and a detached exception, no frames
        with _armed_lock:
            _armed.add(self)

    def __del__(self) -> None:
        self.emit()

    def emit(self) -> None:
        """Logs the failure once, if nobody looked at it."""
        if not self.armed:
            return
        self.armed = False
        failure = self.failure
        try:  # noqa: SIM105  (contextlib may be torn down at interpreter exit)
            logger.error(
                "Task %s in pool %r failed and its exception was never retrieved:\n%s",
                failure.task,
                self.pool,
                failure.traceback.rstrip("\n"),
                extra=log_extra(self.pool, failure),
            )
        except Exception:
            pass


class Observation:
    """Whether anyone looked at a future's outcome, and the report armed if not.

    A mixin of the pool's future classes. Observers (``result()``, ``exception()``,
    ``add_done_callback()``) mark the future under its lock and disarm a report they find;
    ``arm_report()`` arms one under the same lock only if nobody has looked yet. The lock
    orders the two on every build, free-threaded included: no lost and no false report.
    A future that returned is never armed, so ``result()`` may skip all this for it.
    """

    # Class-level defaults: a future that never fails costs no per-instance state.
    _observed = False
    _report: UnretrievedReport | None = None

    def _observation_lock(self) -> AbstractContextManager[object]:
        """The future's own lock."""
        raise NotImplementedError

    def _observe_locked(self) -> None:
        """Marks the future observed; the future's lock is held."""
        self._observed = True
        report = self._report
        if report is not None:
            report.armed = False
            self._report = None

    def arm_report(self, pool: str, failure: TaskFailure) -> None:
        """Called by the worker before it sets the exception."""
        with self._observation_lock():
            if not self._observed:
                self._report = UnretrievedReport(pool, failure)


_armed: weakref.WeakSet[UnretrievedReport] = weakref.WeakSet()  # guarded by _armed_lock
_armed_lock = threading.Lock()


def report_all_at_exit() -> None:
    """Logs every report still armed: called at interpreter exit."""
    with _armed_lock:
        reports = list(_armed)
    for report in reports:
        report.emit()
