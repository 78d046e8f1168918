"""Search-space API: describe a cell-based space; sample, mutate, check and key architectures."""

from nas.space.cell import Cell, Node, choice_cell, dense_cell
from nas.space.decisions import Decision
from nas.space.encoding import ENCODINGS
from nas.space.load import load_space
from nas.space.space import InvalidArchitecture, SearchSpace, Skeleton

__all__ = [
    "Cell",
    "Decision",
    "ENCODINGS",
    "InvalidArchitecture",
    "Node",
    "SearchSpace",
    "Skeleton",
    "choice_cell",
    "dense_cell",
    "load_space",
]
