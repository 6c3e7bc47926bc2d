"""Scenarios measured inside the suite's own process: throughput, latency, sleep, bursts.

Each repetition builds a fresh pool, measures, and shuts it down (waiting for its
threads) before the next pool runs; the pools take turns, in alternating order.
"""

from __future__ import annotations

import concurrent.futures
import gc
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from time import perf_counter, perf_counter_ns

from _pools import TPP, PoolHandle, make_pool
from _report import Row

__all__ = [
    "ThreadSampler",
    "alternating",
    "bare_threads",
    "bursty",
    "latency",
    "percentile",
    "sleep_bound",
    "throughput",
]

Progress = Callable[[str], None]


def noop() -> None:
    return None


def alternating(pools: tuple[str, ...], reps: int) -> Iterator[list[str]]:
    """The pools' order for each repetition: as given, then reversed, and so on."""
    for rep in range(reps):
        yield list(pools) if rep % 2 == 0 else list(reversed(pools))


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = math.ceil(fraction * len(sorted_values) - 1e-9)  # 1-based
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def _fresh(name: str, workers: int, **tpp_options: object) -> PoolHandle:
    gc.collect()  # garbage from the previous pool is not this pool's cost
    return make_pool(name, workers, **tpp_options)


def _batch(
    handle: PoolHandle,
    fn: Callable[..., object],
    args: tuple[object, ...],
    n: int,
    collect: str = "result",
) -> float:
    """Submits ``n`` tasks, waits for all; returns the seconds it took.

    ``collect`` is how the results are awaited: each ``result()`` in order, or through
    ``concurrent.futures.as_completed`` or ``wait`` (which use the futures' conditions).
    """
    submit = handle.submit
    start = perf_counter()
    futures = [submit(fn, *args) for _ in range(n)]
    if collect == "result":
        for future in futures:
            future.result()
    elif collect == "as_completed":
        for future in concurrent.futures.as_completed(futures):
            future.result()
    else:
        concurrent.futures.wait(futures)
    return perf_counter() - start


# -- 1. throughput --------------------------------------------------------------------------


def throughput(
    pools: tuple[str, ...],
    workers_list: tuple[int, ...],
    tasks: int,
    reps: int,
    progress: Progress,
    collect_workers: int = 4,
) -> list[Row]:
    """Tasks per second for a batch of ``tasks`` no-op submits, then all results; and, with
    ``collect_workers`` workers, the same batch awaited through ``as_completed`` and
    ``wait`` instead of ``result()``."""
    cases = [(workers, "result") for workers in workers_list]
    cases += [(collect_workers, "as_completed"), (collect_workers, "wait")]
    rows: list[Row] = []
    for workers, collect in cases:
        samples: dict[str, list[float]] = {name: [] for name in pools}
        for order in alternating(pools, reps):
            for name in order:
                handle = _fresh(name, workers)
                try:
                    _batch(handle, noop, (), min(tasks, 2000))  # start the threads
                    seconds = _batch(handle, noop, (), tasks, collect)
                    samples[name].append(tasks / seconds)
                finally:
                    handle.close()
        case = f"{workers} worker" + ("s" if workers != 1 else "")
        if collect != "result":
            case += f", collected with {collect}()"
        progress(f"throughput, {case}: done")
        rows.append(Row("throughput", case, "tasks/s", "higher", samples))
    return rows


# -- 2. round-trip latency ------------------------------------------------------------------


def latency(
    pools: tuple[str, ...], workers: int, round_trips: int, reps: int, progress: Progress
) -> list[Row]:
    """p50 and p99 of submit-one-then-wait-for-it, in microseconds."""
    p50: dict[str, list[float]] = {name: [] for name in pools}
    p99: dict[str, list[float]] = {name: [] for name in pools}
    for order in alternating(pools, reps):
        for name in order:
            handle = _fresh(name, workers)
            submit = handle.submit
            try:
                _batch(handle, noop, (), 4 * workers)
                for _ in range(200):  # warm up the round trip itself
                    submit(noop).result()
                times: list[int] = []
                for _ in range(round_trips):
                    start = perf_counter_ns()
                    submit(noop).result()
                    times.append(perf_counter_ns() - start)
            finally:
                handle.close()
            micros = sorted(t / 1000 for t in times)
            p50[name].append(percentile(micros, 0.50))
            p99[name].append(percentile(micros, 0.99))
    progress("latency: done")
    case = f"{workers} workers"
    return [
        Row("latency", case, "p50 µs", "lower", p50),
        Row("latency", case, "p99 µs", "lower", p99),
    ]


# -- 4. sleep-bound tasks -------------------------------------------------------------------


def bare_threads(workers: int, per_thread: int, task_seconds: float) -> float:
    """The floor: ``workers`` plain threads, each sleeping ``per_thread`` times in a loop.

    No pool, no futures, no handoff: what the machine and the GIL allow at best.
    """
    barrier = threading.Barrier(workers + 1)

    def run() -> None:
        barrier.wait()
        for _ in range(per_thread):
            time.sleep(task_seconds)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    start = perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    return perf_counter() - start


def sleep_bound(
    pools: tuple[str, ...],
    workers: int,
    tasks: int,
    task_seconds: float,
    reps: int,
    progress: Progress,
) -> list[Row]:
    """Wall time of ``tasks`` sleeps of ``task_seconds`` against the ideal and the floor."""
    ideal = tasks * task_seconds / workers
    wall: dict[str, list[float]] = {name: [] for name in pools}
    floors: list[float] = []
    for order in alternating(pools, reps):
        gc.collect()
        floors.append(bare_threads(workers, tasks // workers, task_seconds))
        for name in order:
            handle = _fresh(name, workers)
            try:
                _batch(handle, time.sleep, (task_seconds,), workers * 4)  # start the threads
                wall[name].append(_batch(handle, time.sleep, (task_seconds,), tasks))
            finally:
                handle.close()
    progress("sleep-bound: done")
    floor = statistics.median(floors)
    case = (
        f"{tasks} x {task_seconds * 1000:g} ms, {workers} workers "
        f"(bare threads: {floor / ideal:.2f}x ideal)"
    )

    def scaled(by: float) -> dict[str, list[float]]:
        return {n: [s / by for s in v] for n, v in wall.items()}

    return [
        Row("sleep", case, "wall ms", "lower", scaled(0.001)),
        Row("sleep", case, "wall / ideal", "lower", scaled(ideal)),
        Row("sleep", case, "wall / bare-threads floor", "lower", scaled(floor)),
    ]


# -- 5. bursty load -------------------------------------------------------------------------


class ThreadSampler:
    """Samples the process's thread count in a thread of its own and integrates it.

    Counts are relative to the threads alive when sampling starts (the caller and this
    sampler), so they are the threads a pool created since.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.peak = 0
        self.thread_seconds = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._baseline = 0
        self._started = threading.Event()

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        self._baseline = threading.active_count()
        self._started.set()
        last = perf_counter()
        previous = 0
        while not self._stop.wait(self.interval):
            now = perf_counter()
            count = threading.active_count() - self._baseline
            self.thread_seconds += previous * (now - last)
            self.peak = max(self.peak, count)
            self.samples += 1
            previous, last = count, now
        self.thread_seconds += previous * (perf_counter() - last)


def _one_burst_run(
    name: str,
    max_workers: int,
    options: dict[str, object],
    bursts: int,
    burst_tasks: int,
    task_seconds: float,
    gap: float,
) -> dict[str, float]:
    """Runs the bursty load once on a fresh pool; returns each metric's value."""
    gc.collect()
    sampler = ThreadSampler(0.002)
    sampler.start()
    handle = make_pool(name, max_workers, **options)
    burst_times: list[float] = []
    start = perf_counter()
    try:
        for _ in range(bursts):
            burst_times.append(_batch(handle, time.sleep, (task_seconds,), burst_tasks))
            time.sleep(gap)
        elapsed = perf_counter() - start
    finally:
        sampler.stop()  # first: shutting down is not part of the load
        handle.close()
    return {
        "peak": sampler.peak,
        "thread_seconds": sampler.thread_seconds,
        "mean": sampler.thread_seconds / elapsed,
        "throughput": bursts * burst_tasks / elapsed,
        "first_ms": burst_times[0] * 1000,
        "later_ms": statistics.median(burst_times[1:]) * 1000,
    }


def bursty(
    pools: tuple[str, ...],
    *,
    max_workers: int,
    bursts: int,
    burst_tasks: int,
    task_seconds: float,
    gap: float,
    idle_timeouts: tuple[float, ...],
    reps: int,
    progress: Progress,
) -> list[Row]:
    """Bursts of sleeps separated by idle gaps: threads held against work done.

    threadpool_plus runs once per ``idle_timeouts`` value; the other pools, which have
    no such setting, run once per repetition and are compared with each of those cases.
    """
    metrics = ("peak", "thread_seconds", "mean", "throughput", "first_ms", "later_ms")
    others = [name for name in pools if name != TPP]
    # samples[idle_timeout][metric][pool]; the other pools' lists are shared by all.
    shared: dict[str, dict[str, list[float]]] = {m: {n: [] for n in others} for m in metrics}
    samples = {timeout: {m: {TPP: [], **shared[m]} for m in metrics} for timeout in idle_timeouts}
    for order in alternating(pools, reps):
        for name in order:
            runs: list[tuple[float | None, dict[str, object]]] = [(None, {})]
            if name == TPP:
                runs = [(t, {"idle_timeout": t}) for t in idle_timeouts]
            for timeout, options in runs:
                values = _one_burst_run(
                    name, max_workers, options, bursts, burst_tasks, task_seconds, gap
                )
                for metric, value in values.items():
                    target = shared if timeout is None else samples[timeout]
                    target[metric][name].append(value)
    progress("bursty: done")
    rows: list[Row] = []
    for timeout in idle_timeouts:
        case = (
            f"{bursts} bursts of {burst_tasks} x {task_seconds * 1000:g} ms, "
            f"{gap:g} s gaps, max_workers={max_workers}, idle_timeout={timeout:g}"
        )
        s = samples[timeout]
        configs = {TPP: f"idle_timeout={timeout:g}"}
        rows += [
            Row("bursty", case, "peak threads", "lower", s["peak"], configs=configs),
            Row("bursty", case, "thread-seconds held", "lower", s["thread_seconds"]),
            Row("bursty", case, "mean threads", "lower", s["mean"]),
            Row("bursty", case, "completed tasks/s (same load)", "higher", s["throughput"]),
            Row("bursty", case, "first burst ms (no thread yet)", "lower", s["first_ms"]),
            Row("bursty", case, "later bursts ms (median)", "lower", s["later_ms"]),
        ]
    return rows
