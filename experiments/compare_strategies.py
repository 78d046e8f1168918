"""Search strategies compared on NAS-Bench-Graph: validation regret and test metric by budget.

Runs each strategy (random search, regularized evolution, reinforce, bayesopt, and Optuna's TPE
sampler as an outside peer when ``optuna`` is installed) for `seeds` seeds on each dataset,
with the search loop a user runs (`nas.search.search`) over the tabular evaluator. Every query
counts against the budget, repeats included. The pick at budget b is the best-by-validation
architecture among the first b queries (a strategy does not know its budget, so one run of the
largest budget serves every smaller one); its regret is the table's best validation metric
minus the pick's, and its test metric is read once, for the report.

Writes to `out`: ``table.md`` (mean ± std over seeds), ``regret.png`` (regret against budget,
when matplotlib is installed) and ``runs/DATASET-STRATEGY.json`` (each seed's validation trace
and picks; a rerun with the same config reads them instead of searching again).

Tune strategy defaults on cora, citeseer and arxiv only; check them untouched on the others:
``python -m experiments.compare_strategies --set datasets=pubmed,cs,photo --set
out=experiments/results/compare_strategies_check``. The last line printed is a JSON object of
the figures.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from experiments import entry
from nas.evaluators import NasBenchGraphEvaluator
from nas.search import search
from nas.strategies import STRATEGIES
from search_spaces import nasbench_graph


@dataclasses.dataclass(frozen=True)
class Config:
    datasets: tuple[str, ...] = ("cora", "citeseer", "arxiv")
    strategies: tuple[str, ...] = ("random", "evolution", "reinforce", "bayesopt", "tpe")
    budgets: tuple[int, ...] = (20, 50, 100, 200, 500)
    # "strategy=budget": a strategy run to fewer queries than the largest budget (CPU time).
    caps: tuple[str, ...] = ("bayesopt=100",)
    seeds: int = 30
    out: str = "experiments/results/compare_strategies"


QUICK = Config(datasets=("cora",), budgets=(5, 12), caps=("bayesopt=8",), seeds=2, out="")


def budget_of(config: Config, name: str) -> int:
    """The queries `name` runs for: the largest budget, or its cap."""
    caps = dict(cap.split("=") for cap in config.caps)
    return min(max(config.budgets), int(caps.get(name, max(config.budgets))))


def run_tpe(space, evaluator, budget: int, seed: int) -> tuple[list, list[float]]:
    """Optuna's TPE sampler (its defaults) over the same decisions."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    archs, scores = [], []
    for _ in range(budget):
        trial = study.ask()
        arch = [
            trial.suggest_int(f"d{i}", 0, int(c) - 1) for i, c in enumerate(space.cardinalities)
        ]
        score = evaluator.evaluate(np.array(arch, np.int32)).score
        archs.append(arch)
        scores.append(score)
        # TPE needs a number: a query with no table entry is told 0, below every entry.
        study.tell(trial, score if math.isfinite(score) else 0.0)
    return archs, scores


def run_seed(name: str, strategy, space, evaluator, budget: int, seed: int):
    """One seeded search of `budget` queries: every query's architecture and score."""
    if name == "tpe":
        return run_tpe(space, evaluator, budget, seed)
    records = search(space, strategy, evaluator, budget=budget, seed=seed)
    return [list(r.arch) for r in records], [r.score for r in records]


def run_cell(config: Config, dataset: str, name: str) -> dict:
    """All seeds of one strategy on one dataset, read from disk when already run."""
    path = Path(config.out) / "runs" / f"{dataset}-{name}.json" if config.out else None
    wanted = {"budget": budget_of(config, name), "seeds": config.seeds}
    if path is not None and path.exists():
        cached = json.loads(path.read_text())
        if all(cached[k] == v for k, v in wanted.items()):
            return cached
    space = nasbench_graph(dataset)
    evaluator = NasBenchGraphEvaluator(dataset, space)
    strategy = None if name == "tpe" else STRATEGIES[name](space)  # compiled once, all seeds
    start = time.perf_counter()
    runs = [
        run_seed(name, strategy, space, evaluator, wanted["budget"], s) for s in range(config.seeds)
    ]
    result = {
        **wanted,
        "dataset": dataset,
        "strategy": name,
        "seconds_per_seed": (time.perf_counter() - start) / config.seeds,
        "archs": [archs for archs, _ in runs],
        "scores": [[s if math.isfinite(s) else None for s in scores] for _, scores in runs],
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
    return result


def summarise(cell: dict, evaluator: NasBenchGraphEvaluator, budgets) -> dict:
    """Per budget: the picks' validation regret and test metric, mean and std over seeds.

    Budgets beyond the queries the cell ran are left out.
    """
    best = evaluator.best().valid
    figures = {}
    for b in (b for b in budgets if b <= cell["budget"]):
        regrets, tests = [], []
        for archs, scores in zip(cell["archs"], cell["scores"]):
            values = np.array([-np.inf if s is None else s for s in scores[:b]])
            i = int(np.argmax(values))
            regrets.append(best - values[i])
            tests.append(evaluator.test_metric(np.array(archs[i], np.int32)))
        figures[str(b)] = {
            "regret": float(np.mean(regrets)),
            "regret_std": float(np.std(regrets)),
            "test": float(np.mean(tests)),
            "test_std": float(np.std(tests)),
        }
    return figures


def markdown(figures: dict, config: Config) -> str:
    """One table per dataset: strategies down, budgets across, regret and test metric."""
    lines = [
        f"Validation regret (table best minus the pick's validation metric; lower is better) and "
        f"the pick's test metric, mean ± std over {config.seeds} seeds. Every query counts, "
        f"repeats included.",
    ]
    for dataset, by_strategy in figures.items():
        lines += ["", f"### {dataset}", ""]
        lines.append("| strategy | " + " | ".join(f"{b} queries" for b in config.budgets) + " |")
        lines.append("|---" * (len(config.budgets) + 1) + "|")
        for name, by_budget in by_strategy.items():
            cells = [
                f"{f['regret']:.4f} ± {f['regret_std']:.4f} (test {f['test']:.4f})" if f else "—"
                for f in (by_budget.get(str(b)) for b in config.budgets)
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(figures: dict, config: Config, path: Path) -> None:
    """Regret against budget, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(figures), figsize=(5 * len(figures), 4), squeeze=False)
    for ax, (dataset, by_strategy) in zip(axes[0], figures.items()):
        for name, by_budget in by_strategy.items():
            budgets = [b for b in config.budgets if str(b) in by_budget]
            mean = np.array([by_budget[str(b)]["regret"] for b in budgets])
            err = np.array([by_budget[str(b)]["regret_std"] for b in budgets])
            err /= math.sqrt(config.seeds)
            ax.plot(budgets, mean, marker="o", label=name)
            ax.fill_between(budgets, mean - err, mean + err, alpha=0.2)
        ax.set(xscale="log", xlabel="queries", ylabel="validation regret", title=dataset)
        ax.set_xticks(config.budgets, [str(b) for b in config.budgets])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def available(name: str) -> bool:
    if name != "tpe":
        return name in STRATEGIES
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


def run(config: Config) -> dict:
    figures = {}
    for dataset in config.datasets:
        evaluator = NasBenchGraphEvaluator(dataset)
        figures[dataset] = {}
        for name in filter(available, config.strategies):
            cell = run_cell(config, dataset, name)
            figures[dataset][name] = summarise(cell, evaluator, config.budgets)
            last, at = list(figures[dataset][name].items())[-1]
            print(
                f"{dataset} {name}: regret {at['regret']:.4f} at {last} queries "
                f"({cell['seconds_per_seed']:.1f} s a seed)",
                flush=True,
            )
    if config.out:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(markdown(figures, config))
        plot(figures, config, out / "regret.png")
    print(markdown(figures, config))
    return figures


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
