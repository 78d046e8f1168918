"""Smoke runs of the experiment scripts: tiny configs, real code paths, JSON figures."""

import json
import math

import pytest

from experiments import (
    bench_allocator,
    bench_ask,
    bench_branching,
    bench_ray,
    bench_supernet,
    compare_strategies,
    ranking,
    shared_vs_standalone,
    tune_strategies,
)
from experiments.timing import median_ms


@pytest.mark.slow
def test_bench_supernet_quick(capsys):
    figures = bench_supernet.main(["--quick"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    for name in ("digits", "cifar_shaped"):
        assert figures[name]["recompiles"] == 0
        assert figures[name]["step_ratio"] > 0 and figures[name]["speedup"] > 0


@pytest.mark.slow
def test_bench_branching_quick(capsys):
    figures = bench_branching.main(["--quick"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    for name in ("digits", "cifar_shaped"):
        f = figures[name]
        sides = ("child", "switch", "select")
        assert all(f[f"{side}_step_ms"] > 0 for side in sides)
        for side in sides[1:]:
            assert f[f"{side}_over_child"] == pytest.approx(
                f[f"{side}_step_ms"] / f["child_step_ms"], rel=0.01
            )
    assert figures["threads"] >= 1


@pytest.mark.slow
def test_ranking_quick(capsys):
    figures = ranking.main(["--quick"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    assert figures["n_archs"] == ranking.QUICK.n_archs
    assert -1.0 <= figures["ceiling_kendall_tau"] <= 1.0
    for method in ranking.QUICK.methods:
        tau, half_width = figures["methods"][method]["kendall_tau"]
        assert -1.0 <= tau <= 1.0 and half_width >= 0.0


@pytest.mark.slow
def test_bench_ray_quick(capsys):
    figures = bench_ray.main(["--quick"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    overhead, throughput, rank = figures["overhead"], figures["throughput"], figures["ranking"]
    assert overhead["failed"] == 0 and rank["failed"] == 0  # every evaluation was scored
    assert 1 <= overhead["evaluations"] <= bench_ray.QUICK.budget
    for name in ("in_process", "ray_in_flight_1", "ray_in_flight_2"):
        assert overhead[f"{name}_s_per_eval"] > 0
    assert all(math.isfinite(overhead[f"ray_in_flight_{k}_overhead_pct"]) for k in (1, 2))
    assert throughput["evals_per_s_1_worker"] > 0 and throughput["evals_per_s_2_workers"] > 0
    assert throughput["updates_applied_once"] and throughput["staleness_max"] >= 0
    assert rank["n_archs"] == bench_ray.QUICK.ranking_archs
    for arm in ("1_process", "2_workers"):
        assert len(rank[f"kendall_tau_{arm}"]) == bench_ray.QUICK.ranking_seeds
        assert -1.0 <= rank[f"kendall_tau_{arm}_mean"] <= 1.0


@pytest.mark.slow
def test_bench_vs_torch_quick(capsys):
    pytest.importorskip("torch")
    from experiments import bench_vs_torch

    figures = bench_vs_torch.main(["--quick"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    for name in ("digits", "cifar_shaped"):
        f = figures[name]
        assert f["n_archs"] == bench_vs_torch.QUICK.n_archs
        assert f["speedup"] > 0 and f["speedup_after_first"] > 0
        assert all(f[f"{side}_step_ms"] > 0 for side in ("torch", "supernet", "child"))
        assert all(0 <= f[f"{side}_mean_accuracy"] <= 1 for side in ("torch", "supernet", "child"))


@pytest.mark.slow
def test_bench_vs_torch_runs_the_chosen_datasets_and_supernet():
    pytest.importorskip("torch")
    from experiments import bench_vs_torch

    argv = ["--quick", "--set", "datasets=digits", "--set", "cells_digits=2"]
    figures = bench_vs_torch.main([*argv, "--set", "scan_cells=true", "--set", "branching=select"])
    assert figures["scan_cells"] and figures["branching"] == "select"
    assert "cifar_shaped" not in figures
    assert figures["digits"]["space"] == "nb201(channels=4, cells_per_stage=2)"
    assert figures["digits"]["speedup"] > 0
    with pytest.raises(ValueError, match="datasets=digits,mnist: expected some of digits"):
        bench_vs_torch.main(["--quick", "--set", "datasets=digits,mnist"])
    with pytest.raises(ValueError, match="unknown branching 'choose'"):
        bench_vs_torch.main([*argv, "--set", "branching=choose"])


@pytest.mark.slow
def test_bench_allocator_quick(capsys):
    # The C library itself as the preloaded allocator: the code path of a real one, on any
    # machine (tcmalloc need not be installed).
    figures = bench_allocator.main(["--quick", "--set", "library=libc.so.6"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    f = figures["cifar_shaped"]
    for setting in ("malloc", "hugetlb", "preloaded"):
        assert f[f"{setting}_step_ms"] > 0 and f[f"{setting}_compile_s"] > 0
        assert f[f"{setting}_faults_per_step"] >= 0 and f[f"{setting}_sys_ms_per_step"] >= 0
    for setting in ("hugetlb", "preloaded"):
        assert f[f"{setting}_step_speedup"] == pytest.approx(
            f["malloc_step_ms"] / f[f"{setting}_step_ms"], rel=0.01
        )
    assert "malloc_step_speedup" not in f


def test_bench_allocator_names_what_is_missing(monkeypatch):
    with pytest.raises(ValueError, match="library=/no/such/libtcmalloc.so: no such file"):
        bench_allocator.allocator(bench_allocator.Config(library="/no/such/libtcmalloc.so"))
    monkeypatch.setattr(bench_allocator, "tcmalloc", lambda: None)
    with pytest.raises(ValueError, match="tcmalloc not found .*--set library=PATH"):
        bench_allocator.allocator(bench_allocator.Config())
    with pytest.raises(ValueError, match="datasets=mnist, rounds=1, steps=3: expected some of"):
        bench_allocator.run(bench_allocator.Config(datasets=("mnist",), rounds=1, steps=3))


@pytest.mark.slow
def test_compare_strategies_quick(capsys, tmp_path):
    out = tmp_path / "compare"
    figures = compare_strategies.main(["--quick", "--set", f"out={out}"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    assert set(figures["cora"]) == {"random", "evolution", "reinforce", "bayesopt", "tpe"}
    for name, by_budget in figures["cora"].items():
        if name == "bayesopt":  # capped at 8 queries by the quick config
            assert set(by_budget) == {"5"}
            continue
        assert set(by_budget) == {"5", "12"}
        # More queries never pick worse: regret cannot grow with the budget.
        assert 0 <= by_budget["12"]["regret"] <= by_budget["5"]["regret"]
    assert (
        "| bayesopt | " in (out / "table.md").read_text()
        and "| — |" in (out / "table.md").read_text()
    )
    assert (out / "regret.png").stat().st_size > 0
    cached = json.loads((out / "runs" / "cora-bayesopt.json").read_text())
    assert len(cached["archs"]) == 2 and len(cached["archs"][0]) == 8
    # A rerun reads the runs back instead of searching again, and agrees.
    assert compare_strategies.main(["--quick", "--set", f"out={out}"]) == figures


def test_bench_ask_quick(capsys):
    figures = bench_ask.main(["--quick"])
    assert figures["observations"] == 20
    seconds = figures["seconds_per_ask"]
    assert set(seconds) == {"bayesopt", "evolution"} and all(s > 0 for s in seconds.values())
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("{")


def test_tune_strategies_quick(capsys):
    figures = tune_strategies.main(["--quick", "--set", "strategy=evolution"])
    assert len(figures["results"]) == len(tune_strategies.GRIDS["evolution"])
    assert all(r["regret"]["cora"] >= 0 for r in figures["results"])


def test_set_rejects_unknown_fields_and_bad_values(capsys):
    for setting, message in (
        ("nope=1", "FIELD one of"),
        ("seeds=many", "expected a value of type int"),
    ):
        with pytest.raises(SystemExit):
            compare_strategies.main(["--quick", "--set", setting])
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_shared_vs_standalone_quick(capsys):
    figures = shared_vs_standalone.main(["--quick"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    shared, alone = figures["shared"], figures["standalone"]
    assert shared["evaluations"] == [shared_vs_standalone.QUICK.budget]
    assert alone["evaluations"][0] >= 1  # as many as the shared search's minutes allowed
    for side in (shared, alone):
        assert 0.0 <= side["test_accuracy"] <= 1.0 and side["degenerate_picks"] in (0, 1)


def test_median_ms_times_each_side_in_runs_of_steps_in_turns():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    ms = median_ms(steps, rounds=2, run=3)
    assert calls == ["a", "b"] + (["a"] * 3 + ["b"] * 3) * 2  # one untimed call each first
    assert set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())
