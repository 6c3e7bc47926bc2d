"""A task on its way through the pool, the messages a worker receives, and the one place
where a task that will never run is settled.

Every path that gives up on accepted tasks (shutdown with ``cancel_futures``, a broken
initializer, a thread that could not start and left no one to run them) settles them with
``settle_unstarted``, without the lock (it resolves the futures, which runs user callbacks);
the failing paths first let ``sort_unstarted`` decide, under the lock, what each counts as.
Both cope with a future that its caller cancelled or resolved by hand while it waited, and a
callback that raises ``BaseException`` stops nothing: every future is settled first, and the
first such exception is handed back for the caller to raise or log.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, Union

from ._future import TrackedFuture

__all__ = [
    "EXIT",
    "WAKE",
    "ExitMessage",
    "Message",
    "WorkItem",
    "settle_unstarted",
    "sort_unstarted",
]

# A task: (future, fn, args, kwargs, perf_counter() when accepted). A tuple rather than a
# class because one is built on every submit, and a tuple costs a fraction of an instance.
WorkItem = tuple[TrackedFuture[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any], float]


class _Signal(enum.Enum):
    # An enum member, so that ``message is EXIT`` narrows the type for mypy at no cost.
    EXIT = "EXIT"


EXIT: Final = _Signal.EXIT  # "you have been retired: return"
WAKE: Final = None  # "look at the pool again": it may have shrunk, closed or been dropped

ExitMessage = Literal[_Signal.EXIT]
# What a worker may find in its inbox, or get back from the pool.
Message = Union[WorkItem, ExitMessage, None]


def sort_unstarted(items: Iterable[WorkItem]) -> tuple[list[TrackedFuture[Any]], int, int]:
    """Decides how tasks that must fail without running are counted (the pool broke, or no
    thread could start). Pool lock held.

    A task fails, unless its caller had cancelled it or resolved its future by hand: that
    one counts as cancelled. (A shutdown that cancels the queue needs no sorting: all of it
    counts as cancelled.) Returns the futures ``settle_unstarted`` must fail, and the failed
    and cancelled counts. No user code runs here: ``set_running_or_notify_cancel`` only
    wakes waiters.
    """
    futures = [item[0] for item in items]
    doomed = []
    for future in futures:
        if future.done() and not future.cancelled():
            continue  # resolved by hand while it waited: nothing left to settle
        if future.set_running_or_notify_cancel():
            doomed.append(future)
    return doomed, len(doomed), len(futures) - len(doomed)


def settle_unstarted(
    futures: list[TrackedFuture[Any]], error: Callable[[], BaseException] | None
) -> BaseException | None:
    """Resolves what ``sort_unstarted`` returned. Called without the lock.

    ``error`` builds the exception each failing future gets (one per future: a raised
    exception collects its traceback on itself); ``None`` cancels them instead. Returns the
    first ``BaseException`` a done-callback raised, after every future is settled.
    """
    first: BaseException | None = None
    for future in futures:
        try:
            if error is not None:
                future.set_exception(error())
            else:
                try:
                    future.cancel()  # runs the done-callbacks, which may raise
                finally:
                    if future.cancelled():
                        # Wakes wait() and as_completed(), which cancel() leaves waiting.
                        future.set_running_or_notify_cancel()
        except BaseException as exc:
            if _resolved_elsewhere(future, exc):
                continue
            if first is None:
                first = exc
    return first


def _resolved_elsewhere(future: TrackedFuture[Any], exc: BaseException) -> bool:
    """Whether ``exc`` says only that someone else already settled ``future``."""
    if not isinstance(exc, RuntimeError):  # InvalidStateError is a RuntimeError too
        return False
    if future.cancelled():
        # A callback of cancel() may have notified it already; it is settled either way.
        return True
    return future.done()
