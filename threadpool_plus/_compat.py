"""What code written for the standard pool reaches for besides its public methods.

Two kinds of reach, both answered with this pool's own state and none of the standard
library's machinery:

- **Private names that real code reads.** celery reads ``len(pool._threads)``,
  google-cloud-firestore ``pool._shutdown``, monitoring code ``pool._work_queue.qsize()``,
  ``pool._idle_semaphore._value``, ``pool._thread_name_prefix`` and ``pool._broken``. Each is
  a read-only view with the standard library's meaning (writing one raises
  ``AttributeError``). Names that no reader was found for, or that hand out machinery a
  caller could break the pool with (``_shutdown_lock``), are left out: see
  docs/works-with.md.
- **Wrappers installed on the standard pool's ``submit``.** OpenTelemetry's threading
  instrumentation and ddtrace wrap ``concurrent.futures.ThreadPoolExecutor.submit`` with
  wrapt to carry the caller's trace context into the task. This class overrides ``submit``,
  so it would slip past them; ``wrap_like_standard_submit`` applies the same wrappers to a
  new pool's ``submit`` and ``try_submit``. It runs once, at construction: a pool pays
  nothing per task for it, and a pool created before the instrumentation is not wrapped.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ._errors import BROKEN_MESSAGE

if TYPE_CHECKING:
    from ._threads import ThreadCore

__all__ = ["IdleSemaphoreView", "StandardNames", "WorkQueueView", "wrap_like_standard_submit"]


class WorkQueueView:
    """``pool._work_queue``: the accepted tasks that wait for a thread."""

    __slots__ = ("_core",)

    def __init__(self, core: ThreadCore) -> None:
        self._core = core

    def qsize(self) -> int:
        """How many accepted tasks wait for a thread (``stats().queued``)."""
        return self._core.snapshot().queued

    def empty(self) -> bool:
        return self.qsize() == 0

    def __repr__(self) -> str:
        return f"<work queue of pool {self._core.name!r}: {self.qsize()} waiting>"


class IdleSemaphoreView:
    """``pool._idle_semaphore``: its ``_value`` is read as the number of idle threads."""

    __slots__ = ("_core",)

    def __init__(self, core: ThreadCore) -> None:
        self._core = core

    @property
    def _value(self) -> int:
        return self._core.snapshot().idle_workers

    def __repr__(self) -> str:
        return f"<idle threads of pool {self._core.name!r}: {self._value}>"


class StandardNames:
    """The standard pool's private attributes, as views of ``self._core``.

    The standard pool's stubs declare them as plain writable attributes of other types;
    here they are read-only views, hence the ``type: ignore`` where this is mixed in.
    """

    _core: ThreadCore

    @property
    def _max_workers(self) -> int:
        return self._core.limits()[1]

    @_max_workers.setter
    def _max_workers(self, value: int) -> None:
        # The one name that is writable, because writing it has an obvious meaning.
        self.resize(max_workers=value)

    @property
    def _threads(self) -> frozenset[threading.Thread]:
        """The threads that have started and not left the pool (a snapshot)."""
        return self._core.threads()

    @property
    def _shutdown(self) -> bool:
        """Whether ``shutdown()`` was called (or the interpreter is exiting)."""
        return self._core.shut_down

    @property
    def _broken(self) -> str | Literal[False]:
        """False, or why the pool broke (an initializer failed), as in the standard pool."""
        # One bool that only ever turns True: no lock needed to read it.
        return BROKEN_MESSAGE if self._core.broken else False

    @property
    def _work_queue(self) -> WorkQueueView:
        return WorkQueueView(self._core)

    @property
    def _idle_semaphore(self) -> IdleSemaphoreView:
        return IdleSemaphoreView(self._core)

    @property
    def _thread_name_prefix(self) -> str:
        """The prefix of the threads' names: ``thread_name_prefix``, or else the name."""
        return self._core.thread_prefix

    if TYPE_CHECKING:

        def resize(
            self, *, min_workers: int | None = None, max_workers: int | None = None
        ) -> None: ...


def wrap_like_standard_submit(pool: Any) -> None:
    """Applies the wrapt wrappers found on the standard pool's ``submit`` to ``pool``'s
    ``submit`` and ``try_submit``, in the same order. No-op when there are none."""
    chain: list[Any] = []  # outermost first
    method: Any = vars(concurrent.futures.ThreadPoolExecutor).get("submit")
    # wrapt's FunctionWrapper (and ddtrace's copy of wrapt) keeps what it wraps and how.
    while hasattr(method, "_self_wrapper") and hasattr(method, "__wrapped__"):
        chain.append(method)
        method = method.__wrapped__
    if not chain:
        return
    cls = type(pool)
    for name in ("submit", "try_submit"):
        function: Callable[..., Any] = getattr(cls, name)
        for link in reversed(chain):
            function = type(link)(
                function, link._self_wrapper, getattr(link, "_self_enabled", None)
            )
        vars(pool)[name] = function.__get__(pool, cls)
