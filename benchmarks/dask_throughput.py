"""``DaskExecutor`` against Dask's own ``client.get_executor()``, in the same run.

1. Throughput: ``--tasks`` 1-ms tasks (``time.sleep(0.001)``, each with its own argument so
   that Dask's ``pure=True`` merges nothing) submitted at once, then every result taken,
   on one ``LocalCluster(processes=False)`` (``--workers`` x 1 thread). Sides, alternated
   over ``--reps`` repetitions: ``get_executor()``; ``DaskExecutor`` with its default
   ``max_in_flight`` (the cluster's threads) and with ``--wide`` times that. Reported:
   tasks/s (median) and the ratio to ``get_executor()``.
2. Peak client memory (``tracemalloc``) of ``map`` over ``--map-items`` items, consumed one
   by one: ``get_executor().map`` (which submits every item first) against
   ``DaskExecutor.map(buffersize=--buffersize)``, whose peak must not grow with the input
   (measured again at a quarter of the items; ``max_in_flight`` is ``--wide`` times the
   threads, as for short tasks one should). The scheduler and workers run in
   subprocesses (``SubprocessCluster``) so that only the client is measured. Dask's own
   client keeps its last 1,000 messages to the scheduler (``distributed.admin.
   low-level-log-length``): about 1 MiB that ours fills (one message per task) and
   ``get_executor().map`` does not (one message for the whole map).

    .venv/bin/python benchmarks/dask_throughput.py [--tasks 10000] [--reps 3]
        [--map-items 20000] [--buffersize 100] [--wide 4] [--skip-memory]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any

import distributed
from distributed.deploy.subprocess import SubprocessCluster

from threadpool_plus.dask import DaskExecutor


def tick(i: int) -> int:
    time.sleep(0.001)
    return i


def same(i: int) -> int:
    return i


def throughput(executor: Executor, tasks: int) -> float:
    """Tasks per second: submit every task, then take every result."""
    started = time.perf_counter()
    futures = [executor.submit(tick, i) for i in range(tasks)]
    for future in futures:
        future.result()
    return tasks / (time.perf_counter() - started)


def peak_of_map(run: Callable[[], Iterator[Any]]) -> float:
    """The client's peak traced memory, in MiB, while ``run()``'s results are consumed."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        count = sum(1 for _ in run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 0
    return peak / 2**20


def run_throughput(args: argparse.Namespace) -> None:
    with (
        distributed.LocalCluster(  # type: ignore[no-untyped-call]
            processes=False,
            n_workers=args.workers,
            threads_per_worker=1,
            dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        threads = args.workers
        sides: dict[str, Callable[[], float]] = {
            "client.get_executor()": lambda: throughput(
                client.get_executor(),
                args.tasks,
            ),
            f"DaskExecutor (max_in_flight={threads}, default)": lambda: _ours(client, args, None),
            f"DaskExecutor (max_in_flight={threads * args.wide})": lambda: _ours(
                client, args, threads * args.wide
            ),
        }
        results: dict[str, list[float]] = {name: [] for name in sides}
        throughput(client.get_executor(), 200)
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for name in order:
                results[name].append(sides[name]())
                print(f"  rep {rep + 1}: {name}: {results[name][-1]:,.0f}/s", file=sys.stderr)
        base = statistics.median(results["client.get_executor()"])
        print(f"\n{args.tasks:,} 1-ms tasks, {threads} workers x 1 thread, processes=False")
        print(f"{'side':48} {'tasks/s':>9} {'ratio':>6}")
        for name, values in results.items():
            median = statistics.median(values)
            print(f"{name:48} {median:9,.0f} {median / base:6.2f}")


def _ours(client: distributed.Client, args: argparse.Namespace, limit: int | None) -> float:
    with DaskExecutor(client, max_in_flight=limit) as pool:
        return throughput(pool, args.tasks)


def run_memory(args: argparse.Namespace) -> None:
    with (
        SubprocessCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            dashboard_address=":0",  # a free port: 8787 may be taken
        ) as cluster,
        distributed.Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        items, buffer = args.map_items, args.buffersize
        theirs = client.get_executor()
        their_peak = peak_of_map(lambda: theirs.map(same, range(items)))
        with DaskExecutor(client, max_in_flight=args.workers * args.wide) as pool:
            our_peak = peak_of_map(lambda: pool.map(same, range(items), buffersize=buffer))
            our_small = peak_of_map(lambda: pool.map(same, range(items // 4), buffersize=buffer))
        print(f"\npeak client memory of map(), {args.workers} workers in subprocesses")
        print(f"{'side':52} {'MiB':>8} {'ratio':>6}")
        print(f"{f'get_executor().map, {items:,} items':52} {their_peak:8.2f} {1:6.2f}")
        for n, peak in ((items, our_peak), (items // 4, our_small)):
            label = f"DaskExecutor.map(buffersize={buffer}), {n:,} items"
            print(f"{label:52} {peak:8.2f} {peak / their_peak:6.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--wide", type=int, default=4)
    parser.add_argument("--map-items", type=int, default=20_000)
    parser.add_argument("--buffersize", type=int, default=100)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    version = importlib.metadata.version("distributed")
    print(f"Python {sys.version.split()[0]}, distributed {version}")
    if not args.skip_throughput:
        run_throughput(args)
    if not args.skip_memory:
        run_memory(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
