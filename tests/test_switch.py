"""`nas.switch.switch_ops`: the same outputs and gradients as differentiating `lax.switch`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import nas.switch
from nas.ops import make_op
from nas.switch import switch_ops, switchable

NAMES = ("none", "skip_connect", "conv1x1", "conv3x3", "avg_pool3x3", "max_pool3x3", "conv5x5")


def loss(switch, states, graphdefs, index, x, target):
    ops = [nnx.merge(g, s) for g, s in zip(graphdefs, states)]
    return jnp.sum(switch(ops, index, x) * target)


def plain(ops, index, x):
    return jax.lax.switch(index, [lambda y, f=f: f(y) for f in ops], x)


@pytest.mark.parametrize("chosen", range(len(NAMES)), ids=NAMES)
def test_switch_ops_computes_and_differentiates_as_lax_switch(chosen):
    ops = [make_op(name, 4, rngs=nnx.Rngs(i)) for i, name in enumerate(NAMES)]
    assert switchable(ops)
    graphdefs, states = zip(*(nnx.split(op) for op in ops))
    x, target = (jax.random.normal(jax.random.key(k), (3, 6, 6, 4)) for k in (1, 2))
    index = jnp.asarray(chosen)
    ours, theirs = (  # the loss, and its gradients for every op's weights and the input
        jax.jit(jax.value_and_grad(loss, argnums=(1, 4)), static_argnums=(0, 2))(
            switch, list(states), graphdefs, index, x, target
        )
        for switch in (switch_ops, plain)
    )
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(ours[1]), jax.tree.leaves(theirs[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    nonzero = [float(jnp.abs(a).max()) > 0 for a in jax.tree.leaves(ours[1])]
    assert any(nonzero) == (NAMES[chosen] != "none")  # the comparison compares something


def test_ops_with_other_residuals_are_not_switchable():
    assert not switchable([make_op(n, 4, rngs=nnx.Rngs(0)) for n in ("none", "sep_conv3x3")])


def test_edges_of_equal_ops_trace_each_op_once_per_input_shape(monkeypatch):
    calls = []

    def forward(op, x):
        calls.append((type(op).__name__, x.shape))
        return real_forward(op, x)

    real_forward = nas.switch._forward
    monkeypatch.setattr(nas.switch, "_forward", forward)
    names = ("none", "skip_connect", "conv3x3", "avg_pool3x3")
    edges = [[make_op(n, 4, rngs=nnx.Rngs(e)) for n in names] for e in range(6)]

    def total(x, index):
        small = x[:, ::2, ::2]
        return sum(switch_ops(ops, index, y).sum() for ops in edges for y in (x, small))

    jax.jit(jax.grad(total)).trace(jnp.ones((2, 8, 8, 4)), jnp.asarray(2))
    # 6 edges at 2 input shapes: each op's forward is traced once per shape, not per edge.
    assert sorted(set(calls)) == sorted(calls)
    assert len(calls) == len(names) * 2
