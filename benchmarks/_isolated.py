"""Scenarios whose memory must be measured alone: each case runs in a fresh interpreter.

The parent (``suite.py``) calls ``run_isolated``, which starts this file as a script::

    python benchmarks/_isolated.py map '{"pool": "stdlib", "items": 1000000, ...}'

The child prints one JSON object as its last line. Peak memory is the growth of
``ru_maxrss`` (the process's high-water resident set) from just before the measured work,
once the pool's threads are running, to just after it.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any

from _inprocess import percentile
from _pools import TPP, make_pool

import threadpool_plus

__all__ = ["run_isolated"]

HERE = Path(__file__).resolve().parent


def run_isolated(scenario: str, params: dict[str, Any]) -> dict[str, Any]:
    """Runs one case in a fresh interpreter and returns what it measured."""
    command = [sys.executable, str(HERE / "_isolated.py"), scenario, json.dumps(params)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{scenario} case {params} failed with exit status {done.returncode}:\n"
            f"{done.stderr.strip()}"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _max_rss_mib() -> float:
    # Linux reports kibibytes (macOS bytes; this suite targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- 3. map over many items -----------------------------------------------------------------


def map_case(pool: str, items: int, workers: int, buffersize: int | None) -> dict[str, Any]:
    """``map(abs, range(items))``, results consumed one by one and dropped."""
    handle = make_pool(pool, workers)
    executor: Any = handle.pool  # map's buffersize is not in every Python's stubs
    try:
        for future in [handle.submit(abs, i) for i in range(workers * 4)]:
            future.result()  # the threads are running before the baseline
        gc.collect()
        baseline = _max_rss_mib()
        start = perf_counter()
        if buffersize is None:
            results = executor.map(abs, range(items))
        else:
            results = executor.map(abs, range(items), buffersize=buffersize)
        for _ in results:
            pass
        seconds = perf_counter() - start
        growth = _max_rss_mib() - baseline
    finally:
        handle.close()
    return {"seconds": seconds, "rss_growth_mib": growth}


# -- 6. overload ----------------------------------------------------------------------------

# Tasks read this instead of sleeping once the run is over, so a backlog the pool could
# never work off in time drains in moments; their latency is then a lower bound.
_skip_after = float("inf")


def _task(seconds: float) -> bool:
    if perf_counter() >= _skip_after:
        return False
    time.sleep(seconds)
    return True


def overload_case(
    pool: str,
    workers: int,
    producers: int,
    window: float,
    grace: float,
    task_seconds: float,
    capacity: int,
    yield_on_reject: bool = False,
) -> dict[str, Any]:
    """``producers`` threads submit sleeps as fast as they can for ``window`` seconds.

    threadpool_plus gets ``max_queue_size=capacity, submit_timeout=0`` and its
    ``PoolOverloaded`` rejections are counted; the others queue without bound. Each
    accepted task's latency (submit -> done) is taken by a done-callback. After the
    window, tasks keep running for ``grace`` seconds more; the ones still queued then
    return at once and their latency counts as a lower bound. With ``yield_on_reject`` a
    rejected producer calls ``time.sleep(0)`` (letting other threads take the GIL) before
    it tries again; otherwise it spins.
    """
    global _skip_after
    options: dict[str, Any] = {}
    if pool == TPP:
        options = {"max_queue_size": capacity, "submit_timeout": 0}
    handle = make_pool(pool, workers, **options)
    submit = handle.submit
    ran = array("d")  # latencies in seconds; array.append is atomic under the GIL
    skipped = array("d")

    def record(started: float, future: Future[bool]) -> None:
        (ran if future.result() else skipped).append(perf_counter() - started)

    overloaded = threadpool_plus.PoolOverloaded  # never raised by the other pools
    counts: list[tuple[int, int]] = []
    barrier = threading.Barrier(producers + 1)
    deadline = [0.0]

    def produce() -> None:
        accepted = rejected = 0
        barrier.wait()
        end = deadline[0]
        while (now := perf_counter()) < end:
            try:
                future = submit(_task, task_seconds)
            except overloaded:
                rejected += 1
                if yield_on_reject:
                    time.sleep(0)
                continue
            future.add_done_callback(partial(record, now))
            accepted += 1
        counts.append((accepted, rejected))  # list.append is atomic under the GIL

    try:
        for future in [submit(_task, 0.0) for _ in range(workers * 4)]:
            future.result()  # the threads are running before the baseline
        gc.collect()
        threads = [threading.Thread(target=produce) for _ in range(producers)]
        for thread in threads:
            thread.start()
        baseline = _max_rss_mib()
        start = perf_counter()
        deadline[0] = start + window
        _skip_after = start + window + grace
        barrier.wait()
        for thread in threads:
            thread.join()
        peak_growth = _max_rss_mib() - baseline
        cutoff = perf_counter()
        ran_in_window = len(ran)
        accepted = sum(a for a, _ in counts)
        rejected = sum(r for _, r in counts)
        backlog = accepted - len(ran) - len(skipped)
    finally:
        handle.close()
    latencies = sorted([*ran, *skipped])
    throughput = ran_in_window / (cutoff - start)
    result: dict[str, Any] = {
        "accepted": accepted,
        "rejected": rejected,
        "ran": len(ran),
        "skipped": len(skipped),
        "rss_growth_mib": peak_growth,
        "throughput": throughput,
        "rejected_share": rejected / max(1, accepted + rejected),
        "backlog": backlog,
        "drain_seconds": backlog / throughput if throughput else None,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": latencies[-1] * 1000,
        "lower_bound": bool(skipped),
    }
    if isinstance(handle.pool, threadpool_plus.ThreadPoolExecutor):
        stats = handle.pool.stats()
        result["pool_rejected"] = stats.rejected
        result["pool_completed"] = stats.completed
    return result


CASES: dict[str, Callable[..., dict[str, Any]]] = {"map": map_case, "overload": overload_case}


def main(argv: list[str]) -> int:
    scenario, params = argv
    result = CASES[scenario](**json.loads(params))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
