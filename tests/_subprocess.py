"""Running a test's script in a fresh interpreter: interpreter exit, ``os.fork()`` and
signal handlers cannot be tested in the process that runs the suite.

The script imports the package, ``tests._support``, ``tests._probe`` and ``tests.scripts``
(the helpers scripts share) from the repository root. Its timeout turns a deadlock into a
failure instead of a hung suite, and a faulthandler watchdog prints every thread's stack
into the failure message before that.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

__all__ = ["SCRIPT_TIMEOUT", "needs_fork", "needs_posix_signals", "run_script"]

ROOT = Path(__file__).resolve().parent.parent
SCRIPT_TIMEOUT = 20.0  # seconds before a subprocess counts as hung and is killed
# A hung script dumps every thread's stack (into the failure message) before the timeout.
WATCHDOG = (
    f"import faulthandler; faulthandler.dump_traceback_later({SCRIPT_TIMEOUT - 5}, exit=True)\n"
)

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
needs_posix_signals = pytest.mark.skipif(
    not hasattr(signal, "pthread_kill"), reason="needs POSIX signals"
)


def run_script(*parts: str, options: tuple[str, ...] = ()) -> str:
    """Runs the script made of ``parts`` (each dedented) in a new interpreter; returns its
    stdout. ``options`` go to the interpreter, after ``-W error``.

    The script fails the test by exiting non-zero, by hanging, or by writing anything to
    stderr: a traceback from a thread or an ``atexit`` hook does not change the exit code.
    """
    script = "\n".join(textwrap.dedent(part) for part in parts)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = subprocess.run(
        [sys.executable, "-W", "error", *options, "-c", WATCHDOG + script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    assert (process.returncode, process.stderr) == (0, ""), process.stderr + process.stdout
    return process.stdout
