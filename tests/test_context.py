"""Where a task runs: ``context="thread"`` (the default, as the standard library) or
``"copy"``, pool-wide or per call through ``pool.options(...)``, and the task's name."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

from tests._subprocess import run_script
from tests._support import DEADLINE, wait_until
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, ThreadPoolExecutor

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def seen() -> str:
    return request_id.get("<unset>")


def set_and_read(value: str) -> str:
    before = seen()
    request_id.set(value)
    return before


def in_context(value: str, fn: Callable[[], T]) -> T:
    """Calls ``fn`` in a fresh context where ``request_id`` is ``value``."""

    def run() -> T:
        request_id.set(value)
        return fn()

    return contextvars.Context().run(run)


# -- context="thread", the default --------------------------------------------------------


@pytest.mark.parametrize("cls", [concurrent.futures.ThreadPoolExecutor, ThreadPoolExecutor])
def test_by_default_tasks_run_in_the_threads_context(cls: type[Any]) -> None:
    # The standard library's behaviour, side by side: the submitter's values do not arrive,
    # and what a task sets stays with its thread for the next task there.
    with cls(1) as pool:
        assert in_context("caller", lambda: pool.submit(seen).result()) == "<unset>"
        assert pool.submit(set_and_read, "first").result() == "<unset>"
        assert pool.submit(seen).result() == "first"


def test_the_initializer_runs_in_the_workers_context(make_pool: PoolFactory) -> None:
    pool = make_pool(1, initializer=request_id.set, initargs=("from-initializer",))
    assert pool.submit(seen).result() == "from-initializer"
    copying = make_pool(1, initializer=request_id.set, initargs=("init",), context="copy")
    assert copying.submit(seen).result() == "<unset>"  # a copy of the submitter's: empty
    assert copying.options(context="thread").submit(seen).result() == "init"


def test_a_thread_never_starts_in_the_context_of_whoever_started_it(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(2)
    # The submit that starts the thread runs in a context where request_id is set.
    assert in_context("starter", lambda: pool.submit(seen).result()) == "<unset>"


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info < (3, 14), reason="thread_inherit_context is new in 3.14")
def test_threads_start_empty_even_where_threads_inherit_their_starters_context() -> None:
    # What free-threaded 3.14 does by default: a Thread copies its starter's context.
    script = """
import contextvars, threading
from threadpool_plus import ThreadPoolExecutor
var = contextvars.ContextVar("var")
var.set("starter")
seen = []
plain = threading.Thread(target=lambda: seen.append(var.get("<unset>")))
plain.start(); plain.join()
with ThreadPoolExecutor(1) as pool:
    print(seen[0], pool.submit(var.get, "<unset>").result())
"""
    output = run_script(script, options=("-X", "thread_inherit_context=1"))
    assert output.split() == ["starter", "<unset>"]


# -- context="copy" -------------------------------------------------------------------------


def test_copy_runs_each_task_in_a_copy_of_its_submitters_context(make_pool: PoolFactory) -> None:
    pool = make_pool(1, context="copy")
    assert pool.context == "copy"
    assert in_context("a", lambda: pool.submit(seen).result()) == "a"
    assert in_context("b", lambda: pool.try_submit(seen).result()) == "b"
    assert in_context("c", lambda: list(pool.map(lambda _: seen(), range(3)))) == ["c"] * 3
    lazy = in_context("d", lambda: list(pool.map(lambda _: seen(), range(5), buffersize=2)))
    assert lazy == ["d"] * 5


def test_a_copied_tasks_changes_leak_nowhere(make_pool: PoolFactory) -> None:
    pool = make_pool(1, context="copy")

    def two_tasks() -> tuple[str, str, str]:
        first = pool.submit(set_and_read, "changed by the task").result()
        second = pool.submit(seen).result()  # same thread, next task
        return first, second, seen()

    assert in_context("caller", two_tasks) == ("caller", "caller", "caller")


def test_run_in_executor_copies_with_a_copy_pool(make_pool: PoolFactory) -> None:
    plain, copying = make_pool(1), make_pool(1, context="copy")

    async def main() -> tuple[str, str]:
        request_id.set("coroutine")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(plain, seen), await loop.run_in_executor(copying, seen)

    assert asyncio.run(main()) == ("<unset>", "coroutine")


# -- options(context=...) ------------------------------------------------------------------


def test_options_copy_and_thread_override_the_pools_default(make_pool: PoolFactory) -> None:
    plain, copying = make_pool(1), make_pool(1, context="copy")
    assert in_context("x", lambda: plain.options(context="copy").submit(seen).result()) == "x"
    thread = copying.options(context="thread")
    assert in_context("x", lambda: thread.submit(seen).result()) == "<unset>"
    inherit = copying.options(name="named")  # context=None: the pool's "copy"
    assert in_context("y", lambda: inherit.submit(seen).result()) == "y"


def test_one_context_object_serves_many_concurrent_tasks(make_pool: PoolFactory) -> None:
    shared = contextvars.Context()
    shared.run(request_id.set, "shared")
    tasks = 4
    barrier = threading.Barrier(tasks)

    def meet() -> str:
        barrier.wait(DEADLINE)  # all four run in it at once: each in a copy of its own
        request_id.set("changed")
        return seen()

    view = make_pool(tasks).options(context=shared)
    assert [f.result() for f in [view.submit(meet) for _ in range(tasks)]] == ["changed"] * 4
    assert shared.run(seen) == "shared"  # copies: the object itself never changed


def test_a_views_map_copies_for_each_item_and_never_raises_overloaded(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool(1, max_queue_size=1, submit_timeout=0)
    view = pool.options(context="copy")
    assert in_context("m", lambda: list(view.map(lambda _: seen(), range(20)))) == ["m"] * 20
    assert pool.stats().rejected == 0


def test_a_view_submits_through_the_pools_submit(make_pool: PoolFactory) -> None:
    seen_by_submit: list[Callable[..., Any]] = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            seen_by_submit.append(fn)
            return super().submit(fn, *args, **kwargs)

    with Recording(1) as pool:
        view = pool.options(context="copy", name="job")
        view.submit(seen).result()
        list(view.map(lambda _: seen(), range(3)))
    assert len(seen_by_submit) == 4


def test_a_views_try_submit_still_fails_fast(make_pool: PoolFactory) -> None:
    gate = threading.Event()
    pool = make_pool(1, max_queue_size=1)
    pool.submit(gate.wait)
    pool.submit(gate.wait)
    with pytest.raises(PoolOverloaded):
        pool.options(name="x").try_submit(seen)
    gate.set()


def test_fns_own_keyword_arguments_pass_through(make_pool: PoolFactory) -> None:
    view = make_pool(1).options(name="kw")

    def echo(*, context: str, name: str) -> tuple[str, str]:
        return context, name

    assert view.submit(echo, context="c", name="n").result() == ("c", "n")


# -- names -----------------------------------------------------------------------------------


def fail() -> None:
    raise ValueError("boom")


def test_a_tasks_name_labels_its_failure_record_and_log(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    pool = make_pool(1)
    future = pool.options(name="fetch-user").submit(fail)
    with pytest.raises(ValueError, match="boom"):
        future.result()
    unnamed = pool.options(context="copy").submit(fail)
    with pytest.raises(ValueError, match="boom"):
        unnamed.result()
    names = [record.task for record in pool.recent_failures()]
    assert names == ["fetch-user", "fail"]  # the default: the callable's qualified name
    # The option machinery leaves no frame of its own in the traceback.
    assert "_task.py" not in pool.recent_failures()[0].traceback
    with caplog.at_level(logging.ERROR, logger="threadpool_plus"):
        failing = pool.options(name="logged").submit(fail)
        wait_until(failing.done)
        del failing  # collected unretrieved: logged with the task's name
        gc.collect()
    assert any(getattr(r, "task", None) == "logged" for r in caplog.records)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"context": "inherit"}, ValueError, "thread"),
        ({"context": 3}, TypeError, "context"),
        ({"name": 5}, TypeError, "name"),
        ({"name": ""}, ValueError, "empty"),
    ],
)
def test_bad_options_raise_at_the_call(
    make_pool: PoolFactory, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make_pool(1).options(**kwargs)


@pytest.mark.parametrize(
    ("context", "error"),
    [("inherit", ValueError), (None, TypeError), (contextvars.Context(), TypeError)],
)
def test_a_bad_pool_wide_context_raises_at_construction(context: Any, error: type) -> None:
    with pytest.raises(error, match="context"):
        ThreadPoolExecutor(1, context=context)


def test_a_view_refuses_a_non_callable(make_pool: PoolFactory) -> None:
    view = make_pool(1).options(name="x")
    for call in (view.submit, view.try_submit, view.map):
        with pytest.raises(TypeError, match="callable"):
            call(42, [1])  # type: ignore[arg-type]
