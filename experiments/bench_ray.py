"""Benchmark: searching on Ray workers against searching in one process, side by side.

Every process that evaluates (the Ray workers, and the Ray task that hosts the in-process
search) limits XLA to one thread (`ONE_THREAD`, through the job's runtime environment), so each
arm computes on one core. On nb201 (the network `nas search` builds by default) on digits, with
random search (the same architectures in every arm), `repeats` interleaved rounds of four arms:

- ``in_process``: the search loop and its evaluations in one process, Ray out of the loop;
- ``ray_in_flight_1`` and ``ray_in_flight_2``: the loop in this driver, evaluations on one
  worker with 1 or 2 calls in flight;
- ``ray_2_workers``: two workers, 2 calls in flight each, asynchronous updates.

Each arm starts fresh (compiled steps come from a persistent cache), warms the supernet up,
waits for its workers, then times the search loop alone. Reported, as medians over the rounds:

- ``overhead``: (Ray loop seconds - in-process loop seconds) per evaluation, paired within a
  round, in ms and as a percentage of the in-process time per evaluation (target under 5%);
  also each arm's time per evaluation inside the evaluator (a worker's pull and push included)
  and outside it (the loop's own work and Ray's round trips), which other load on the machine
  disturbs less than the difference of two loops;
- ``throughput``: evaluations per second with 1 and 2 workers (2 in flight each), the speedup,
  and the weight store's update staleness with 2 workers;
- ``ranking``: `experiments.ranking`'s check (Kendall tau of shared-weight scores against
  stand-alone training, the same architectures and ground truth) for one process (this
  driver) and for 2 workers that warm up on one worker and train each path through the weight
  store asynchronously, as a 2-worker search does, for `ranking_seeds` supernet seeds (target:
  mean taus within 0.05; the difference is paired by seed). Its network is
  smaller than `experiments.ranking`'s default to keep the run short; the stand-alone
  accuracies are kept under `cache` and reused.

The default run took 14 minutes on a 2-core CPU busy with other jobs, plus 5 minutes for the
stand-alone ground truth on the first run. Run from the repository root: ``python -m
experiments.bench_ray`` (``--quick`` for a smoke run); it starts its own local Ray. The last
line printed is a JSON object of the figures.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import ray
from scipy import stats

from experiments import entry, ranking
from experiments.ground_truth import Standalone, sample_archs, standalone_accuracies
from experiments.rank_metrics import mean_ci
from nas import compile_cache
from nas.config import SearchConfig
from nas.data import load_dataset, load_digits
from nas.distributed import start_workers
from nas.experiment import make_evaluator, make_strategy
from nas.search import search
from nas.space import load_space
from search_spaces import nb201

ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
ARMS = {  # the Ray arms' workers and calls in flight per worker; None: in process
    "in_process": None,
    "ray_in_flight_1": (1, 1),
    "ray_in_flight_2": (1, 2),
    "ray_2_workers": (2, 2),
}


@dataclasses.dataclass(frozen=True)
class Config:
    channels: int = 16  # the nb201 network `nas search` builds by default
    cells: int = 5
    budget: int = 20
    train_steps: int = 20
    warmup_steps: int = 20
    repeats: int = 3
    ranking_archs: int = 30
    ranking_channels: int = 8
    ranking_cells: int = 2
    ranking_epochs: int = 5
    ranking_warmup_steps: int = 500
    ranking_seeds: int = 3
    seed: int = 0
    cache: str = "experiments/results/bench_ray/runs"  # "": keep nothing


QUICK = Config(
    channels=4,
    cells=1,
    budget=4,
    train_steps=2,
    warmup_steps=2,
    repeats=1,
    ranking_archs=3,
    ranking_channels=4,
    ranking_cells=1,
    ranking_epochs=1,
    ranking_warmup_steps=20,
    ranking_seeds=1,
    cache="",
)


def search_config(config: Config, workers: int = 0, in_flight: int = 1) -> SearchConfig:
    """The benchmarked search: random search, so that every arm trains the same architectures."""
    return SearchConfig(
        strategy="random",
        budget=config.budget,
        seed=config.seed,
        channels=config.channels,
        cells=config.cells,
        train_steps=config.train_steps,
        warmup_steps=config.warmup_steps,
        workers=workers,
        in_flight=in_flight,
    )


def timed_search(options: SearchConfig, evaluator, slots: int) -> dict:
    """Runs the search loop over `evaluator` (an evaluator or an executor) and times it.

    The strategy's calls are compiled first, for every batch size the loop may tell at once
    (up to `slots` results and a repeat), so the timed loop compiles nothing.
    """
    space = load_space(options.space, channels=options.channels, cells_per_stage=options.cells)
    strategy = make_strategy(options, space)
    key, ask_key = jax.random.split(jax.random.key(options.seed))  # the loop's key calls too
    archs, state = strategy.ask(ask_key, strategy.init(key), 1)
    for n in range(1, slots + 2):
        strategy.tell(np.repeat(archs, n, axis=0), np.zeros(n), state)
    start = time.perf_counter()
    records = search(
        space, strategy, evaluator, budget=options.budget, seed=options.seed, asynchronous=True
    )
    seconds = time.perf_counter() - start
    trained = [r for r in records if not r.cached]
    return {
        "seconds": seconds,
        "evaluations": len(trained),
        "failed": sum(math.isnan(r.score) for r in trained),
        "eval_seconds": sum(r.seconds for r in trained),  # inside the evaluator
    }


def in_process_search(options: SearchConfig, cache_dir: str) -> dict:
    """The whole search in this process, timed after compiling and warming up."""
    compile_cache.enable(cache_dir)
    space = load_space(options.space, channels=options.channels, cells_per_stage=options.cells)
    evaluator = make_evaluator(options, space, load_dataset(options.dataset))
    evaluator.compile()
    evaluator.warmup()
    return timed_search(options, evaluator, slots=1)


def ray_search(options: SearchConfig, cache_dir: str) -> dict:
    """The search loop here, its evaluations on Ray workers, timed once every worker is up."""
    executor, _ = start_workers(options, cache_dir=cache_dir)
    try:
        ray.get([worker.info.remote() for worker in executor.workers])
        figures = timed_search(options, executor, executor.slots)
    finally:
        store = executor.close()
    return {**figures, **store}


def run_arm(config: Config, arm: str, cache_dir: str) -> dict:
    if ARMS[arm] is None:  # a Ray task only for its process, fresh and on one XLA thread
        task = ray.remote(num_cpus=1, max_calls=1)(in_process_search)
        return ray.get(task.remote(search_config(config), cache_dir))
    workers, in_flight = ARMS[arm]
    return ray_search(search_config(config, workers, in_flight), cache_dir)


def overhead_and_throughput(config: Config, cache_dir: str) -> dict:
    """The four arms, interleaved for `repeats` rounds; medians over the rounds."""
    runs = {arm: [] for arm in ARMS}
    for _ in range(config.repeats):
        for arm in ARMS:
            runs[arm].append(run_arm(config, arm, cache_dir))
            print(arm, {k: round(v, 3) for k, v in runs[arm][-1].items()}, flush=True)

    def median(values) -> float:
        return float(np.median(list(values)))

    per_eval = {arm: [r["seconds"] / r["evaluations"] for r in runs[arm]] for arm in ARMS}
    base = per_eval["in_process"]
    figures = {
        "evaluations": runs["in_process"][0]["evaluations"],
        "failed": sum(r["failed"] for arm in ARMS for r in runs[arm]),
        "in_process_s_per_eval": round(median(base), 4),
    }
    for arm in ("ray_in_flight_1", "ray_in_flight_2"):
        extra = [ray_s - in_s for ray_s, in_s in zip(per_eval[arm], base)]
        figures[f"{arm}_s_per_eval"] = round(median(per_eval[arm]), 4)
        figures[f"{arm}_overhead_ms"] = round(1000 * median(extra), 2)
        figures[f"{arm}_overhead_pct"] = round(100 * median(e / b for e, b in zip(extra, base)), 2)
    figures["evaluator_s_per_eval"] = {  # as timed inside the evaluator, pull and push included
        arm: round(median(r["eval_seconds"] / r["evaluations"] for r in runs[arm]), 4)
        for arm in ARMS
    }
    figures["outside_evaluator_ms_per_eval"] = {  # the loop's own time, Ray's round trips
        arm: round(
            1000 * median((r["seconds"] - r["eval_seconds"]) / r["evaluations"] for r in runs[arm]),
            2,
        )
        for arm in ("in_process", "ray_in_flight_1", "ray_in_flight_2")  # one evaluation at once
    }
    one, two = per_eval["ray_in_flight_2"], per_eval["ray_2_workers"]
    two_runs = runs["ray_2_workers"]
    throughput = {
        "evals_per_s_1_worker": round(median(1 / s for s in one), 3),
        "evals_per_s_2_workers": round(median(1 / s for s in two), 3),
        "speedup_2_workers": round(median(a / b for a, b in zip(one, two)), 3),
        "staleness_mean": round(median(r["staleness_mean"] for r in two_runs), 3),
        "staleness_max": max(r["staleness_max"] for r in two_runs),
        "updates_applied_once": all(
            r["updates"] == r["evaluations"] - r["failed"] and r["duplicates"] == 0
            for arm in ARMS
            if arm != "in_process"
            for r in runs[arm]
        ),
    }
    return {"overhead": figures, "throughput": throughput}


def ranking_config(config: Config) -> ranking.Config:
    return ranking.Config(
        n_archs=config.ranking_archs,
        channels=config.ranking_channels,
        cells_per_stage=config.ranking_cells,
        standalone_epochs=config.ranking_epochs,
        warmup_steps=config.ranking_warmup_steps,
        train_steps=config.train_steps,
        seed=config.seed,
    )


def ground_truth(space, data, archs, rank: ranking.Config, cache: str) -> np.ndarray:
    """Stand-alone accuracies (one seed), kept in the directory `cache` ("": not kept)."""
    name = f"standalone-{space.name}-c{rank.channels}-k{rank.cells_per_stage}.json"
    how = Standalone(rank.standalone_epochs, rank.batch_size, seeds=1)
    runs = standalone_accuracies(space, data, archs, how, Path(cache) / name if cache else None)
    return runs[:, 0]


def worker_scores(archs, rank: ranking.Config, seed: int, cache_dir: str):
    """Shared-weight scores from 2 Ray workers, evaluated as an asynchronous search would."""
    options = SearchConfig(
        budget=len(archs),
        seed=seed,
        channels=rank.channels,
        cells=rank.cells_per_stage,
        train_steps=rank.train_steps,
        warmup_steps=rank.warmup_steps,
        batch_size=rank.batch_size,
        workers=2,
        in_flight=2,
    )
    executor, _ = start_workers(options, cache_dir=cache_dir)
    results = {}
    try:
        for index, arch in enumerate(archs):
            executor.submit(index, arch)
        while executor.pending():
            results.update(executor.poll(block=True))
    finally:
        store = executor.close()
    return [results[i].score for i in range(len(archs))], store


def ranking_check(config: Config, cache_dir: str) -> dict:
    """Kendall tau of one process's and of 2 workers' shared-weight scores against one ground
    truth, for each of `ranking_seeds` supernet seeds; means with 95% intervals, and the
    difference paired by seed."""
    rank = ranking_config(config)
    data = load_digits(seed=rank.seed)
    space = nb201(channels=rank.channels, cells_per_stage=rank.cells_per_stage)
    archs = sample_archs(space, rank.n_archs, rank.seed)
    truth = ground_truth(space, data, archs, rank, config.cache)
    taus, failed, staleness = {"1_process": [], "2_workers": []}, 0, []
    for seed in range(config.ranking_seeds):
        single = ranking.shared_scores(space, data, archs, rank, {}, seed)
        workers, store = worker_scores(archs, rank, seed, cache_dir)
        taus["1_process"].append(float(stats.kendalltau(truth, single)[0]))
        taus["2_workers"].append(float(stats.kendalltau(truth, workers)[0]))
        failed += int(np.isnan(single).sum() + np.isnan(workers).sum())
        staleness.append((store["staleness_mean"], store["staleness_max"]))
    difference = np.subtract(taus["2_workers"], taus["1_process"])
    mean, half = mean_ci(difference)
    figures = {
        "space": f"nb201(channels={rank.channels}, cells_per_stage={rank.cells_per_stage})",
        "n_archs": len(archs),
        "standalone_epochs": rank.standalone_epochs,
        "warmup_steps": rank.warmup_steps,
        "seeds": config.ranking_seeds,
    }
    for arm, values in taus.items():
        figures[f"kendall_tau_{arm}"] = [round(t, 4) for t in values]
        figures[f"kendall_tau_{arm}_mean"] = round(float(np.mean(values)), 4)
    return {
        **figures,
        "tau_difference_mean": round(mean, 4),
        "tau_difference_ci95": None if half is None else round(half, 4),
        "within_0.05": bool(abs(mean) <= 0.05),
        "failed": failed,
        "staleness_mean": round(float(np.mean([s[0] for s in staleness])), 3),
        "staleness_max": max(s[1] for s in staleness),
    }


def run(config: Config) -> dict:
    start = time.perf_counter()
    ray.init(
        num_cpus=2,  # two workers of one CPU each
        include_dashboard=False,
        runtime_env={"env_vars": {"XLA_FLAGS": ONE_THREAD}},
    )
    try:
        with tempfile.TemporaryDirectory() as scratch:
            cache_dir = str(Path(config.cache) / "jax_cache") if config.cache else scratch
            figures = {
                "space": f"nb201(channels={config.channels}, cells_per_stage={config.cells})",
                "budget": config.budget,
                "train_steps": config.train_steps,
                "repeats": config.repeats,
                **overhead_and_throughput(config, cache_dir),
                "ranking": ranking_check(config, cache_dir),
            }
    finally:
        ray.shutdown()
    return {**figures, "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
