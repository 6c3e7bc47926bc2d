"""A task's handle: what a running task asks about its own cancellation and deadline.

Threads are never interrupted by force (an asynchronous exception can leave a lock held and
never reaches a blocking C call), so cancellation is cooperative: the pool *requests* it (a
deadline passed, ``future.cancel(interrupt=True)``), and the task polls ``cancelled`` or
``check()``, sleeps in ``wait()``, or hooks a cleanup with ``on_cancel()`` (close the socket a
blocking call waits on).

A handle belongs to one task, never to a thread. ``current_task()`` finds it through a
thread-local that a ``Task`` sets while it runs, or, for a task submitted without options,
through the worker thread, which creates it on first use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from ._errors import TaskCancelled

__all__ = ["TaskHandle", "current_task"]

logger = logging.getLogger("threadpool_plus")

# Guards every handle's cancellation state (_cancelled, _callbacks, _event). Taken only to
# cancel, to hook a callback and to start a wait: rare, short, never around user code.
_lock = threading.Lock()


class TaskHandle:
    """One task's view of its cancellation: see ``current_task()``."""

    __slots__ = ("_callbacks", "_cancelled", "_event", "_name", "deadline")

    def __init__(self, name: str, deadline: float | None) -> None:
        self._name: str | None = name
        self.deadline = deadline  # a time.monotonic() value, or None
        self._cancelled = False  # only ever turns True; read without the lock
        self._callbacks: list[Callable[[], object]] | None = None
        self._event: threading.Event | None = None  # made by the first wait()

    @property
    def name(self) -> str:
        """The task's name (``options(name=)``, else its callable's qualified name)."""
        return self._name or ""

    @property
    def cancelled(self) -> bool:
        """Whether cancellation was requested (a deadline, an interrupt, a shutdown)."""
        return self._cancelled

    def remaining(self) -> float | None:
        """Seconds until the deadline (0 once passed), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raises ``TaskCancelled`` once cancellation was requested."""
        if self._cancelled:
            raise TaskCancelled(f"task {self.name!r} was cancelled")

    def wait(self, seconds: float) -> bool:
        """Sleeps up to ``seconds``; returns True at once when cancelled, else False."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"seconds must be >= 0, not {seconds!r}")
        with _lock:
            if self._cancelled:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(seconds)

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Runs ``callback()`` once, on cancellation (at once if already cancelled). An
        exception from it is logged and goes no further."""
        if not callable(callback):
            raise TypeError(f"on_cancel() needs a callable, not {type(callback).__name__}")
        with _lock:
            if not self._cancelled:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        self._run(callback)

    def cancel_task(self) -> None:
        """Requests cancellation: wakes ``wait()`` and runs the ``on_cancel`` callbacks,
        on the calling thread. Called by the pool; a second call does nothing."""
        with _lock:
            if self._cancelled:
                return
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, None
            event = self._event
        if event is not None:
            event.set()
        for callback in callbacks or ():
            self._run(callback)

    def _run(self, callback: Callable[[], object]) -> None:
        try:
            callback()
        except BaseException:
            logger.exception(
                "on_cancel callback of task %r raised", self.name, extra={"task": self.name}
            )

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "running"
        return f"<TaskHandle {self.name!r} {state} remaining={self.remaining()}>"


class _Outside(TaskHandle):
    """``current_task()`` outside any pool task: never cancelled, so library code may call
    it freely; ``wait()`` simply sleeps."""

    __slots__ = ()

    def on_cancel(self, callback: Callable[[], object]) -> None:
        if not callable(callback):
            raise TypeError(f"on_cancel() needs a callable, not {type(callback).__name__}")

    def cancel_task(self) -> None:
        pass


OUTSIDE = _Outside("", None)


class _Current(threading.local):
    handle: TaskHandle | None = None  # set by a Task while it runs on this thread


current = _Current()


def current_task() -> TaskHandle:
    """The handle of the pool task running on this thread; outside a pool task, a handle
    that is never cancelled."""
    handle = current.handle
    if handle is not None:
        return handle
    find = getattr(threading.current_thread(), "running_handle", None)  # a pool's thread
    found: TaskHandle | None = None if find is None else find()
    return OUTSIDE if found is None else found
