"""Search strategies on one protocol (`Strategy`): a registry name to class."""

from nas.strategies.base import WORST_SCORE, State, Strategy
from nas.strategies.evolution import RegularizedEvolution
from nas.strategies.random_search import RandomSearch

STRATEGIES = {"random": RandomSearch, "evolution": RegularizedEvolution}

__all__ = ["STRATEGIES", "WORST_SCORE", "RandomSearch", "RegularizedEvolution", "State", "Strategy"]
