"""What OpenTelemetry export costs per task, against a pool that is not instrumented.

Three pools of one thread, measured in the same run, alternating: not instrumented,
``instrument(pool)`` (counters and gauges only) and ``instrument(pool, histograms=True)``.
For each, N no-op tasks are queued while the thread is held on a gate; the gate opens and
the thread runs them all (the worker side, wall time, recorder thread included); then one
collection of an SDK ``InMemoryMetricReader`` (where the histograms' remaining timings are
recorded). Reports microseconds per task, medians of the repetitions, and what one SDK
``Histogram.record`` costs here for reference.

    .venv/bin/python benchmarks/otel_cost.py [--tasks 100000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import statistics
import sys
import threading
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from threadpool_plus import ThreadPoolExecutor
from threadpool_plus.otel import instrument


def noop() -> None:
    pass


def run(
    pool: ThreadPoolExecutor, collect: Callable[[], object], tasks: int
) -> tuple[float, float]:
    """Seconds per task: (worker side, the collection after it)."""
    gate = threading.Event()
    pool.submit(gate.wait)
    futures = [pool.submit(noop) for _ in range(tasks)]
    gc.collect()
    gc.disable()  # a collection every few hundred futures would swamp what is measured
    started = time.perf_counter()
    gate.set()
    futures[-1].result()
    concurrent.futures.wait(futures)
    working = time.perf_counter() - started
    started = time.perf_counter()
    collect()
    collecting = time.perf_counter() - started
    gc.enable()
    return working / tasks, collecting / tasks


def record_cost(count: int = 100_000) -> float:
    """Seconds one SDK ``Histogram.record`` takes (one attribute, the default view)."""
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = provider.get_meter("bench").create_histogram("bench.duration", unit="s")
    attributes = {"threadpool.name": "bench"}
    started = time.perf_counter()
    for _ in range(count):
        histogram.record(0.001, attributes)
    elapsed = time.perf_counter() - started
    provider.shutdown()
    return elapsed / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    plain = ThreadPoolExecutor(1, min_workers=1, name="plain")
    counted = ThreadPoolExecutor(1, min_workers=1, name="counted")
    timed = ThreadPoolExecutor(1, min_workers=1, name="timed")
    counters = instrument(counted, meter_provider=provider)
    histograms = instrument(timed, meter_provider=provider, histograms=True)
    variants = {
        "not instrumented": plain,
        "instrument(pool)": counted,
        "histograms=True": timed,
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    try:
        for pool in variants.values():
            run(pool, reader.get_metrics_data, args.tasks // 10)  # warm up
        for _ in range(args.repeat):
            for name, pool in variants.items():
                times[name].append(run(pool, reader.get_metrics_data, args.tasks))
    finally:
        counters.close()
        histograms.close()
        for pool in variants.values():
            pool.shutdown()
        provider.shutdown()
    print(f"Python {sys.version.split()[0]}: us per task, medians of {args.repeat}")
    print(f"  {'':18} {'worker':>8} {'collect':>8} {'total':>8} {'ratio':>6}")
    base = statistics.median(w + c for w, c in times["not instrumented"])
    for name, samples in times.items():
        worker = statistics.median(w for w, _ in samples)
        collect = statistics.median(c for _, c in samples)
        total = statistics.median(w + c for w, c in samples)
        print(
            f"  {name:18} {worker * 1e6:8.3f} {collect * 1e6:8.3f} {total * 1e6:8.3f}"
            f" {total / base:6.2f}"
        )
    print(f"  one SDK Histogram.record: {record_cost() * 1e6:.3f} us")


if __name__ == "__main__":
    main()
