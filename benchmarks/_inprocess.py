"""Scenarios measured inside the suite's own process: throughput, latency, sleep, bursts.

Each repetition builds a fresh pool, measures, and shuts it down (waiting for its
threads) before the next pool runs; the pools take turns, in alternating order.
"""

from __future__ import annotations

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
    handle: PoolHandle, fn: Callable[..., object], args: tuple[object, ...], n: int
) -> float:
    """Submits ``n`` tasks, waits for all; returns the seconds it took."""
    submit = handle.submit
    start = perf_counter()
    futures = [submit(fn, *args) for _ in range(n)]
    for future in futures:
        future.result()
    return perf_counter() - start


# -- 1. throughput --------------------------------------------------------------------------


def throughput(
    pools: tuple[str, ...],
    workers_list: tuple[int, ...],
    tasks: int,
    reps: int,
    progress: Progress,
) -> list[Row]:
    """Tasks per second for a batch of ``tasks`` no-op submits, then all results."""
    rows: list[Row] = []
    for workers in workers_list:
        samples: dict[str, list[float]] = {name: [] for name in pools}
        for order in alternating(pools, reps):
            for name in order:
                handle = _fresh(name, workers)
                try:
                    _batch(handle, noop, (), min(tasks, 2000))  # start the threads
                    samples[name].append(tasks / _batch(handle, noop, (), tasks))
                finally:
                    handle.close()
        progress(f"throughput, {workers} workers: done")
        case = f"{workers} worker" + ("s" if workers != 1 else "")
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


def sleep_bound(
    pools: tuple[str, ...],
    workers: int,
    tasks: int,
    task_seconds: float,
    reps: int,
    progress: Progress,
) -> list[Row]:
    """Wall time of ``tasks`` sleeps of ``task_seconds`` against the ideal."""
    ideal = tasks * task_seconds / workers
    wall: dict[str, list[float]] = {name: [] for name in pools}
    for order in alternating(pools, reps):
        for name in order:
            handle = _fresh(name, workers)
            try:
                _batch(handle, time.sleep, (task_seconds,), workers * 4)  # start the threads
                wall[name].append(_batch(handle, time.sleep, (task_seconds,), tasks))
            finally:
                handle.close()
    progress("sleep-bound: done")
    case = f"{tasks} x {task_seconds * 1000:g} ms, {workers} workers"
    return [
        Row(
            "sleep", case, "wall ms", "lower", {n: [s * 1000 for s in v] for n, v in wall.items()}
        ),
        Row(
            "sleep",
            case,
            "wall / ideal",
            "lower",
            {n: [s / ideal for s in v] for n, v in wall.items()},
        ),
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


def bursty(
    pools: tuple[str, ...],
    *,
    max_workers: int,
    bursts: int,
    burst_tasks: int,
    task_seconds: float,
    gap: float,
    idle_timeout: float,
    reps: int,
    progress: Progress,
) -> list[Row]:
    """Bursts of sleeps separated by idle gaps: threads held against work done."""
    metrics = ("peak", "thread_seconds", "mean", "throughput", "first_ms", "later_ms")
    samples: dict[str, dict[str, list[float]]] = {m: {n: [] for n in pools} for m in metrics}
    for order in alternating(pools, reps):
        for name in order:
            options = {"idle_timeout": idle_timeout} if name == TPP else {}
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
            samples["peak"][name].append(sampler.peak)
            samples["thread_seconds"][name].append(sampler.thread_seconds)
            samples["mean"][name].append(sampler.thread_seconds / elapsed)
            samples["throughput"][name].append(bursts * burst_tasks / elapsed)
            samples["first_ms"][name].append(burst_times[0] * 1000)
            samples["later_ms"][name].append(statistics.median(burst_times[1:]) * 1000)
    progress("bursty: done")
    case = (
        f"{bursts} bursts of {burst_tasks} x {task_seconds * 1000:g} ms, "
        f"{gap:g} s gaps, max_workers={max_workers}"
    )
    configs = {TPP: f"idle_timeout={idle_timeout:g}"}
    return [
        Row("bursty", case, "peak threads", "lower", samples["peak"], configs=configs),
        Row("bursty", case, "thread-seconds held", "lower", samples["thread_seconds"]),
        Row("bursty", case, "mean threads", "lower", samples["mean"]),
        Row("bursty", case, "completed tasks/s (same load)", "higher", samples["throughput"]),
        Row("bursty", case, "first burst ms (no thread yet)", "lower", samples["first_ms"]),
        Row("bursty", case, "later bursts ms (median)", "lower", samples["later_ms"]),
    ]
