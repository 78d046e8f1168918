"""Smoke runs of the experiment scripts: tiny configs, real code paths, JSON figures."""

import json

from experiments import bench_supernet, ranking


def test_bench_supernet_quick(capsys):
    figures = bench_supernet.main(["--quick"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    for name in ("digits", "cifar_shaped"):
        assert figures[name]["recompiles"] == 0
        assert figures[name]["step_ratio"] > 0 and figures[name]["speedup"] > 0


def test_ranking_quick(capsys):
    figures = ranking.main(["--quick"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    assert figures["n_archs"] == 4
    assert -1.0 <= figures["kendall_tau"] <= 1.0
