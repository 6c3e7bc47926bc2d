"""asyncio under overload: coroutines offloading blocking work to a bounded thread pool.

threadpool_plus: ``await pool.arun(work)`` on a pool of W threads with a queue of Q; the
coroutines beyond that wait for room in the pool's line, without blocking the loop.
The standard library: the pattern async services hand-roll, an ``asyncio.Semaphore(W + Q)``
around ``loop.run_in_executor(pool, work)`` on a pool of W threads.

Reports completed tasks per second and the event loop's lag (how late a 1 ms ticker wakes:
p50 / p99), medians of alternating repetitions, and the ratios in the same run. Two more rows
frame the lag: the floor (the ticker on a loop with nothing else to do) and what a bounded pool
does behind plain ``run_in_executor`` (its ``submit`` waits for room on the loop's thread).

    .venv/bin/python benchmarks/asyncio_overload.py [--coroutines 200] [--calls 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from threadpool_plus import ThreadPoolExecutor

WORKERS = 8
QUEUE = 16
WORK_SECONDS = 0.002  # a blocking call, e.g. a database query


def work() -> None:
    time.sleep(WORK_SECONDS)


async def ticker(lags: list[float], stop: asyncio.Event) -> None:
    """Measures how late the loop wakes a 1 ms sleep, until ``stop``."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - before - 0.001)


async def scenario(
    call: Callable[[], Awaitable[None]], coroutines: int, calls: int
) -> tuple[float, list[float]]:
    """Runs ``coroutines`` coroutines of ``calls`` calls each; returns (tasks/s, lags)."""
    lags: list[float] = []
    stop = asyncio.Event()
    watch = asyncio.ensure_future(ticker(lags, stop))

    async def client() -> None:
        for _ in range(calls):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(coroutines)))
    elapsed = time.perf_counter() - started
    stop.set()
    await watch
    return coroutines * calls / elapsed, lags


def run_plus(coroutines: int, calls: int) -> tuple[float, list[float]]:
    with ThreadPoolExecutor(WORKERS, max_queue_size=QUEUE) as pool:

        async def call() -> None:
            await pool.arun(work)

        return asyncio.run(scenario(call, coroutines, calls))


def run_blocking(coroutines: int, calls: int) -> tuple[float, list[float]]:
    with ThreadPoolExecutor(WORKERS, max_queue_size=QUEUE) as pool:

        async def main() -> tuple[float, list[float]]:
            loop = asyncio.get_running_loop()

            async def call() -> None:
                await loop.run_in_executor(pool, work)

            return await scenario(call, coroutines, calls)

        return asyncio.run(main())


def run_floor(coroutines: int, calls: int) -> tuple[float, list[float]]:
    """The ticker alone, for as long as the work would take on all threads."""

    async def idle() -> None:
        await asyncio.sleep(WORK_SECONDS * calls * coroutines / WORKERS / 10)

    async def main() -> tuple[float, list[float]]:
        return await scenario(idle, 10, 1)

    return asyncio.run(main())


def run_stdlib(coroutines: int, calls: int) -> tuple[float, list[float]]:
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:

        async def main() -> tuple[float, list[float]]:
            room = asyncio.Semaphore(WORKERS + QUEUE)
            loop = asyncio.get_running_loop()

            async def call() -> None:
                async with room:
                    await loop.run_in_executor(pool, work)

            return await scenario(call, coroutines, calls)

        return asyncio.run(main())


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coroutines", type=int, default=200)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = {"plus": run_plus, "stdlib": run_stdlib, "blocking": run_blocking, "floor": run_floor}
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, run in runs.items():
            rate, lags = run(args.coroutines, args.calls)
            results[name].append((rate, quantile(lags, 0.5), quantile(lags, 0.99)))
    print(
        f"Python {sys.version.split()[0]}: {args.coroutines} coroutines x {args.calls} calls of "
        f"{WORK_SECONDS * 1000:g} ms blocking work, {WORKERS} threads, room for {QUEUE} more; "
        f"medians of {args.repeat}"
    )
    medians = {
        name: [statistics.median(column) for column in zip(*rows, strict=True)]
        for name, rows in results.items()
    }
    for name, (rate, p50, p99) in medians.items():
        lag = f"loop lag p50 {p50 * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms"
        shown = "       -" if name == "floor" else f"{rate:8.0f}"
        print(f"  {name:8} {shown} tasks/s   {lag}")
    (rate, _, p99), (base_rate, _, base_p99) = medians["plus"], medians["stdlib"]
    print(f"  ratio    {rate / base_rate:.2f}x tasks/s   loop lag p99 {p99 / base_p99:.2f}x")


if __name__ == "__main__":
    main()
