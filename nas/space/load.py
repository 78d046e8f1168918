"""Finding a search space by name: a built-in one, or a user's from a Python file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from nas.space.space import SearchSpace


def load_space(spec: str, **size) -> SearchSpace:
    """The space named by `spec`: a built-in name, or ``path/to/file.py:NAME``.

    ``NAME`` in the file is a `SearchSpace` or a function returning one. `size` (for example
    ``channels=8, cells_per_stage=1``) goes to the factory; entries that are None are left out.

    Raises:
      ValueError: an unknown name, a missing file or attribute, or an object of the wrong type.
    """
    from search_spaces import SPACES

    size = {k: v for k, v in size.items() if v is not None}
    if spec in SPACES:
        return SPACES[spec](**size)
    path, sep, attr = spec.rpartition(":")
    if not sep or not path.endswith(".py"):
        raise ValueError(
            f"unknown space {spec!r}: use a built-in name ({', '.join(SPACES)}) "
            "or path/to/file.py:NAME"
        )
    if not Path(path).is_file():
        raise ValueError(f"space file {path!r} does not exist")
    module_name = f"_nas_user_space_{Path(path).stem}"
    loader = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module
    loader.loader.exec_module(module)
    if not hasattr(module, attr):
        names = [n for n in vars(module) if not n.startswith("_")]
        raise ValueError(f"{path} has no {attr!r}; it defines: {', '.join(names)}")
    obj = getattr(module, attr)
    if isinstance(obj, SearchSpace):
        if size:
            raise ValueError(
                f"{spec} is a fixed SearchSpace; {sorted(size)} apply only to a factory function"
            )
        return obj
    if callable(obj):
        space = obj(**size)
        if isinstance(space, SearchSpace):
            return space
    raise ValueError(f"{spec} must be a SearchSpace or a function returning one, got {obj!r}")
