"""The future every ``submit`` returns: ``TrackedFuture``, one of two classes.

``LeanFuture`` (in ``_lean_future``) re-implements the standard ``Future``'s private state
to avoid a ``Condition`` per future. The standard library's helpers read that state on any
future, so a ``Future`` subclass that does not call ``Future.__init__`` must provide it
itself, and must behave exactly as the standard one does where they look. ``LeanFuture``
is therefore used only where that was checked, decided once at import by
``_choose_lean()``:

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

Both know whether anyone looked at their outcome (``_failures.Observation``): a failed
future that is never observed logs its failure when it is garbage-collected.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

from ._failures import Observation
from ._lean_future import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING, RUNNING, LeanFuture
from ._takeover import Takeover

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

# What Future.__init__ sets, on every Python from 3.10 to 3.15. The standard library's
# own helpers (wait, as_completed, asyncio.wrap_future) read these on any future.
_STANDARD_ATTRIBUTES = frozenset(
    {"_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks"}
)


class ObservedFuture(Takeover, Observation, Future[T]):
    """The standard ``Future`` itself, plus observation and takeover: ``TrackedFuture`` on
    a Python whose ``Future`` is not the one ``LeanFuture`` re-implements."""

    def _observation_lock(self) -> threading.Condition:
        return self._condition

    def _wake_all_locked(self) -> None:
        self._condition.notify_all()

    def cancel(self, interrupt: bool = False) -> bool:
        """The standard ``cancel()``; with ``interrupt=True`` a running task's future is
        cancelled too, and its task's cancellation requested (see ``Takeover``)."""
        return super().cancel() or (interrupt and self._interrupt())

    def result(self, timeout: float | None = None) -> T:
        with self._condition:
            self._observe_locked()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        with self._condition:
            self._observe_locked()
        return super().exception(timeout)

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        with self._condition:
            self._observe_locked()
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
