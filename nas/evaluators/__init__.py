"""Evaluators: architecture in, validation score out, on one interface."""

from nas.evaluators.base import EvalResult, Evaluator
from nas.evaluators.shared import SharedWeightsEvaluator
from nas.evaluators.standalone import StandaloneEvaluator
from nas.evaluators.tabular import NasBenchGraphEvaluator, TableBest

# The evaluators `nas search --evaluator` can build from its options. The tabular one is left
# out: it needs a NAS-Bench-Graph space and dataset, not a training dataset.
EVALUATORS = {"shared": SharedWeightsEvaluator, "standalone": StandaloneEvaluator}

__all__ = [
    "EVALUATORS",
    "EvalResult",
    "Evaluator",
    "NasBenchGraphEvaluator",
    "SharedWeightsEvaluator",
    "StandaloneEvaluator",
    "TableBest",
]
