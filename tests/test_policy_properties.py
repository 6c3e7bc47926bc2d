"""Property: under any overflow policy, with threads and coroutines submitting together, the
books balance and nothing accepted is lost: every accepted future settles exactly once, every
refusal is counted, and the counters add up."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._support import DEADLINE, wait_until
from threadpool_plus import PoolOverloaded, ThreadPoolExecutor

pytestmark = pytest.mark.timeout(120)

Op = Literal["submit", "try_submit", "asubmit", "failing"]


class Boom(Exception):
    pass


def work(n: int) -> int:
    return sum(range(n))


def fail() -> None:
    raise Boom


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(["reject", "drop_oldest", "caller_runs"]),
    workers=st.integers(1, 2),
    capacity=st.integers(1, 3),
    wait=st.sampled_from([0, 0.001]),
    ops=st.lists(st.sampled_from(["submit", "try_submit", "asubmit", "failing"]), max_size=40),
)
def test_the_books_balance_under_every_policy(
    policy: Literal["reject", "drop_oldest", "caller_runs"],
    workers: int,
    capacity: int,
    wait: float,
    ops: list[Op],
) -> None:
    pool = ThreadPoolExecutor(
        workers, max_queue_size=capacity, submit_timeout=wait, overflow=policy, name="books"
    )
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever)
    loop_thread.start()
    futures: list[Future[Any]] = []
    settled: dict[int, int] = {}
    refused = 0
    lock = threading.Lock()

    def track(future: Future[Any]) -> None:
        settled[id(future)] = 0

        def done(f: Future[Any]) -> None:
            with lock:
                settled[id(f)] += 1

        futures.append(future)
        future.add_done_callback(done)

    # Every thread busy until the end, so that the queue fills and the policy acts.
    release = threading.Event()
    try:
        for _ in range(workers):
            track(pool.submit(release.wait, DEADLINE))
        for n, op in enumerate(ops):
            try:
                if op == "submit":
                    track(pool.submit(work, n * 50))
                elif op == "failing":
                    track(pool.submit(fail))
                elif op == "try_submit":
                    track(pool.try_submit(work, n * 50))
                else:  # from a coroutine on another thread's loop
                    ahead = asyncio.run_coroutine_threadsafe(pool.asubmit(work, n * 50), loop)
                    track(ahead.result(DEADLINE))
            except PoolOverloaded:
                refused += 1
    finally:
        release.set()
        pool.shutdown(wait=True)
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(DEADLINE)
        loop.close()
    wait_until(lambda: all(count == 1 for count in settled.values()))
    s = pool.stats()
    assert all(f.done() for f in futures)
    assert s.submitted == len(futures)
    assert s.submitted == s.completed + s.failed + s.cancelled + s.expired, s
    assert (s.active, s.queued, s.overrunning, s.waiting_submitters) == (0, 0, 0, 0), s
    assert s.rejected == refused, s
    assert s.dropped <= s.cancelled, s
    assert s.caller_ran <= s.completed + s.failed, s
    if policy != "drop_oldest":
        assert (s.dropped, s.cancelled) == (0, 0), s
    if policy != "caller_runs":
        assert s.caller_ran == 0, s
    assert sum(f.cancelled() for f in futures) == s.cancelled
