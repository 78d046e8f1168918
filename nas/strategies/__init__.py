"""Search strategies on one protocol (`Strategy`): a registry name to class."""

from nas.strategies.base import WORST_SCORE, State, Strategy
from nas.strategies.bayesopt import BayesOpt
from nas.strategies.evolution import RegularizedEvolution
from nas.strategies.random_search import RandomSearch
from nas.strategies.reinforce import Reinforce

STRATEGIES = {
    "random": RandomSearch,
    "evolution": RegularizedEvolution,
    "reinforce": Reinforce,
    "bayesopt": BayesOpt,
}

__all__ = [
    "STRATEGIES",
    "WORST_SCORE",
    "BayesOpt",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "State",
    "Strategy",
]
