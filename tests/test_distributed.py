"""Searching on Ray workers: every asked architecture scored once, through crashes and failures.

One local Ray (2 CPUs) serves the whole module; the workers share a compilation cache, so only
the first test pays for compiling the supernet.
"""

import dataclasses
import functools
import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from flax import nnx

ray = pytest.importorskip("ray")

from nas.checkpoint import load_supernet  # noqa: E402
from nas.cli import main  # noqa: E402
from nas.config import SearchConfig  # noqa: E402
from nas.distributed import WeightStore, start_workers, worker_options  # noqa: E402
from nas.evaluators import EvalResult  # noqa: E402
from nas.experiment import make_evaluator, resume_search, run_search  # noqa: E402
from nas.rundir import RunDir  # noqa: E402
from nas.search import search  # noqa: E402
from nas.space import load_space  # noqa: E402
from nas.strategies import RandomSearch  # noqa: E402

TINY = dict(channels=4, cells=1, warmup_steps=5, train_steps=2, batch_size=32)
TINY_FLAGS = [
    "--channels", "4", "--cells", "1", "--warmup-steps", "5", "--train-steps", "2",
    "--batch-size", "32", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False)
    # The evaluator factories below travel to the workers by value, not as test-module imports.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def events(path) -> list[dict]:
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]


def assert_each_index_once(records_or_events, budget):
    indices = sorted(r["index"] if isinstance(r, dict) else r.index for r in records_or_events)
    assert indices == list(range(budget))


def run(config, executor, tmp_path, on_record=None, strategy=None):
    """A Ray search with `executor`, logged to tmp_path/run; returns the records and stats."""
    space = load_space(config.space, channels=config.channels, cells_per_stage=config.cells)
    run_dir = RunDir(tmp_path / "run", {})
    try:
        records = search(
            space,
            strategy or RandomSearch(space),
            executor,
            budget=config.budget,
            seed=config.seed,
            run_dir=run_dir,
            on_record=on_record,
            asynchronous=True,
        )
    finally:
        stats = executor.close()
        run_dir.close()
    assert_each_index_once(
        [e for e in events(tmp_path / "run") if e["event"] == "eval"], config.budget
    )
    return records, stats


def test_two_workers_score_every_asked_architecture_once(local_ray, tmp_path, compile_cache):
    out = tmp_path / "run"
    args = ["search", "--workers", "2", "--budget", "12", "--population", "4", "--tournament", "2"]
    args += ["--compile-cache", str(compile_cache), "--out", str(out), *TINY_FLAGS]
    assert main(args) == 0
    log = events(out)
    evals = [e for e in log if e["event"] == "eval"]
    assert_each_index_once(evals, 12)
    assert all(e["error"] is None and 0.0 <= e["score"] <= 1.0 for e in evals)
    (workers,) = [e for e in log if e["event"] == "workers"]
    trained = sum(not e["cached"] for e in evals)
    assert workers["updates"] == workers["version"] == trained  # every update applied once
    assert workers["retries"] == 0 and workers["duplicates"] == 0
    assert json.loads((out / "results.json").read_text())["evaluations"] == 12


def crash_once(config, space, data, *, planned_evaluations=None, marker):
    """An evaluator whose first evaluation, anywhere, kills its worker process after training."""
    evaluator = make_evaluator(config, space, data, planned_evaluations=planned_evaluations)
    train_path = evaluator.train_path

    def train_then_crash(arch, stream=None):
        loss = train_path(arch, stream)
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # before the push: the update and the result are lost
        return loss

    evaluator.train_path = train_then_crash
    return evaluator


def test_a_worker_that_dies_mid_evaluation_is_restarted_and_loses_nothing(
    local_ray, tmp_path, compile_cache
):
    config = SearchConfig(workers=2, budget=8, **TINY)
    factory = functools.partial(crash_once, marker=str(tmp_path / "crashed"))
    executor, _ = start_workers(config, cache_dir=str(compile_cache), make_evaluator=factory)
    workers = executor.workers
    records, stats = run(config, executor, tmp_path)
    assert (tmp_path / "crashed").exists()
    # the evaluation that crashed, and the one queued behind it on the same worker
    assert 1 <= stats["retries"] <= config.in_flight
    assert stats["replaced"] == 0 and stats["lost_evaluations"] == 0
    assert all(r.error is None and 0.0 <= r.score <= 1.0 for r in records)
    assert stats["updates"] == sum(not r.cached for r in records) and stats["duplicates"] == 0
    assert executor.workers == workers  # Ray restarted the crashed actor in place


@pytest.mark.slow
def test_a_worker_killed_for_good_is_replaced(local_ray, tmp_path, compile_cache):
    config = SearchConfig(workers=2, budget=10, **TINY)
    executor, _ = start_workers(config, cache_dir=str(compile_cache))
    first = executor.workers[0]
    seen = []

    def kill_worker_0(record, best):
        seen.append(record)
        if len(seen) == 3:
            ray.kill(first, no_restart=True)

    records, stats = run(config, executor, tmp_path, on_record=kill_worker_0)
    assert stats["replaced"] >= 1 and stats["retries"] >= 1
    assert executor.workers[0] is not first
    assert all(r.error is None and math.isfinite(r.score) for r in records)


def flaky(config, space, data, *, planned_evaluations=None):
    """An evaluator that raises on architectures starting with op 0 and diverges on op 1."""
    evaluator = make_evaluator(config, space, data, planned_evaluations=planned_evaluations)
    train_path = evaluator.train_path

    def guarded(arch, stream=None):
        if arch[0] == 0:
            raise FloatingPointError("injected failure")
        if arch[0] == 1:
            return float("nan")
        return train_path(arch, stream)

    evaluator.train_path = guarded
    return evaluator


@pytest.mark.slow
def test_failed_evaluations_are_recorded_and_the_search_goes_on(local_ray, tmp_path, compile_cache):
    config = SearchConfig(workers=2, budget=16, **TINY)
    executor, _ = start_workers(config, cache_dir=str(compile_cache), make_evaluator=flaky)
    records, stats = run(config, executor, tmp_path)
    evaluated = [r for r in records if not r.cached]
    raised = [r for r in evaluated if r.arch[0] == 0]
    diverged = [r for r in evaluated if r.arch[0] == 1]
    fine = [r for r in evaluated if r.arch[0] > 1]
    assert raised and diverged and fine
    assert all(r.error == "FloatingPointError: injected failure" for r in raised)
    assert all(r.error == "training loss nan" for r in diverged)
    assert all(math.isnan(r.score) for r in raised + diverged)
    assert all(r.error is None and 0.0 <= r.score <= 1.0 for r in fine)
    assert stats["updates"] == len(fine) and stats["skipped"] == len(raised + diverged)


def test_the_weight_store_versions_updates_and_applies_each_ticket_once(local_ray):
    store = ray.remote(WeightStore).remote()
    weights = [np.zeros((2, 3), np.float32), np.ones(4, np.float32)]
    ray.get(store.initialize.remote([weights], [[np.zeros(1)]]))
    version, ref = ray.get(store.pull.remote())
    assert version == 0 and isinstance(ref, ray.ObjectRef)
    delta = [np.full((2, 3), 0.5, np.float32), np.full(4, -1.0, np.float32)]
    assert ray.get(store.push.remote(0, delta, 0)) == 1
    assert ray.get(store.push.remote(1, delta, 0)) == 2  # a stale update is still applied
    assert ray.get(store.push.remote(1, delta, 0)) == 2  # a re-run ticket is not
    version, ref = ray.get(store.pull.remote())
    pulled = ray.get(ref)
    assert version == 2 and (pulled[0] == 1.0).all() and (pulled[1] == -1.0).all()
    assert ray.get(store.pull.remote())[1] == ref  # one put per version
    stats = ray.get(store.stats.remote())
    assert stats["staleness_max"] == 1 and stats["duplicates"] == 1

    ordered = WeightStore(ordered=True)  # called directly, not as an actor
    ordered.initialize([[np.zeros(2, np.float32)]], [[]])
    assert ordered.push(1, [np.ones(2, np.float32)], 0) == 0  # held until ticket 0 arrives
    assert ordered.push(0, None, -1) == 1  # ticket 0 failed; ticket 1 goes through
    assert ordered.push(2, [np.ones(2, np.float32)], 1) == 2
    assert (ray.get(ordered.pull()[1])[0] == 2.0).all() and ordered.stats()["skipped"] == 1


def test_few_shot_copies_are_versioned_apart(local_ray):
    store = WeightStore()
    store.initialize([[np.zeros(2, np.float32)], [np.ones(2, np.float32)]], [[0], [1]])
    assert store.push(0, [np.ones(2, np.float32)], 0, copy=1) == 1
    assert store.push(1, [np.ones(2, np.float32)], 0, copy=1) == 2
    (v0, w0), (v1, w1) = store.pull_all()
    assert (v0, v1) == (0, 2) and (ray.get(w0)[0] == 0).all() and (ray.get(w1)[0] == 3).all()
    assert store.initial_opt_state(1) == [1] and store.stats()["staleness_max"] == 1
    with pytest.raises(ValueError, match="2 copies of the weights and 1 optimizer states"):
        store.initialize([[np.zeros(2)], [np.zeros(2)]], [[]])


@pytest.mark.slow
def test_sync_rounds_repeat_exactly_with_the_same_seed(local_ray, tmp_path, compile_cache):
    """With few-shot weights, too: the store holds a copy per op of the first edge."""
    config = SearchConfig(
        workers=2, sync=True, budget=12, seed=3, population=4, tournament=2, few_shot=True,
        **TINY, compile_cache=str(compile_cache),
    )  # fmt: skip
    runs = {}
    for name in ("a", "b"):
        runs[name], _ = run_search(
            dataclasses.replace(config, out=str(tmp_path / name)), progress=False
        )
    assert [(r.arch, r.score) for r in runs["a"]] == [(r.arch, r.score) for r in runs["b"]]
    assert len({r.arch for r in runs["a"]}) > 4  # evolution went past its first population
    (stats,) = [e for e in events(tmp_path / "a") if e["event"] == "workers"]
    assert stats["copies"] == 5 and stats["updates"] == sum(not r.cached for r in runs["a"])
    copies = [load_supernet(tmp_path / "a", [op, 1, 1, 1, 1, 1]) for op in range(5)]
    params = [jax.tree.leaves(nnx.state(net, nnx.Param)) for net in copies]
    for other in params[1:]:  # the checkpoint kept 5 copies, each trained on its own
        assert any(not np.array_equal(a, b) for a, b in zip(params[0], other, strict=True))


def test_the_in_process_path_does_not_import_ray():
    code = "import sys, nas, nas.cli, nas.experiment; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_ray_options_are_checked():
    with pytest.raises(ValueError, match="workers must be at least 0"):
        SearchConfig(workers=-1)
    with pytest.raises(ValueError, match="in_flight must be at least 1"):
        SearchConfig(in_flight=0)
    with pytest.raises(ValueError, match="gpus_per_worker must be at least 0, got -1"):
        SearchConfig(gpus_per_worker=-1)


def test_workers_sharing_a_gpu_get_their_share_of_its_memory():
    options = worker_options(SearchConfig(workers=4, gpus_per_worker=0.25, tpus_per_worker=0))
    env = options["runtime_env"]["env_vars"]
    assert options["num_gpus"] == 0.25 and "resources" not in options
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == env["XLA_CLIENT_MEM_FRACTION"] == "0.237"
    whole = worker_options(SearchConfig(workers=2, gpus_per_worker=1, tpus_per_worker=4))
    assert "runtime_env" not in whole and whole["resources"] == {"TPU": 4}


def test_a_search_on_workers_killed_mid_run_resumes_and_loses_nothing(
    local_ray, tmp_path, compile_cache
):
    out, budget = tmp_path / "run", 10
    flags = ["--workers", "1", "--budget", str(budget), "--checkpoint-every", "2"]
    flags += ["--strategy", "evolution", "--population", "4", "--tournament", "2"]
    command = [sys.executable, "-m", "nas", "search", *flags, *TINY_FLAGS]
    command += ["--compile-cache", str(compile_cache), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        log = out / "events.jsonl"
        if log.exists() and log.read_text().count('"event": "eval"') >= 5:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the search ended before it was killed"
    os.kill(process.pid, signal.SIGKILL)  # the driver; its workers die with it
    process.wait()
    before = [e for e in events(out) if e["event"] == "eval"]

    records, _ = resume_search(out, {"workers": 1}, progress=False)

    log = events(out)
    evals = [e for e in log if e["event"] == "eval"]
    assert_each_index_once(evals, budget)
    assert evals[: len(before)] == before  # nothing logged before the kill is lost or redone
    (resumed,) = [e for e in log if e["event"] == "resume"]
    assert resumed["checkpoint"] is not None and resumed["checkpoint"] >= 2
    assert [r.index for r in records] == list(range(budget))


class DecisionSum:
    """An evaluator of a few microseconds, as a tabular benchmark's: the sum of the decisions."""

    def __init__(self, config, space, data, planned_evaluations=None):
        pass

    def evaluate(self, arch):
        return EvalResult(float(np.sum(arch)), 0, 0.0)


def test_short_evaluations_go_several_to_a_call(local_ray, tmp_path, compile_cache):
    config = SearchConfig(workers=2, budget=24, in_flight=2, per_call=4, **TINY)
    executor, loss = start_workers(config, make_evaluator=DecisionSum)
    assert loss is None and executor.store is None and executor.slots == 16
    records, stats = run(config, executor, tmp_path)
    assert all(r.score == sum(r.arch) for r in records)
    trained = sum(not r.cached for r in records)
    assert stats["calls"] == math.ceil(trained / 4)  # full calls; a short one only at the end
