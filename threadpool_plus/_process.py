"""Process-wide hooks: interpreter exit and ``os.fork()``.

Worker threads are daemon threads, so the interpreter never waits on an idle one. At
exit (an ``atexit`` hook, which runs before daemon threads are stopped) every live pool
is closed as the standard library closes its pools: tasks already accepted run, new
ones get ``RuntimeError("cannot schedule new futures after interpreter shutdown")``, idle
threads are woken to exit, and the hook joins them all.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import TYPE_CHECKING

from ._errors import EXIT_MESSAGE
from ._failures import report_all_at_exit

if TYPE_CHECKING:
    from ._threads import ThreadCore

__all__ = ["track"]

_live: weakref.WeakSet[ThreadCore] = weakref.WeakSet()  # guarded by _live_lock
_live_lock = threading.Lock()


def track(core: ThreadCore) -> None:
    """Registers a pool for the exit and fork hooks (dropped when it is collected)."""
    with _live_lock:
        _live.add(core)


def _pools() -> list[ThreadCore]:
    with _live_lock:
        return list(_live)


def _at_exit() -> None:
    pools = _pools()
    for core in pools:
        core.shutdown(wait=False, cancel=False, message=EXIT_MESSAGE)
    for core in pools:
        core.shutdown(wait=True, cancel=False, message=EXIT_MESSAGE)
    report_all_at_exit()  # failures nobody retrieved: logged while logging still works


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()  # another thread may have held it at the fork
    for core in list(_live):
        core.after_fork_in_child()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
