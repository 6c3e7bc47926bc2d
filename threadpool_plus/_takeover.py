"""Ending a running task's future from outside the task: ``cancel(interrupt=True)`` and a
passed deadline. A mixin of both future classes (``LeanFuture``, ``ObservedFuture``).

The future's own lock arbitrates: whoever moves it out of ``RUNNING`` (or ``PENDING``)
first owns its outcome. The worker counts its task under the pool's lock, by the
``_taken_by`` it finds then: ``cancelled`` after an interrupt, ``expired`` after a deadline,
else ``completed`` or ``failed``. The watcher takes a deadline over under that same lock and
counts ``overrunning`` only while the worker has not reported, so the two always agree. An
interrupt (which takes no pool lock) that lands after the worker counted its returned task
leaves it counted ``completed`` or ``failed``: counters never go back, and the task did
return; its future reports the cancellation.
"""

from __future__ import annotations

from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    RUNNING,
)
from typing import TYPE_CHECKING, Any

from ._handle import TaskHandle

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = ["DEADLINE", "EXPIRED", "INTERRUPT", "Takeover"]

# How a task's future left its worker's hands (see Dispatch.task_taken):
INTERRUPT = "interrupt"  # future.cancel(interrupt=True) while the task ran
DEADLINE = "deadline"  # the watcher expired it after a worker had it: counted overrunning
EXPIRED = "expired"  # its worker reached it past its deadline and expired it unstarted
_DONE_STATES = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)


class Takeover:
    """The future side of interrupts and deadlines."""

    # Class-level defaults: a future never taken over stores neither.
    _taken_by: str | None = None  # INTERRUPT or DEADLINE; written under the future's lock
    _handle: TaskHandle | None = None  # its task's handle, once anyone asked for one

    if TYPE_CHECKING:
        _state: str
        _waiters: list[Any]
        _exception: BaseException | None

        def _observation_lock(self) -> AbstractContextManager[object]: ...
        def _invoke_callbacks(self) -> None: ...

    def _wake_all_locked(self) -> None:
        """Wakes the threads blocked in ``result()``/``exception()``. Lock held."""
        raise NotImplementedError

    def _interrupt(self) -> bool:
        """``cancel(interrupt=True)`` of a running task: the future reports cancelled at
        once, its waiters wake, its task's handle is cancelled. False unless running."""
        with self._observation_lock():
            if self._state != RUNNING:
                return False
            self._state = CANCELLED_AND_NOTIFIED
            self._taken_by = INTERRUPT
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._wake_all_locked()
            handle = self._handle
        self._invoke_callbacks()
        if handle is not None:
            handle.cancel_task()
        return True

    def expire(self, error: BaseException) -> bool:
        """Fails the future with ``error`` unless it is done; False if it was. Runs no
        callback (``run_callbacks`` does, once the pool's lock is released)."""
        with self._observation_lock():
            if self._state in _DONE_STATES:
                return False
            self._exception = error
            self._state = FINISHED
            self._taken_by = DEADLINE
            for waiter in self._waiters:
                waiter.add_exception(self)
            self._wake_all_locked()
        return True

    def run_callbacks(self) -> None:
        self._invoke_callbacks()

    def attach_handle(self, handle: TaskHandle) -> TaskHandle:
        """Makes ``handle`` this future's task handle, unless it has one; returns the one
        it has. A handle attached to an interrupted future is cancelled at once."""
        with self._observation_lock():
            if self._handle is None:
                self._handle = handle
            handle = self._handle
            interrupted = self._taken_by == INTERRUPT
        if interrupted:
            handle.cancel_task()
        return handle
