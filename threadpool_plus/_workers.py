"""Worker threads: run tasks, report to the pool, wait idle on a private inbox.

A worker reaches its pool only through ``WorkerHost``, the interface declared here, so this
module imports nothing of the pool's and the pool's internals can change under it.

The loop's ordering rules:

1. A thread first checks in (``check_in``). Its launch may have been taken back while it
   was starting (``Thread.start()`` interrupted by Ctrl-C): then it exits at once, having
   run nothing, and the pool never counted it.
2. A finished task is reported (``task_completed``, ``task_failed``) *before* its future is
   resolved: the report counts it and makes this worker idle or hands it the next task, so
   ``stats()`` already counts a task when its future resolves, and a ``submit`` made right
   after ``result()`` returns finds this worker idle instead of starting another thread.
3. A worker never dies from a task: whatever the task or a done-callback raises
   (``BaseException`` included) goes onto the future or into the log.
4. It keeps no reference to a finished task's callable, arguments or result: the loop
   unbinds those names before it waits for the next task.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from queue import Empty, SimpleQueue
from time import perf_counter, time
from typing import Any, Protocol

from ._errors import deadline_passed
from ._failures import TaskFailure, describe, log_extra, logger
from ._future import TrackedFuture
from ._handle import TaskHandle
from ._items import EXIT, WAKE, ExitMessage, Message, WorkItem
from ._takeover import EXPIRED
from ._task import DeadlinePassed, Task, task_name

__all__ = [
    "FailureHost",
    "Worker",
    "WorkerHost",
    "WorkerThread",
    "fail_future",
    "log_callback_error",
    "record_failure",
]


class FailureHost(Protocol):
    """What recording a task's failure needs of the pool."""

    name: str
    on_task_error: Callable[[TaskFailure], object] | None


class WorkerHost(Protocol):
    """What a worker may ask of its pool; every call takes the pool's lock briefly."""

    name: str
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]
    on_task_error: Callable[[TaskFailure], object] | None

    def check_in(self, worker: Worker) -> bool:
        """Called first by a new thread; False: the launch was taken back, exit now."""

    def task_completed(self, worker: Worker, waited: float, ran: float) -> Message:
        """Counts a task that returned (or, if its future was taken over meanwhile, as
        the takeover says); returns the next task, None (idle) or EXIT. Every report
        clears ``worker.running``."""

    def task_failed(self, worker: Worker, record: TaskFailure, wait: float, run: float) -> Message:
        """``task_completed`` for a task that raised."""

    def task_taken(self, worker: Worker, how: str) -> Message:
        """``task_completed`` for a task its future was taken from (see ``_takeover``)."""

    def task_skipped(self, worker: Worker) -> Message:
        """``task_completed`` for a task found cancelled (or resolved by hand) at its start."""

    def recheck(self, worker: Worker, timed_out: bool) -> Message:
        """Called by an idle worker woken by ``WAKE`` or by its idle timeout."""

    def initializer_failed(self, worker: Worker) -> None:
        """Breaks the pool: the tasks not started fail with ``BrokenThreadPool``."""

    def forget(self, worker: Worker) -> None:
        """Called last by a thread that checked in, as it exits."""


def _fresh_context() -> dict[str, Any]:
    """Thread arguments that start a thread in an empty context. Python 3.14 can start a
    thread in a copy of its starter's context (``thread_inherit_context``, on by default on
    free-threaded builds): a worker would then pin, and show every task, the context of
    whichever caller happened to start it. Before 3.14 every thread starts empty."""
    if sys.version_info >= (3, 14):
        return {"context": contextvars.Context()}
    return {}


class WorkerThread(threading.Thread):
    """A pool's thread. A class of its own so that the fault-injection tests can make its
    ``start()`` fail the way a real one does, without touching anything else."""

    # Weak: a strong one would make a cycle with the worker, which holds this thread, and
    # keep every exited thread alive until the next garbage collection.
    worker: weakref.ref[Worker] | None = None

    def running_handle(self) -> TaskHandle | None:
        """The handle of the task this thread runs (``current_task()`` calls this on the
        current thread only): made on first use for a task submitted without options."""
        worker = None if self.worker is None else self.worker()
        item = None if worker is None else worker.running
        if item is None:
            return None
        future = item[0]
        handle = future._handle
        if handle is None:
            handle = future.attach_handle(TaskHandle(task_name(item[1]), None))
        return handle


class Worker:
    """One pool thread and the inbox through which it receives its tasks."""

    __slots__ = (
        "__weakref__",  # its thread's reference to it (WorkerThread.worker)
        "checked_in",
        "core",
        "first",
        "inbox",
        "joining",
        "launched",
        "launcher",
        "running",
        "taken_back",
        "thread",
        "wait_timeout",
    )

    def __init__(self, core: WorkerHost, name: str, first: WorkItem | None) -> None:
        self.core = core
        self.first = first  # not passed as a Thread arg: Thread keeps its args alive
        self.inbox: SimpleQueue[Message] = SimpleQueue()
        # Written by the pool under its lock:
        self.wait_timeout: float | None = None  # how long to wait idle; None: for good
        self.checked_in = False  # the thread runs (see WorkerHost.check_in)
        self.taken_back = False  # the launch failed: the thread, if any, must not work
        self.joining = False  # it runs a task that waits in shutdown(wait=True)
        self.launcher = threading.get_ident()  # the thread that must start this one
        # The task it runs: set by its thread, cleared under the pool's lock by its reports.
        self.running: WorkItem | None = None
        self.launched = False  # its start() returned; written and read by the launcher only
        self.thread = WorkerThread(target=self._run, name=name, daemon=True, **_fresh_context())
        self.thread.worker = weakref.ref(self)

    def _run(self) -> None:
        core = self.core
        if not core.check_in(self):
            return
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
        task_failed = self.core.task_failed
        task_completed = self.core.task_completed
        item: Message = self.first
        self.first = None
        while True:
            if item is None:
                item = self._wait()
            if item is EXIT:
                return
            future, fn, args, kwargs, accepted = item
            # Before it may start: the deadline watcher looks here, under the pool's lock,
            # for the tasks still running (each report below clears it under that lock).
            self.running = item
            try:
                runnable = future.set_running_or_notify_cancel()  # False: caller cancelled
            except RuntimeError:  # resolved before it started: by its deadline, or by hand
                if future._taken_by is None:
                    logger.warning(
                        "a future of pool %r was resolved before its task started; skipped",
                        self.core.name,
                        extra={"pool": self.core.name, "worker": self.thread.name},
                    )
                runnable = False
            if not runnable:
                taken = future._taken_by
                del future, fn, args, kwargs
                item = (
                    self.core.task_skipped(self)
                    if taken is None
                    else self.core.task_taken(self, taken)
                )
                continue
            started = perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                ran = perf_counter() - started
                if exc.__class__ is DeadlinePassed:
                    del fn, args, kwargs
                    item = self._expire(future, exc)
                else:
                    failure = record_failure(fn, exc, ran, self.thread.name)
                    del fn, args, kwargs
                    item = task_failed(self, failure, started - accepted, ran)
                    fail_future(self.core, future, exc, failure, self.thread.name)
                    del failure
            else:
                ran = perf_counter() - started
                del fn, args, kwargs
                # Counts it as completed, or as the interrupt or deadline that took its
                # future over; either way the future is no longer this worker's to resolve.
                item = task_completed(self, started - accepted, ran)
                try:
                    future.set_result(result)
                except InvalidStateError:  # taken over: counted as such, or see _takeover
                    pass
                except BaseException:
                    log_callback_error(self.core.name, future, self.thread.name)
                result = None
            del future  # it holds the result

    def _expire(self, future: TrackedFuture[Any], exc: BaseException) -> Message:
        """A task reached past its deadline (``DeadlinePassed``): this worker expires it
        unstarted, unless the watcher (or an interrupt) just took its future over."""
        core = self.core
        if future.expire(deadline_passed(core.name, exc.args[0].name)):
            item = core.task_taken(self, EXPIRED)
            future.run_callbacks()
            return item
        return core.task_taken(self, future._taken_by or EXPIRED)

    def _wait(self) -> WorkItem | ExitMessage:
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


# -- what a worker does with a finished task, shared with a caller that runs one itself -------


def record_failure(
    fn: Callable[..., Any], exc: BaseException, duration: float, thread: str
) -> TaskFailure:
    """The ``TaskFailure`` of a task that raised ``exc`` after ``duration`` seconds."""
    # Drop the running loop's frame from the traceback: the reader wants the task's frames,
    # and that frame is alive and would show whatever the thread runs next.
    traceback = exc.__traceback__
    if traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
        if fn.__class__ is Task and traceback.tb_next is not None:  # Task.__call__ too
            traceback = traceback.tb_next
        exc.__traceback__ = traceback
    return describe(fn, exc, thread, time() - duration, duration)


def fail_future(
    core: FailureHost,
    future: TrackedFuture[Any],
    exc: BaseException,
    failure: TaskFailure,
    thread: str,
) -> None:
    """Hands a counted failure to ``on_task_error``, arms its never-retrieved report and
    resolves the future with it."""
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
    except InvalidStateError:  # taken over: counted as such
        pass
    except BaseException:
        log_callback_error(core.name, future, thread)


def log_callback_error(pool: str, future: Future[Any], thread: str) -> None:
    # Future._invoke_callbacks logs an Exception from a callback itself; what reaches us is
    # a BaseException (SystemExit, KeyboardInterrupt...): the thread survives it.
    logger.exception(
        "exception calling callback for %r", future, extra={"pool": pool, "worker": thread}
    )
