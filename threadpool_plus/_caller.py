"""``overflow="caller_runs"``: the submitting thread runs a task the full pool could not take,
as a worker would (counted, its failure recorded, its future resolved), and never holding the
pool's lock. ``submit`` then returns the finished future.

The pool counted the task as accepted and active when it chose this (``_overflow``); it
counts it here as completed, failed (or expired) and ``caller_ran`` once it returns. A
``KeyboardInterrupt`` or ``SystemExit`` raised by the task goes onto its future, as from a
worker, and then on to the caller too: a Ctrl-C must not be swallowed by ``submit``.
"""

from __future__ import annotations

import threading
from time import perf_counter
from typing import Protocol

from ._errors import deadline_passed
from ._failures import TaskFailure
from ._items import WorkItem
from ._task import DeadlinePassed
from ._workers import FailureHost, fail_future, log_callback_error, record_failure

__all__ = ["run_in_caller"]


class CallerHost(FailureHost, Protocol):
    """What running a task in its caller needs of the pool."""

    def task_ran_by_caller(
        self, failure: TaskFailure | None, waited: float, ran: float, expired: bool = False
    ) -> None: ...


def run_in_caller(core: CallerHost, item: WorkItem) -> None:
    """Runs ``item`` in this thread and settles it. Called without the pool's lock."""
    future, fn, args, kwargs, accepted = item
    future.set_running_or_notify_cancel()  # nobody else has this future yet
    thread = threading.current_thread().name
    started = perf_counter()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        ran = perf_counter() - started
        if exc.__class__ is DeadlinePassed:  # a Task whose deadline passed while it waited
            future.expire(deadline_passed(core.name, exc.args[0].name))
            core.task_ran_by_caller(None, started - accepted, ran, expired=True)
            future.run_callbacks()
            return
        failure = record_failure(fn, exc, ran, thread)
        core.task_ran_by_caller(failure, started - accepted, ran)
        fail_future(core, future, exc, failure, thread)
        if not isinstance(exc, Exception):
            raise
    else:
        core.task_ran_by_caller(None, started - accepted, perf_counter() - started)
        try:
            future.set_result(result)
        except BaseException:
            log_callback_error(core.name, future, thread)
