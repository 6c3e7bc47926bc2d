"""Process lifecycle: interpreter exit, pools dropped unshut, ``os.fork()`` and signals.

Whatever needs a fresh interpreter (exit, fork, signal handlers) runs in a subprocess whose
timeout turns a deadlock into a failure instead of a hung suite. The scripts import the
package and ``tests._support`` from the repository root.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import DEADLINE, Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import ThreadPoolExecutor
from threadpool_plus._threads import ThreadCore

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
    stdout.

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


# -- interpreter exit -----------------------------------------------------------------------


def test_tasks_queued_at_exit_all_run() -> None:
    """Tasks still queued when the main thread ends all run before the process exits."""
    output = run_script(
        """
        import atexit, threading
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(1, name="exiting")
        release = threading.Event()
        pool.submit(release.wait, 10)
        for i in range(20):
            pool.submit(print, "task", i, flush=True)
        # Registered after the import, so it runs before the pool's exit hook (atexit is
        # LIFO): all 20 tasks are still queued when interpreter exit begins.
        atexit.register(release.set)
        """
    )
    assert output.splitlines() == [f"task {i}" for i in range(20)]


def test_idle_pool_does_not_delay_exit() -> None:
    """Permanent idle threads (``min_workers``, no idle timeout) let the process exit."""
    output = run_script(
        """
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(4, min_workers=2, idle_timeout=None, name="idle")
        print(pool.submit(pow, 2, 10).result())
        """
    )
    assert output.split() == ["1024"]


def test_submit_during_interpreter_exit_is_refused() -> None:
    """A ``submit`` after the pool's exit hook raises the stdlib's RuntimeError."""
    output = run_script(
        """
        import atexit

        def late_submit():
            try:
                pool.submit(print, "late task ran")
            except RuntimeError as exc:
                print("refused:", exc)

        # Registered before the import, so it runs after the pool's exit hook.
        atexit.register(late_submit)

        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2, name="exiting")
        pool.submit(int).result()
        """
    )
    [line] = output.splitlines()
    assert line.startswith("refused: cannot schedule new futures"), line


def test_submit_from_a_task_during_exit_drain_runs_or_is_refused() -> None:
    """Tasks drained at exit may submit: each nested task runs or is refused, no hang."""
    output = run_script(
        """
        from tests._support import wait_until
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(1, name="exiting")

        def refused():
            try:
                pool.submit(int)
            except RuntimeError:
                return True
            return False

        def outer(i):
            try:
                pool.submit(print, i, "nested ran", flush=True)
            except RuntimeError as exc:
                print(i, "refused:", exc, flush=True)

        # The only thread waits until the exit hook has closed the pool, so the outer
        # tasks behind it all run during the exit drain.
        pool.submit(wait_until, refused)
        for i in range(20):
            pool.submit(outer, i)
        """
    )
    lines = output.splitlines()
    for i in range(20):
        outcomes = [line for line in lines if line.split()[0] == str(i)]
        assert outcomes in (
            [f"{i} refused: cannot schedule new futures after interpreter shutdown"],
            [f"{i} nested ran"],
        ), output


# -- pools dropped without shutdown() ------------------------------------------------------


@pytest.fixture
def make_dropped_pool() -> Iterator[PoolFactory]:
    """Makes pools the test will drop; keeps only their cores (which do not keep the
    executor alive) so that a failing test leaves no thread behind."""
    cores: list[ThreadCore] = []

    def factory(*args: Any, **kwargs: Any) -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(*args, **kwargs)
        cores.append(pool._core)
        return pool

    yield factory
    for core in cores:
        core.shutdown(wait=True, cancel=True)


def test_dropped_pool_runs_its_queue_then_its_threads_exit(
    make_dropped_pool: PoolFactory,
) -> None:
    """A pool collected while its queue is full still runs every queued task, then its
    threads exit without waiting for the idle timeout."""
    pool = make_dropped_pool(1, name="dropped-busy")
    gate = Gate()
    ran: list[int] = []
    try:
        running = pool.submit(gate.wait, "running")
        gate.wait_entered(1)
        queued = [pool.submit(ran.append, i) for i in range(10)]
        assert pool.stats().queued == 10
        collected = weakref.ref(pool)
        del pool
        gc.collect()
        assert collected() is None
    finally:
        gate.open()
    assert running.result(timeout=DEADLINE) == "running"
    for future in queued:
        future.result(timeout=DEADLINE)
    assert ran == list(range(10))
    wait_until(lambda: not threads_named("dropped-busy"))


def test_dropped_pool_lets_its_permanent_threads_exit(make_dropped_pool: PoolFactory) -> None:
    """``min_workers`` threads that never time out exit once their pool is collected."""
    pool = make_dropped_pool(4, min_workers=2, idle_timeout=None, name="dropped-idle")
    assert pool.submit(pow, 2, 3).result() == 8
    assert len(threads_named("dropped-idle")) == 2
    collected = weakref.ref(pool)
    del pool
    gc.collect()
    assert collected() is None
    wait_until(lambda: not threads_named("dropped-idle"))


def test_dropped_pool_in_a_reference_cycle_lets_its_threads_exit(
    make_dropped_pool: PoolFactory,
) -> None:
    """A pool reachable only from a reference cycle (freed by the cyclic GC, not by
    reference counting) lets its permanent threads exit too."""
    pool = make_dropped_pool(2, min_workers=2, idle_timeout=None, name="dropped-cycle")
    assert pool.submit(pow, 2, 3).result() == 8
    owner: dict[str, object] = {"pool": pool}
    owner["self"] = owner
    collected = weakref.ref(pool)
    del pool, owner
    gc.collect()
    assert collected() is None
    wait_until(lambda: not threads_named("dropped-cycle"))


# -- os.fork() ------------------------------------------------------------------------------

# Runs ``child`` in a forked child and returns its exit code: 0 when it returns, 1 when it
# raises (the traceback goes to stderr). A hung child is killed by SIGALRM, never hanging
# the parent. Python 3.12+ warns about forking a threaded process: hence the -W option.
FORK = """
import os, signal, sys, threading, traceback
from tests._support import Gate, threads_named, wait_until
from threadpool_plus import ThreadPoolExecutor

def fork_and_wait(child):
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)
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
"""


def run_fork_script(script: str) -> str:
    return run_script(FORK, script, options=("-W", "ignore::DeprecationWarning"))


@needs_fork
def test_child_after_fork_can_use_the_pool() -> None:
    """A forked child runs tasks on the pool, with counters started afresh, and shuts it
    down; the parent's pool carries on."""
    output = run_fork_script(
        """
        pool = ThreadPoolExecutor(2, name="forked")
        assert pool.submit(pow, 2, 8).result() == 256

        def child():
            assert pool.submit(pow, 3, 3).result(timeout=5) == 27
            s = pool.stats()
            assert (s.submitted, s.completed, s.failed, s.cancelled, s.rejected) == (
                1, 1, 0, 0, 0,
            ), s
            assert (s.workers, s.idle_workers, s.active, s.queued) == (1, 1, 0, 0), s
            pool.shutdown(wait=True)
            assert not threads_named("forked")

        print("child exit code:", fork_and_wait(child))
        assert pool.submit(pow, 2, 3).result() == 8
        assert pool.stats().completed == 2
        pool.shutdown()
        """
    )
    assert output.splitlines() == ["child exit code: 0"]


@needs_fork
def test_fork_while_a_task_is_blocked_in_the_parent() -> None:
    """A child forked while the parent's only thread is busy can use the pool at once,
    and does not run the parent's queued task a second time."""
    output = run_fork_script(
        """
        pool = ThreadPoolExecutor(1, name="forked")
        gate = Gate()
        ran = []
        running = pool.submit(gate.wait, "running")
        gate.wait_entered(1)
        queued = pool.submit(ran.append, "parent's queued task")

        def child():
            assert pool.submit(ran.append, "child's task").result(timeout=5) is None
            s = pool.stats()
            assert (s.submitted, s.completed, s.active, s.queued) == (1, 1, 0, 0), s
            pool.shutdown(wait=True)
            assert ran == ["child's task"], ran

        print("child exit code:", fork_and_wait(child))
        gate.open()
        assert running.result(timeout=5) == "running"
        queued.result(timeout=5)
        assert ran == ["parent's queued task"], ran
        pool.shutdown()
        """
    )
    assert output.splitlines() == ["child exit code: 0"]


@needs_fork
def test_fork_while_another_thread_holds_the_pool_locks() -> None:
    """A child forked while a parent thread holds the pool's lock and the registry's lock
    (the child never gets them back) can still submit and create new pools."""
    output = run_fork_script(
        """
        import threadpool_plus._process as lifecycle

        pool = ThreadPoolExecutor(2, name="forked")
        pool.submit(int).result()
        held, done = threading.Event(), threading.Event()

        def hold():
            with pool._core.lock, lifecycle._live_lock:
                held.set()
                done.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(5)

        def child():
            assert pool.submit(pow, 2, 4).result(timeout=5) == 16
            other = ThreadPoolExecutor(1, name="forked-new")
            assert other.submit(pow, 3, 2).result(timeout=5) == 9
            other.shutdown()
            pool.shutdown()

        code = fork_and_wait(child)
        done.set()
        holder.join()
        print("child exit code:", code)
        assert pool.submit(pow, 2, 2).result() == 4
        pool.shutdown()
        """
    )
    assert output.splitlines() == ["child exit code: 0"]


@needs_fork
def test_fork_from_inside_a_task() -> None:
    """A child forked by a task (a worker thread) can use the pool; its counters add up."""
    output = run_fork_script(
        """
        pool = ThreadPoolExecutor(2, name="forked")

        def child():
            assert pool.submit(pow, 2, 5).result(timeout=5) == 32
            s = pool.stats()
            assert s.submitted == s.completed + s.failed + s.cancelled + s.active + s.queued, s
            assert s.completed >= 1, s
            pool.shutdown(wait=True)  # from a task: waits for every other thread
            assert threads_named("forked") == [threading.current_thread()]

        print("child exit code:", pool.submit(fork_and_wait, child).result(timeout=15))
        pool.shutdown()
        """
    )
    assert output.splitlines() == ["child exit code: 0"]


# -- shutdown() from a signal handler --------------------------------------------------------

# Swaps the pool's lock for one that, once armed, raises SIGUSR1 the next time the main
# thread takes it (by ``with`` or ``acquire()``) and holds it: so the handler runs inside
# the pool's critical section.
SIGNALLING_LOCK = """
import signal, threading

class SignallingLock:
    def __init__(self, lock):
        self.lock = lock
        self.armed = False

    def _signal_if_armed(self):
        if self.armed and threading.current_thread() is threading.main_thread():
            self.armed = False
            signal.raise_signal(signal.SIGUSR1)

    def acquire(self, blocking=True, timeout=-1):
        acquired = self.lock.acquire(blocking, timeout)
        if acquired:
            self._signal_if_armed()
        return acquired

    def release(self):
        self.lock.release()

    def locked(self):
        return self.lock.locked()

    def __enter__(self):
        self.lock.acquire()
        self._signal_if_armed()
        return self

    def __exit__(self, *exc_info):
        self.lock.release()

def install_signalling_lock(pool):
    lock = SignallingLock(pool._core.lock)
    pool._core.lock = lock
    pool._core.not_full = threading.Condition(lock)
    return lock
"""

CRITICAL_SECTIONS = {
    "submit": """
        try:
            future = pool.submit(pow, 2, 5)
        except RuntimeError as exc:
            print("interrupted submit refused:", exc)
        else:
            assert future.result(timeout=5) == 32
        """,
    "stats": """
        pool.stats()
        """,
    "resize": """
        try:
            pool.resize(max_workers=3)
        except RuntimeError as exc:
            print("interrupted resize refused:", exc)
        """,
}


@needs_posix_signals
@pytest.mark.parametrize("section", sorted(CRITICAL_SECTIONS))
def test_shutdown_from_a_signal_handler_inside_a_critical_section(section: str) -> None:
    """``shutdown(wait=True)`` from a handler that interrupted the main thread while it
    held the pool's lock returns (no deadlock), and the pool ends up shut down."""
    output = run_script(
        SIGNALLING_LOCK,
        """
        from tests._support import threads_named
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2, name="signalled")
        pool.submit(int).result()
        lock = install_signalling_lock(pool)
        seen = []

        def handler(signum, frame):
            seen.append(lock.locked())
            pool.shutdown(wait=True)
            seen.append("returned")

        signal.signal(signal.SIGUSR1, handler)
        lock.armed = True
        """,
        CRITICAL_SECTIONS[section],
        """
        assert seen == [True, "returned"], seen  # the handler ran inside the section
        try:
            pool.submit(int)
        except RuntimeError as exc:
            print("later submit refused:", exc)
        pool.shutdown(wait=True)
        assert not threads_named("signalled")
        """,
    )
    assert "later submit refused: cannot schedule new futures after shutdown" in output


# The main thread blocks in submit() on a full queue; a thread sends it SIGUSR1 then.
BLOCKED_SUBMIT = """
    import signal, threading
    from tests import _probe as probe
    from tests._support import Gate, threads_named, wait_until
    from threadpool_plus import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, max_queue_size=1, name="signalled")
    gate = Gate()
    running = pool.submit(gate.wait, "running")
    gate.wait_entered(1)
    queued = pool.submit(gate.wait, "queued")

    def in_thread(fn):
        thread = threading.Thread(target=fn)
        thread.start()
        return thread

    def interrupt():
        wait_until(lambda: probe.waiting(pool) == 1)  # the main thread waits for room
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
    """


@needs_posix_signals
@pytest.mark.parametrize("wait", [False, True])
def test_shutdown_from_a_signal_handler_wakes_the_blocked_submit(wait: bool) -> None:
    """A handler's ``shutdown()`` wakes the main thread it interrupted while blocked in
    ``submit`` on a full queue: that submit raises RuntimeError; accepted tasks still run."""
    output = run_script(
        BLOCKED_SUBMIT,
        f"""
        handled = threading.Event()

        def handler(signum, frame):
            pool.shutdown(wait={wait})
            handled.set()

        signal.signal(signal.SIGUSR1, handler)
        in_thread(interrupt)
        try:
            pool.submit(print, "blocked task ran")
        except RuntimeError as exc:
            print("blocked submit refused:", exc)
        assert handled.is_set()
        gate.open()
        print(running.result(timeout=5), queued.result(timeout=5))
        pool.shutdown(wait=True)
        assert not threads_named("signalled")
        """,
    )
    assert output.splitlines() == [
        "blocked submit refused: cannot schedule new futures after shutdown",
        "running queued",
    ]


@needs_posix_signals
def test_shutdown_from_a_signal_handler_while_another_thread_holds_the_lock() -> None:
    """Even when another thread holds the pool's lock as the handler runs (a worker
    finishing a task does, often), the handler's ``shutdown()`` closes the pool: other
    threads are refused at once and the interrupted blocked submit is woken."""
    output = run_script(
        BLOCKED_SUBMIT,
        """
        returned = threading.Event()

        def handler(signum, frame):
            held, done = threading.Event(), threading.Event()

            def hold():
                with pool._core.lock:
                    held.set()
                    done.wait(5)

            holder = in_thread(hold)
            held.wait(5)
            pool.shutdown(wait=False)
            done.set()
            holder.join()

            def other_submit():
                try:
                    pool.try_submit(int)
                except RuntimeError as exc:
                    print("after the handler, another thread gets", type(exc).__name__)

            in_thread(other_submit).join()

        def watchdog():
            if not returned.wait(5):  # the blocked submit was not woken: let it through
                print("the blocked submit was still waiting after 5 s")
                gate.open()

        signal.signal(signal.SIGUSR1, handler)
        in_thread(interrupt)
        in_thread(watchdog)
        try:
            pool.submit(int)
        except RuntimeError as exc:
            print("blocked submit refused:", exc)
        returned.set()
        gate.open()
        pool.shutdown(wait=True)
        """,
    )
    assert output.splitlines() == [
        "after the handler, another thread gets RuntimeError",
        "blocked submit refused: cannot schedule new futures after shutdown",
    ]


@needs_posix_signals
def test_shutdown_from_a_signal_handler_after_another_handler_used_the_pool() -> None:
    """A handler that used the pool (``stats()``) while the main thread was blocked in
    ``submit`` does not make a later handler's ``shutdown()`` deadlock when that one lands
    while the same submit holds the lock."""
    output = run_script(
        SIGNALLING_LOCK,
        BLOCKED_SUBMIT,
        """
        import os

        lock = install_signalling_lock(pool)
        calls = []

        def handler(signum, frame):
            calls.append(signum)
            if len(calls) == 1:  # a "dump the stats" handler
                print("queued:", pool.stats().queued)
                lock.armed = True  # the next signal lands while main holds the lock,
                gate.open()  # once room appears and the blocked submit takes it again
            else:  # a "shut down" handler
                pool.shutdown(wait=False)
                print("shutdown returned")

        returned = threading.Event()

        def watchdog():
            if not returned.wait(5):
                print("deadlocked", flush=True)
                os._exit(3)

        signal.signal(signal.SIGUSR1, handler)
        in_thread(watchdog)
        in_thread(interrupt)
        try:
            pool.submit(int)
        except RuntimeError:
            pass  # refused or accepted: both are fine once the pool was shut down
        returned.set()
        pool.shutdown(wait=True)
        """,
    )
    assert output.splitlines() == ["queued: 1", "shutdown returned"]


@needs_posix_signals
@pytest.mark.parametrize(
    "call", ["pool.stats()", "pool.submit(int)", "pool.resize(max_workers=3)", "repr(pool)"]
)
def test_other_calls_from_a_signal_handler_inside_a_critical_section_raise(call: str) -> None:
    """Only ``shutdown()`` is safe from a handler that interrupted the pool while it held
    its lock; anything else raises RuntimeError there instead of deadlocking."""
    output = run_script(
        SIGNALLING_LOCK,
        f"""
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2, name="signalled")
        pool.submit(int).result()
        lock = install_signalling_lock(pool)

        def handler(signum, frame):
            try:
                {call}
            except RuntimeError as exc:
                print("handler refused:", exc)

        signal.signal(signal.SIGUSR1, handler)
        lock.armed = True
        assert pool.submit(pow, 2, 5).result(timeout=5) == 32  # interrupted, then finishes
        print("after:", pool.stats().completed)
        pool.shutdown(wait=True)
        """,
    )
    assert "handler refused:" in output
    assert "was called from a signal handler that interrupted the pool" in output
    assert "after: 2" in output
