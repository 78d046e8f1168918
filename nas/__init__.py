"""nas: neural architecture search on JAX, Flax NNX and Optax.

The public names, one a line; the modules they come from hold one concept each.
"""

from nas.data import Dataset, load_dataset
from nas.evaluators import (
    EvalResult,
    NasBenchGraphEvaluator,
    SharedWeightsEvaluator,
    StandaloneEvaluator,
)
from nas.executor import Executor, InProcessExecutor
from nas.export import Architecture, export_architecture, load_architecture
from nas.search import Record, search
from nas.space import Cell, InvalidArchitecture, Node, SearchSpace, Skeleton, load_space
from nas.strategies import BayesOpt, RandomSearch, RegularizedEvolution, Reinforce, Strategy
from nas.supernet import Network, child_from_supernet, child_net, supernet
from nas.train import TrainConfig, Trainer

__all__ = [
    "Architecture",
    "BayesOpt",
    "Cell",
    "Dataset",
    "EvalResult",
    "Executor",
    "InProcessExecutor",
    "InvalidArchitecture",
    "NasBenchGraphEvaluator",
    "Network",
    "Node",
    "RandomSearch",
    "Record",
    "RegularizedEvolution",
    "Reinforce",
    "SearchSpace",
    "SharedWeightsEvaluator",
    "Skeleton",
    "StandaloneEvaluator",
    "Strategy",
    "TrainConfig",
    "Trainer",
    "child_from_supernet",
    "child_net",
    "export_architecture",
    "load_architecture",
    "load_dataset",
    "load_space",
    "search",
    "supernet",
]
