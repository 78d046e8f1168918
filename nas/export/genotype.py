"""An exported architecture's genotype (genotype.json), and reading it back.

The genotype names the space (its name and version, and the spec `nas.space.load_space` takes
to rebuild it), the architecture as its decision vector and in named form, its score, and the
network's size and data shape::

    {"format": 1, "space": "nb201", "space_version": 1,
     "space_spec": "nb201", "space_args": {"channels": 16, "cells_per_stage": 5},
     "arch": [...], "key": "...", "readable": "normal: 1<-conv3x3(0) ...", "cells": {...},
     "score": 0.98,
     "network": {"channels": 16, "cells_per_stage": 5, "input_shape": [8, 8, 1],
                 "num_classes": 10}}
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from nas.export.weights import load_weights
from nas.space import InvalidArchitecture, SearchSpace, load_space
from nas.supernet import Network, child_net

FORMAT = 1
GENOTYPE = "genotype.json"


def genotype(
    space: SearchSpace,
    arch,
    *,
    input_shape,
    num_classes: int,
    score: float | None = None,
    spec: str | None = None,
    space_args: dict | None = None,
) -> dict:
    """The genotype of `arch` as JSON-ready data.

    Args:
      space: the search space of `arch`.
      arch: the architecture vector.
      input_shape: one example's shape, (H, W, C).
      num_classes: the number of output classes.
      score: its score in the search, if any.
      spec: what `load_space` takes to rebuild the space (default: the space's name, which
        suits the built-in spaces).
      space_args: the size arguments for `load_space` (default: the skeleton's channels and
        cells per stage).
    """
    arch = space.validate(arch)
    sk = space.skeleton
    return {
        "format": FORMAT,
        "space": space.name,
        "space_version": space.version,
        "space_spec": spec or space.name,
        "space_args": (
            {"channels": sk.channels, "cells_per_stage": sk.cells_per_stage}
            if space_args is None
            else space_args
        ),
        "arch": [int(a) for a in arch],
        "key": space.key(arch),
        "readable": space.describe(arch),
        "cells": space.to_json(arch)["cells"],
        "score": score,
        "network": {
            "channels": sk.channels,
            "cells_per_stage": sk.cells_per_stage,
            "input_shape": [int(d) for d in input_shape],
            "num_classes": int(num_classes),
        },
    }


@dataclasses.dataclass(frozen=True, eq=False)
class Architecture:
    """An exported architecture: its space, decision vector, data shape and score."""

    space: SearchSpace
    arch: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    score: float | None
    path: Path  # its genotype.json

    def build_model(self, *, seed: int = 0, weights=None) -> Network:
        """Its network (`nas.child_net`), initialised from `seed` or, given the path of a
        weights.msgpack file, holding those weights."""
        model = child_net(self.space, self.arch, self.input_shape, self.num_classes, seed=seed)
        return model if weights is None else load_weights(model, weights)


def load_architecture(path, space: SearchSpace | None = None) -> Architecture:
    """Reads a genotype.json (or the export directory holding one).

    Args:
      path: the file, or its directory.
      space: the search space; by default it is rebuilt from the genotype's ``space_spec`` and
        ``space_args`` (a built-in name, or ``path/to/file.py:NAME``).

    Raises:
      ValueError: the file is not valid JSON, lacks a field, or a field does not match the
        space (its name, version, size, or an architecture outside it); the message names the
        file and the field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / GENOTYPE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    fields = ("space", "space_version", "space_spec", "space_args", "arch", "cells", "network")
    missing = [f for f in fields if not isinstance(data, dict) or f not in data]
    if missing:
        raise ValueError(f"{path}: not a genotype: it lacks the field {missing[0]!r}")
    if space is None:
        space = load_space(data["space_spec"], **data["space_args"])
    for field, value in (("space", space.name), ("space_version", space.version)):
        if data[field] != value:
            raise ValueError(
                f"{path}: field {field!r} is {data[field]!r}, but the space has {value!r}"
            )
    network = data["network"]
    if not isinstance(network, dict):
        raise ValueError(f"{path}: field 'network' should be an object, not {network!r}")
    sk = space.skeleton
    for field, value in (("channels", sk.channels), ("cells_per_stage", sk.cells_per_stage)):
        if network.get(field) != value:
            raise ValueError(
                f"{path}: field 'network.{field}' is {network.get(field)!r}, but the space "
                f"has {value!r}"
            )
    try:
        arch = space.validate(data["arch"])
    except InvalidArchitecture as error:
        raise InvalidArchitecture(f"{path}: field 'arch': {error}") from None
    try:
        named = {"space": space.name, "version": space.version, "cells": data["cells"]}
        same = np.array_equal(space.from_json(named), arch)
    except InvalidArchitecture as error:
        raise InvalidArchitecture(f"{path}: field 'cells': {error}") from None
    if not same:
        raise InvalidArchitecture(
            f"{path}: fields 'arch' and 'cells' describe different architectures (was the "
            "space changed without a new version?)"
        )
    return Architecture(
        space,
        arch,
        tuple(network["input_shape"]),
        network["num_classes"],
        data.get("score"),
        path,
    )
