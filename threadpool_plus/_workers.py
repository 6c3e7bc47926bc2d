"""Worker threads: run tasks, report to the core, wait idle on a private inbox.

A worker never dies from a task: whatever the task raises (``BaseException`` included)
goes onto its future. It leaves no reference to a finished task's callable, arguments
or result behind: the loop rebinds those names before it waits for the next task.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from time import perf_counter, time
from typing import TYPE_CHECKING, Any, Final, Literal, Union

from ._failures import TaskFailure, describe, log_extra, logger
from ._future import TrackedFuture

if TYPE_CHECKING:
    from ._core import PoolCore

__all__ = [
    "CANCELLED",
    "EXIT",
    "FAILED",
    "WAKE",
    "Message",
    "WorkItem",
    "Worker",
]

# A task: (future, fn, args, kwargs, perf_counter() when accepted). A tuple rather than a
# class because one is built on every submit, and a tuple costs a fraction of an instance.
WorkItem = tuple[TrackedFuture[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any], float]


class _Signal(enum.Enum):
    # An enum member, so that ``message is EXIT`` narrows the type for mypy at no cost.
    EXIT = "EXIT"


EXIT: Final = _Signal.EXIT  # "you have been retired: return"
WAKE: Final = None  # "look at the pool again": it may have shrunk, closed or been dropped

# What a worker may find in its inbox, or get back from the core.
Message = Union[WorkItem, Literal[_Signal.EXIT], None]

# The outcomes PoolCore.task_done counts (a task that returned goes to task_completed).
FAILED: Final = 1
CANCELLED: Final = 2


class Worker:
    """One pool thread and the inbox through which it receives its tasks."""

    __slots__ = ("core", "first", "inbox", "launched", "thread", "wait_timeout")

    def __init__(self, core: PoolCore, name: str, first: WorkItem | None) -> None:
        self.core = core
        self.first = first  # not passed as a Thread arg: Thread keeps its args alive
        self.inbox: SimpleQueue[Message] = SimpleQueue()
        self.wait_timeout: float | None = None  # written by the core under its lock
        self.launched = threading.Event()  # set once start() has returned or failed
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        core = self.core
        try:
            if core.initializer is not None:
                try:
                    core.initializer(*core.initargs)
                except BaseException:
                    logger.critical(
                        "Exception in initializer of pool %r; the pool is broken",
                        core.name,
                        exc_info=True,
                        extra={"pool": core.name, "worker": self.thread.name},
                    )
                    core.initializer_failed(self)
                    return
            self._work()
        finally:
            core.forget(self)

    def _work(self) -> None:
        task_done = self.core.task_done
        task_completed = self.core.task_completed
        item: Message = self.first
        self.first = None
        while True:
            if item is None:
                item = self._wait()
            if item is EXIT:
                return
            future, fn, args, kwargs, accepted = item
            try:
                runnable = future.set_running_or_notify_cancel()  # False: caller cancelled
            except RuntimeError:  # someone resolved it by hand: not ours to run any more
                logger.warning(
                    "a future of pool %r was resolved before its task started; skipped",
                    self.core.name,
                    extra={"pool": self.core.name, "worker": self.thread.name},
                )
                runnable = False
            if not runnable:
                del future
                item = task_done(self, CANCELLED)
                continue
            started = perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                ran = perf_counter() - started
                failure = self._record(fn, exc, ran)
                del fn, args, kwargs
                item = task_done(self, FAILED, started - accepted, ran, failure)
                self._fail(future, exc, failure)
                del failure
            else:
                ran = perf_counter() - started
                del fn, args, kwargs
                item = task_completed(self, started - accepted, ran)
                try:
                    future.set_result(result)
                except BaseException:
                    self._log_callback_error(future)
                result = None
            del future  # it holds the result

    def _record(self, fn: Callable[..., Any], exc: BaseException, duration: float) -> TaskFailure:
        # Drop this loop's frame from the traceback: the reader wants the task's frames,
        # and this frame is alive and would show whatever the worker runs next.
        traceback = exc.__traceback__
        if traceback is not None and traceback.tb_next is not None:
            exc.__traceback__ = traceback.tb_next
        return describe(fn, exc, self.thread.name, time() - duration, duration)

    def _fail(self, future: TrackedFuture[Any], exc: BaseException, failure: TaskFailure) -> None:
        core = self.core
        hook = core.on_task_error
        if hook is not None:
            try:
                hook(failure)
            except BaseException:
                logger.exception(
                    "on_task_error hook of pool %r raised while handling a failure of %s",
                    core.name,
                    failure.task,
                    extra=log_extra(core.name, failure),
                )
        future.arm_report(core.name, failure)
        try:
            future.set_exception(exc)
        except BaseException:
            self._log_callback_error(future)

    def _log_callback_error(self, future: Future[Any]) -> None:
        # Future._invoke_callbacks logs an Exception from a callback itself; what reaches
        # us is a BaseException (SystemExit, KeyboardInterrupt...): the worker survives it.
        name = self.core.name
        logger.exception(
            "exception calling callback for %r",
            future,
            extra={"pool": name, "worker": self.thread.name},
        )

    def _wait(self) -> WorkItem | Literal[_Signal.EXIT]:
        """Blocks while idle; returns a task or ``EXIT``."""
        core = self.core
        while True:
            try:
                message = self.inbox.get(True, self.wait_timeout)
            except Empty:
                message = core.recheck(self, timed_out=True)
            else:
                if message is WAKE:
                    message = core.recheck(self, timed_out=False)
            if message is not None:
                return message
