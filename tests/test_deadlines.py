"""Per-task deadlines: ``options(timeout=, deadline=)`` and the pool's ``task_timeout``.

Timing tests use a 0.2 s deadline checked within generous margins, and gates (never a bare
sleep) to hold tasks where a test needs them.
"""

from __future__ import annotations

import concurrent.futures
import math
import random
import threading
import time
from typing import Any, cast

import pytest

from tests import _probe
from tests._support import DEADLINE, Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import TaskFuture, TaskTimeout, ThreadPoolExecutor, current_task

pytestmark = pytest.mark.timeout(30)

SHORT = 0.2  # a deadline, in seconds from submission
MARGIN = 0.5  # how far from it the test accepts the future's failure


def fails_with_timeout_near(future: concurrent.futures.Future[Any], deadline: float) -> None:
    with pytest.raises(TaskTimeout) as caught:
        future.result(timeout=DEADLINE)
    assert abs(time.monotonic() - deadline) < MARGIN
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, concurrent.futures.TimeoutError)


def test_a_queued_task_expires_at_its_deadline_and_never_runs(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    blocker = pool.submit(gate.wait)
    wait_until(lambda: gate.entered == 1)
    ran: list[int] = []
    deadline = time.monotonic() + SHORT
    future = pool.options(timeout=SHORT, name="late").submit(ran.append, 1)
    assert pool.stats().queued == 1
    fails_with_timeout_near(future, deadline)
    assert "late" in str(future.exception())
    stats = pool.stats()  # it left the queue for expired at its deadline
    assert (stats.queued, stats.expired, stats.active, stats.overrunning) == (0, 1, 1, 0)
    gate.open()
    blocker.result()
    wait_until(lambda: pool.stats().active == 0)
    assert ran == []
    assert pool.stats().completed == 1


def test_a_worker_never_starts_a_task_past_its_deadline_even_if_the_watcher_is_late(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1)
    blocker = pool.submit(gate.wait)
    ran: list[int] = []
    deadline = time.monotonic() + SHORT
    future = pool.options(deadline=deadline).submit(ran.append, 1)
    with _probe.deadline_watcher_stalled(pool):
        wait_until(lambda: time.monotonic() > deadline)
        assert not future.done()  # the watcher cannot act
        gate.open()
        blocker.result()
        with pytest.raises(TaskTimeout):
            future.result(timeout=DEADLINE)  # its worker expired it instead of running it
    assert ran == []
    wait_until(lambda: pool.stats().expired == 1)
    stats = pool.stats()
    assert (stats.active, stats.overrunning, stats.completed) == (0, 0, 1)


def test_a_running_task_overruns_then_counts_as_expired(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    release = threading.Event()
    deadline = time.monotonic() + SHORT
    future = pool.options(deadline=deadline).submit(lambda: release.wait(DEADLINE) and "late")
    fails_with_timeout_near(future, deadline)
    stats = pool.stats()  # the future failed while its thread still runs the task
    assert (stats.active, stats.overrunning, stats.expired) == (1, 1, 0)
    release.set()
    wait_until(lambda: pool.stats().active == 0)
    stats = pool.stats()
    assert (stats.overrunning, stats.expired, stats.completed, stats.failed) == (0, 1, 0, 0)
    with pytest.raises(TaskTimeout):
        future.result()  # the late result is discarded


def test_a_cooperative_task_sees_its_cancellation_at_the_deadline(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    seen: dict[str, Any] = {}

    def cooperative() -> None:
        handle = current_task()
        seen["name"], seen["deadline"] = handle.name, handle.deadline
        seen["remaining"] = handle.remaining()
        seen["woken"] = handle.wait(DEADLINE)  # returns early, when cancelled
        seen["cancelled"] = handle.cancelled
        handle.check()  # raises TaskCancelled

    future = pool.options(timeout=SHORT, name="polite").submit(cooperative)
    with pytest.raises(TaskTimeout):
        future.result(timeout=DEADLINE)
    wait_until(lambda: pool.stats().expired == 1)
    assert seen["name"] == "polite"
    assert 0 < seen["remaining"] <= SHORT
    assert seen["woken"] is True
    assert seen["cancelled"] is True
    assert pool.stats().overrunning == 0
    assert pool.recent_failures() == []  # an expired task is not a failure


def test_the_pools_task_timeout_is_every_tasks_default(make_pool: PoolFactory) -> None:
    pool = make_pool(2, task_timeout=SHORT)
    assert pool.task_timeout == SHORT
    release = threading.Event()
    plain = pool.submit(release.wait, DEADLINE)
    mapped = pool.map(lambda _: release.wait(DEADLINE), range(1))
    with pytest.raises(TaskTimeout):
        plain.result(timeout=DEADLINE)
    with pytest.raises(TaskTimeout):
        list(mapped)
    unlimited = pool.options(timeout=math.inf).submit(lambda: current_task().deadline)
    release.set()
    assert unlimited.result(timeout=DEADLINE) is None
    wait_until(lambda: pool.stats().expired == 2)


def test_options_timeout_none_keeps_the_pools_default(make_pool: PoolFactory) -> None:
    pool = make_pool(1, task_timeout=30.0)
    before = time.monotonic()
    deadline = pool.options(name="x").submit(lambda: current_task().deadline).result()
    assert deadline is not None
    assert before + 29 < deadline < time.monotonic() + 30


def test_a_deadline_in_the_past_expires_the_task_unrun(make_pool: PoolFactory) -> None:
    pool = make_pool(1)
    ran: list[int] = []
    future = pool.options(deadline=time.monotonic() - 1).submit(ran.append, 1)
    with pytest.raises(TaskTimeout):
        future.result(timeout=DEADLINE)
    wait_until(lambda: pool.stats().expired == 1)
    assert ran == []


def test_tasks_that_finish_in_time_are_untouched(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    view = pool.options(timeout=DEADLINE)
    assert [f.result() for f in [view.submit(pow, n, 2) for n in range(50)]] == [
        n * n for n in range(50)
    ]
    assert list(view.map(abs, range(-5, 0))) == [5, 4, 3, 2, 1]
    stats = pool.stats()
    assert (stats.completed, stats.expired, stats.overrunning) == (55, 0, 0)


def test_an_expired_queued_task_makes_room_for_a_waiting_submitter(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(1, max_queue_size=1)
    pool.submit(gate.wait)
    expiring = pool.options(timeout=SHORT).submit(gate.wait)
    admitted: list[concurrent.futures.Future[Any]] = []
    waiter = threading.Thread(target=lambda: admitted.append(pool.submit(abs, -3)))
    waiter.start()  # waits for room: the queue is full
    with pytest.raises(TaskTimeout):
        expiring.result(timeout=DEADLINE)
    waiter.join(DEADLINE)  # the expired task's slot went to it
    assert admitted
    gate.open()
    assert admitted[0].result(timeout=DEADLINE) == 3


def test_one_lazy_watcher_per_pool_gone_at_shutdown() -> None:
    pool = ThreadPoolExecutor(2, name="watched")
    pool.submit(abs, 1).result()
    assert _probe.deadline_thread(pool) is None  # no deadline yet: no watcher
    view = pool.options(timeout=DEADLINE)
    for future in [view.submit(abs, -n) for n in range(20)]:
        future.result()
    watcher = _probe.deadline_thread(pool)
    assert watcher is not None
    assert watcher.name == "watched-deadlines"
    assert [t for t in threading.enumerate() if t.name == "watched-deadlines"] == [watcher]
    pool.shutdown(wait=True)
    watcher.join(DEADLINE)
    assert not watcher.is_alive()
    assert not threads_named("watched")


def test_invariant_with_expiring_tasks(make_pool: PoolFactory) -> None:
    pool = make_pool(2, max_queue_size=4)
    release = threading.Event()
    futures = [
        pool.options(timeout=SHORT if n % 2 else DEADLINE).submit(release.wait, DEADLINE)
        for n in range(6)
    ]
    for _ in range(20):
        s = pool.stats()
        parts = s.completed + s.failed + s.cancelled + s.expired + s.active + s.queued
        assert s.submitted == parts, s
        assert 0 <= s.overrunning <= s.active
    wait_until(lambda: all(f.done() for f in futures[1::2]))
    release.set()
    concurrent.futures.wait(futures, timeout=DEADLINE)
    wait_until(lambda: pool.stats().active == 0)
    s = pool.stats()
    assert (s.submitted, s.expired + s.completed, s.overrunning) == (6, 6, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"timeout": 1.0, "deadline": 5.0}, ValueError, "not both"),
        ({"timeout": -1.0}, ValueError, ">= 0"),
        ({"timeout": math.nan}, ValueError, ">= 0"),
        ({"timeout": "1"}, TypeError, "timeout"),
        ({"deadline": math.nan}, ValueError, "NaN"),
        ({"deadline": "soon"}, TypeError, "deadline"),
    ],
)
def test_bad_deadline_options_raise_at_the_call(
    make_pool: PoolFactory, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make_pool(1).options(**kwargs)


@pytest.mark.parametrize(
    ("value", "error"), [(-0.5, ValueError), (math.nan, ValueError), ("5", TypeError)]
)
def test_a_bad_task_timeout_raises_at_construction(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="task_timeout"):
        ThreadPoolExecutor(1, task_timeout=value)


@pytest.mark.slow
def test_deadlines_and_interrupts_under_load_lose_nothing(make_pool: PoolFactory) -> None:
    """Four submitters with random tiny deadlines and a thread interrupting at random: every
    future settles exactly once, and the counters add up, in every snapshot and at the end."""
    pool = make_pool(3, max_queue_size=8)
    settled: dict[int, int] = {}
    futures: list[concurrent.futures.Future[Any]] = []
    lock = threading.Lock()
    done_submitting = threading.Event()

    def on_done(future: concurrent.futures.Future[Any]) -> None:
        with lock:
            settled[id(future)] += 1

    def work(n: int) -> int:
        handle = current_task()
        for _ in range(n % 50):
            if handle.cancelled:
                break
        return n

    def submitter(seed: int) -> None:
        rng = random.Random(seed)
        for n in range(200):
            timeout = rng.choice([None, 0.0, 0.0005, 0.002, 0.05])
            future = pool.options(timeout=timeout).submit(work, n)
            with lock:
                settled[id(future)] = 0
                futures.append(future)
            future.add_done_callback(on_done)

    def interrupter() -> None:
        rng = random.Random(99)
        while not done_submitting.is_set():
            with lock:
                chosen = rng.choice(futures) if futures else None
            if chosen is not None:
                cast(TaskFuture[Any], chosen).cancel(interrupt=True)
            s = pool.stats()
            parts = s.completed + s.failed + s.cancelled + s.expired + s.active + s.queued
            assert s.submitted == parts, s
            assert 0 <= s.overrunning <= s.active, s

    threads = [threading.Thread(target=submitter, args=(seed,)) for seed in range(4)]
    checker = threading.Thread(target=interrupter)
    checker.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    done_submitting.set()
    checker.join(DEADLINE)
    concurrent.futures.wait(futures, timeout=DEADLINE)
    wait_until(lambda: pool.stats().active == 0)
    wait_until(lambda: all(count == 1 for count in settled.values()))
    s = pool.stats()
    assert s.submitted == len(futures) == 800
    assert s.submitted == s.completed + s.failed + s.cancelled + s.expired, s
    assert (s.overrunning, s.failed) == (0, 0)
    assert s.expired > 0
