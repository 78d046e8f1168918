"""Writing one exported architecture: its genotype, its standalone module and its weights.

The directory holds::

    genotype.json    the architecture, its space and its score (`nas.export.genotype`)
    model.py         a module needing only jax and flax: `build()` makes the network,
                     `load_weights(net, "weights.msgpack")` restores its weights
    weights.msgpack  the weights it inherits from the supernet, when one is given
"""

from __future__ import annotations

from pathlib import Path

from nas.export.genotype import GENOTYPE, genotype
from nas.export.module import model_source
from nas.export.weights import save_weights
from nas.rundir import write_json
from nas.space import SearchSpace
from nas.supernet import Network, child_from_supernet

MODEL = "model.py"
WEIGHTS = "weights.msgpack"


def export_architecture(
    out,
    space: SearchSpace,
    arch,
    *,
    supernet: Network | None = None,
    input_shape=None,
    num_classes: int | None = None,
    score: float | None = None,
    spec: str | None = None,
    space_args: dict | None = None,
) -> Path:
    """Writes the export of `arch` into the directory `out` (created if missing).

    Args:
      out: the directory.
      space: the search space of `arch`.
      arch: the architecture vector.
      supernet: a supernet of `space`; its weights for `arch` go to weights.msgpack.
      input_shape: one example's shape (default: the supernet's).
      num_classes: the number of classes (default: the supernet's).
      score, spec, space_args: recorded in the genotype (see `nas.export.genotype.genotype`).

    Returns:
      The directory.
    """
    if supernet is not None:
        input_shape = input_shape or supernet.input_shape
        num_classes = num_classes or supernet.num_classes
    if input_shape is None or num_classes is None:
        raise ValueError("export_architecture needs input_shape and num_classes, or a supernet")
    arch = space.validate(arch)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = genotype(
        space,
        arch,
        input_shape=input_shape,
        num_classes=num_classes,
        score=score,
        spec=spec,
        space_args=space_args,
    )
    write_json(out / GENOTYPE, data)
    (out / MODEL).write_text(model_source(space, arch, input_shape, num_classes), "utf-8")
    weights = out / WEIGHTS
    if supernet is not None:
        save_weights(child_from_supernet(supernet, arch), weights)
    else:
        weights.unlink(missing_ok=True)  # an earlier export's, for another architecture
    return out
