"""`nas report` on run directories of short real searches scored by a cheap stand-in evaluator."""

import dataclasses
import io
import json
import math
import shutil

import numpy as np
import pytest

from nas.cli import main
from nas.config import SearchConfig
from nas.evaluators import EvalResult
from nas.experiment import make_strategy
from nas.report.cells import cell_edges, cells_figure, output_nodes
from nas.report.phases import phases
from nas.rundir import RunDir
from nas.search import search, top
from nas.space import Cell, Node, SearchSpace, Skeleton, load_space

PNG = b"\x89PNG\r\n\x1a\n"
FIGURES = ("progress.png", "phases.png", "cells.png", "learning_curves.png")
CONFIG = SearchConfig(
    space="nb201", strategy="evolution", budget=30, population=8, tournament=2, channels=4, cells=1
)


class Scorer:
    """Scores an architecture by its ops, with no training; fails on some, as diverging
    children do."""

    def evaluate(self, arch):
        if arch[0] == 1:
            return EvalResult(math.nan, 3, 0.0, "training loss nan")
        return EvalResult(float(np.sum(arch == 3) + 0.1 * arch[2]) / 7, 3, 0.0)


def run_search(path, config: SearchConfig, **kwargs):
    """A search as `nas search` runs it (config.json, events.jsonl, results.json)."""
    space = load_space(config.space, channels=config.channels, cells_per_stage=config.cells)
    run = RunDir(path, dataclasses.asdict(config))
    run.log("warmup", loss=2.3, steps=0)
    records = search(
        space,
        make_strategy(config, space),
        Scorer(),
        budget=config.budget,
        seed=config.seed,
        batch=config.batch,
        run_dir=run,
        **kwargs,
    )
    best = top(records, config.top)
    run.write_results(
        {
            "space": space.name,
            "evaluations": len(records),
            "top": [{**r.to_json(), "architecture": space.to_json(r.arch)} for r in best],
        }
    )
    run.close()
    return records


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "evolution"
    records = run_search(path, CONFIG)
    assert any(r.cached for r in records) and any(r.error for r in records)
    return path


@pytest.fixture
def run(finished, tmp_path):
    """A copy of the finished run, free to change."""
    return shutil.copytree(finished, tmp_path / "run")


def evals(path):
    lines = (path / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "eval"]


def metrics():
    """A retrain's metrics.json with two seeds."""

    def history(seed):
        return [
            {
                "epoch": e,
                "train_loss": 2 / e,
                "train_accuracy": 1 - 0.5 / e,
                "val_loss": 2.2 / e + 0.01 * seed,
                "val_accuracy": 0.95 - 0.5 / e,
            }
            for e in range(1, 6)
        ]

    runs = [
        {"seed": s, "history": history(s), "best_epoch": 5, "test": {"accuracy": 0.9123 + s / 100}}
        for s in (0, 1)
    ]
    return {"runs": runs, "test": {"accuracy_mean": 0.9371, "accuracy_std": 0.01}}


def test_report_writes_every_figure_and_a_summary_that_links_them(run, capsys):
    (run / "retrain").mkdir()
    (run / "retrain" / "metrics.json").write_text(json.dumps(metrics()))
    assert main(["report", str(run)]) == 0
    out = run / "report"
    assert str(out / "summary.md") in capsys.readouterr().out
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name
    summary = (out / "summary.md").read_text()
    for name in FIGURES:
        assert f"]({name})" in summary
    logged = evals(run)
    scores = [e["score"] for e in logged if e["score"] is not None]
    failed = [e for e in logged if e["score"] is None]
    assert f"| evaluations | {len(logged)} |" in summary
    assert f"| distinct architectures | {len({e['key'] for e in logged})} |" in summary
    assert (
        f"| cached (repeats, not trained again) | {sum(e['cached'] for e in logged)} |" in summary
    )
    assert f"| failed | {len(failed)} |" in summary
    assert "x `training loss nan`" in summary
    assert f"| best validation score | {max(scores):.4f} |" in summary
    assert f"| 1 | {max(scores):.4f} |" in summary  # the top table, from results.json
    assert "| budget | `30` | `100` |" in summary and "| population | `8` | `20` |" in summary
    assert "accuracy_mean 0.9371" in summary and "| seed 1 | 5 | 5 | 0.9223 |" in summary
    assert "Not finished" not in summary


def test_phases_split_where_the_strategy_switches():
    def options(**given):
        return dataclasses.asdict(SearchConfig(**given))

    def bounds(split):
        return [(p.start, p.stop) for p in split]

    evolution = options(strategy="evolution", population=8)
    assert bounds(phases(evolution, 30)) == [(0, 8), (8, 30)]
    assert bounds(phases(evolution, 5)) == [(0, 5)]  # still filling the population
    assert bounds(phases({**evolution, "batch": 3}, 30)) == [(0, 9), (9, 30)]  # whole rounds
    assert bounds(phases({**evolution, "workers": 2}, 30)) == [(0, 11), (11, 30)]  # in flight
    bayesopt = options(strategy="bayesopt", initial=5)
    assert bounds(phases(bayesopt, 20)) == [(0, 5), (5, 20)]
    assert phases(bayesopt, 20)[1].name == "surrogate-guided"
    assert bounds(phases(options(strategy="random"), 20)) == [(0, 20)]
    assert bounds(phases(options(strategy="reinforce"), 10)) == [(0, 2), (2, 5), (5, 8), (8, 10)]


def test_evolution_mutates_from_where_the_phases_say(finished, tmp_path):
    """After the random population every architecture is a one-decision mutant of an earlier
    one (or a repeat), in rounds of one and of three."""
    rounds = dataclasses.replace(CONFIG, batch=3, budget=18)
    run_search(tmp_path / "rounds", rounds)
    for path, config, start in ((finished, CONFIG, 8), (tmp_path / "rounds", rounds, 9)):
        archs = [np.array(e["arch"]) for e in sorted(evals(path), key=lambda e: e["index"])]
        mutations = phases(dataclasses.asdict(config), len(archs))[1]
        assert (mutations.start, mutations.stop) == (start, config.budget)
        for i in range(start, config.budget):
            assert min(np.sum(archs[i] != a) for a in archs[:i]) <= 1, i


def custom_space():
    cell = Cell(
        n_inputs=1,
        nodes=(Node((0,), 1), Node((0, 1), 1), Node((0, 1, 2), 2)),
        ops=("conv3x3", "skip_connect", "nothing"),
        output="loose_ends",
        zero_op="nothing",
    )
    return SearchSpace("custom", {"normal": cell}, Skeleton(channels=4, cells_per_stage=1))


@pytest.mark.parametrize("name", ["nb201", "darts", "enas", "custom"])
def test_cell_diagram_draws_every_edge_whose_op_is_not_zero(name):
    space = custom_space() if name == "custom" else load_space(name, channels=4, cells_per_stage=1)
    for arch in np.random.default_rng(0).integers(0, space.cardinalities, (20, space.n_decisions)):
        edges = cell_edges(space, arch)
        for cell_type, cell in space.cells.items():
            ops = [
                d.choices[a]
                for d, a in zip(space.decisions, arch)
                if d.cell == cell_type and d.kind == "op"
            ]
            drawn = [op for op in ops if op != cell.zero_op]
            assert [e.op for e in edges[cell_type]] == drawn
            assert all(e.source < e.target for e in edges[cell_type])
    cells_figure(space, arch, "a test").savefig(io.BytesIO(), format="png")


def test_cell_output_is_the_loose_ends_of_an_enas_like_cell():
    space = custom_space()
    arch = space.from_json(
        {
            "space": "custom",
            "version": 1,
            "cells": {
                "normal": [
                    {"node": 1, "inputs": [0], "ops": ["conv3x3"]},
                    {"node": 2, "inputs": [0], "ops": ["skip_connect"]},
                    {"node": 3, "inputs": [0, 1], "ops": ["nothing", "conv3x3"]},
                ]
            },
        }
    )
    rows = space.to_json(arch)["cells"]["normal"]
    assert output_nodes(space.cells["normal"], rows) == [2, 3]
    assert [(e.source, e.target) for e in cell_edges(space, arch)["normal"]] == [
        (0, 1),
        (0, 2),
        (1, 3),
    ]


def test_a_search_still_running_or_killed_reports_from_its_event_log(run):
    (run / "results.json").unlink()
    lines = (run / "events.jsonl").read_text().splitlines()
    kept = lines[:-10]
    (run / "events.jsonl").write_text(
        "\n".join([kept[0], "{not json", *kept[1:]]) + '\n{"event": "eval", "ind'
    )
    with pytest.warns(UserWarning) as caught:
        assert main(["report", str(run), "--out", str(run / "partial")]) == 0
    messages = " ".join(str(w.message) for w in caught)
    assert "line 2:" in messages and f"line {len(kept) + 2}:" in messages  # both skipped
    summary = (run / "partial" / "summary.md").read_text()
    logged = [json.loads(line) for line in kept if json.loads(line)["event"] == "eval"]
    best = max(e["score"] for e in logged if e["score"] is not None)
    assert f"{len(logged)} of 30 evaluations logged" in summary
    assert f"| 1 | {best:.4f} |" in summary and "ranked from the event log" in summary
    for name in FIGURES[:3]:
        assert (run / "partial" / name).read_bytes().startswith(PNG)


def test_a_space_that_no_longer_loads_still_gives_the_rest_of_the_report(run):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "space": "moved.py:SPACE"}))
    assert main(["report", str(run)]) == 0
    summary = (run / "report" / "summary.md").read_text()
    assert not (run / "report" / "cells.png").exists() and "moved.py" in summary
    assert (run / "report" / "progress.png").exists()


def test_an_empty_event_log_is_an_error_naming_the_file(run, capsys):
    (run / "events.jsonl").write_text("")
    assert main(["report", str(run)]) == 2
    assert f"{run / 'events.jsonl'} holds no evaluations" in capsys.readouterr().err
