"""A search killed at any point resumes from its run directory to the same result."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from flax import nnx

from nas.checkpoint import Checkpoints, load_supernet
from nas.config import SearchConfig
from nas.evaluators import EvalResult
from nas.experiment import logged_records, logged_tells, resume_search, run_search
from nas.rundir import RunDir, read_events
from nas.search import Resume, search
from nas.strategies import RegularizedEvolution
from search_spaces import nb201

OPTIONS = {
    "space": "nb201",
    "channels": 4,
    "cells": 1,
    "warmup_steps": 5,
    "train_steps": 2,
    "budget": 10,
    "checkpoint_every": 3,
    "strategy": "evolution",
    "population": 4,
    "tournament": 2,
}


def evaluations(run_dir) -> dict[int, tuple]:
    """Each logged evaluation's (architecture, score, cached), by index; each index once."""
    evals = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "eval"]
    indices = [e["index"] for e in evals]
    assert sorted(indices) == list(range(len(indices))), f"indices logged: {indices}"
    return {e["index"]: (e["arch"], e["score"], e["cached"]) for e in evals}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A search that ran to the end without interruption."""
    out = tmp_path_factory.mktemp("finished")
    run_search(SearchConfig(**OPTIONS, out=str(out)), progress=False)
    return out


def test_a_search_killed_mid_run_resumes_to_the_same_result(finished, tmp_path):
    out = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items()]
    command = [sys.executable, "-m", "nas", "search", *flags, "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    events, deadline = out / "events.jsonl", time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if events.exists() and events.read_text().count('"event": "eval"') >= 5:
            break
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.fail(f"the search ended before it was killed:\n{process.stderr.read().decode()}")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = len(evaluations(out))
    assert 5 <= killed_at < OPTIONS["budget"]

    records, _ = resume_search(out, {"budget": OPTIONS["budget"]}, progress=False)

    assert len(records) == OPTIONS["budget"]
    assert evaluations(out) == evaluations(finished)
    assert _results(out) == _results(finished)
    events = read_events(out / "events.jsonl")
    resumes = [e for e in events if e["event"] == "resume"]
    assert len(resumes) == 1 and resumes[0]["logged"] == killed_at
    told = [i for e in events if e["event"] == "tell" for i in e["indices"]]
    asked = {i for e in events if e["event"] == "ask" for i in e["indices"]}
    assert sorted(told) == list(range(OPTIONS["budget"])) == sorted(asked)  # told once each
    best = json.loads((out / "best.json").read_text())
    assert best["top"] == json.loads((out / "results.json").read_text())["top"]


def test_options_that_differ_from_the_runs_are_named(finished):
    with pytest.raises(ValueError, match=r"budget \(the run's 10, given 11\); seed"):
        resume_search(finished, {"budget": 11, "seed": 3, "space": "nb201"}, progress=False)


def test_a_damaged_event_log_loses_no_evaluation(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    lines = (out / "events.jsonl").read_text().splitlines(keepends=True)
    evals = [i for i, line in enumerate(lines) if '"event": "eval"' in line]
    lines[evals[1]] = "{not json\n"  # before every kept checkpoint: the search restarts
    lines[evals[-1]] = lines[evals[-1]][:25]  # a write cut short by a crash
    (out / "events.jsonl").write_text("".join(lines))

    with pytest.warns(UserWarning, match="not a complete event"):
        resume_search(out, progress=False)

    assert evaluations(out) == evaluations(finished)


def test_an_unreadable_checkpoint_falls_back_to_the_one_before(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    steps = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    shutil.rmtree(out / "checkpoints" / str(steps[-1]) / "state")
    before = (out / "events.jsonl").read_text()

    with pytest.warns(UserWarning, match=f"checkpoint .*{steps[-1]} cannot be read"):
        records, _ = resume_search(out, progress=False)

    logged = (out / "events.jsonl").read_text()[len(before) :]
    assert '"event": "eval"' not in logged  # every evaluation came from the log
    assert f'"checkpoint": {steps[-2]}' in logged
    assert evaluations(out) == evaluations(finished)


def _results(run_dir) -> dict:
    """results.json without the evaluations' timings."""
    results = json.loads((run_dir / "results.json").read_text())
    for entry in results["top"]:
        entry.pop("seconds")
    return results


def test_the_final_weights_are_checkpointed_and_load_as_a_supernet(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    shutil.rmtree(out / "checkpoints" / str(OPTIONS["budget"]))
    resume_search(out, progress=False)  # replays from the last periodic checkpoint

    net, again = load_supernet(finished), load_supernet(out)
    leaves, again_leaves = jax.tree.leaves(nnx.state(net)), jax.tree.leaves(nnx.state(again))
    assert len(leaves) == len(again_leaves) > 0
    for a, b in zip(leaves, again_leaves):
        np.testing.assert_array_equal(a, b)
    standalone = tmp_path / "standalone"
    options = {**OPTIONS, "evaluator": "standalone", "epochs": 1, "budget": 2}
    run_search(SearchConfig(**options, out=str(standalone)), progress=False)
    assert load_supernet(standalone) is None


def test_a_data_parallel_search_resumes_to_the_same_weights(tmp_path):
    options = {**OPTIONS, "devices": 2, "budget": 6}
    finished, out = tmp_path / "finished", tmp_path / "run"
    run_search(SearchConfig(**options, out=str(finished)), progress=False)
    shutil.copytree(finished, out)
    shutil.rmtree(out / "checkpoints" / "6")
    resume_search(out, progress=False)  # replays from the checkpoint after 3 evaluations

    assert evaluations(out) == evaluations(finished)
    leaves = jax.tree.leaves(nnx.state(load_supernet(finished)))
    again = jax.tree.leaves(nnx.state(load_supernet(out)))
    assert len(leaves) == len(again) > 0
    for a, b in zip(leaves, again):
        np.testing.assert_array_equal(a, b)


class Died(Exception):
    """The driver of a search dying (a kill, a lost machine)."""


class Shuffled:
    """An executor of `slots` evaluations that finish in a seeded random order, as on Ray
    workers; it dies at its `dies_at`-th poll."""

    slots = 3

    def __init__(self, seed: int, dies_at: int | None = None):
        self.rng, self.dies_at, self.polls = np.random.default_rng(seed), dies_at, 0
        self.held: list[tuple[int, np.ndarray]] = []

    def submit(self, index, arch):
        self.held.append((index, arch))

    def poll(self, block):
        self.polls += 1
        if self.polls == self.dies_at:
            raise Died
        if not self.held or (not block and self.rng.random() < 0.5):
            return []
        index, arch = self.held.pop(int(self.rng.integers(len(self.held))))
        return [(index, EvalResult(float(np.sum(arch)), 1, 0.0))]

    def pending(self):
        return len(self.held)

    def new_round(self):
        pass


def test_an_asynchronous_search_resumes_with_its_tells_in_their_logged_order(tmp_path):
    """The architectures an asynchronous search asks depend on when each result arrived; a
    resumed one asks them again (else it stops: "the strategy or the code changed")."""
    space, budget = nb201(), 24

    def run(executor, resume=None):
        strategy = RegularizedEvolution(space, population_size=4, tournament_size=2)
        run_dir = RunDir(tmp_path, {}, resume=resume is not None)
        checkpoints = Checkpoints(tmp_path / "checkpoints", every=3)
        if resume is not None:
            logged = logged_records(run_dir.events)
            start = checkpoints.restore(strategy, executor, logged=logged.keys())
            resume = Resume(start, logged, logged_tells(run_dir.events))
        try:
            return search(
                space, strategy, executor, budget=budget, seed=5, asynchronous=True,
                run_dir=run_dir, checkpoints=checkpoints, resume=resume,
            )  # fmt: skip
        finally:
            checkpoints.close()
            run_dir.close()

    with pytest.raises(Died):
        run(Shuffled(seed=0, dies_at=30))
    logged = [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "eval"]
    before = {e["index"]: (e["arch"], e["score"]) for e in logged}
    assert 12 <= len(before) < budget

    records = run(Shuffled(seed=1), resume=True)

    assert [r.index for r in records] == list(range(budget))
    again = {r.index: (list(r.arch), r.score) for r in records if r.index in before}
    assert again == before
