"""Stress: invariants hold while submit, cancel, resize and shutdown race each other.

Each test runs a few thousand tiny tasks at most, so it takes a second or two on a
two-core machine. Nothing here asserts on timing: the threads race freely and the tests
check what must hold whatever the interleaving.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, InvalidStateError
from functools import partial

import pytest

from tests._support import DEADLINE, Gate, threads_named, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, PoolStats, ThreadPoolExecutor

MAX_LIMIT = 6  # the largest max_workers any test sets

# What a task does, by kind: return a value, or raise one of these.
RAISES: dict[int, type[BaseException]] = {
    1: ValueError,
    2: KeyboardInterrupt,
    3: SystemExit,
}


def task(index: int, kind: int, ran: set[int]) -> int:
    """Records that it ran, then returns ``index * 2`` or raises as ``kind`` says."""
    ran.add(index)
    if kind in RAISES:
        raise RAISES[kind](index)
    return index * 2


def pick_kind(rng: random.Random) -> int:
    """Mostly tasks that return; some raise an ``Exception``, some a ``BaseException``."""
    return rng.choice([0, 0, 0, 0, 0, 1, 2, 3])


class Crew:
    """The test's own threads, as daemons so that a failing test never hangs the run.

    ``start`` runs a function in a thread and keeps what it raises; ``join`` waits for
    threads and fails the test if one hung or raised. Every ``Event`` from ``event()``
    is set at teardown, so the helpers that loop until told to stop always end.
    """

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._events: list[threading.Event] = []

    def event(self) -> threading.Event:
        """A stop signal for helper threads, set at the latest at teardown."""
        event = threading.Event()
        self._events.append(event)
        return event

    def start(self, name: str, target: Callable[[], object]) -> threading.Thread:
        """Runs ``target`` in a new daemon thread named ``stress-<name>``."""

        def run() -> None:
            try:
                target()
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=f"stress-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)
        return thread

    def join(self, threads: Iterable[threading.Thread]) -> None:
        """Waits for ``threads``; fails if one is still running after the deadline or
        if any thread of the crew raised."""
        for thread in threads:
            thread.join(DEADLINE)
            assert not thread.is_alive(), f"{thread.name} hung"
        assert self.errors == []

    def close(self) -> None:
        """Tells every helper to stop and gives each thread a moment to end."""
        for event in self._events:
            event.set()
        for thread in self.threads:
            thread.join(1.0)


@pytest.fixture
def crew() -> Iterator[Crew]:
    """A ``Crew`` whose helpers are told to stop at teardown, whatever the test did."""
    c = Crew()
    yield c
    c.close()


def snapshot_problems(stats: PoolStats, max_limit: int) -> list[str]:
    """What is wrong with one ``stats()`` snapshot; empty if nothing."""
    problems = []
    total = stats.completed + stats.failed + stats.cancelled + stats.active + stats.queued
    if stats.submitted != total:
        problems.append("submitted != completed + failed + cancelled + active + queued")
    if not 0 <= stats.idle_workers <= stats.workers <= stats.peak_workers <= max_limit:
        problems.append("not 0 <= idle_workers <= workers <= peak_workers <= max limit")
    if stats.active + stats.idle_workers > stats.workers:
        problems.append("more running tasks than busy threads")
    if stats.queued and stats.idle_workers:
        problems.append("work waits in the queue while a thread is idle")
    if stats.idle_workers and stats.workers > stats.max_workers:
        problems.append("a surplus thread idles after a shrink instead of retiring")
    if not 0 <= stats.min_workers <= stats.max_workers <= max_limit:
        problems.append("limits out of order")
    if stats.queue_capacity and stats.queued > stats.queue_capacity:
        problems.append("more queued than the queue's capacity")
    if min(dataclasses.astuple(stats)) < 0:
        problems.append("a negative counter")
    return problems


class Sampler:
    """Takes ``stats()`` snapshots in a thread until stopped, noting every broken invariant."""

    def __init__(self, crew: Crew, pool: ThreadPoolExecutor, max_limit: int = MAX_LIMIT) -> None:
        self.pool = pool
        self.max_limit = max_limit
        self.samples = 0
        self.problems: list[tuple[str, PoolStats]] = []
        self._crew = crew
        self._stop = crew.event()
        self._thread = crew.start("sampler", self._run)

    def _run(self) -> None:
        while not self._stop.wait(0.0001):  # a pause, so as not to starve the producers
            stats = self.pool.stats()
            self.samples += 1
            for problem in snapshot_problems(stats, self.max_limit):
                if len(self.problems) < 10:
                    self.problems.append((problem, stats))

    def stop(self) -> None:
        """Stops sampling; fails the test if any snapshot broke an invariant."""
        self._stop.set()
        self._crew.join([self._thread])
        assert self.samples > 0
        assert self.problems == []


def random_resizes(pool: ThreadPoolExecutor, stop: threading.Event, seed: int) -> None:
    """Calls ``resize()`` with random valid limits until ``stop`` is set."""
    rng = random.Random(seed)
    while not stop.wait(0.001):
        low = rng.randint(0, 3)
        pool.resize(min_workers=low, max_workers=rng.randint(max(low, 1), MAX_LIMIT))


@pytest.mark.slow
def test_counters_add_up_while_submit_cancel_and_resize_race(
    crew: Crew, make_pool: PoolFactory
) -> None:
    """Every snapshot and the final counters add up while submit, cancel and resize race."""
    pool = make_pool(4, min_workers=1, idle_timeout=0.005)
    producers, per_producer = 4, 1000
    ran: set[int] = set()
    accepted: list[tuple[int, int, Future[int]]] = []  # (index, kind, future)
    stop = crew.event()
    sampler = Sampler(crew, pool)

    def produce(p: int) -> None:
        rng = random.Random(p)
        for j in range(per_producer):
            index, kind = p * per_producer + j, pick_kind(rng)
            accepted.append((index, kind, pool.submit(task, index, kind, ran)))

    def cancel() -> None:
        rng = random.Random(-1)
        while not stop.wait(0.0002):
            recent = accepted[-20:]  # the newest are the ones likely still queued
            if recent:
                rng.choice(recent)[2].cancel()

    workers = [crew.start(f"producer-{p}", partial(produce, p)) for p in range(producers)]
    helpers = [
        crew.start("canceller", cancel),
        crew.start("resizer", partial(random_resizes, pool, stop, seed=-2)),
    ]
    crew.join(workers)
    stop.set()
    crew.join(helpers)
    pool.shutdown(wait=True)
    sampler.stop()

    assert threads_named(pool.name) == []
    assert len(accepted) == producers * per_producer
    completed = failed = cancelled = 0
    for index, kind, future in accepted:
        assert future.done()
        if future.cancelled():
            cancelled += 1
            assert index not in ran, "a cancelled task ran"
            continue
        assert index in ran
        if kind in RAISES:
            failed += 1
            assert type(future.exception()) is RAISES[kind]
        else:
            completed += 1
            assert future.result() == index * 2
    stats = pool.stats()
    assert stats.submitted == len(accepted)
    assert (stats.completed, stats.failed, stats.cancelled) == (completed, failed, cancelled)
    assert (stats.active, stats.queued, stats.workers, stats.idle_workers) == (0, 0, 0, 0)
    assert stats.rejected == 0
    assert failed > 0


@pytest.mark.slow
def test_bounded_queue_rejections_are_counted_and_never_run(
    crew: Crew, make_pool: PoolFactory, gate: Gate
) -> None:
    """``rejected`` equals the ``PoolOverloaded`` raised; rejected tasks never run."""
    pool = make_pool(2, max_queue_size=3, submit_timeout=0.001, idle_timeout=0.005)
    producers, per_producer = 4, 500
    ran: set[int] = set()
    accepted: list[tuple[int, Future[int]]] = []
    refused: list[int] = []
    stop = crew.event()
    sampler = Sampler(crew, pool)
    # Fill both threads and the queue, so the producers meet a full queue at first.
    blocked = [pool.submit(gate.wait, i) for i in range(2)]
    gate.wait_entered(2)
    blocked += [pool.submit(gate.wait, i) for i in range(2, 5)]

    def produce(p: int) -> None:
        rng = random.Random(p)
        for j in range(per_producer):
            index = p * per_producer + j
            submit = pool.submit if rng.random() < 0.5 else pool.try_submit
            try:
                future = submit(task, index, 0, ran)
            except PoolOverloaded:
                refused.append(index)
            else:
                accepted.append((index, future))

    workers = [crew.start(f"producer-{p}", partial(produce, p)) for p in range(producers)]
    resizer = crew.start("resizer", partial(random_resizes, pool, stop, seed=-3))
    wait_until(lambda: pool.stats().rejected >= 20)
    gate.open()
    crew.join(workers)
    stop.set()
    crew.join([resizer])
    pool.shutdown(wait=True)
    sampler.stop()

    assert threads_named(pool.name) == []
    assert [f.result() for f in blocked] == list(range(5))
    assert len(accepted) + len(refused) == producers * per_producer
    assert ran.isdisjoint(refused), "a rejected task ran"
    assert all(f.result() == index * 2 for index, f in accepted)
    assert ran == {index for index, _ in accepted}
    stats = pool.stats()
    assert stats.rejected == len(refused) >= 20
    assert stats.submitted == stats.completed == len(accepted) + len(blocked)
    assert (stats.failed, stats.cancelled, stats.active, stats.queued) == (0, 0, 0, 0)


def produce_until_refused(
    pool: ThreadPoolExecutor,
    p: int,
    ran: set[int],
    accepted: list[tuple[int, Future[int]]],
    refusals: list[RuntimeError],
    cancel_half: bool = False,
    callback: Callable[[Future[int]], object] | None = None,
) -> None:
    """Submits tasks numbered from ``p * 10**6`` until the pool refuses one; may add
    ``callback`` to each future and cancel half of them right away."""
    rng = random.Random(p)
    for index in itertools.count(p * 1_000_000):
        try:
            future = pool.submit(task, index, 0, ran)
        except RuntimeError as exc:
            refusals.append(exc)
            return
        if callback is not None:
            future.add_done_callback(callback)
        accepted.append((index, future))
        if cancel_half and rng.random() < 0.5:
            future.cancel()  # races the idle worker that was just handed the task


@pytest.mark.slow
@pytest.mark.parametrize("drain", [True, False], ids=["drain", "no-drain"])
def test_shutdown_racing_producers_loses_no_accepted_task(
    crew: Crew, make_pool: PoolFactory, drain: bool
) -> None:
    """A submit racing ``shutdown()`` raises RuntimeError or its task ends as ``drain`` says."""
    # A small queue with waiting submits: some producers are blocked for room when the
    # pool closes, and must be woken with RuntimeError.
    pool = make_pool(3, max_queue_size=8, submit_timeout=None)
    producers = 4
    ran: set[int] = set()
    accepted: list[tuple[int, Future[int]]] = []
    refusals: list[RuntimeError] = []
    sampler = Sampler(crew, pool)
    workers = [
        crew.start(
            f"producer-{p}", partial(produce_until_refused, pool, p, ran, accepted, refusals)
        )
        for p in range(producers)
    ]
    wait_until(lambda: pool.stats().submitted >= 500)
    # A second closer races the first: calling shutdown() twice is harmless.
    closer = crew.start("closer", partial(pool.shutdown, wait=True, drain=drain))
    pool.shutdown(wait=True, drain=drain)
    assert threads_named(pool.name) == []
    assert all(future.done() for _, future in accepted), "accepted futures are resolved"
    crew.join([*workers, closer])
    sampler.stop()

    assert len(refusals) == producers
    for exc in refusals:
        assert not isinstance(exc, PoolOverloaded)
        assert "cannot schedule new futures" in str(exc)
    completed = cancelled = 0
    for index, future in accepted:
        if future.cancelled():
            cancelled += 1
            assert index not in ran, "a cancelled task ran"
        else:
            completed += 1
            assert future.result() == index * 2
    assert ran == {index for index, future in accepted if not future.cancelled()}
    if drain:
        assert cancelled == 0, "drain=True runs every accepted task"
    stats = pool.stats()
    assert stats.submitted == len(accepted)
    assert (stats.completed, stats.cancelled, stats.failed) == (completed, cancelled, 0)
    assert (stats.active, stats.queued, stats.workers, stats.rejected) == (0, 0, 0, 0)


@pytest.mark.slow
def test_cancel_racing_task_start_raises_and_logs_nothing(
    crew: Crew, make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """``cancel()`` racing task start and shutdown never raises or logs InvalidStateError."""
    caplog.set_level(logging.DEBUG, logger="threadpool_plus")
    caplog.set_level(logging.DEBUG, logger="concurrent.futures")
    pool = make_pool(2, idle_timeout=0.005)
    producers = 3
    ran: set[int] = set()
    accepted: list[tuple[int, Future[int]]] = []
    refusals: list[RuntimeError] = []
    callback_errors: list[BaseException] = []
    stop = crew.event()
    sampler = Sampler(crew, pool)

    def callback(future: Future[int]) -> None:
        try:
            if not future.cancelled():
                future.result()
        except BaseException as exc:
            callback_errors.append(exc)

    def cancel() -> None:
        rng = random.Random(-4)
        while not stop.wait(0.0001):
            recent = accepted[-10:]
            if recent:
                rng.choice(recent)[1].cancel()

    workers = [
        crew.start(
            f"producer-{p}",
            partial(
                produce_until_refused,
                pool,
                p,
                ran,
                accepted,
                refusals,
                cancel_half=True,
                callback=callback,
            ),
        )
        for p in range(producers)
    ]
    canceller = crew.start("canceller", cancel)
    wait_until(lambda: pool.stats().submitted >= 2000)
    pool.shutdown(wait=True, cancel_futures=True)  # races the canceller and producers
    crew.join(workers)
    stop.set()
    crew.join([canceller])
    sampler.stop()

    assert threads_named(pool.name) == []
    assert len(refusals) == producers
    assert callback_errors == []
    cancelled = sum(future.cancelled() for _, future in accepted)
    assert all(future.done() for _, future in accepted)
    assert ran == {index for index, future in accepted if not future.cancelled()}
    assert all(future.result() == index * 2 for index, future in accepted if index in ran)
    stats = pool.stats()
    assert stats.submitted == len(accepted)
    assert (stats.completed, stats.cancelled) == (len(accepted) - cancelled, cancelled)
    assert (stats.failed, stats.active, stats.queued) == (0, 0, 0)
    assert cancelled > 0
    noisy = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING
        or "InvalidState" in record.getMessage()
        or (record.exc_info is not None and isinstance(record.exc_info[1], InvalidStateError))
    ]
    assert noisy == []
