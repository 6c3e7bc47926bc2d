"""tqdm's ``thread_map`` over our pool: its progress bar reaches the total.

``thread_map`` builds a ``concurrent.futures.ThreadPoolExecutor`` itself, replaces the
pool's ``submit`` with one that ticks the bar when a task finishes, and calls ``map``. So
the bar counts only if ``map`` goes through ``self.submit``. The test swaps our pool in the
way a user would: where tqdm looks the class up.
"""

from __future__ import annotations

import concurrent.futures
import io
from typing import Any, ClassVar

import pytest

from tests._support import wait_until
from tests.integration._require import library

library("tqdm")

from tqdm import tqdm  # noqa: E402
from tqdm.contrib.concurrent import thread_map  # noqa: E402

from threadpool_plus import ThreadPoolExecutor  # noqa: E402

pytestmark = pytest.mark.timeout(30)


class Bar(tqdm):  # type: ignore[type-arg]
    """Keeps every bar it makes, to read its count after ``thread_map`` closes it."""

    made: ClassVar[list[Bar]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        Bar.made.append(self)


def use_our_pool(monkeypatch: pytest.MonkeyPatch, **options: Any) -> list[ThreadPoolExecutor]:
    """Makes ``thread_map`` build our pool (with ``options``); returns the pools it built."""
    built: list[ThreadPoolExecutor] = []

    class Pool(ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, **options})
            built.append(self)

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Pool)
    return built


def cube(x: int) -> int:
    return x**3


@pytest.mark.parametrize("buffersize", [None, 4])
def test_the_progress_bar_reaches_the_total(
    monkeypatch: pytest.MonkeyPatch, buffersize: int | None
) -> None:
    built = use_our_pool(monkeypatch)
    Bar.made.clear()
    extra = {} if buffersize is None else {"buffersize": buffersize}
    mapper: Any = thread_map  # (tqdm's stubs do not know buffersize)
    results = mapper(cube, range(50), max_workers=3, tqdm_class=Bar, file=io.StringIO(), **extra)
    assert results == [x**3 for x in range(50)]
    [pool] = built
    assert pool.stats().submitted == pool.stats().completed == 50
    [bar] = Bar.made
    assert bar.total == 50
    # tqdm updates the bar in each future's done-callback, which runs after the result is
    # visible to map's consumer: the last update may come a moment after map returns.
    wait_until(lambda: bar.n == 50)


def test_a_bounded_pool_that_fails_fast_still_maps_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # map never raises PoolOverloaded, even through tqdm's replacement submit.
    built = use_our_pool(monkeypatch, max_queue_size=1, submit_timeout=0)
    Bar.made.clear()
    results = thread_map(cube, range(40), max_workers=2, tqdm_class=Bar, file=io.StringIO())
    assert results == [x**3 for x in range(40)]
    [pool] = built
    assert pool.stats().rejected == 0
    wait_until(lambda: Bar.made[0].n == 40)  # (updated in done-callbacks, as above)
