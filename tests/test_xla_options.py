"""Which XLA options a network's steps compile with: YNN fusions off for large images on CPU."""

import jax
import numpy as np
import pytest

from nas.supernet import child_net
from nas.train import TrainConfig, Trainer
from nas.xla_options import MIN_SIDE, YNN_FLAG, compiler_options
from search_spaces import nb201

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU options")


def test_large_images_compile_without_ynn_fusions_and_small_ones_with_the_default(
    monkeypatch,
):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert compiler_options((32, 32, 3)) == ((YNN_FLAG, ""),)
    assert compiler_options((MIN_SIDE, MIN_SIDE, 1)) == ((YNN_FLAG, ""),)
    assert compiler_options((MIN_SIDE - 1, 32, 1)) == ()
    assert compiler_options((8, 8, 1)) == ()
    assert compiler_options((64,)) == ()  # not images
    assert compiler_options(None) == ()


def test_the_flag_set_by_hand_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", f"--{YNN_FLAG}=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT")
    assert compiler_options((32, 32, 3)) == ()


def test_a_trainer_compiles_its_steps_with_the_options_of_its_images(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    space = nb201(channels=4, cells_per_stage=1)
    arch = space.sample(jax.random.key(0))
    x = np.zeros((2, 32, 32, 3), np.float32)
    trainer = Trainer(child_net(space, arch, x.shape[1:], 10), TrainConfig(), 10)
    assert trainer.compiler_options == ((YNN_FLAG, ""),)
    assert np.isfinite(float(trainer.train_step(x, np.zeros(2, np.int32))))
    small = Trainer(child_net(space, arch, (8, 8, 1), 10), TrainConfig(), 10)
    assert small.compiler_options == ()
