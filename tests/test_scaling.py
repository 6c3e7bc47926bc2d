"""Threads start when work waits, are reused most-recently-idle first, and retire."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from tests import _probe as probe
from tests._support import Gate, threads_named, wait_until
from tests.conftest import PoolFactory


def current_name() -> str:
    return threading.current_thread().name


def name_after(gate: Gate) -> str:
    """Waits at the gate, then returns the running thread's name."""
    gate.wait()
    return current_name()


def test_no_thread_until_work_arrives(make_pool: PoolFactory) -> None:
    pool = make_pool(4, name="lazy")
    assert pool.stats().workers == 0
    assert threads_named("lazy") == []


def test_min_workers_start_at_construction(make_pool: PoolFactory) -> None:
    pool = make_pool(4, min_workers=3, name="eager")
    stats = pool.stats()
    assert (stats.workers, stats.idle_workers) == (3, 3)
    assert len(threads_named("eager")) == 3


def test_threads_grow_to_max_workers_and_no_further(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(3, name="grow")
    futures = [pool.submit(gate.wait, i) for i in range(3)]
    gate.wait_entered(3)
    assert pool.stats().workers == 3
    futures += [pool.submit(gate.wait, i) for i in range(3, 10)]
    stats = pool.stats()
    assert (stats.workers, stats.active, stats.queued, stats.peak_workers) == (3, 3, 7, 3)
    gate.open()
    assert [f.result() for f in futures] == list(range(10))
    assert pool.stats().peak_workers == 3


def test_idle_thread_is_reused_instead_of_starting_another(make_pool: PoolFactory) -> None:
    """A worker counts as idle before its future resolves, so sequential work uses one thread."""
    pool = make_pool(8)
    names = {pool.submit(current_name).result() for _ in range(200)}
    assert len(names) == 1
    assert pool.stats().peak_workers == 1


def test_done_callback_submit_reuses_the_finishing_thread(make_pool: PoolFactory) -> None:
    pool = make_pool(8)
    chained: list[str] = []
    done = threading.Event()

    def again(previous: Future[str] | None) -> None:
        if previous is not None:
            chained.append(previous.result())
        if len(chained) < 20:
            pool.submit(current_name).add_done_callback(again)
        else:
            done.set()

    again(None)
    assert done.wait(10)
    assert pool.stats().peak_workers == 1
    assert len(set(chained)) == 1


def test_most_recently_idle_thread_is_reused_first(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(3, name="lifo")
    futures = [pool.submit(name_after, gate) for _ in range(3)]
    gate.wait_entered(3)
    gate.open()
    names = [f.result() for f in futures]
    wait_until(lambda: pool.stats().idle_workers == 3)
    # The idle stack's top is the thread that went idle last.
    top = probe.idle_thread_names(pool)[-1]
    assert top in names
    assert pool.submit(current_name).result() == top


def test_idle_threads_above_min_retire(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(4, min_workers=1, idle_timeout=0.05, name="shrink")
    futures = [pool.submit(gate.wait, i) for i in range(4)]
    gate.wait_entered(4)
    assert pool.stats().workers == 4
    gate.open()
    for future in futures:
        future.result()
    wait_until(lambda: pool.stats().workers == 1)
    wait_until(lambda: len(threads_named("shrink")) == 1)
    stats = pool.stats()
    assert (stats.idle_workers, stats.peak_workers) == (1, 4)


def test_min_workers_never_retire(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(3, min_workers=2, idle_timeout=0.01)
    futures = [pool.submit(gate.wait, i) for i in range(3)]
    gate.wait_entered(3)
    gate.open()
    for future in futures:
        future.result()
    wait_until(lambda: pool.stats().workers == 2)
    # The two left end up waiting without a timeout: nothing will retire them.
    wait_until(lambda: probe.idle_timeouts(pool) == [None, None])
    assert not threading.Event().wait(0.1)  # several idle timeouts pass
    assert pool.stats().workers == 2


def test_light_steady_load_shrinks_to_what_it_needs(make_pool: PoolFactory, gate: Gate) -> None:
    """LIFO reuse: one task at a time keeps one thread busy and lets the others expire."""
    pool = make_pool(6, idle_timeout=0.2, name="steady")
    futures = [pool.submit(gate.wait, i) for i in range(6)]
    gate.wait_entered(6)
    gate.open()
    for future in futures:
        future.result()
    used: set[str] = set()

    def one_task_then_count() -> bool:
        used.add(pool.submit(current_name).result())
        return pool.stats().workers == 1

    wait_until(one_task_then_count)
    # The thread serving the load survives; the retired ones were never picked again.
    assert pool.stats().workers == 1
    assert len(used) <= 2


def test_no_idle_timeout_keeps_threads(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(2, idle_timeout=None)
    futures = [pool.submit(gate.wait, i) for i in range(2)]
    gate.wait_entered(2)
    gate.open()
    for future in futures:
        future.result()
    wait_until(lambda: pool.stats().idle_workers == 2)
    assert not threading.Event().wait(0.05)
    assert pool.stats().workers == 2


def test_thread_names_are_unique_across_respawns(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(2, idle_timeout=0.01, thread_name_prefix="worker", name="names")
    seen: list[str] = []
    for _ in range(3):
        g = Gate()
        futures = [pool.submit(name_after, g) for _ in range(2)]
        g.wait_entered(2)
        g.open()
        seen += [f.result() for f in futures]
        wait_until(lambda: pool.stats().workers == 0)
    assert len(seen) == len(set(seen)) == 6
    assert all(name.startswith("worker_") for name in seen)
    assert sorted(int(name.split("_")[1]) for name in seen) == list(range(6))


def test_names_use_the_pool_name_without_a_prefix(make_pool: PoolFactory) -> None:
    pool = make_pool(1, name="billing")
    assert pool.submit(current_name).result() == "billing_0"


def test_resize_grow_starts_threads_for_queued_work(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1)
    futures = [pool.submit(gate.wait, i) for i in range(4)]
    gate.wait_entered(1)
    assert pool.stats().queued == 3
    pool.resize(max_workers=4)
    gate.wait_entered(4)
    stats = pool.stats()
    assert (stats.workers, stats.queued, stats.max_workers) == (4, 0, 4)
    gate.open()
    assert [f.result() for f in futures] == list(range(4))


def test_resize_grow_wakes_blocked_submitters(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(1, max_queue_size=1)
    pool.submit(gate.wait)
    gate.wait_entered(1)
    pool.submit(gate.wait)
    done = threading.Event()

    def produce() -> None:
        pool.submit(int)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: probe.waiting(pool) == 1)
    pool.resize(max_workers=3)
    assert done.wait(10)
    producer.join()


def test_resize_min_up_starts_threads(make_pool: PoolFactory) -> None:
    pool = make_pool(4, name="minup")
    pool.resize(min_workers=3)
    assert pool.stats().workers == 3
    assert len(threads_named("minup")) == 3


def test_resize_shrink_retires_idle_threads_promptly(make_pool: PoolFactory, gate: Gate) -> None:
    pool = make_pool(4, idle_timeout=None, name="cut")
    futures = [pool.submit(gate.wait, i) for i in range(4)]
    gate.wait_entered(4)
    gate.open()
    for future in futures:
        future.result()
    wait_until(lambda: pool.stats().idle_workers == 4)
    pool.resize(max_workers=1)
    assert pool.stats().workers == 1
    wait_until(lambda: len(threads_named("cut")) == 1)


def test_resize_shrink_retires_busy_threads_after_their_task(
    make_pool: PoolFactory, gate: Gate
) -> None:
    pool = make_pool(3, idle_timeout=None)
    futures = [pool.submit(gate.wait, i) for i in range(3)]
    gate.wait_entered(3)
    pool.resize(max_workers=1)
    assert pool.stats().active == 3, "running tasks are never interrupted"
    gate.open()
    assert [f.result() for f in futures] == [0, 1, 2]
    wait_until(lambda: pool.stats().workers == 1)


def test_lowering_min_workers_lets_idle_threads_retire(make_pool: PoolFactory) -> None:
    pool = make_pool(4, min_workers=3, idle_timeout=0.02)
    assert pool.stats().workers == 3
    pool.resize(min_workers=0)
    wait_until(lambda: pool.stats().workers == 0)
