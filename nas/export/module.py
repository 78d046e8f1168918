"""The standalone model module of one architecture: model.py of an export.

The module is written as code that imports the network from this package, then bundled
(`nas.export.bundle`): what it imports is inlined, so it runs with jax and flax alone and
holds the very code the search trained.
"""

from __future__ import annotations

import pprint
import string
import textwrap

from nas.export.bundle import standalone
from nas.ops import OPS
from nas.space import SearchSpace
from nas.supernet import _static_edges

# The files of the network's code, in the order the module needs them.
NETWORK_MODULES = (
    "nas.space.cell",
    "nas.space.space",
    "nas.conv",
    "nas.ops",
    "nas.switch",
    "nas.cells",
    "nas.supernet",
    "nas.export.weights",
)

_MAIN = string.Template(
    '''"""One architecture of search space $name (version $version), as a Flax network.

$readable

A standalone Flax NNX model: it imports only jax, flax and the Python standard library. Its
code is cut from the `nas` framework's network code, file by file as marked. Use::

    import model

    net = model.load_weights(model.build(), "weights.msgpack")
    logits = net(images)  # images: float32, shape $shape

BatchNorm normalises with the statistics of the batch it is given, in training and inference
alike, as in the search: the logits of an image depend on the batch it comes in. The network
trains further as any Flax NNX module (with optax); `save_weights(net, path)` writes its
weights.
"""

import dataclasses

from flax import nnx

from nas.export.weights import load_weights, save_weights
from nas.space import Cell, Node, Skeleton
from nas.supernet import Network

# -- This architecture -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Space:
    """What `Network` reads of the search space: its name, cells and skeleton."""

    name: str
    version: object
    cells: dict
    skeleton: Skeleton


CELLS = $cells
SKELETON = $skeleton
SPACE = Space($name, $version, CELLS, SKELETON)
ARCH = $arch
INPUT_SHAPE = $input_shape
NUM_CLASSES = $num_classes
# Per cell type: each edge's input node, and its op as an index into the cell's ops.
EDGES = $edges


def _static_edges(space, arch):
    """The edges of this architecture, fixed at export (`Network` reads them)."""
    return EDGES


def build(seed: int = 0) -> Network:
    """The network of this architecture, its parameters initialised from `seed`."""
    return Network(SPACE, INPUT_SHAPE, NUM_CLASSES, arch=ARCH, rngs=nnx.Rngs(seed))
'''
)


def model_source(space: SearchSpace, arch, input_shape, num_classes: int) -> str:
    """The source of a module that builds the network of `arch` without this package.

    Args:
      space: the search space of `arch`.
      arch: the architecture vector.
      input_shape: one example's shape, (H, W, C).
      num_classes: the number of output classes.

    Raises:
      ValueError: the architecture uses an op registered outside `nas.ops`.
    """
    arch = space.validate(arch)
    edges = _static_edges(space, arch)
    used = {space.cells[t].ops[o] for t, (_, ops) in edges.items() for o in ops}
    foreign = sorted(name for name in used if getattr(OPS.get(name), "__module__", "") != "nas.ops")
    if foreign:
        raise ValueError(
            f"cannot export ops registered outside nas.ops ({', '.join(foreign)}): a "
            "standalone module holds the built-in ops only"
        )
    main = _MAIN.substitute(
        name=repr(space.name),
        version=repr(space.version),
        readable=textwrap.fill(space.describe(arch), 99),
        shape=repr(("N", *input_shape)).replace("'", ""),
        cells=_literal(space.cells, "CELLS = "),
        skeleton=_literal(space.skeleton, "SKELETON = "),
        arch=_literal(tuple(int(a) for a in arch), "ARCH = "),
        input_shape=repr(tuple(int(d) for d in input_shape)),
        num_classes=repr(int(num_classes)),
        edges=_literal(edges, "EDGES = "),
    )
    return standalone(main, NETWORK_MODULES)


def _literal(value, prefix: str) -> str:
    """`value` as Python source that fits in 99 columns after `prefix`."""
    text = pprint.pformat(value, width=99 - len(prefix), compact=True)
    return textwrap.indent(text, " " * len(prefix)).lstrip()
