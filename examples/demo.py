"""threadpool_plus on a bursty workload: scaling, overload, failures and exact counters.

A monitor thread prints ``stats()`` a few times per second (only when it changed) while
the main thread runs seven phases (and an eighth with the ``dask`` extra):

1. bursts of sleep-bound tasks with idle gaps: the pool grows, then idle threads retire;
2. two producers faster than the pool: ``try_submit`` and ``submit`` (``submit_timeout=0``)
   get ``PoolOverloaded`` once every thread is busy and the queue is full;
3. tasks that raise: the exceptions are taken back from their futures, the pool's
   newest ``TaskFailure`` record is shown, and a fire-and-forget task that fails is
   reported on the ``threadpool_plus`` logger when its future is collected unread;
4. a task that overruns its deadline (``options(timeout=...)``): its future fails with
   ``TaskTimeout`` at the deadline, the pool counts it ``overrunning`` until it returns,
   then ``expired``;
5. a task cancelled while it runs (``future.cancel(interrupt=True)``): the future reports
   cancelled at once, the task sees ``current_task().cancelled``, stops early and counts as
   ``cancelled`` when it returns;
6. cool-down and shutdown, then a table of the final counters;
7. a second pool shut down with a deadline (``shutdown(timeout=0.2)``): the report hands
   back the queued tasks, which run elsewhere, and names the one still running, told to stop.

While it runs, the pool's metrics are served for Prometheus on 127.0.0.1 (if the
``prometheus`` extra is installed). With the ``dask`` extra, part 8 runs the same contract
on a local Dask cluster (``examples/dask_demo.py``). Run it with ``make demo``; it
takes about ten seconds.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import fields
from itertools import zip_longest
from types import TracebackType

from dask_demo import run_dask  # the optional Dask part (examples/dask_demo.py)

from threadpool_plus import PoolOverloaded, PoolStats, ThreadPoolExecutor, current_task

MIN_WORKERS, MAX_WORKERS, QUEUE_SIZE, IDLE_TIMEOUT = 1, 8, 16, 0.5
BURSTS = (5, 14, 24)  # tasks per burst; 24 = 8 running + 16 queued, all the pool takes at once
GAP = 1.0  # seconds of quiet after each burst
DEADLINE, OVERRUN = 0.2, 0.3  # the stuck task's timeout; how long it runs past it
STEPS, STEP, CANCEL_AFTER = 20, 0.05, 3  # the cancelled task: 20 steps of 50 ms, cancelled after 3
T0 = time.monotonic()
_print_lock = threading.Lock()  # the monitor and the main thread share the terminal


def say(text: str = "") -> None:
    with _print_lock:
        print(text, flush=True)


def header(title: str) -> None:
    say(f"\n== {title} " + "=" * max(0, 76 - len(title)))


def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def parse_reading(text: str) -> int:
    time.sleep(0.05)
    return int(text)  # ValueError for the malformed readings


RARE = ("overrunning", "expired", "cancelled")  # shown in a stats line once nonzero


def stats_line(s: PoolStats) -> str:
    bar = "#" * (s.workers - s.idle_workers) + "-" * s.idle_workers
    return (
        f"  {time.monotonic() - T0:5.2f}s [{bar:<{s.max_workers}}] workers {s.workers}"
        f" idle {s.idle_workers} active {s.active} queued {s.queued:2}/{s.queue_capacity}"
        f" | completed {s.completed:3} failed {s.failed} rejected {s.rejected:3}"
        + "".join(f" {name} {getattr(s, name)}" for name in RARE if getattr(s, name))
    )


def balanced(s: PoolStats) -> bool:
    done = s.completed + s.failed + s.cancelled + s.expired
    return s.submitted == done + s.active + s.queued


class Monitor:
    """Prints a stats line whenever the snapshot changed; checks the invariant on each."""

    def __init__(self, pool: ThreadPoolExecutor, period: float = 0.25) -> None:
        self._pool, self._period = pool, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self.snapshots = self.violations = 0

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last: PoolStats | None = None
        stopping = False
        while True:
            s = self._pool.stats()
            self.snapshots += 1
            if not balanced(s):
                self.violations += 1
            if s != last:
                say(stats_line(s))
                last = s
            if stopping:
                return
            stopping = self._stop.wait(self._period)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Polls ``condition`` until true (or ``timeout``); returns how long that took."""
    start = time.monotonic()
    while not condition() and time.monotonic() - start < timeout:
        time.sleep(0.01)
    return time.monotonic() - start


def wait_for_scale_down(pool: ThreadPoolExecutor, timeout: float = 5.0) -> float:
    """Returns how long the pool took to shrink back to ``min_workers``."""
    return wait_until(lambda: pool.stats().workers <= MIN_WORKERS, timeout)


def run_bursts(pool: ThreadPoolExecutor) -> None:
    header("1. Bursts: grow to meet each burst, shrink back when idle")
    for number, size in enumerate(BURSTS, 1):
        futures = [pool.submit(sleepy, 0.15) for _ in range(size)]
        grown = pool.stats()
        say(f"  burst {number}: {size:2} tasks -> {grown.workers} workers, {grown.queued} queued")
        wait(futures)
        shrunk = wait_for_scale_down(pool)
        say(f"  burst {number}: done; back to {pool.stats().workers} worker {shrunk:.2f}s later")
        time.sleep(max(0.0, GAP - shrunk))  # the rest of the quiet spell


def produce(submit: Callable[..., Future[float]]) -> tuple[int, list[str]]:
    """Offers 100 tasks at 100 per second; returns the number accepted and the refusals."""
    futures: list[Future[float]] = []
    refusals: list[str] = []
    for _ in range(100):
        try:
            futures.append(submit(sleepy, 0.1))
        except PoolOverloaded as exc:  # the task will never run; nothing to clean up
            refusals.append(str(exc))
        time.sleep(0.01)
    wait(futures)
    return len(futures), refusals


def run_overload(pool: ThreadPoolExecutor) -> int:
    header("2. Overload: two producers offer 200 tasks/s to a pool that runs 80/s")
    results: dict[str, tuple[int, list[str]]] = {}
    methods = {"try_submit": pool.try_submit, "submit, timeout 0": pool.submit}

    def producer(label: str) -> None:
        results[label] = produce(methods[label])

    threads = [threading.Thread(target=producer, args=(label,)) for label in methods]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    say(f"\n  {'producer':<20}{'offered':>8}{'accepted':>10}{'rejected':>10}")
    for label, (accepted, refusals) in results.items():
        rejected = len(refusals)
        say(f"  {label:<20}{accepted + rejected:>8}{accepted:>10}{rejected:>10}")
    messages = [message for _, refusals in results.values() for message in refusals]
    if messages:
        say(f"  e.g. PoolOverloaded: {messages[0]}")
    wait_for_scale_down(pool)
    return len(messages)


def run_failures(pool: ThreadPoolExecutor) -> int:
    header("3. Failures: tasks that raise never kill a worker; futures carry the error")
    readings = ("17", "42", "n/a", "7", "", "99", "0x1f")
    futures = {text: pool.submit(parse_reading, text) for text in readings}
    failures = 0
    for text, future in futures.items():
        exc = future.exception()
        outcome = f"{future.result()}" if exc is None else f"{type(exc).__name__}: {exc}"
        if exc is not None:
            failures += 1
        say(f"  parse_reading({text!r:7}) -> {outcome}")
    record = pool.recent_failures()[-1]
    say(f"\n  newest TaskFailure: task={record.task} thread={record.thread}")
    say(f"  duration={record.duration * 1e6:.0f} us, exception={record.exception!r}")
    say("  " + record.traceback.rstrip().replace("\n", "\n  "))
    say("\n  a fire-and-forget task fails; nobody reads its future, so the pool reports it:")
    forgotten = pool.submit(parse_reading, "forgotten")
    wait([forgotten])
    del forgotten
    gc.collect()  # CPython frees it at once anyway; the report is logged as it goes
    return failures + 1


def stuck_call(release: threading.Event) -> str:
    """Stands for a blocking call with no timeout of its own: it ignores the deadline."""
    handle = current_task()
    say(f"  task {handle.name!r} starts, deadline in {handle.remaining() or 0:.2f}s; it blocks")
    release.wait()
    return "late report"  # nobody sees it: the future failed at the deadline


def run_deadline(pool: ThreadPoolExecutor) -> None:
    header(f"4. Deadlines: options(timeout={DEADLINE}) on a task that overruns")
    release = threading.Event()
    start = time.monotonic()
    future = pool.options(timeout=DEADLINE, name="report").submit(stuck_call, release)
    exc = future.exception()  # returns at the deadline, while the task still runs
    s = pool.stats()
    say(f"  after {time.monotonic() - start:.2f}s the future fails: {type(exc).__name__}: {exc}")
    say(f"  no thread is stopped by force: active {s.active}, overrunning {s.overrunning}")
    time.sleep(OVERRUN)  # the blocking call takes its time...
    release.set()  # ...and returns at last
    wait_until(lambda: pool.stats().overrunning == 0)
    s = pool.stats()
    say(
        f"  it returns {time.monotonic() - start - DEADLINE:.2f}s late: overrunning"
        f" {s.overrunning}, expired {s.expired}; its result is discarded"
    )


def crunch(progress: list[int], working: threading.Event) -> int:
    """Works in steps and stops early, between steps, once cancelled."""
    handle = current_task()
    say(f"  task {handle.name!r} starts: {STEPS} steps of {STEP * 1000:.0f} ms")
    for step in range(1, STEPS + 1):
        time.sleep(STEP)  # one step of work
        progress.append(step)
        if handle.cancelled:  # or handle.check(), which raises TaskCancelled
            time.sleep(STEP)  # tidy up, then return
            break
        if step == CANCEL_AFTER:
            working.set()
    return len(progress)


def run_interrupt(pool: ThreadPoolExecutor) -> None:
    header("5. Cooperative cancellation: cancel(interrupt=True) on a running task")
    progress: list[int] = []
    working = threading.Event()
    future = pool.options(name="crunch").submit(crunch, progress, working)
    working.wait()  # the task is under way
    start = time.monotonic()
    # submit() is typed as returning the standard Future, whose cancel() takes no argument
    cancelled = future.cancel(interrupt=True)
    s = pool.stats()
    say(
        f"  after step {CANCEL_AFTER}: cancel(interrupt=True) -> {cancelled},"
        f" future.cancelled() -> {future.cancelled()} at once"
    )
    say(f"  the task still runs: active {s.active}, cancelled {s.cancelled}")
    wait_until(lambda: pool.stats().cancelled == 1)
    s = pool.stats()
    say(
        f"  {time.monotonic() - start:.2f}s later it has returned after {len(progress)} of"
        f" {STEPS} steps: cancelled {s.cancelled}"
    )


def run_deadline_shutdown() -> bool:
    """A pool shut down with a deadline hands back what it had not run; those run elsewhere."""
    header("7. shutdown(timeout=0.2): what did not finish comes back")
    started = threading.Event()

    def export() -> str:
        started.set()
        current_task().wait(10)  # a long job that stops when told
        return "stopped"

    side = ThreadPoolExecutor(1, name="exports")
    job = side.options(name="nightly-export").submit(export)
    started.wait(5)
    for n in range(5):
        side.submit(pow, n, 2)
    report = side.shutdown(timeout=0.2)
    say(f"  timed_out={report.timed_out}, still running: {list(report.running)}")
    say(f"  dropped {len(report.dropped)} queued tasks, handed back with fn, args and future")
    with ThreadPoolExecutor(2, name="retry") as retry:
        results = [retry.submit(d.fn, *d.args, **d.kwargs).result() for d in report.dropped]
    say(f"  resubmitted elsewhere: {results}; the running job {job.result(timeout=5)!r}")
    return report.timed_out and results == [n * n for n in range(5)]


def print_summary(s: PoolStats) -> None:
    header("Final stats() after shutdown")
    counters = (
        "submitted",
        "completed",
        "failed",
        "cancelled",
        "expired",
        "rejected",
        "dropped",
        "caller_ran",
    )
    values = {field.name: getattr(s, field.name) for field in fields(s)}
    gauges = [name for name in values if name not in counters]
    say(f"  {'gauges':<29}counters")
    for gauge, counter in zip_longest(gauges, counters):
        left = f"{gauge:<19}{values[gauge]:>5}" if gauge else " " * 24
        right = f"{counter:<14}{values[counter]:>5}" if counter else ""
        say(f"  {left}     {right}".rstrip())


def serve(pool: ThreadPoolExecutor) -> Callable[[], None]:
    """Serves the pool's metrics on loopback; returns how to stop (a no-op without the extra)."""
    try:
        from prometheus_client import CollectorRegistry

        from threadpool_plus.prometheus import PoolCollector, serve_metrics
    except ImportError:
        say("(install threadpool-plus[prometheus] to see its metrics served)")
        return lambda: None
    registry = CollectorRegistry()
    PoolCollector(pool, registry=registry)
    server = serve_metrics(0, registry=registry)
    say(f"metrics for Prometheus at {server.url} while the demo runs")
    return server.stop


def main() -> int:
    logging.basicConfig(format="  [log %(levelname)s %(name)s] %(message)s")
    pool = ThreadPoolExecutor(
        max_workers=MAX_WORKERS,
        min_workers=MIN_WORKERS,
        max_queue_size=QUEUE_SIZE,
        idle_timeout=IDLE_TIMEOUT,
        submit_timeout=0,
        name="demo",
    )
    say(f"{pool!r}: min {MIN_WORKERS}, idle_timeout {IDLE_TIMEOUT}s, submit_timeout 0")
    stop_serving = serve(pool)
    with pool, Monitor(pool) as monitor:
        run_bursts(pool)
        rejected = run_overload(pool)
        failures = run_failures(pool)
        run_deadline(pool)
        run_interrupt(pool)
        header("6. Cool-down and shutdown")
        wait_for_scale_down(pool)
    stop_serving()
    s = pool.stats()
    print_summary(s)
    handed_back = run_deadline_shutdown()
    on_dask = run_dask(say)  # None without the dask extra
    checks = {
        "submitted == completed + failed + cancelled + expired + active + queued": balanced(s),
        f"invariant held in all {monitor.snapshots} live snapshots": monitor.violations == 0,
        f"rejected == {rejected} PoolOverloaded caught": s.rejected == rejected,
        f"failed == {failures} failures (taken from futures or reported)": s.failed == failures,
        "expired == 1 (the report that overran its deadline)": s.expired == 1,
        "overrunning == 0 (it has returned)": s.overrunning == 0,
        "cancelled == 1 (the interrupted crunch)": s.cancelled == 1,
        f"peak_workers == max_workers == {MAX_WORKERS}": s.peak_workers == MAX_WORKERS,
        "no worker left after shutdown": s.workers == 0,
        "shutdown(timeout=) handed back 5 tasks, all run elsewhere": handed_back,
    }
    checks.update(on_dask or {})
    say()
    for claim, ok in checks.items():
        say(f"  [{'ok' if ok else 'FAIL'}] {claim}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
