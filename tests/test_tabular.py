"""NAS-Bench-Graph as a search space and a tabular evaluator."""

import itertools
import math

import jax
import nas_bench_graph
import numpy as np
import pytest

from nas.evaluators import NasBenchGraphEvaluator
from search_spaces import nb201
from search_spaces.nasbench_graph import (
    OPS,
    OPS_PROTEINS,
    from_nasbench_graph,
    nasbench_graph,
    to_nasbench_graph,
)


@pytest.fixture(scope="module")
def cora():
    return NasBenchGraphEvaluator("cora")


@pytest.fixture(scope="module")
def proteins():
    return NasBenchGraphEvaluator("proteins")


def all_archs(space):
    return np.array(list(itertools.product(*map(range, space.cardinalities))), np.int32)


def test_space_matches_the_benchmark():
    assert OPS == tuple(nas_bench_graph.gnn_list)
    assert OPS_PROTEINS == tuple(nas_bench_graph.gnn_list_proteins)
    space = nasbench_graph("cora")
    assert space.name == "nasbench_graph_cora"
    assert list(space.cardinalities) == [9, 2, 9, 3, 9, 4, 9]
    assert space.size == 24 * 9**4
    assert nasbench_graph("proteins").size == 24 * 5**4


def test_mapping_round_trips_and_uses_the_package_node_order():
    space = nasbench_graph()
    # The package README's example: node 4 reads node 1.
    arch = from_nasbench_graph(space, [0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    assert space.describe(arch) == "normal: 1<-gcn(0) 2<-gin(1) 3<-fc(2) 4<-cheb(1)"
    for arch in np.asarray(space.sample(jax.random.key(0), 50)):
        assert (from_nasbench_graph(space, *to_nasbench_graph(space, arch)) == arch).all()


def test_sampled_archs_score_from_the_table_or_say_why_not(cora):
    archs = np.array(cora.space.sample(jax.random.key(1), 2000))
    archs[0] = from_nasbench_graph(cora.space, [0, 1, 2, 3], ["skip"] * 4)
    for arch in archs:
        result = cora.evaluate(arch)
        assert result.steps == 0 and result.seconds == 0.0
        if result.ok:
            assert result.score == cora.table[cora.entry_key(arch)]["valid_perf"]
        else:
            assert math.isnan(result.score)
            assert set(to_nasbench_graph(cora.space, arch)[1]) == {"skip"}


def test_all_skip_has_no_entry(cora):
    arch = from_nasbench_graph(cora.space, [0, 0, 1, 2], ["skip"] * 4)
    result = cora.evaluate(arch)
    assert math.isnan(result.score) and not result.ok
    assert "no NAS-Bench-Graph entry" in result.error and "no GNN layer" in result.error
    assert math.isnan(cora.test_metric(arch)) and cora.info(arch) is None


def test_isomorphic_archs_share_a_key_and_an_entry(cora):
    space = cora.space
    a = from_nasbench_graph(space, [0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"])
    # The package README lists [0, 1, 1, 2] here, which is another network (fc reads cheb).
    b = from_nasbench_graph(space, [0, 1, 1, 3], ["gcn", "cheb", "gin", "fc"])
    assert space.key(a) == space.key(b)
    assert cora.evaluate(a).score == cora.evaluate(b).score
    by_key = {}
    for arch in np.asarray(space.sample(jax.random.key(2), 1000)):
        by_key.setdefault(space.key(arch), set()).add(cora.entry_key(arch))
    assert all(len(entries) == 1 for entries in by_key.values())


def test_the_table_also_drops_raw_input_leaves(cora):
    # A leaf that is the graph input through skips is left out of NAS-Bench-Graph's output;
    # `space.key` keeps it, so these two get different keys but one table entry.
    space = cora.space
    a = from_nasbench_graph(space, [0, 0, 0, 0], ["gat", "gat", "gat", "skip"])
    b = from_nasbench_graph(space, [0, 0, 0, 1], ["gat", "gat", "gat", "skip"])
    assert space.key(a) != space.key(b)
    assert cora.entry_key(a) == cora.entry_key(b)


def test_keys_refine_the_whole_proteins_table(proteins):
    archs = all_archs(proteins.space)
    entries = {}
    for arch in archs:
        entries.setdefault(proteins.space.key(arch), set()).add(proteins.entry_key(arch))
    assert all(len(e) == 1 for e in entries.values())
    reached = {e for (e,) in entries.values() if e in proteins.table}
    assert reached == set(proteins.table) and len(reached) == 2021
    # 4 keys are all-skip (1 to 4 input leaves); the rest differ only by raw-input leaves.
    assert len(entries) == 2293 + 4


def test_test_metric_and_best(cora):
    arch = from_nasbench_graph(cora.space, [0, 1, 2, 3], ["gcn", "gat", "sage", "fc"])
    entry = cora.table[cora.entry_key(arch)]
    assert cora.test_metric(arch) == entry["perf"]
    best = cora.best()
    assert best is cora.best()
    assert best.valid == max(e["valid_perf"] for e in cora.table.values())
    assert best.test == cora.table[best.entry]["perf"] <= best.best_test
    assert cora.evaluate(arch).score <= best.valid


def test_bad_arguments_say_what_is_valid():
    with pytest.raises(ValueError, match="unknown NAS-Bench-Graph dataset 'mnist'.*cora, citeseer"):
        nasbench_graph("mnist")
    with pytest.raises(ValueError, match="valid datasets: .*proteins"):
        NasBenchGraphEvaluator("mnist")
    with pytest.raises(ValueError, match="different cell"):
        NasBenchGraphEvaluator("cora", space=nb201())
    with pytest.raises(ValueError, match="different cell"):
        NasBenchGraphEvaluator("proteins", space=nasbench_graph("cora"))
