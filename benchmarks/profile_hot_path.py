"""Where a no-op task's time goes: each side of the hot path, alone, then profiled.

    .venv/bin/python benchmarks/profile_hot_path.py [--tasks N] [--top K]

Part 1 times the two halves of a task's trip separately, for the stdlib and for
threadpool_plus, with one worker:

- **submit**: the caller's cost per ``submit`` while the only worker is blocked, so
  every task is queued and nothing else competes for the GIL;
- **worker**: the worker's cost per task as it drains that queue once unblocked
  (``set_running_or_notify_cancel``, the call, the counters, ``set_result``).

Part 2 runs the same two phases of threadpool_plus under ``cProfile`` (the submitting
thread, then the worker thread) and prints the functions with the most own time.
cProfile's per-call overhead inflates small functions; use part 1 for the real costs
and part 2 for where they are spent.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import io
import pstats
import statistics
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import threadpool_plus

Factory = Callable[[int], concurrent.futures.ThreadPoolExecutor]
POOLS: dict[str, Factory] = {
    "stdlib": concurrent.futures.ThreadPoolExecutor,
    "threadpool_plus": threadpool_plus.ThreadPoolExecutor,
}


def noop() -> None:
    return None


def halves(factory: Factory, tasks: int) -> tuple[float, float]:
    """(submit, worker) microseconds per task: queue ``tasks`` behind a blocked worker,
    then let the worker drain them."""
    pool = factory(1)
    try:
        gate = threading.Event()
        pool.submit(gate.wait)
        submit = pool.submit
        start = perf_counter()
        futures = [submit(noop) for _ in range(tasks)]
        submitted = perf_counter()
        gate.set()
        futures[-1].result()
        drained = perf_counter()
    finally:
        pool.shutdown()
    return (submitted - start) / tasks * 1e6, (drained - submitted) / tasks * 1e6


def print_halves(tasks: int, reps: int) -> None:
    print(f"Part 1: microseconds per no-op task, 1 worker, {tasks:,} tasks, median of {reps}")
    print(f"{'pool':<16} {'submit':>8} {'worker':>8}")
    medians: dict[str, tuple[float, float]] = {}
    for name, factory in POOLS.items():
        runs = [halves(factory, tasks) for _ in range(reps)]
        medians[name] = (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
        )
        print(f"{name:<16} {medians[name][0]:8.2f} {medians[name][1]:8.2f}")
    plus, std = medians["threadpool_plus"], medians["stdlib"]
    print(f"{'ratio':<16} {plus[0] / std[0]:7.2f}x {plus[1] / std[1]:7.2f}x  (lower is better)")


def top(profile: cProfile.Profile, count: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(count)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join(lines[start:]).rstrip()


def print_profiles(tasks: int, count: int) -> None:
    # Two runs, one profiled thread each: from 3.12 cProfile sees every thread, and a
    # second Profile cannot be enabled while one is.
    submitter, worker = cProfile.Profile(), cProfile.Profile()
    with threadpool_plus.ThreadPoolExecutor(1) as pool:  # the submitting thread
        gate = threading.Event()
        pool.submit(gate.wait)
        submitter.enable()
        futures = [pool.submit(noop) for _ in range(tasks)]
        submitter.disable()
        gate.set()
        futures[-1].result()
    with threadpool_plus.ThreadPoolExecutor(1) as pool:  # the worker thread
        gate = threading.Event()

        def open_gate_then_profile() -> None:  # runs on the worker: profiles that thread
            gate.wait()
            worker.enable()

        pool.submit(open_gate_then_profile)
        futures = [pool.submit(noop) for _ in range(tasks)]
        last = pool.submit(worker.disable)
        gate.set()
        last.result()
    print(f"\nPart 2: threadpool_plus under cProfile, {tasks:,} tasks")
    print("\nThe submitting thread:\n" + top(submitter, count))
    print("\nThe worker thread:\n" + top(worker, count))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks per run")
    parser.add_argument("--reps", type=int, default=5, help="runs per pool in part 1")
    parser.add_argument("--top", type=int, default=12, help="functions per profile")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.reps < 1 or args.top < 1:
        parser.error("--tasks, --reps and --top must be positive")
    print(f"Python {sys.version.split()[0]}")
    print_halves(args.tasks, args.reps)
    print_profiles(args.tasks, args.top)


if __name__ == "__main__":
    main()
