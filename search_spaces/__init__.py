"""Built-in search spaces, each a factory taking its size parameters."""

from search_spaces.darts import darts
from search_spaces.enas import enas
from search_spaces.nb201 import nb201

SPACES = {"nb201": nb201, "darts": darts, "enas": enas}

__all__ = ["SPACES", "darts", "enas", "nb201"]
