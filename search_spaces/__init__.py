"""Built-in search spaces, each a factory taking its size parameters."""

from search_spaces.darts import darts
from search_spaces.enas import enas
from search_spaces.nasbench_graph import nasbench_graph
from search_spaces.nb201 import nb201

# Spaces whose networks `nas search` trains; the shared tests build each one at a tiny size.
SPACES = {"nb201": nb201, "darts": darts, "enas": enas}
# Spaces scored by a benchmark table (taking a dataset name, not sizes) and never built.
TABULAR_SPACES = {"nasbench_graph": nasbench_graph}

__all__ = ["SPACES", "TABULAR_SPACES", "darts", "enas", "nasbench_graph", "nb201"]
