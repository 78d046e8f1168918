"""The experiment's steps: the searches, the contenders, their retraining and the figures."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.cache import ResultCache
from experiments.fashion_mnist.config import Config
from experiments.fashion_mnist.contenders import cost, resnet
from experiments.fashion_mnist.figures import progress_plot, table
from experiments.pick import search_pick
from nas.config import SearchConfig
from nas.data import load_dataset
from nas.export import export_architecture
from nas.retrain import RetrainConfig, retrain
from nas.rundir import write_json
from nas.space import load_space
from nas.train import TrainConfig


def run(config: Config) -> dict:
    data = load_dataset(config.dataset)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(config.out or scratch)
        cache = ResultCache(out / "results.json" if config.out else None, _header(config))
        searches = {
            s: _once(cache, f"search {s}", search, config, s, out) for s in config.strategies
        }
        minutes = float(np.mean([s["minutes"] for s in searches.values()]))
        searches["random"] = _once(cache, "search random", search, config, "random", out, minutes)
        contenders = picks(config, searches, data)
        results = {}
        for name, (space, arch, size) in contenders.items():
            folder = out / "export" / name
            export_architecture(
                folder,
                space,
                arch,
                input_shape=data.input_shape,
                num_classes=data.num_classes,
                spec="nb201",
            )
            seeds = [
                _once(
                    cache,
                    f"retrain {name} seed {s}",
                    retrain_seed,
                    config,
                    space,
                    arch,
                    data,
                    s,
                    folder,
                )
                for s in range(config.seed, config.seed + config.retrain_seeds)
            ]
            write_json(folder / "metrics.json", {"runs": seeds})
            results[name] = _figures(space, arch, size, seeds, searches.get(name))
        figures = {"dataset": config.dataset, "contenders": results}
        if config.out:
            (out / "table.md").write_text(table(figures, config) + "\n")
            progress_plot({n: out / "runs" / n for n in searches}, out / "progress.png")
        print(table(figures, config))
    return figures


def _header(config: Config) -> dict:
    header = dataclasses.asdict(config)
    header.pop("out")
    return header


def _once(cache: ResultCache, name: str, step, *args):
    """The result of `step(*args)`, computed once and then read from `cache`."""
    if name not in cache:
        cache.put(name, step(*args))
    return cache[name]


def search(config: Config, strategy: str, out: Path, minutes: float | None = None) -> dict:
    """One search of at most `budget` architectures (shared weights; random search alone, for
    at most `minutes`): its pick and costs (`experiments.pick.search_pick`)."""
    alone = strategy == "random"
    options = SearchConfig(
        space="nb201",
        strategy=strategy,
        dataset=config.dataset,
        evaluator="standalone" if alone else "shared",
        budget=config.budget,
        max_minutes=minutes,
        seed=config.seed,
        channels=config.channels,
        cells=config.cells,
        warmup_steps=config.warmup_steps,
        train_steps=config.train_steps,
        warmup_sampling=config.warmup_sampling,
        few_shot=config.few_shot and not alone,
        epochs=config.standalone_epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        out=str(out / "runs" / strategy),
    )
    return search_pick(options)


def picks(config: Config, searches: dict, data) -> dict:
    """Each contender at its retraining size: ``{name: (space, arch, cost)}``; the ResNet's
    parameters are brought as close as they go to the searched picks' mean."""
    space = load_space(
        "nb201", channels=config.retrain_channels, cells_per_stage=config.retrain_cells
    )
    contenders = {}
    for name, found in searches.items():
        arch = space.validate(found["arch"])
        contenders[name] = (space, arch, cost(space, arch, data.input_shape, data.num_classes))
    searched = [contenders[s][2]["params"] for s in config.strategies]
    contenders["resnet"] = resnet(
        config.retrain_cells,
        np.mean(searched),
        config.max_params,
        data.input_shape,
        data.num_classes,
    )
    over = {n: c[2]["params"] for n, c in contenders.items() if c[2]["params"] > config.max_params}
    if over:
        raise ValueError(
            f"contenders over max_params={config.max_params}: {over}; lower retrain_channels "
            "or retrain_cells"
        )
    return contenders


def retrain_seed(config: Config, space, arch, data, seed: int, folder: Path) -> dict:
    """One seed of the shared recipe (its weights saved under `folder`), with its minutes."""
    recipe = RetrainConfig(
        epochs=config.retrain_epochs,
        patience=0,
        seeds=1,
        seed=seed,
        augment=config.augment,
        train=TrainConfig(batch_size=config.batch_size, learning_rate=config.learning_rate),
    )
    start = time.perf_counter()
    metrics = retrain(space, arch, data, recipe, out=folder, progress=False)
    (run,) = metrics["runs"]
    return {**run, "minutes": (time.perf_counter() - start) / 60}


def _figures(space, arch, size: dict, seeds: list, searched: dict | None) -> dict:
    test = [s["test"]["accuracy"] for s in seeds]
    return {
        "arch": space.describe(arch),
        "degenerate": space.is_degenerate(arch),
        "channels": space.skeleton.channels,
        "params": size["params"],
        "flops": size["flops"],
        "test_accuracy": [round(t, 4) for t in test],
        "test_mean": round(float(np.mean(test)), 4),
        "test_std": round(float(np.std(test, ddof=1)) if len(test) > 1 else 0.0, 4),
        "retrain_minutes": round(float(np.mean([s["minutes"] for s in seeds])), 2),
        "search_minutes": None if searched is None else round(searched["minutes"], 2),
        "search_evaluations": None if searched is None else searched["evaluations"],
    }
