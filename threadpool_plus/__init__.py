"""threadpool_plus: a drop-in ``ThreadPoolExecutor`` for production.

Change one import and gain a bounded queue, fail-fast submission, threads that scale
between ``min_workers`` and ``max_workers``, drain-or-cancel shutdown and exact counters::

    from threadpool_plus import ThreadPoolExecutor
"""

from __future__ import annotations

from ._errors import PoolOverloaded, TaskCancelled, TaskTimeout
from ._executor import ThreadPoolExecutor
from ._failures import TaskFailure
from ._future import TrackedFuture as TaskFuture
from ._handle import TaskHandle, current_task
from ._options import TaskOptions
from ._report import DroppedTask, ShutdownReport
from ._stats import PoolStats

__all__ = [
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

__version__ = "0.1.0"
