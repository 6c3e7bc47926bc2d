"""Where a no-op task's time goes: each side of the hot path, alone, then profiled.

    .venv/bin/python benchmarks/profile_hot_path.py [--tasks N] [--reps N] [--top K]
    .venv/bin/python benchmarks/profile_hot_path.py --budget [--record]

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

``--budget`` runs only part 1, more times, alternating the pools and timing each side by
the CPU time of its thread, and compares each side's ratio threadpool_plus / stdlib with
the one recorded for this interpreter in ``benchmarks/budget.json``: it exits 1 when a
side is more than 10% (``--tolerance``) worse than its recorded ratio, and 2 when
nothing is recorded for this interpreter. ``--record`` measures the same way and writes
this interpreter's entry instead.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import datetime
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter, thread_time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import threadpool_plus

Factory = Callable[[int], concurrent.futures.ThreadPoolExecutor]
POOLS: dict[str, Factory] = {
    "stdlib": concurrent.futures.ThreadPoolExecutor,
    "threadpool_plus": threadpool_plus.ThreadPoolExecutor,
}
SIDES = ("submit", "worker")
BUDGET_FILE = Path(__file__).resolve().parent / "budget.json"


def noop() -> None:
    return None


def free_threaded_build() -> bool:
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool:
    check: Callable[[], bool] | None = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else check()


def flavour() -> tuple[str, str]:
    """(budget.json key suffix, header note) for this build and how it runs."""
    if not gil_enabled():
        return "t", ", free-threaded: the GIL is disabled"
    if free_threaded_build():
        return "t+gil", ", free-threaded build with the GIL enabled (PYTHON_GIL=1 or an extension)"
    return "", ""


def interpreter_key() -> str:
    """This interpreter's entry in budget.json: "3.11", "3.13t" (free-threaded, GIL off),
    or "3.13t+gil" (a free-threaded build that runs with the GIL turned back on)."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}{flavour()[0]}"


def header() -> str:
    python = f"Python {sys.version.split()[0]} ({platform.python_implementation()})"
    return python + flavour()[1]


@dataclass(frozen=True)
class Halves:
    """Microseconds per task on each side: wall clock, and the CPU time of the thread
    doing that side (``time.thread_time``), which a busy machine inflates far less."""

    submit_wall: float
    worker_wall: float
    submit_cpu: float
    worker_cpu: float


def halves(factory: Factory, tasks: int) -> Halves:
    """Queue ``tasks`` behind a blocked worker, then let the worker drain them."""
    gc.collect()  # the previous run's futures are not collected on this run's clock
    pool = factory(1)
    try:
        gate = threading.Event()
        worker_cpu: list[float] = []

        def open_gate() -> None:  # the worker's first task: its CPU clock starts here
            gate.wait()
            worker_cpu.append(thread_time())

        pool.submit(open_gate)
        submit = pool.submit
        cpu_start, start = thread_time(), perf_counter()
        futures = [submit(noop) for _ in range(tasks)]
        submitted, cpu_submitted = perf_counter(), thread_time()
        last = submit(lambda: worker_cpu.append(thread_time()))
        gate.set()
        last.result()
        drained = perf_counter()
        assert futures[-1].done()  # kept alive until here: none is freed on the clock
    finally:
        pool.shutdown()
    per_task = 1e6 / tasks
    return Halves(
        submit_wall=(submitted - start) * per_task,
        worker_wall=(drained - submitted) * per_task,
        submit_cpu=(cpu_submitted - cpu_start) * per_task,
        worker_cpu=(worker_cpu[1] - worker_cpu[0]) * per_task,
    )


def print_halves(tasks: int, reps: int) -> None:
    print(f"Part 1: microseconds per no-op task, 1 worker, {tasks:,} tasks, median of {reps}")
    print(f"{'pool':<16} {'submit':>8} {'worker':>8}")
    medians: dict[str, tuple[float, float]] = {}
    for name, factory in POOLS.items():
        runs = [halves(factory, tasks) for _ in range(reps)]
        medians[name] = (
            statistics.median(r.submit_wall for r in runs),
            statistics.median(r.worker_wall for r in runs),
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


# --- budget mode ------------------------------------------------------------------------


def measure_budget(tasks: int, reps: int) -> dict[str, dict[str, float]]:
    """Median CPU microseconds per side (the thread doing that side) for each pool over
    ``reps`` runs, alternating the
    pools' order every repetition (stdlib first, then threadpool_plus first, ...) so
    that drift in the machine's load does not favour one of them. One unmeasured run
    per pool first warms up imports, caches and the allocator."""
    names = list(POOLS)
    for name in names:
        halves(POOLS[name], min(tasks, 10_000))
    runs: dict[str, list[Halves]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            runs[name].append(halves(POOLS[name], tasks))
        print(f"  repetition {rep + 1}/{reps}", file=sys.stderr, flush=True)
    return {
        name: {
            "submit": statistics.median(r.submit_cpu for r in runs[name]),
            "worker": statistics.median(r.worker_cpu for r in runs[name]),
        }
        for name in names
    }


def ratios(medians: dict[str, dict[str, float]]) -> dict[str, float]:
    return {side: medians["threadpool_plus"][side] / medians["stdlib"][side] for side in SIDES}


def load_budget(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object of entries")
    return data


def budget_table(
    medians: dict[str, dict[str, float]],
    measured: dict[str, float],
    recorded: dict[str, float] | None,
    tolerance: float,
) -> tuple[str, list[str]]:
    """The table, and the sides over budget."""
    lines = [
        f"{'side':<8} {'stdlib us':>10} {'plus us':>10} {'ratio':>7} {'recorded':>9}"
        f" {'limit':>7}  verdict",
    ]
    over = []
    for side in SIDES:
        std, plus, ratio = (
            medians["stdlib"][side],
            medians["threadpool_plus"][side],
            measured[side],
        )
        if recorded is None or side not in recorded:
            rec = limit = "-"
            verdict = "no budget"
        else:
            bound = recorded[side] * (1 + tolerance)
            rec, limit = f"{recorded[side]:.3f}", f"{bound:.3f}"
            verdict = "ok" if ratio <= bound else "OVER BUDGET"
            if ratio > bound:
                over.append(side)
        lines.append(
            f"{side:<8} {std:10.3f} {plus:10.3f} {ratio:7.3f} {rec:>9} {limit:>7}  {verdict}"
        )
    return "\n".join(lines), over


def run_budget(args: argparse.Namespace) -> int:
    path: Path = args.budget_file
    key = interpreter_key()
    print(header())
    print(
        f"Hot-path budget for {key!r}: ratio threadpool_plus / stdlib per side (lower is"
        f" better), thread CPU time, medians of {args.reps} alternating runs of"
        f" {args.tasks:,} no-op tasks, 1 worker"
    )
    medians = measure_budget(args.tasks, args.reps)
    measured = ratios(medians)
    budget = load_budget(path)
    if args.record:
        table, _ = budget_table(medians, measured, None, args.tolerance)
        print(table)
        budget[key] = {
            **{side: round(measured[side], 4) for side in SIDES},
            "python": platform.python_version(),
            "recorded": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "tasks": args.tasks,
            "reps": args.reps,
            "us_per_task": {
                name: {side: round(value, 4) for side, value in sides.items()}
                for name, sides in medians.items()
            },
        }
        path.write_text(json.dumps(budget, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"recorded the entry {key!r} in {path}")
        return 0
    entry = budget.get(key)
    recorded = None if entry is None else {s: float(entry[s]) for s in SIDES if s in entry}
    table, over = budget_table(medians, measured, recorded, args.tolerance)
    print(table)
    if recorded is None:
        print(f"no entry {key!r} in {path}: run with --record to make one")
        return 2
    if over:
        print(
            f"over budget: {', '.join(over)} more than {args.tolerance:.0%} above the"
            f" recorded ratio for {key!r} (re-run on an idle machine before believing it)"
        )
        return 1
    print(f"within budget: every side within {args.tolerance:.0%} of the recorded ratio")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks per run")
    parser.add_argument(
        "--reps",
        type=int,
        default=None,
        help="runs per pool in part 1 (default 5; 9 for --budget)",
    )
    parser.add_argument("--top", type=int, default=12, help="functions per profile")
    parser.add_argument(
        "--budget", action="store_true", help="check the per-side ratios against budget.json"
    )
    parser.add_argument(
        "--record", action="store_true", help="write this interpreter's entry in budget.json"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.10, help="allowed regression of a ratio (0.10)"
    )
    parser.add_argument("--budget-file", type=Path, default=BUDGET_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = 9 if args.budget or args.record else 5
    if args.tasks < 1 or args.reps < 1 or args.top < 1:
        parser.error("--tasks, --reps and --top must be positive")
    if args.tolerance < 0:
        parser.error("--tolerance must not be negative")
    if args.budget or args.record:
        return run_budget(args)
    print(header())
    print_halves(args.tasks, args.reps)
    print_profiles(args.tasks, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
