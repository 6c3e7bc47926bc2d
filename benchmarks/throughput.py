"""No-op ``submit`` + ``result`` throughput against ``concurrent.futures``, same run.

Each round submits a batch of no-op tasks and waits for all their results; the pools are
measured alternately, several rounds each, and the medians compared.

    python benchmarks/throughput.py [--tasks N] [--rounds R] [--workers 1,4,16]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import time
from collections.abc import Callable

import threadpool_plus


def noop() -> None:
    return None


def run_batch(pool: concurrent.futures.Executor, tasks: int) -> float:
    submit = pool.submit
    start = time.perf_counter()
    futures = [submit(noop) for _ in range(tasks)]
    for future in futures:
        future.result()
    return tasks / (time.perf_counter() - start)


def measure(
    factory: Callable[[int], concurrent.futures.Executor], workers: int, tasks: int
) -> float:
    with factory(workers) as pool:
        run_batch(pool, min(tasks, 2000))  # warm up: start the threads
        return run_batch(pool, tasks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", default="1,4,16")
    args = parser.parse_args(argv)
    pools: dict[str, Callable[[int], concurrent.futures.Executor]] = {
        "stdlib": lambda n: concurrent.futures.ThreadPoolExecutor(n),
        "threadpool_plus": lambda n: threadpool_plus.ThreadPoolExecutor(n),
    }
    print(f"Python {sys.version.split()[0]}, {args.tasks} no-op tasks, median of {args.rounds}")
    print("| workers | stdlib tasks/s | threadpool_plus tasks/s | ratio |")
    print("|---:|---:|---:|---:|")
    for workers in (int(w) for w in args.workers.split(",")):
        results: dict[str, list[float]] = {name: [] for name in pools}
        for round_number in range(args.rounds):
            order = list(pools) if round_number % 2 == 0 else list(reversed(pools))
            for name in order:
                results[name].append(measure(pools[name], workers, args.tasks))
        std = statistics.median(results["stdlib"])
        plus = statistics.median(results["threadpool_plus"])
        print(f"| {workers} | {std:,.0f} | {plus:,.0f} | {plus / std:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
