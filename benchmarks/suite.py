"""threadpool_plus against ``concurrent.futures.ThreadPoolExecutor`` (and pebble), same run.

Six scenarios; every one runs each pool several times in alternating order and reports
the medians and the ratio ``threadpool_plus / stdlib`` (and ``pebble / stdlib`` when pebble
is installed). Each row says whether higher or lower is better. See benchmarks/README.md.

    python benchmarks/suite.py                 # the full suite, about 4 minutes
    python benchmarks/suite.py --quick         # smaller sizes, about a minute
    python benchmarks/suite.py --only map,overload --json out.json --chart out.png

Markdown tables go to stdout, progress to stderr; results are also written as JSON and,
when matplotlib is importable, as a PNG chart.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from _inprocess import bursty, latency, sleep_bound, throughput
from _isolated import run_isolated
from _pools import PEBBLE, STDLIB, TPP, available_pools, pool_versions
from _report import Better, Row, markdown_tables, rows_to_json, write_chart

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Config:
    """The sizes of one run; ``FULL`` and ``QUICK`` below."""

    reps: int  # repetitions of each in-process measurement, per pool
    isolated_reps: int  # repetitions of each subprocess case (map, overload)
    throughput_tasks: int
    throughput_workers: tuple[int, ...]
    latency_workers: int
    latency_round_trips: int
    map_items: int
    map_workers: int
    map_buffersize: int
    sleep_tasks: int
    sleep_workers: int
    sleep_seconds: float
    burst_count: int
    burst_tasks: int
    burst_gap: float
    burst_workers: int
    burst_idle_timeouts: tuple[float, ...]  # threadpool_plus runs once per value
    overload_window: float
    overload_grace: float
    overload_producers: int
    overload_workers: int
    overload_capacity: int


FULL = Config(
    reps=5,
    isolated_reps=3,
    throughput_tasks=20_000,
    throughput_workers=(1, 4, 16, 32),
    latency_workers=4,
    latency_round_trips=3_000,
    map_items=1_000_000,
    map_workers=4,
    map_buffersize=1024,
    sleep_tasks=6_400,
    sleep_workers=64,
    sleep_seconds=0.001,
    burst_count=5,
    burst_tasks=200,
    burst_gap=0.5,
    burst_workers=32,
    burst_idle_timeouts=(0.05, 0.1, 0.2, 60.0),  # 60 s is the default
    overload_window=2.0,
    overload_grace=0.3,
    overload_producers=4,
    overload_workers=4,
    overload_capacity=64,
)

QUICK = replace(
    FULL,
    reps=3,
    throughput_tasks=5_000,
    latency_round_trips=1_000,
    map_items=100_000,
    burst_count=3,
    overload_window=1.0,
)

SCENARIOS = ("throughput", "latency", "map", "sleep", "bursty", "overload")


def titles(config: Config) -> dict[str, str]:
    c = config
    return {
        "throughput": (
            f"1. No-op throughput: a batch of {c.throughput_tasks:,} no-op tasks submitted, "
            f"then every result awaited (median of {c.reps})"
        ),
        "latency": (
            f"2. Round-trip latency: submit one no-op task, wait for its result, repeat "
            f"{c.latency_round_trips:,} times (median of {c.reps} runs' percentiles)"
        ),
        "map": (
            f"3. map(abs, range({c.map_items:,})), {c.map_workers} workers, results consumed "
            f"and dropped; fresh subprocess per case, peak RSS growth "
            f"(median of {c.isolated_reps})"
        ),
        "sleep": (
            f"4. Sleep-bound: {c.sleep_tasks:,} tasks of time.sleep({c.sleep_seconds:g}), "
            f"{c.sleep_workers} workers; ideal = tasks x sleep / workers = "
            f"{c.sleep_tasks * c.sleep_seconds / c.sleep_workers * 1000:g} ms "
            f"(median of {c.reps})"
        ),
        "bursty": (
            f"5. Bursty load: threads sampled every 2 ms and integrated over the run "
            f"(median of {c.isolated_reps})"
        ),
        "overload": (
            f"6. Overload: {c.overload_producers} producer threads submit "
            f"{c.sleep_seconds * 1000:g} ms sleeps as fast as they can for "
            f"{c.overload_window:g} s into {c.overload_workers} workers; threadpool_plus "
            f"has max_queue_size={c.overload_capacity}, submit_timeout=0, the others an "
            f"unbounded queue; fresh subprocess per case (median of {c.isolated_reps})"
        ),
    }


def alternating(cases: list[Any], reps: int) -> list[Any]:
    """Every case ``reps`` times, forward then backward, and so on."""
    order: list[Any] = []
    for rep in range(reps):
        order += cases if rep % 2 == 0 else list(reversed(cases))
    return order


def run_map(config: Config, pools: tuple[str, ...], progress: Any) -> list[Row]:
    """Scenario 3: ``map`` time and peak memory, each case in a fresh subprocess."""
    buffered = config.map_buffersize
    cases: list[tuple[str, int | None]] = [(STDLIB, None), (TPP, buffered), (TPP, None)]
    stdlib_buffered = sys.version_info >= (3, 14)
    if stdlib_buffered:
        cases.append((STDLIB, buffered))
    seconds: dict[tuple[str, int | None], list[float]] = {case: [] for case in cases}
    growth: dict[tuple[str, int | None], list[float]] = {case: [] for case in cases}
    for pool, buffersize in alternating(cases, config.isolated_reps):
        params = {
            "pool": pool,
            "items": config.map_items,
            "workers": config.map_workers,
            "buffersize": buffersize,
        }
        result = run_isolated("map", params)
        seconds[(pool, buffersize)].append(result["seconds"])
        growth[(pool, buffersize)].append(result["rss_growth_mib"])
        progress(f"map {pool} buffersize={buffersize}: {result['seconds']:.2f} s")
    label = f"buffersize={buffered}"
    # (case name, stdlib's configuration, threadpool_plus's configuration)
    layouts: list[tuple[str, tuple[str, int | None], tuple[str, int | None]]] = [
        (
            f"threadpool_plus {label} vs stdlib eager",
            (STDLIB, None),
            (TPP, buffered),
        ),
        ("both eager (no buffersize)", (STDLIB, None), (TPP, None)),
    ]
    if stdlib_buffered:
        layouts.append((f"both {label}", (STDLIB, buffered), (TPP, buffered)))
    rows: list[Row] = []
    for case, std, plus in layouts:
        configs = {
            STDLIB: "eager" if std[1] is None else label,
            TPP: "eager" if plus[1] is None else label,
        }
        for metric, data in (("seconds", seconds), ("peak RSS growth MiB", growth)):
            samples = {STDLIB: data[std], TPP: data[plus]}
            rows.append(Row("map", case, metric, "lower", samples, configs=configs))
    if PEBBLE in pools:
        progress("map: pebble skipped (its map returns a MapFuture and has no buffersize)")
    return rows


# (metric, key in the child's result, scale, which direction is better)
OVERLOAD_METRICS: tuple[tuple[str, str, float, Better], ...] = (
    ("peak RSS growth MiB", "rss_growth_mib", 1.0, "lower"),
    ("accepted-task latency p50 ms", "p50_ms", 1.0, "lower"),
    ("accepted-task latency p99 ms", "p99_ms", 1.0, "lower"),
    ("completed tasks/s", "throughput", 1.0, "higher"),
    ("rejected % of submissions", "rejected_share", 100.0, "lower"),
    ("backlog at end of flood (tasks)", "backlog", 1.0, "lower"),
    ("time to drain backlog s", "drain_seconds", 1.0, "lower"),
)


def run_overload(config: Config, pools: tuple[str, ...], progress: Any) -> list[Row]:
    """Scenario 6: a pool flooded by producers; memory, latency and rejections.

    Two cases. In the first, as specified, a rejected producer retries at once: that
    busy loop holds the GIL and starves the workers. In the second it yields the GIL
    (``time.sleep(0)``) first. Only threadpool_plus ever rejects, so only it runs the
    second case; the others' producers would run exactly the same code as in the first,
    whose runs their columns repeat.
    """
    c = config
    runs: list[tuple[str, bool]] = [(pool, False) for pool in pools]
    if TPP in pools:
        runs.append((TPP, True))
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {run: [] for run in runs}
    for pool, yielding in alternating(runs, c.isolated_reps):
        params = {
            "pool": pool,
            "workers": c.overload_workers,
            "producers": c.overload_producers,
            "window": c.overload_window,
            "grace": c.overload_grace,
            "task_seconds": c.sleep_seconds,
            "capacity": c.overload_capacity,
            "yield_on_reject": yielding,
        }
        result = run_isolated("overload", params)
        results[(pool, yielding)].append(result)
        progress(
            f"overload {pool}{' (yield on reject)' if yielding else ''}: accepted "
            f"{result['accepted']:,}, rejected {result['rejected']:,}, "
            f"p99 {result['p99_ms']:.1f} ms"
        )
    rows: list[Row] = []
    for yielding in (False, True):
        if (TPP, yielding) not in results:
            continue
        chosen = {pool: results[(pool, yielding and pool == TPP)] for pool in pools}
        bounded = {pool for pool, rs in chosen.items() if any(r["lower_bound"] for r in rs)}
        if yielding:
            case = f"{c.overload_window:g} s flood, a rejected producer yields (sleep(0))"
            configs = {p: "same runs as above" for p in pools if p != TPP}
        else:
            case = f"{c.overload_window:g} s flood, a rejected producer retries at once"
            configs = {}
        configs[TPP] = f"queue <= {c.overload_capacity}"
        for metric, key, scale, better in OVERLOAD_METRICS:
            rows.append(
                Row(
                    "overload",
                    case,
                    metric,
                    better,
                    _series(chosen, key, scale),
                    at_least=bounded if key.endswith("_ms") else set(),
                    configs=configs if not rows or rows[-1].case != case else {},
                )
            )
        bound = [
            c.overload_capacity / r["throughput"] * 1000 for r in chosen[TPP] if r["throughput"]
        ]
        metric = "queue-wait bound = queue size / throughput, ms"
        rows.append(Row("overload", case, metric, "lower", {TPP: bound}))
    return rows


def _series(
    results: dict[str, list[dict[str, Any]]], key: str, scale: float = 1.0
) -> dict[str, list[float]]:
    """One value of every run's result, per pool."""
    return {
        pool: [run[key] * scale for run in runs if run[key] is not None]
        for pool, runs in results.items()
    }


def measure_sleep(seconds: float, times: int = 200) -> float:
    """How long ``time.sleep(seconds)`` really takes here (median), in seconds."""
    durations = []
    for _ in range(times):
        start = time.perf_counter()
        time.sleep(seconds)
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def header(pools: tuple[str, ...], mode: str) -> list[str]:
    versions = pool_versions()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    missing = "" if PEBBLE in pools else " (pebble not installed: its column is left out)"
    return [
        f"# threadpool_plus benchmark suite ({mode})",
        "",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{sys.executable}",
        f"- Machine: {platform.platform()}, os.cpu_count() = {os.cpu_count()}, "
        f"load average at start: {load}",
        "- Pools: " + ", ".join(f"{p} {versions[p]}" for p in pools) + missing,
        "- Ratios are median(threadpool_plus) / median(stdlib) (and pebble / stdlib). "
        "Each row says whether higher (↑) or lower (↓) is better; the verdict word says "
        "whether threadpool_plus is better or worse than stdlib there, or within ±5% (tie). "
        "'≥' marks a lower bound. '-' is not applicable.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="threadpool_plus vs concurrent.futures.ThreadPoolExecutor (and pebble)."
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about a minute")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run, of: {','.join(SCENARIOS)}",
    )
    parser.add_argument("--reps", type=int, help="repetitions per pool (overrides the mode's)")
    parser.add_argument(
        "--json", type=Path, default=RESULTS / "latest.json", help="where to write the JSON"
    )
    parser.add_argument(
        "--chart", type=Path, default=RESULTS / "latest.png", help="where to write the PNG chart"
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument(
        "--no-pebble", action="store_true", help="leave pebble out even if it is installed"
    )
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    config = QUICK if args.quick else FULL
    if args.reps is not None:
        if args.reps < 1:
            parser.error("--reps must be at least 1")
        config = replace(config, reps=args.reps, isolated_reps=args.reps)
    pools = tuple(p for p in available_pools() if not (args.no_pebble and p == PEBBLE))
    mode = "quick" if args.quick else "full"

    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    lines = header(pools, mode)
    print("\n".join(lines), flush=True)
    real_sleep = measure_sleep(config.sleep_seconds)
    print(
        f"- time.sleep({config.sleep_seconds:g}) really takes {real_sleep * 1000:.3f} ms here "
        "(median of 200); the sleep scenarios' ideal uses the nominal value.\n",
        flush=True,
    )
    rows: list[Row] = []
    c = config
    for scenario in SCENARIOS:
        if scenario not in wanted:
            continue
        progress(f"{scenario}: starting")
        if scenario == "throughput":
            new = throughput(pools, c.throughput_workers, c.throughput_tasks, c.reps, progress)
        elif scenario == "latency":
            new = latency(pools, c.latency_workers, c.latency_round_trips, c.reps, progress)
        elif scenario == "map":
            new = run_map(c, pools, progress)
        elif scenario == "sleep":
            new = sleep_bound(
                pools, c.sleep_workers, c.sleep_tasks, c.sleep_seconds, c.reps, progress
            )
        elif scenario == "bursty":
            new = bursty(
                pools,
                max_workers=c.burst_workers,
                bursts=c.burst_count,
                burst_tasks=c.burst_tasks,
                task_seconds=c.sleep_seconds,
                gap=c.burst_gap,
                idle_timeouts=c.burst_idle_timeouts,
                reps=c.isolated_reps,
                progress=progress,
            )
        else:
            new = run_overload(c, pools, progress)
        rows += new
        print(markdown_tables(new, titles(c), pools), flush=True)
    elapsed = time.perf_counter() - started
    print(f"Total run time: {elapsed:.0f} s ({mode} mode).")

    document = {
        "meta": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mode": mode,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "pools": pool_versions(),
            "sleep_measured_seconds": real_sleep,
            "elapsed_seconds": elapsed,
            "ratio": "median(pool) / median(stdlib); see each row's 'better'",
        },
        "config": asdict(config),
        "scenarios": {name: titles(config)[name] for name in SCENARIOS if name in wanted},
        "rows": rows_to_json(rows),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"JSON written to {args.json}", file=sys.stderr)
    if not args.no_chart:
        title = (
            f"threadpool_plus / stdlib ({mode}), Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs"
        )
        print(write_chart(rows, args.chart, title), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
