"""nas: neural architecture search on JAX, Flax NNX and Optax.

The public names, one a line; the modules they come from hold one concept each.
"""

from nas.data import Dataset, load_dataset
from nas.evaluators import EvalResult, SharedWeightsEvaluator, StandaloneEvaluator
from nas.search import Record, search
from nas.space import Cell, InvalidArchitecture, Node, SearchSpace, Skeleton, load_space
from nas.strategies import RandomSearch, RegularizedEvolution, Strategy
from nas.supernet import Network, child_from_supernet, child_net, supernet
from nas.train import TrainConfig, Trainer

__all__ = [
    "Cell",
    "Dataset",
    "EvalResult",
    "InvalidArchitecture",
    "Network",
    "Node",
    "RandomSearch",
    "Record",
    "RegularizedEvolution",
    "SearchSpace",
    "SharedWeightsEvaluator",
    "Skeleton",
    "StandaloneEvaluator",
    "Strategy",
    "TrainConfig",
    "Trainer",
    "child_from_supernet",
    "child_net",
    "load_dataset",
    "load_space",
    "search",
    "supernet",
]
