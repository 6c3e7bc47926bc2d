"""Forking from a script: the child's outcome comes back as an exit code.

Python 3.12+ warns about forking a process with threads: scripts that fork run with
``-W ignore::DeprecationWarning`` (see ``tests/test_fork.py``).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable

__all__ = ["CHILD_TIMEOUT", "fork_and_wait"]

CHILD_TIMEOUT = 10  # seconds before SIGALRM kills a hung child


def fork_and_wait(child: Callable[[], object]) -> int:
    """Runs ``child`` in a forked child and returns its exit code: 0 when it returns, 1
    when it raises (the traceback goes to stderr). A hung child is killed by SIGALRM,
    never hanging the parent."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        signal.alarm(CHILD_TIMEOUT)
        code = 0
        try:
            child()
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
