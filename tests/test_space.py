"""The search-space API: validation, sampling, mutation, JSON, canonical keys, encodings."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nas.space import Cell, InvalidArchitecture, Node, SearchSpace, Skeleton, load_space
from search_spaces import SPACES, darts, enas, nb201


def test_sizes_of_the_built_in_spaces():
    assert nb201().size == 15_625
    # DARTS: per cell, node k picks 2 of k+2 inputs and 8 ops for each: C(k+2, 2) * 64.
    per_cell = np.prod([(k + 2) * (k + 1) // 2 * 64 for k in range(4)])
    assert darts().size == per_cell**2
    # ENAS: block k picks 2 inputs of k+2 (repeats allowed) and 5 ops for each.
    per_cell = np.prod([((k + 2) * 5) ** 2 for k in range(5)])
    assert enas().size == int(per_cell) ** 2


def test_sample_is_valid_and_seeded(tiny_space):
    archs = np.asarray(tiny_space.sample(jax.random.key(0), 50))
    for arch in archs:
        tiny_space.validate(arch)
    again = np.asarray(tiny_space.sample(jax.random.key(0), 50))
    assert (archs == again).all()
    assert len({tuple(a) for a in archs}) > 40


def test_mutate_changes_exactly_one_decision(tiny_space):
    keys = jax.random.split(jax.random.key(1), 200)
    arch = tiny_space.sample(keys[0])
    for key in keys[1:]:
        child = tiny_space.mutate(arch, key)
        assert int((np.asarray(child) != np.asarray(arch)).sum()) == 1
        tiny_space.validate(child)
        arch = child


def test_json_round_trip(tiny_space):
    for key in jax.random.split(jax.random.key(2), 20):
        arch = np.asarray(tiny_space.sample(key))
        text = json.dumps(tiny_space.to_json(arch))
        assert (tiny_space.from_json(json.loads(text)) == arch).all()


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        (np.zeros(5, np.int32), r"vector of 6 decisions"),
        (np.array([0, 0, 0, 0, 0, 7]), r"arch\[5\] \(normal cell, node 3, op of input 2\) = 7"),
        (np.array([0, 0, 0, 0, -1, 0]), r"arch\[4\] \(normal cell, node 3, op of input 1\) = -1"),
        (np.zeros(6, np.float32), r"must be integers"),
    ],
)
def test_validate_names_the_offending_decision(arch, match):
    with pytest.raises(InvalidArchitecture, match=match):
        nb201().validate(arch)


def test_from_json_errors_name_the_node_and_value():
    space = darts()
    good = space.to_json(np.asarray(space.sample(jax.random.key(0))))
    cases = [
        (("cells", "normal", 1, "ops", 0), "conv7x7", r"normal cell, node 3: unknown op 'conv7x7'"),
        (("cells", "reduce", 0, "inputs", 1), 5, r"reduce cell, node 2: input 5 is not a cand"),
        (
            ("cells", "normal", 2, "inputs"),
            [1, 1],
            r"normal cell, node 4: inputs \[1, 1\] must be distinct",
        ),
        (("space",), "nb201", r"it says space 'nb201'"),
    ]
    for path, value, match in cases:
        data = json.loads(json.dumps(good))
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        with pytest.raises(InvalidArchitecture, match=match):
            space.from_json(data)


def nb201_arch(*ops):
    """An nb201 arch from its 6 op names, edges in order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2."""
    from search_spaces.nb201 import OPS

    return np.array([OPS.index(o) for o in ops], np.int32)


def test_isomorphic_nb201_cells_share_a_key():
    space = nb201()
    # Nodes 1 and 2 both read only the input and both feed node 3: swapping them is isomorphic.
    a = nb201_arch("conv3x3", "conv1x1", "none", "skip_connect", "avg_pool3x3", "conv3x3")
    b = nb201_arch("conv1x1", "conv3x3", "none", "skip_connect", "conv3x3", "avg_pool3x3")
    assert space.key(a) == space.key(b)
    # Node 1 does not reach the output: its op is irrelevant.
    c = nb201_arch("conv3x3", "conv1x1", "none", "skip_connect", "none", "conv3x3")
    d = nb201_arch("avg_pool3x3", "conv1x1", "none", "skip_connect", "none", "conv3x3")
    assert space.key(c) == space.key(d)
    # A path from a zero node through zero-preserving ops is zero.
    e = nb201_arch("none", "conv1x1", "skip_connect", "conv3x3", "none", "conv3x3")
    f = nb201_arch("none", "conv1x1", "none", "conv3x3", "none", "conv3x3")
    assert space.key(e) == space.key(f)
    # But a different op on a live edge is a different network.
    g = nb201_arch("conv3x3", "conv1x1", "none", "skip_connect", "avg_pool3x3", "conv1x1")
    assert space.key(a) != space.key(g)


def test_darts_input_order_is_irrelevant():
    space = darts()
    arch = space.sample(jax.random.key(5))
    data = space.to_json(arch)
    for row in data["cells"]["normal"]:
        row["inputs"].reverse()
        row["ops"].reverse()
    assert space.key(space.from_json(data)) == space.key(arch)


def test_nb201_unique_cells():
    space = nb201()
    keys = {space.key(np.array(a)) for a in itertools.product(range(5), repeat=6)}
    # 6,466 is NAS-Bench-201's count with its expression strings, which also merge cells that
    # differ only in whether two identical branches share one node; graph isomorphism keeps them.
    assert 6466 <= len(keys) < 15_625
    assert len(keys) == 6985


def test_encodings(tiny_space):
    arch = np.asarray(tiny_space.sample(jax.random.key(0)))
    onehot = tiny_space.encode(arch)
    ops_part = sum(c.n_edges for c in tiny_space.cells.values())
    assert onehot.sum() == 2 * ops_part  # one op and one adjacency entry per edge
    decisions = tiny_space.encode(arch, "decisions")
    assert decisions.shape == (tiny_space.cardinalities.sum(),)
    assert decisions.sum() == tiny_space.n_decisions
    with pytest.raises(ValueError, match="valid: onehot, decisions"):
        tiny_space.encode(arch, "paths")


@pytest.mark.parametrize("kind", ["onehot", "decisions"])
def test_encodings_trace_under_jit(tiny_space, kind):
    archs = tiny_space.sample(jax.random.key(1), 5)
    traced = jax.jit(jax.vmap(lambda a: tiny_space.encode(a, kind, xp=jnp)))(archs)
    host = np.stack([tiny_space.encode(a, kind) for a in np.asarray(archs)])
    np.testing.assert_array_equal(np.asarray(traced), host)


def test_malformed_space_errors():
    with pytest.raises(ValueError, match="node 2 may only read earlier nodes 0..1"):
        Cell(1, (Node((0,), 1), Node((0, 2), 1)), ("conv3x3",))
    with pytest.raises(ValueError, match="cannot choose 3 distinct inputs from 2"):
        Cell(2, (Node((0, 1), 3),), ("conv3x3",))
    with pytest.raises(ValueError, match="'maxpool' is not one of the cell's ops"):
        Cell(1, (Node((0,), 1),), ("conv3x3",), zero_op="maxpool")
    cell = Cell(1, (Node((0,), 1),), ("conv3x3",))
    with pytest.raises(ValueError, match="a 'reduce' cell needs Skeleton"):
        SearchSpace("x", {"normal": cell, "reduce": cell}, Skeleton())
    with pytest.raises(ValueError, match="reduction must be one of"):
        Skeleton(reduction="pool")


def test_load_space_by_name_and_errors(tmp_path):
    assert load_space("nb201", channels=4).skeleton.channels == 4
    with pytest.raises(ValueError, match="unknown space 'nb202'.*nb201, darts, enas"):
        load_space("nb202")
    with pytest.raises(ValueError, match="does not exist"):
        load_space(str(tmp_path / "missing.py") + ":SPACE")
    (tmp_path / "mine.py").write_text("OTHER = 1\n")
    with pytest.raises(ValueError, match="has no 'SPACE'; it defines: OTHER"):
        load_space(str(tmp_path / "mine.py") + ":SPACE")


def test_every_built_in_space_is_registered():
    assert set(SPACES) == {"nb201", "darts", "enas"}


@pytest.mark.parametrize(
    ("arch", "degenerate"),
    [
        ([1, 1, 1, 1, 1, 1], True),  # all skip
        ([0, 0, 0, 0, 0, 0], True),  # all none
        ([3, 3, 3, 0, 0, 0], True),  # the output node gets nothing: disconnected
        ([4, 0, 0, 1, 0, 0], True),  # only a skip reaches the output; the pool is dead
        ([0, 0, 0, 4, 0, 0], False),  # one pool reaches it
        ([3, 1, 1, 1, 1, 1], False),
    ],
)
def test_degenerate_cells_are_those_that_compute_nothing_of_their_own(arch, degenerate):
    space = nb201()
    assert space.is_degenerate(arch) is degenerate
    assert all(op != "none" for op in space.live_ops(arch)["normal"])
