"""The public surface: exported names, types and drop-in identity."""

from __future__ import annotations

import concurrent.futures
import importlib.resources

import pytest

import threadpool_plus
from tests._subprocess import run_script
from tests.conftest import PoolFactory
from threadpool_plus import PoolOverloaded, PoolStats, ThreadPoolExecutor


def test_exported_names_are_pinned() -> None:
    """Adding or removing a public name is a deliberate change to this list."""
    assert sorted(threadpool_plus.__all__) == [
        "DroppedTask",
        "PoolOverloaded",
        "PoolStats",
        "ShutdownReport",
        "TaskCancelled",
        "TaskFailure",
        "TaskFuture",
        "TaskHandle",
        "TaskOptions",
        "TaskTimeout",
        "ThreadPoolExecutor",
        "__version__",
        "current_task",
    ]
    for name in threadpool_plus.__all__:
        assert hasattr(threadpool_plus, name)


def test_version_is_a_string() -> None:
    assert isinstance(threadpool_plus.__version__, str)
    assert threadpool_plus.__version__.count(".") >= 2


def test_package_is_typed() -> None:
    assert importlib.resources.files("threadpool_plus").joinpath("py.typed").is_file()


def test_import_needs_no_third_party_package() -> None:
    """Importing the package imports nothing outside the standard library: no
    prometheus_client, opentelemetry or dask until their integration is imported. In a
    fresh interpreter, since the suite itself imports all of them."""
    out = run_script(
        """
        import sys
        import sysconfig
        before = set(sys.modules)
        import threadpool_plus
        # The standard library by name, or by where it lives (a distribution may add
        # modules of its own there: Debian's _missing_stdlib_info, _sysconfigdata_*).
        paths = sysconfig.get_paths()
        homes = (paths["stdlib"], paths["platstdlib"])
        sites = (paths["purelib"], paths["platlib"])  # (a venv's are inside platstdlib)
        def third_party(name):
            if name in sys.stdlib_module_names or name == "threadpool_plus":
                return False
            where = getattr(sys.modules[name], "__file__", None) or ""
            return where.startswith(sites) or not where.startswith(homes)
        new = {name.partition(".")[0] for name in set(sys.modules) - before}
        print(sorted(filter(third_party, new)))
        """
    )
    assert out == "[]\n"


def test_is_a_standard_thread_pool(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    assert isinstance(pool, concurrent.futures.ThreadPoolExecutor)
    assert isinstance(pool, concurrent.futures.Executor)


def test_pool_overloaded_is_a_runtime_error() -> None:
    error = PoolOverloaded("web", 8)
    assert isinstance(error, RuntimeError)
    assert "web" in str(error)
    assert "8" in str(error)
    assert (error.pool_name, error.capacity) == ("web", 8)


def test_pool_overloaded_pickles() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(PoolOverloaded("web", 8)))
    assert (error.pool_name, error.capacity, str(error)) == (
        "web",
        8,
        str(PoolOverloaded("web", 8)),
    )


def test_stats_is_frozen(make_pool: PoolFactory) -> None:
    stats = make_pool(2).stats()
    assert isinstance(stats, PoolStats)
    with pytest.raises(AttributeError):
        stats.submitted = 3  # type: ignore[misc]


def test_max_workers_private_name_reads_current_limit(make_pool: PoolFactory) -> None:
    """Third-party code reads ``pool._max_workers``; it follows ``resize()``."""
    pool = make_pool(3)
    assert pool._max_workers == 3
    pool.resize(max_workers=5)
    assert pool._max_workers == 5


def test_default_max_workers_matches_the_stdlib() -> None:
    std = concurrent.futures.ThreadPoolExecutor()
    try:
        with ThreadPoolExecutor() as pool:
            assert pool.stats().max_workers == std._max_workers
    finally:
        std.shutdown()


def test_default_names_are_unique() -> None:
    with ThreadPoolExecutor(1) as first, ThreadPoolExecutor(1) as second:
        assert first.name.startswith("ThreadPoolExecutor-")
        assert first.name != second.name


def test_name_defaults_to_the_thread_name_prefix() -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="ingest") as pool:
        assert pool.name == "ingest"


def test_repr_shows_name_and_load(make_pool: PoolFactory) -> None:
    pool = make_pool(4, max_queue_size=10, name="reports")
    text = repr(pool)
    assert "'reports'" in text
    assert "/4" in text
    assert "/10" in text
