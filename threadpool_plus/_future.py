"""The future every ``submit`` returns: a leaner ``concurrent.futures.Future``.

The standard ``Future`` builds a ``threading.Condition`` when it is created. That is a
Python-level object whose construction, ``__enter__`` and ``notify_all`` cost more than
everything else a no-op task does on its way through the pool (about 1.1 µs of a 3.4 µs
future life cycle on 3.11, 1.6 of 4.4 on 3.13). Most futures never need one: nobody
waits on them before they finish. So ``LeanFuture``:

- guards its state with a plain ``RLock`` (the lock a default ``Condition`` would wrap);
- parks a thread that waits for it on a raw lock of its own, released when the future
  resolves, which is what ``Condition.wait`` does without the machinery around it;
- builds the ``_condition`` attribute only when code outside this class asks for it
  (``concurrent.futures.wait``, ``as_completed``, ``repr``), around that same ``RLock``,
  so the standard library's helpers see exactly the locking they expect.

Every public method keeps the standard semantics, state names and log messages.

Those helpers read the standard ``Future``'s private attributes on any future, so a
``Future`` subclass that does not call ``Future.__init__`` must provide them itself, and
must behave exactly as the standard one does where they look. ``LeanFuture`` is therefore
used only where that was checked, decided once at import by ``_choose_lean()``:

- this Python's minor version is in ``VERIFIED_MINORS``: versions on which CPython's own
  ``test_future``, ``test_wait`` and ``test_as_completed`` and asyncio's ``wrap_future``
  tests pass with ``LeanFuture`` and this pool (``tests/test_future_cpython.py``). A
  free-threaded build must be in ``VERIFIED_FREE_THREADED_MINORS`` instead;
- ``_matches_the_standard_future()`` finds this Python's ``Future`` with exactly the
  attributes and state names ``LeanFuture`` re-implements (a patch release that changed
  them would turn it off);
- the environment variable ``THREADPOOL_PLUS_STANDARD_FUTURE`` is unset, empty or ``0``
  when ``threadpool_plus`` is first imported (any other value, such as ``1``, forces the
  fallback: for users who want the standard class, and for tests of the fallback).

Anywhere else the pool hands out ``ObservedFuture``: the standard ``Future``, unchanged,
slower and never wrong. ``LEAN`` says which was chosen; ``TrackedFuture`` names the class.

Both know whether anyone looked at their outcome: ``result()``, ``exception()`` and
``add_done_callback()`` mark a future observed, and a failed future that is never
observed logs its failure when it is garbage-collected (see ``_failures``).
"""

from __future__ import annotations

import logging
import os
import sys
import sysconfig
import threading
import weakref
from _thread import RLock  # the C type itself: threading.RLock is a Python-level factory
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, InvalidStateError, TimeoutError
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._failures import TaskFailure, UnretrievedReport

__all__ = [
    "LEAN",
    "STANDARD_FUTURE_VARIABLE",
    "VERIFIED_FREE_THREADED_MINORS",
    "VERIFIED_MINORS",
    "LeanFuture",
    "ObservedFuture",
    "TrackedFuture",
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

# What Future.__init__ sets, on every Python from 3.10 to 3.15. The standard library's
# own helpers (wait, as_completed, asyncio.wrap_future) read these on any future.
_STANDARD_ATTRIBUTES = frozenset(
    {"_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks"}
)


class _Observation:
    """Whether anyone looked at a future's outcome, and the report armed if not.

    Each observer sets the flag, then reads the report; arm_report() sets the report,
    then reads the flag. Whichever runs second disarms: no lost and no false report.
    """

    # Class-level defaults: a future that never fails costs no per-instance state.
    _observed = False
    _report: UnretrievedReport | None = None

    def _observe(self) -> None:
        self._observed = True
        if self._report is not None:
            self._disarm()

    def _disarm(self) -> None:
        report = self._report
        if report is not None:
            report.armed = False
            self._report = None

    def arm_report(self, pool: str, failure: TaskFailure) -> None:
        """Called by the worker before it sets the exception."""
        report = UnretrievedReport(pool, failure)
        self._report = report
        if self._observed:
            report.armed = False
            self._report = None


class LeanFuture(_Observation, Future[T]):
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
        # _observe() inlined: result() is on every caller's path.
        self._observed = True
        if self._report is not None:
            self._disarm()
        if self._state == FINISHED and self._exception is None:
            return cast(T, self._result)
        self._wait(timeout)
        return self._outcome()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._observe()
        if self._state != FINISHED:
            self._wait(timeout)
        return self._exception

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        self._observe()
        with self._lock:
            if self._state not in _DONE_STATES:
                self._done_callbacks.append(fn)
                return
        self._call(fn)

    # -- state ----------------------------------------------------------------------------

    def cancel(self) -> bool:
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
            woken = _sleep(sleeper, timeout)
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


def _sleep(sleeper: threading.Lock, timeout: float | None) -> bool:
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
            woken = _sleep(sleeper, timeout)
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


class ObservedFuture(_Observation, Future[T]):
    """The standard ``Future`` itself, plus observation: ``TrackedFuture`` on a Python
    whose ``Future`` is not the one ``LeanFuture`` re-implements."""

    def result(self, timeout: float | None = None) -> T:
        self._observe()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._observe()
        return super().exception(timeout)

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        self._observe()
        super().add_done_callback(fn)


def _matches_the_standard_future() -> bool:
    """Whether this Python's ``Future`` keeps the attributes and state names that
    ``LeanFuture`` re-implements (true on 3.10 to 3.15). A future Python that changes them
    gets ``ObservedFuture``: slower, never wrong."""
    try:
        done: Future[None] = Future()
        cancelled: Future[None] = Future()
        if set(vars(done)) != _STANDARD_ATTRIBUTES or done._state != PENDING:
            return False
        done.set_running_or_notify_cancel()
        seen = [done._state]
        done.set_result(None)
        cancelled.cancel()
        seen += [done._state, cancelled._state]
        cancelled.set_running_or_notify_cancel()
        seen.append(cancelled._state)
    except Exception:
        return False
    return seen == [RUNNING, FINISHED, CANCELLED, CANCELLED_AND_NOTIFIED]


# The Python minor versions on which LeanFuture is known to be a faithful Future: CPython's
# own test_future, test_wait and test_as_completed (their thread-pool classes, with this
# pool) and asyncio's wrap_future tests all pass with it, as tests/test_future_cpython.py
# runs them. That test skips what an interpreter does not ship; how each was run here:
VERIFIED_MINORS: frozenset[tuple[int, int]] = frozenset(
    {
        (3, 10),  # pyenv 3.10.13, with its own test package (all four)
        (3, 11),  # pyenv 3.11.7: its own asyncio tests; the concurrent.futures ones from
        #           Debian's libpython3.11-testsuite (3.11.2), as pyenv's build lacks them
        (3, 12),  # pyenv 3.12.1: its own asyncio tests; the concurrent.futures ones from
        #           CPython 3.13.0's copies, as pyenv's build lacks them
        (3, 13),  # pyenv 3.13.0, with its own test package (all four)
        (3, 14),  # Debian's 3.14.10, with its own test package (libpython3.14-testsuite)
        (3, 15),  # Debian's 3.15.2, with its own test package (libpython3.15-testsuite)
    }
)
# The same, for free-threaded (PEP 703) builds: LeanFuture reads a finished future's state
# without its lock, which the GIL makes safe; without the GIL it must be tested there too.
VERIFIED_FREE_THREADED_MINORS: frozenset[tuple[int, int]] = frozenset(
    {
        (3, 13),  # 3.13.15t built from source, PYTHON_GIL=0, with its own test package
        #           (all four; on x86-64, whose ordering of stores is strict)
    }
)

# Set to anything but "" or "0" before the first import to get ObservedFuture everywhere.
STANDARD_FUTURE_VARIABLE = "THREADPOOL_PLUS_STANDARD_FUTURE"


def _choose_lean(
    version: tuple[int, int],
    environ: Mapping[str, str],
    *,
    free_threaded: bool,
    matches: Callable[[], bool],
) -> bool:
    """Whether the pool should hand out ``LeanFuture``, on Python ``version`` (major,
    minor) with environment ``environ``. ``matches`` (the drift check) runs only when
    nothing else has already decided against it."""
    if environ.get(STANDARD_FUTURE_VARIABLE, "") not in ("", "0"):
        return False
    verified = VERIFIED_FREE_THREADED_MINORS if free_threaded else VERIFIED_MINORS
    return version in verified and matches()


LEAN = _choose_lean(
    sys.version_info[:2],
    os.environ,
    # True on a free-threaded build even while its GIL is on (PYTHON_GIL=1).
    free_threaded=bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    matches=_matches_the_standard_future,
)

if TYPE_CHECKING:
    TrackedFuture = LeanFuture
else:
    TrackedFuture = LeanFuture if LEAN else ObservedFuture
