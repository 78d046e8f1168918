"""An exported network's weights: its parameters as msgpack, written and read with Flax alone.

Every exported model module carries these two functions too (`nas.export.bundle`), so the
framework and a standalone module read the one format through the one definition.
"""

from __future__ import annotations

import jax
from flax import nnx, serialization


def save_weights(model: nnx.Module, path) -> None:
    """Writes the parameters of `model` to `path`: msgpack of nested dicts of arrays."""
    with open(path, "wb") as f:
        f.write(serialization.msgpack_serialize(nnx.to_pure_dict(nnx.state(model, nnx.Param))))


def load_weights(model: nnx.Module, path) -> nnx.Module:
    """Restores the parameters that `save_weights` wrote into `model`, and returns `model`.

    Raises:
      ValueError: the file's parameters are not those of `model` (naming the first that
        is missing, extra or of another shape).
    """
    with open(path, "rb") as f:
        saved = serialization.msgpack_restore(f.read())
    state = nnx.state(model, nnx.Param)
    want, got = _shapes(nnx.to_pure_dict(state)), _shapes(saved)
    for name in sorted(want.keys() | got.keys()):
        if want.get(name) != got.get(name):
            raise ValueError(
                f"{path}: not the weights of this network: parameter {name} has shape "
                f"{got.get(name, 'missing')} in the file, {want.get(name, 'none')} in the network"
            )
    nnx.replace_by_pure_dict(state, saved)
    nnx.update(model, state)
    return model


def _shapes(tree) -> dict[str, tuple[int, ...]]:
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {jax.tree_util.keystr(path): tuple(leaf.shape) for path, leaf in leaves}
