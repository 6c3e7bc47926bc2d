"""The demo's optional last part: the same pool contract on a Dask cluster.

Runs only when the ``dask`` extra is installed (``pip install threadpool-plus[dask]``): a
``LocalCluster`` of two single-threaded workers in this process, a ``DaskExecutor`` that
hands at most two tasks to the scheduler and queues four more, and then the 7th
``try_submit`` refused, a lazy ``map`` of 40 items, a remote failure and a shutdown that
leaves no key on the scheduler.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable

from threadpool_plus import PoolOverloaded


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def parse(text: str) -> int:
    return int(text)


def run_dask(say: Callable[[str], None]) -> dict[str, bool] | None:
    """Runs the Dask part, printing through ``say``; returns its checks, or None when
    the extra is missing."""
    if importlib.util.find_spec("distributed") is None:
        return None
    from distributed import Client, LocalCluster

    from threadpool_plus.dask import DaskExecutor

    # Dask logs every failed task and every worker's life itself; the demo shows ours.
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    say("\n== 8. The same pool on a Dask cluster (threadpool_plus.dask) " + "=" * 15)
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
        DaskExecutor(client, max_in_flight=2, max_queue_size=4, name="dask-demo") as pool,
    ):
        naps = [pool.try_submit(nap, 0.3) for _ in range(6)]
        try:
            pool.try_submit(nap, 0.3)
        except PoolOverloaded as error:
            say(f"  7th try_submit: {error}")
        s = pool.stats()
        say(f"  in flight {s.active}/{s.max_workers}, queued {s.queued}/{s.queue_capacity}")
        squares = sum(pool.map(pow, range(40), [2] * 40, buffersize=8))
        say(f"  lazy map of 40 items (8 ahead at most): sum of squares {squares}")
        bad = pool.submit(parse, "n/a")
        say(f"  remote failure: {bad.exception()!r}")
        say(f"  its record: {pool.recent_failures()[0].traceback.splitlines()[-1]}")
        report = pool.shutdown()
        s = pool.stats()
        say(f"  shutdown: {report}; keys left on the scheduler: {len(client.futures)}")
        done = s.completed + s.failed + s.cancelled + s.expired
        return {
            "Dask: the 7th try_submit was refused": s.rejected == 1,
            "Dask: every nap ran": all(f.result() == 0.3 for f in naps),
            "Dask: the books balance": s.submitted == done + s.active + s.queued,
            "Dask: one remote failure recorded": s.failed == 1,
            "Dask: nothing left on the scheduler": not client.futures,
        }
