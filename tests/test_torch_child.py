"""The PyTorch mirror of our child net (`experiments.torch_child`) is the same network."""

import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")

from experiments.ground_truth import sample_archs  # noqa: E402
from experiments.torch_child import TorchChild, load_jax_weights  # noqa: E402
from nas.supernet import child_net  # noqa: E402
from search_spaces import nb201  # noqa: E402

SHAPES = [((8, 8, 1), 2), ((9, 9, 3), 1)]  # odd sizes exercise the stride-2 padding


def _pairs(input_shape, cells):
    space = nb201(channels=4, cells_per_stage=cells)
    for arch in sample_archs(space, 4, seed=1):
        yield child_net(space, arch, input_shape, 10), TorchChild(space, arch, input_shape, 10)


@pytest.mark.parametrize("input_shape, cells", SHAPES)
def test_same_parameter_count(input_shape, cells):
    for ours, theirs in _pairs(input_shape, cells):
        params = nnx.to_flat_state(nnx.state(ours, nnx.Param))
        count = sum(int(np.prod(v.shape)) for _, v in params)
        assert sum(p.numel() for p in theirs.parameters()) == count


@pytest.mark.parametrize("input_shape, cells", SHAPES)
def test_same_logits_with_our_weights(input_shape, cells):
    x = np.random.default_rng(0).normal(size=(16, *input_shape)).astype(np.float32)
    for ours, theirs in _pairs(input_shape, cells):
        load_jax_weights(theirs, ours)
        with torch.no_grad():
            logits = theirs(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()
        np.testing.assert_allclose(logits, np.asarray(ours(x)), rtol=1e-4, atol=1e-4)


def test_rejects_other_spaces():
    from search_spaces import darts

    space = darts(channels=4, cells_per_stage=1)
    with pytest.raises(ValueError, match="NB201-style"):
        TorchChild(space, sample_archs(space, 1, 0)[0], (8, 8, 1), 10)
