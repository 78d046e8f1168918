"""Tabular evaluation: look an architecture's score up in NAS-Bench-Graph instead of training it.

Reference: Qin et al., "NAS-Bench-Graph: Benchmarking Graph Neural Architecture Search",
NeurIPS 2022 Datasets and Benchmarks; the table is the ``nas-bench-graph`` package's light
benchmark (``pip install 'nas[tabular]'``). Each entry holds ``valid_perf`` and ``perf`` (the
validation and test metric: accuracy, ROC-AUC on ogbn-proteins), ``latency`` (inference time,
seconds) and ``para`` (parameters, millions). The light table records no training time, so an
evaluation reports 0 steps and 0 seconds.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nas.evaluators.base import EvalResult
from nas.space import SearchSpace
from search_spaces.nasbench_graph import nasbench_graph, to_nasbench_graph


@dataclasses.dataclass(frozen=True)
class TableBest:
    """The table's optimum, for regret computations.

    Attributes:
      valid: the highest validation metric in the table.
      test: the test metric of that entry (the pick of a search that found it).
      best_test: the highest test metric in the table (an oracle's pick).
      entry: the table key (the package's ``valid_hash``) of the best validation entry.
    """

    valid: float
    test: float
    best_test: float
    entry: int


class NasBenchGraphEvaluator:
    """Scores architectures of `nasbench_graph(dataset)` by the table's validation metric.

    Args:
      dataset: one of `search_spaces.nasbench_graph.DATASETS` (cora, citeseer, pubmed, cs,
        physics, photo, computers, arxiv, proteins).
      space: the space whose architectures will be evaluated; by default
        ``nasbench_graph(dataset)``. Another space must have the same cell.

    An architecture with no table entry (every node ``skip``: a network without a GNN layer,
    which the benchmark never trained) scores NaN with the reason in ``EvalResult.error``; the
    search ranks NaN last.

    Example::

        evaluator = NasBenchGraphEvaluator("cora")
        result = evaluator.evaluate(evaluator.space.sample(jax.random.key(0)))
        regret = evaluator.best().test - evaluator.test_metric(final_pick)
    """

    def __init__(self, dataset: str = "cora", space: SearchSpace | None = None):
        expected = nasbench_graph(dataset)  # checks `dataset`
        if space is not None and space.cells != expected.cells:
            raise ValueError(
                f"NasBenchGraphEvaluator({dataset!r}): space {space.name!r} has a different cell "
                f"from NAS-Bench-Graph's; build it with search_spaces.nasbench_graph({dataset!r})"
            )
        try:
            from nas_bench_graph import Arch, light_read
        except ImportError:
            raise ImportError(
                "NasBenchGraphEvaluator needs the nas-bench-graph package: "
                "pip install 'nas[tabular]' (or pip install nas-bench-graph)"
            ) from None
        self.dataset, self.space = dataset, space or expected
        self._arch = Arch
        self.table: dict[int, dict] = light_read(dataset)
        self._best: TableBest | None = None

    def __repr__(self):
        return f"NasBenchGraphEvaluator({self.dataset!r}, {len(self.table):,} entries)"

    def entry_key(self, arch) -> int:
        """The table key of `arch`: the package's ``Arch(link, ops).valid_hash()``."""
        return self._arch(*to_nasbench_graph(self.space, arch)).valid_hash()

    def info(self, arch) -> dict | None:
        """The table entry of `arch` (``valid_perf``, ``perf``, ``latency``, ``para``), or None."""
        entry = self.table.get(self.entry_key(arch))
        return None if entry is None else {k: float(v) for k, v in entry.items()}

    def evaluate(self, arch) -> EvalResult:
        """The table's validation metric of `arch`; NaN with an error if it has no entry."""
        entry = self.info(arch)
        if entry is None:
            return EvalResult(math.nan, 0, 0.0, self._no_entry(arch))
        return EvalResult(entry["valid_perf"], 0, 0.0)

    def test_metric(self, arch) -> float:
        """The table's test metric of `arch` (NaN if it has no entry); for the final pick only."""
        entry = self.info(arch)
        return math.nan if entry is None else entry["perf"]

    def best(self) -> TableBest:
        """The table's best validation entry and its test metric, computed once."""
        if self._best is None:
            entries = list(self.table.items())
            valid = np.array([float(e["valid_perf"]) for _, e in entries])
            test = np.array([float(e["perf"]) for _, e in entries])
            i = int(np.argmax(valid))  # ties: the first in table order
            self._best = TableBest(
                float(valid[i]), float(test[i]), float(test.max()), int(entries[i][0])
            )
        return self._best

    def _no_entry(self, arch) -> str:
        link, ops = to_nasbench_graph(self.space, arch)
        why = (
            "every node is 'skip', so the network has no GNN layer and NAS-Bench-Graph did "
            "not train it"
            if set(ops) == {"skip"}
            else "the table does not list it"
        )
        return (
            f"no NAS-Bench-Graph entry for link={link} ops={ops} on {self.dataset} "
            f"(valid_hash {self.entry_key(arch)}): {why}"
        )
