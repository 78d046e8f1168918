"""Evaluators: architecture in, validation score out, on one interface."""

from nas.evaluators.base import EvalResult, Evaluator
from nas.evaluators.shared import SharedWeightsEvaluator
from nas.evaluators.standalone import StandaloneEvaluator

EVALUATORS = {"shared": SharedWeightsEvaluator, "standalone": StandaloneEvaluator}

__all__ = ["EVALUATORS", "EvalResult", "Evaluator", "SharedWeightsEvaluator", "StandaloneEvaluator"]
