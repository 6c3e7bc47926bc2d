"""``LeanFuture``: a ``concurrent.futures.Future`` without a ``Condition`` per future.

The standard ``Future`` builds a ``threading.Condition`` when it is created. That is a
Python-level object whose construction, ``__enter__`` and ``notify_all`` cost more than
everything else a no-op task does on its way through the pool (about 1.5 µs of a 2.5 µs
future life cycle on 3.11, 1.2 of 1.7 on 3.14). Most futures never need one: nobody waits
on them before they finish. So ``LeanFuture``:

- guards its state with a plain ``RLock`` (the lock a default ``Condition`` would wrap);
- parks a thread that waits for it on a raw lock of its own, released when the future
  resolves, which is what ``Condition.wait`` does without the machinery around it;
- builds the ``_condition`` attribute only when code outside this class asks for it
  (``concurrent.futures.wait``, ``as_completed``, ``repr``), around that same ``RLock``,
  so the standard library's helpers see exactly the locking they expect.

Every public method keeps the standard semantics, state names and log messages. Where it
is used instead of the standard class is decided in ``_future``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from _thread import RLock  # the C type itself: threading.RLock is a Python-level factory
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, InvalidStateError, TimeoutError
from typing import Any, TypeVar, cast

from ._failures import Observation
from ._takeover import Takeover

__all__ = [
    "CANCELLED",
    "CANCELLED_AND_NOTIFIED",
    "FINISHED",
    "PENDING",
    "RUNNING",
    "LeanFuture",
    "sleep_until_released",
]

T = TypeVar("T")

# The standard Future's states and logger, by the names it gives them; the standard
# library keeps them in a private module, so they are spelled out here and checked
# against its behaviour by _matches_the_standard_future() below.
PENDING = "PENDING"
RUNNING = "RUNNING"
CANCELLED = "CANCELLED"
CANCELLED_AND_NOTIFIED = "CANCELLED_AND_NOTIFIED"
FINISHED = "FINISHED"
LOGGER = logging.getLogger("concurrent.futures")

_allocate_lock = threading.Lock
_CANCELLED_STATES = (CANCELLED, CANCELLED_AND_NOTIFIED)
_DONE_STATES = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)


class LeanFuture(Takeover, Observation, Future[T]):
    """A ``concurrent.futures.Future`` without a ``Condition`` until one is needed.

    Reads of a finished future take no lock: the state is written last, under the lock,
    so a reader that sees ``FINISHED`` sees the outcome too (as the standard library's
    own ``Future._get_snapshot`` relies on since 3.15).
    """

    # Class-level defaults: a future nobody waits on before it finishes costs no
    # per-instance state for them.
    _wakeup: _Condition | None = None  # built by the _condition property
    _sleepers: list[threading.Lock] | None = None  # one raw lock per waiting thread

    def __init__(self) -> None:  # Future.__init__ would build the Condition we avoid
        self._lock = RLock()
        self._state = PENDING
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._waiters = []
        self._done_callbacks: list[Callable[[Future[T]], object]] = []

    def _observation_lock(self) -> RLock:
        return self._lock

    @property
    def _condition(self) -> _Condition:  # type: ignore[override]  # base: a Condition field
        """What the standard ``Future`` calls its condition, on this future's own lock."""
        condition = self._wakeup
        if condition is not None:  # set once: reading it needs no lock
            return condition
        with self._lock:
            if self._wakeup is None:
                self._wakeup = _Condition(self)
            return self._wakeup

    # -- observing ------------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> T:
        # A future that returned never has a report to disarm: this path, on every
        # caller's way, takes no lock and marks nothing.
        if self._state == FINISHED and self._exception is None:
            return cast(T, self._result)
        with self._lock:
            self._observe_locked()
        self._wait(timeout)
        return self._outcome()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        with self._lock:
            self._observe_locked()
        if self._state != FINISHED:
            self._wait(timeout)
        return self._exception

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        with self._lock:
            self._observe_locked()
            if self._state not in _DONE_STATES:
                self._done_callbacks.append(fn)
                return
        self._call(fn)

    # -- state ----------------------------------------------------------------------------

    def cancel(self, interrupt: bool = False) -> bool:
        """The standard ``cancel()``; with ``interrupt=True`` a running task's future is
        cancelled too, and its task's cancellation requested (see ``Takeover``)."""
        return self._cancel_pending() or (interrupt and self._interrupt())

    def _wake_all_locked(self) -> None:
        self._release_sleepers()

    def _cancel_pending(self) -> bool:
        with self._lock:
            state = self._state
            if state in (RUNNING, FINISHED):
                return False
            if state in _CANCELLED_STATES:
                return True
            self._state = CANCELLED
            self._release_sleepers()
        self._invoke_callbacks()
        return True

    def cancelled(self) -> bool:
        return self._state in _CANCELLED_STATES

    def running(self) -> bool:
        return self._state == RUNNING

    def done(self) -> bool:
        return self._state in _DONE_STATES

    def set_running_or_notify_cancel(self) -> bool:
        with self._lock:
            state = self._state
            if state == PENDING:
                self._state = RUNNING
                return True
            if state == CANCELLED:
                self._state = CANCELLED_AND_NOTIFIED
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
                # No wake-up needed: cancel() woke everyone already.
                return False
            LOGGER.critical("Future %s in unexpected state: %s", id(self), state)
            raise RuntimeError("Future in unexpected state")

    def set_result(self, result: T) -> None:
        with self._lock:
            if self._state in _DONE_STATES:
                raise InvalidStateError(f"{self._state}: {self!r}")
            self._result = result
            self._state = FINISHED
            for waiter in self._waiters:
                waiter.add_result(self)
            if self._sleepers is not None:  # checked here too: set_result is per task
                self._release_sleepers()
        if self._done_callbacks:
            self._invoke_callbacks()

    def set_exception(self, exception: BaseException | None) -> None:
        with self._lock:
            if self._state in _DONE_STATES:
                raise InvalidStateError(f"{self._state}: {self!r}")
            self._exception = exception
            self._state = FINISHED
            for waiter in self._waiters:
                waiter.add_exception(self)
            self._release_sleepers()
        if self._done_callbacks:
            self._invoke_callbacks()

    def _invoke_callbacks(self) -> None:
        for callback in self._done_callbacks:
            self._call(callback)

    def _call(self, callback: Callable[[Future[T]], object]) -> None:
        try:
            callback(self)
        except Exception:
            LOGGER.exception("exception calling callback for %r", self)

    # -- waiting --------------------------------------------------------------------------

    def _park(self) -> threading.Lock:
        """A new sleeper: a locked raw lock that _release_sleepers() will release.
        Lock held."""
        sleeper = _allocate_lock()
        sleeper.acquire()
        if self._sleepers is None:
            self._sleepers = [sleeper]
        else:
            self._sleepers.append(sleeper)
        return sleeper

    def _unpark(self, sleeper: threading.Lock) -> None:
        """Forgets a sleeper that stopped waiting (timed out or interrupted)."""
        with self._lock:
            if self._sleepers is not None and sleeper in self._sleepers:
                self._sleepers.remove(sleeper)

    def _release_sleepers(self, count: int | None = None) -> None:
        """Wakes the ``count`` longest-waiting threads, or all of them. Lock held."""
        sleepers = self._sleepers
        if sleepers is None:
            return
        if count is None or count >= len(sleepers):
            self._sleepers = None
            woken = sleepers
        else:
            woken = sleepers[:count]
            del sleepers[:count]
        for sleeper in woken:
            sleeper.release()

    def _wait(self, timeout: float | None) -> None:
        """Returns once the future is done; raises ``CancelledError`` or ``TimeoutError``.

        ``timeout`` means what it means to ``Condition.wait``: ``None`` waits for good,
        zero or less does not wait.
        """
        with self._lock:
            if self._state in _CANCELLED_STATES:
                raise CancelledError()
            if self._state == FINISHED:
                return
            sleeper = self._park()
        woken = False
        try:
            woken = sleep_until_released(sleeper, timeout)
        finally:
            if not woken:
                self._unpark(sleeper)
        with self._lock:
            if self._state in _CANCELLED_STATES:
                raise CancelledError()
            if self._state != FINISHED:
                raise TimeoutError()

    def _outcome(self) -> T:
        """The result of a finished future, or its exception raised."""
        exception = self._exception
        if exception is not None:
            try:
                raise exception
            finally:
                # Break the cycle exception -> traceback -> this frame -> exception.
                del exception, self
        return cast(T, self._result)


def sleep_until_released(sleeper: threading.Lock, timeout: float | None) -> bool:
    """Blocks until ``sleeper`` is released or ``timeout`` passes (as Condition.wait)."""
    if timeout is None:
        return sleeper.acquire()
    if timeout > 0:
        return sleeper.acquire(True, timeout)
    return sleeper.acquire(False)


class _Condition:
    """A ``LeanFuture``'s ``_condition``: what code written for the standard ``Future``
    uses of its ``threading.Condition``, on the future's own lock and sleepers.

    The standard library's ``wait()`` and ``as_completed()`` only take and release it;
    code that resolves a future by hand also notifies it, and may wait on it. It is one
    small object, where a ``threading.Condition`` costs a Python-level constructor and a
    deque, and ``wait()`` builds one per future while it holds every earlier future's
    lock, which the workers then queue on.
    """

    __slots__ = ("_future", "_lock", "acquire", "release")

    def __init__(self, future: LeanFuture[Any]) -> None:
        self._future = weakref.ref(future)  # a strong one would make a reference cycle
        self._lock = future._lock
        self.acquire = future._lock.acquire
        self.release = future._lock.release

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """As ``Condition.wait``: releases the lock (however many times this thread
        holds it), sleeps until notified or ``timeout``, then takes it back."""
        future = self._live()
        sleeper = future._park()
        depth = 0
        try:
            while True:  # RLock has no public "release fully"; it raises once not held
                self._lock.release()
                depth += 1
        except RuntimeError:
            if depth == 0:
                future._unpark(sleeper)
                raise RuntimeError("cannot wait on un-acquired lock") from None
        woken = False
        try:
            woken = sleep_until_released(sleeper, timeout)
        finally:
            for _ in range(depth):
                self._lock.acquire()
            if not woken:
                future._unpark(sleeper)
        return woken

    def notify(self, n: int = 1) -> None:
        self._live()._release_sleepers(n)

    def notify_all(self) -> None:
        self._live()._release_sleepers()

    def _live(self) -> LeanFuture[Any]:
        future = self._future()
        if future is None:  # the caller holds the future (it holds its lock through it)
            raise RuntimeError("the future of this condition is gone")
        return future
