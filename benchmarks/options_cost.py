"""What task options cost per task, against a plain ``submit`` in the same run.

For each variant (plain, and views with each option): N no-op tasks are submitted while the
pool's one thread is held on a gate (the submitting side, in the submitter's thread CPU
time), then the gate opens and the thread runs them all while the submitter waits (the
worker side, wall time). Reports microseconds per task and the extra over plain ``submit``,
medians of alternating repetitions. A task with a deadline also registers with the pool's
deadline watcher.

    .venv/bin/python benchmarks/options_cost.py [--tasks 100000] [--repeat 7]
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
from typing import Any

from threadpool_plus import ThreadPoolExecutor


def noop() -> None:
    pass


def run(pool: ThreadPoolExecutor, submit: Callable[..., Any], tasks: int) -> tuple[float, float]:
    """Seconds per task: (submitting side, worker side)."""
    gate = threading.Event()
    pool.submit(gate.wait)
    gc.collect()
    gc.disable()  # a collection every few hundred futures would swamp what is measured
    started = time.thread_time()
    futures = [submit(noop) for _ in range(tasks)]
    submitting = time.thread_time() - started
    started = time.perf_counter()
    gate.set()
    futures[-1].result()
    concurrent.futures.wait(futures)
    working = time.perf_counter() - started
    gc.enable()
    return submitting / tasks, working / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with ThreadPoolExecutor(1, min_workers=1) as pool:
        variants: dict[str, Callable[..., Any]] = {
            "plain submit": pool.submit,
            "options(name=)": pool.options(name="noop").submit,
            "options(context='copy')": pool.options(context="copy").submit,
            "options(timeout=60)": pool.options(timeout=60).submit,
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        run(pool, pool.submit, args.tasks // 10)  # warm up
        for _ in range(args.repeat):
            for name, submit in variants.items():
                times[name].append(run(pool, submit, args.tasks))
    print(f"Python {sys.version.split()[0]}: us per task, medians of {args.repeat}")
    print(f"  {'':26} {'submit':>8} {'extra':>8} {'worker':>8} {'extra':>8}")
    base = [statistics.median(side) for side in zip(*times["plain submit"], strict=True)]
    for name, samples in times.items():
        sides = [statistics.median(side) for side in zip(*samples, strict=True)]
        cells = [f"{s * 1e6:8.3f} {(s - b) * 1e6:+8.3f}" for s, b in zip(sides, base, strict=True)]
        print(f"  {name:26} {' '.join(cells)}")


if __name__ == "__main__":
    main()
