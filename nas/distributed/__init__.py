"""Searching on Ray: long-lived evaluation actors, a versioned weight store, a dispatcher.

Importing this package imports Ray; nothing outside it does, so an in-process search never
needs Ray. `nas.experiment.run_search` uses it when ``workers >= 1``.
"""

from nas.distributed.launch import init_ray, start_workers, worker_options
from nas.distributed.pool import RayExecutor
from nas.distributed.weights import WeightStore
from nas.distributed.worker import EvalWorker

__all__ = [
    "EvalWorker",
    "RayExecutor",
    "WeightStore",
    "init_ray",
    "start_workers",
    "worker_options",
]
