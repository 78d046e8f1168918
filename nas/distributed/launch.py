"""Starting the distributed part of a search: Ray itself, the weight store and the workers."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from nas.config import SearchConfig
from nas.distributed.pool import RayExecutor
from nas.distributed.weights import WeightStore
from nas.distributed.worker import EvalWorker

# How often Ray restarts a crashed worker actor before the executor replaces it.
MAX_RESTARTS = 3


def init_ray(config: SearchConfig) -> bool:
    """Connects this driver to Ray; returns True if it started Ray (and should shut it down).

    Call it before JAX initialises a backend in the driver. With ``config.address`` or
    ``$RAY_ADDRESS`` it joins that cluster; otherwise it starts a local Ray with
    ``workers x cpus_per_worker`` CPUs. A Ray already initialised in this process is used as is.
    """
    if ray.is_initialized():
        return False
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        cpus = max(math.ceil(config.workers * config.cpus_per_worker), 1)
        ray.init(num_cpus=cpus, include_dashboard=False)
    return True


def worker_options(config: SearchConfig) -> dict:
    """The Ray actor options of one worker: its resources, restarts and JAX environment.

    A worker with a fraction of a GPU shares it with other JAX processes, so it must neither
    preallocate the usual 75% of the GPU's memory nor grow past its share: its memory fraction
    is set under both of the names JAX has read (`XLA_PYTHON_CLIENT_MEM_FRACTION`, and
    `XLA_CLIENT_MEM_FRACTION` in newer releases), with a 5% margin for the CUDA context.
    """
    options = {
        "num_cpus": config.cpus_per_worker,
        "num_gpus": config.gpus_per_worker,
        "max_restarts": MAX_RESTARTS,
        "max_task_retries": 0,  # the executor re-queues, on any worker
    }
    if config.tpus_per_worker:
        options["resources"] = {"TPU": config.tpus_per_worker}
    if 0 < config.gpus_per_worker < 1:
        fraction = f"{0.95 * config.gpus_per_worker:.3f}"
        env = {
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
            "XLA_PYTHON_CLIENT_MEM_FRACTION": fraction,
            "XLA_CLIENT_MEM_FRACTION": fraction,
        }
        options["runtime_env"] = {"env_vars": env}
    return options


def start_workers(
    config: SearchConfig,
    *,
    cache_dir: str | None = None,
    make_evaluator: Callable | None = None,
) -> tuple[RayExecutor, float | None]:
    """Creates the weight store and ``config.workers`` workers, and warms the supernet up.

    The store runs on the driver's node. The warm-up runs on the first worker that finishes it
    (worker 0 unless it dies), which then initializes the store; the other workers build and
    compile meanwhile. Each worker's learning-rate schedule plans for its share of the budget.

    Args:
      config: the search's options; ``config.workers`` must be at least 1.
      cache_dir: the workers' persistent compilation cache: a folder, None for each node's
        default, ``"none"`` for no cache (`nas.compile_cache.resolve`).
      make_evaluator: builds each worker's evaluator (see `EvalWorker`).

    Returns:
      The executor, and the mean warm-up loss (None without shared weights).
    """
    if config.workers < 1:
        raise ValueError(f"start_workers needs workers >= 1, got {config.workers}")
    name = f"nas-weights-{uuid.uuid4().hex[:12]}"
    # The store lives on the driver's node: a search cannot outlive its driver anyway, so the
    # loss of any other node must not take the weights with it.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    store = (
        ray.remote(WeightStore)
        .options(num_cpus=0, name=name, scheduling_strategy=here)
        .remote(ordered=config.sync)
    )
    actor = ray.remote(EvalWorker).options(**worker_options(config))
    planned = math.ceil(config.budget / config.workers)

    def make(i: int):
        return actor.remote(
            config,
            name,
            planned_evaluations=planned,
            cache_dir=cache_dir,
            make_evaluator=make_evaluator,
        )

    workers = [make(i) for i in range(config.workers)]
    loss, errors = None, []
    for worker in workers:
        try:
            loss = ray.get(worker.warmup.remote())
            break
        except ray.exceptions.RayActorError as error:
            errors.append(error)
    else:
        for handle in [*workers, store]:
            ray.kill(handle)
        raise RuntimeError(f"no Ray worker could warm the supernet up: {errors[-1]}")
    if loss is None:  # no shared weights to keep
        ray.kill(store)
        store = None
    executor = RayExecutor(
        workers,
        store=store,
        in_flight=config.in_flight,
        sync=config.sync,
        per_call=config.per_call,
        replace=make,
    )
    return executor, loss
