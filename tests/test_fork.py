"""``os.fork()``: a child forked from a process using a pool can use that pool, whatever
the parent's threads were doing at the fork.

Each test runs its script in a new interpreter (``tests._subprocess``) that forks with
``tests.scripts.forking.fork_and_wait``; the script prints the child's exit code.
"""

from __future__ import annotations

from tests._subprocess import needs_fork, run_script

pytestmark = needs_fork


def run_fork_script(script: str) -> str:
    # Python 3.12+ warns about forking a process with threads.
    return run_script(script, options=("-W", "ignore::DeprecationWarning"))


def test_child_after_fork_can_use_the_pool() -> None:
    """A forked child runs tasks on the pool, with counters started afresh, and shuts it
    down; the parent's pool carries on."""
    output = run_fork_script(
        """
        from tests._support import threads_named
        from tests.scripts.forking import fork_and_wait
        from threadpool_plus import ThreadPoolExecutor

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


def test_fork_while_a_task_is_blocked_in_the_parent() -> None:
    """A child forked while the parent's only thread is busy can use the pool at once,
    and does not run the parent's queued task a second time."""
    output = run_fork_script(
        """
        from tests._support import Gate
        from tests.scripts.forking import fork_and_wait
        from threadpool_plus import ThreadPoolExecutor

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


def test_fork_while_another_thread_holds_the_pool_locks() -> None:
    """A child forked while a parent thread holds the pool's lock and the registry's lock
    (the child never gets them back) can still submit and create new pools."""
    output = run_fork_script(
        """
        from tests import _probe as probe
        from tests.scripts.forking import fork_and_wait
        from tests.scripts.threads import held_in_another_thread
        from threadpool_plus import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2, name="forked")
        pool.submit(int).result()

        def child():
            assert pool.submit(pow, 2, 4).result(timeout=5) == 16
            other = ThreadPoolExecutor(1, name="forked-new")
            assert other.submit(pow, 3, 2).result(timeout=5) == 9
            other.shutdown()
            pool.shutdown()

        with held_in_another_thread(probe.holding_lock(pool), probe.holding_registry_lock()):
            code = fork_and_wait(child)
        print("child exit code:", code)
        assert pool.submit(pow, 2, 2).result() == 4
        pool.shutdown()
        """
    )
    assert output.splitlines() == ["child exit code: 0"]


def test_fork_from_inside_a_task() -> None:
    """A child forked by a task (a worker thread) can use the pool; its counters add up."""
    output = run_fork_script(
        """
        import threading
        from tests._support import threads_named
        from tests.scripts.forking import fork_and_wait
        from threadpool_plus import ThreadPoolExecutor

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


def test_a_forked_childs_pool_watches_its_own_deadlines() -> None:
    """The parent's deadline watcher does not exist in the child; the child's pool starts
    its own for its own tasks, and never expires the parent's."""
    output = run_fork_script(
        """
        import threading
        from threadpool_plus import TaskTimeout, ThreadPoolExecutor
        from tests.scripts.forking import fork_and_wait

        pool = ThreadPoolExecutor(2, name="forked")
        release = threading.Event()
        parents = pool.options(timeout=60).submit(release.wait, 30)  # watched in the parent

        def child():
            blocked = threading.Event()
            future = pool.options(timeout=0.2).submit(blocked.wait, 30)
            try:
                future.result(timeout=10)
            except TaskTimeout:
                pass
            else:
                raise AssertionError("the child's task did not expire")
            blocked.set()
            pool.shutdown(wait=True)
            s = pool.stats()
            assert (s.submitted, s.expired, s.overrunning) == (1, 1, 0), s

        print("child exit code:", fork_and_wait(child))
        release.set()
        assert parents.result(timeout=10) is True
        assert pool.stats().expired == 0
        pool.shutdown()
        """
    )
    assert output.splitlines() == ["child exit code: 0"]
