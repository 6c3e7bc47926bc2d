"""End to end with the real Prometheus tools: a scrape passes ``promtool check metrics``, a
Prometheus server stores every family with the values ``stats()`` reports, and every query
of ``dashboards/threadpool_plus.json`` returns data.

Needs ``prometheus_client`` (the ``prometheus`` extra) and the ``prometheus`` and
``promtool`` binaries (Debian: ``apt install prometheus``); skipped without them. All
traffic stays on 127.0.0.1, and Prometheus keeps its data in a temporary directory.

One module-scoped pool, metrics server and Prometheus serve every test: starting Prometheus
and letting it scrape a few times is the slow part, so it is done once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests._support import DEADLINE, Gate, threads_named, wait_until
from threadpool_plus import PoolOverloaded, PoolStats, TaskTimeout, ThreadPoolExecutor
from threadpool_plus.prometheus import MetricsServer, PoolCollector, serve_metrics

POOL = "integration"
JOB = "threadpool"
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboards" / "threadpool_plus.json"

# Every family the collector exports, with the PoolStats attribute it mirrors.
COUNTERS = {
    "threadpool_tasks_submitted_total": "submitted",
    "threadpool_tasks_completed_total": "completed",
    "threadpool_tasks_failed_total": "failed",
    "threadpool_tasks_cancelled_total": "cancelled",
    "threadpool_tasks_expired_total": "expired",
    "threadpool_tasks_rejected_total": "rejected",
    "threadpool_tasks_dropped_total": "dropped",
    "threadpool_tasks_caller_ran_total": "caller_ran",
}
GAUGES = {
    "threadpool_workers": "workers",
    "threadpool_idle_workers": "idle_workers",
    "threadpool_busy_workers": "busy_workers",
    "threadpool_active_tasks": "active",
    "threadpool_overrunning_tasks": "overrunning",
    "threadpool_queued_tasks": "queued",
    "threadpool_waiting_submitters": "waiting_submitters",
    "threadpool_queue_capacity": "queue_capacity",
    "threadpool_min_workers": "min_workers",
    "threadpool_max_workers": "max_workers",
    "threadpool_peak_workers": "peak_workers",
}
HISTOGRAMS = ("threadpool_task_queue_wait_seconds", "threadpool_task_run_seconds")

# What Grafana puts in place of its variables; "$pool" is "All" (the variable's allValue).
GRAFANA_VARIABLES = {"pool": ".+", "__rate_interval": "1m", "__interval": "15s", "__range": "5m"}

STARTUP_DEADLINE = 30.0  # seconds for Prometheus to start, and then to scrape the target (its
# target discovery alone delays the first scrape by about 5 s)
SCRAPES_DEADLINE = 20.0  # seconds for it to see the counters change a few times

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
"""

# Every request here goes to 127.0.0.1: no proxy, whatever the environment says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str) -> bytes:
    with _opener.open(url, timeout=5.0) as response:
        body: bytes = response.read()
    return body


def free_port() -> int:
    """A port nobody listens on now (another process may take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def env_without_proxy() -> dict[str, str]:
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    return {k: v for k, v in os.environ.items() if k.lower() not in proxies}


def fail(n: int) -> None:
    raise ValueError(f"task {n} failed on purpose")


def work(n: int) -> int:
    """Steady traffic for the rate() panels; one task in four fails."""
    if n % 4 == 3:
        raise ValueError(f"task {n} failed on purpose")
    return n


def quiescent(pool: ThreadPoolExecutor) -> bool:
    """No task running or queued, every thread idle: the values a scrape reads stay put."""
    stats = pool.stats()
    return stats.active == 0 and stats.queued == 0 and stats.idle_workers == stats.workers


def run_mixed_workload(pool: ThreadPoolExecutor, gate: Gate) -> None:
    """Leaves every counter non-zero: tasks complete, fail, get rejected, cancelled and
    expired (one in the queue, one after overrunning its deadline)."""
    assert [pool.submit(pow, 2, n).result() for n in range(5)] == [1, 2, 4, 8, 16]
    for future in [pool.submit(fail, n) for n in range(3)]:
        assert isinstance(future.exception(), ValueError)
    # Both threads block on the gate; a task queued behind them expires at its deadline.
    blocked = [pool.submit(gate.wait, n) for n in range(2)]
    gate.wait_entered(2)
    late = pool.options(timeout=0.2).submit(pow, 5, 0)
    with pytest.raises(TaskTimeout):
        late.result(timeout=DEADLINE)
    # The queue fills: now every submission is refused.
    queued = [pool.submit(pow, 3, n) for n in range(2)]
    with pytest.raises(PoolOverloaded):
        pool.submit(pow, 4, 0)
    with pytest.raises(PoolOverloaded):
        pool.try_submit(pow, 4, 1)
    with pytest.raises(PoolOverloaded):
        pool.submit(pow, 4, 2)
    assert all(future.cancel() for future in queued)
    gate.open()
    assert [future.result() for future in blocked] == [0, 1]
    # A task runs past its deadline: overrunning until it returns, then expired.
    release = threading.Event()
    try:
        overrun = pool.options(timeout=0.2).submit(release.wait, DEADLINE)
        with pytest.raises(TaskTimeout):
            overrun.result(timeout=DEADLINE)
        assert pool.stats().overrunning == 1
    finally:
        release.set()
    wait_until(lambda: quiescent(pool))
    stats = pool.stats()
    assert (stats.submitted, stats.completed, stats.failed) == (14, 7, 3)
    assert (stats.cancelled, stats.rejected, stats.peak_workers) == (2, 3, 2)
    assert (stats.expired, stats.overrunning) == (2, 0)


def keep_busy(pool: ThreadPoolExecutor, until: Callable[[], bool], timeout: float) -> None:
    """Submits small batches of tasks (some fail, some may be refused) until ``until()``."""
    deadline = time.monotonic() + timeout
    n = 0
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {until}")
        futures: list[Future[int]] = []
        for _ in range(8):
            # A refusal is counted in stats().rejected, which is what the tests compare.
            with contextlib.suppress(PoolOverloaded):
                futures.append(pool.submit(work, n))
            n += 1
        for future in futures:
            future.exception()  # waits, and marks a failure as seen
        time.sleep(0.02)  # pacing between polls of Prometheus, not synchronisation


def stats_value(stats: PoolStats, name: str) -> int:
    value: int = getattr(stats, {**COUNTERS, **GAUGES}[name])
    return value


def histogram_samples(registry: CollectorRegistry, family: str) -> dict[str, float]:
    """The histogram's samples for the pool, keyed ``_bucket:<le>``, ``_sum``, ``_count``."""
    samples: dict[str, float] = {}
    for metric in registry.collect():
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.labels.get("pool") != POOL:
                continue
            suffix = sample.name[len(family) :]
            le = sample.labels.get("le")
            key = suffix if le is None else f"{suffix}:{float(le)!r}"
            samples[key] = sample.value
    return samples


class Prometheus:
    """A Prometheus server started for the tests, and the parts of its HTTP API they use."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"
        self.log = log

    def log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-20:])

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        try:
            reply = json.loads(http_get(url))
        except urllib.error.HTTPError as error:
            try:
                detail = error.read().decode(errors="replace")
            finally:
                error.close()
            raise AssertionError(f"GET {url}: HTTP {error.code}: {detail}") from None
        assert reply["status"] == "success", reply
        return reply["data"]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query at the current time: (labels, value) for each series."""
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def query_range(self, expr: str, start: float, end: float) -> list[list[float]]:
        """A range query with a 1 s step: the values of each series."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"}
        data = self.api("/api/v1/query_range", **params)
        assert data["resultType"] == "matrix", (expr, data)
        return [[float(v) for _, v in item["values"]] for item in data["result"]]

    def scalar(self, expr: str) -> float | None:
        """The value of a query that yields at most one series; ``None`` when it yields none."""
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return result[0][1] if result else None

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float) -> None:
        """Polls ``predicate`` (which may query Prometheus); fails with Prometheus' log."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"prometheus exited with {self.process.returncode} while waiting for "
                    f"{what}:\n{self.log_tail()}"
                )
            try:
                if predicate():
                    return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def ready(self) -> bool:
        try:
            http_get(f"{self.base}/-/ready")
        except urllib.error.HTTPError as error:  # 503 while starting
            error.close()
            return False
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_prometheus(binary: str, workdir: Path, target: str) -> Prometheus:
    """Starts Prometheus scraping ``target`` every second; returns once it is ready."""
    config = workdir / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(job=JOB, target=target))
    promtool = shutil.which("promtool")
    if promtool is not None:  # a clear message for a bad config, rather than a dead server
        check = subprocess.run(
            [promtool, "check", "config", str(config)], capture_output=True, timeout=30
        )
        assert check.returncode == 0, (check.stdout + check.stderr).decode()
    for attempt in range(3):  # free_port() can lose a race with another process
        port = free_port()
        log = workdir / f"prometheus-{attempt}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / f'data-{attempt}'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-lifecycle",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=env_without_proxy(),
            )
        server = Prometheus(process, port, log)
        try:
            server.wait_for(server.ready, "ready Prometheus", STARTUP_DEADLINE)
        except AssertionError:
            server.stop()
            if "address already in use" in server.log_tail() and attempt < 2:
                continue
            raise
        return server
    raise AssertionError("unreachable")


@dataclass
class Exported:
    """The pool under test, the registry its collector is in, and the server serving it."""

    pool: ThreadPoolExecutor
    registry: CollectorRegistry
    server: MetricsServer


@dataclass
class Scraped:
    """A Prometheus server that has scraped ``exported`` while it was busy, then quiet."""

    prometheus: Prometheus
    exported: Exported
    started: float  # time.time() when Prometheus was ready


@pytest.fixture(scope="module")
def exported() -> Iterator[Exported]:
    """A pool that has seen every kind of outcome, exported on a /metrics server."""
    # idle_timeout=None: no thread retires mid-test, so the worker gauges stay put.
    pool = ThreadPoolExecutor(
        2, name=POOL, min_workers=1, max_queue_size=2, submit_timeout=0, idle_timeout=None
    )
    gate = Gate()
    try:
        registry = CollectorRegistry()
        PoolCollector(pool, registry=registry)
        run_mixed_workload(pool, gate)
        with serve_metrics(0, registry=registry) as server:
            yield Exported(pool, registry, server)
    finally:
        gate.open()
        pool.shutdown(wait=True, cancel_futures=True)
        wait_until(lambda: not threads_named(POOL))


@pytest.fixture(scope="module")
def scraped(exported: Exported, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """Prometheus scraping the pool: through a burst of traffic, then while it is quiet."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not on PATH (Debian: apt install prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    prometheus = start_prometheus(binary, workdir, f"127.0.0.1:{exported.server.port}")
    try:
        started = time.time()
        up = f'up{{job="{JOB}"}}'
        prometheus.wait_for(
            lambda: prometheus.scalar(up) == 1.0, "successful scrape", STARTUP_DEADLINE
        )
        # rate() needs two samples in its window and histogram_quantile() needs the buckets
        # to move: keep tasks finishing until Prometheus has seen the counter change twice.
        changes = f'changes(threadpool_tasks_completed_total{{pool="{POOL}"}}[1m])'
        keep_busy(exported.pool, lambda: (prometheus.scalar(changes) or 0) >= 2, SCRAPES_DEADLINE)
        wait_until(lambda: quiescent(exported.pool))
        # A scrape that starts after this instant reads the final values.
        settled = time.time()
        prometheus.wait_for(
            lambda: (prometheus.scalar(f"timestamp({up})") or 0) > settled,
            "scrape of the quiet pool",
            STARTUP_DEADLINE,
        )
        yield Scraped(prometheus, exported, started)
    finally:
        prometheus.stop()


@pytest.mark.slow
def test_a_real_scrape_passes_promtool_check_metrics(exported: Exported) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("the promtool binary is not on PATH (Debian: apt install prometheus)")
    body = http_get(exported.server.url)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert (result.returncode, (result.stdout + result.stderr).decode()) == (0, "")

    # The same scrape carries every family for the pool, with the values stats() reports.
    assert quiescent(exported.pool)
    stats = exported.pool.stats()
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.labels.get("pool") == POOL and "le" not in sample.labels
    }
    for name in [*COUNTERS, *GAUGES]:
        assert values[name] == stats_value(stats, name), name
    for name in HISTOGRAMS:
        assert values[f"{name}_count"] == stats.completed + stats.failed, name


@pytest.mark.slow
def test_prometheus_stores_every_family_with_the_stats_values(scraped: Scraped) -> None:
    prometheus, pool = scraped.prometheus, scraped.exported.pool
    assert quiescent(pool)
    stats = pool.stats()
    assert stats.completed > 7  # keep_busy's traffic is in there
    assert stats.failed > 3

    for name in [*COUNTERS, *GAUGES]:
        [(labels, value)] = prometheus.query(f'{name}{{pool="{POOL}"}}')
        assert (labels["job"], labels["pool"]) == (JOB, POOL)
        assert value == stats_value(stats, name), name

    for name in HISTOGRAMS:
        expected = histogram_samples(scraped.exported.registry, name)
        stored: dict[str, float] = {}
        for suffix in ("_bucket", "_sum", "_count"):
            series = prometheus.query(f'{name}{suffix}{{pool="{POOL}"}}')
            assert series, f"{name}{suffix} is not in Prometheus"
            for labels, value in series:
                le = labels.get("le")
                stored[suffix if le is None else f"{suffix}:{float(le)!r}"] = value
        assert stored == expected, name
        assert stored["_count"] == stored["_bucket:inf"] == stats.completed + stats.failed
        assert stored["_sum"] > 0

    # Prometheus read the types from the exposition: counters, gauges, histograms.
    metadata = prometheus.api("/api/v1/targets/metadata", match_target=f'{{job="{JOB}"}}')
    types = {item["metric"]: item["type"] for item in metadata}
    for name in COUNTERS:  # keyed without _total when Prometheus scraped OpenMetrics
        assert types.get(name, types.get(name.removesuffix("_total"))) == "counter", name
    for name in GAUGES:
        assert types[name] == "gauge", name
    for name in HISTOGRAMS:
        assert types[name] == "histogram", name


def dashboard_targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query target, rows' nested panels included."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target
        yield from dashboard_targets({"panels": panel.get("panels", [])})


def substitute(expr: str) -> str:
    """``expr`` with Grafana's variables (``$name`` or ``${name}``) replaced."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in GRAFANA_VARIABLES, f"unknown variable ${name} in {expr}"
        return GRAFANA_VARIABLES[name]

    promql = re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)
    assert "$" not in promql, promql
    return promql


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def test_dashboard_is_well_formed() -> None:
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    pool = variables["pool"]
    assert pool["type"] == "query"
    assert pool["query"]["query"] == pool["definition"] == "label_values(threadpool_workers, pool)"
    assert pool["multi"] is True
    assert pool["includeAll"] is True
    assert pool["allValue"] == GRAFANA_VARIABLES["pool"]

    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    targets = list(dashboard_targets(dashboard))
    assert targets
    for title, target in targets:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert 'pool=~"$pool"' in target["expr"], f"{title}: not filtered by the pool variable"
        substitute(target["expr"])  # no variable the tests cannot stand in for
    titles = {title for title, _ in targets}
    for wanted in (
        "Throughput",
        "Failure rate",
        "Queue depth vs capacity, waiting submitters",
        "Busy vs idle workers",
        "Overload: rejected, dropped, ran by the caller (per second)",
        "Task run time (p50 / p95 / p99)",
        "Queue wait (p50 / p95 / p99)",
        "Expirations per second",
        "Overrunning tasks",
    ):
        assert wanted in titles
    # Every counter, the overrunning and waiting-submitter gauges, are on the dashboard.
    exprs = " ".join(target["expr"] for _, target in targets)
    for family in [*COUNTERS, "threadpool_overrunning_tasks", "threadpool_waiting_submitters"]:
        assert f"{family}{{" in exprs, family


@pytest.mark.slow
def test_every_dashboard_query_returns_data(scraped: Scraped) -> None:
    prometheus = scraped.prometheus
    dashboard = load_dashboard()

    # The pool variable's query, label_values(threadpool_workers, pool), finds the pool.
    pools = prometheus.api("/api/v1/label/pool/values", **{"match[]": "threadpool_workers"})
    assert pools == [POOL]

    now = time.time()
    for title, target in dashboard_targets(dashboard):
        promql = substitute(target["expr"])
        where = f"{title} [{target['refId']}]: {promql}"
        if target.get("instant"):
            result = prometheus.query(promql)
            assert result, f"{where}: no data"
            assert all(math.isfinite(value) for _, value in result), (where, result)
        else:
            series = prometheus.query_range(promql, scraped.started, now)
            assert series, f"{where}: no data"
            # The workload made every panel meaningful by now: no NaN at the right edge.
            assert all(values and math.isfinite(values[-1]) for values in series), (
                where,
                series,
            )
