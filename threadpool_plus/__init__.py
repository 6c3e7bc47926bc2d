"""threadpool_plus: a drop-in ``ThreadPoolExecutor`` for production.

Change one import and gain a bounded queue, fail-fast submission, threads that scale
between ``min_workers`` and ``max_workers``, drain-or-cancel shutdown and exact counters::

    from threadpool_plus import ThreadPoolExecutor
"""

from __future__ import annotations

from ._errors import PoolOverloaded
from ._executor import ThreadPoolExecutor
from ._failures import TaskFailure
from ._stats import PoolStats

__all__ = ["PoolOverloaded", "PoolStats", "TaskFailure", "ThreadPoolExecutor", "__version__"]

__version__ = "0.1.0"
