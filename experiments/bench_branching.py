"""Benchmark: the supernet's two ways of picking an edge's op, against the fixed child net.

"switch" runs the chosen op alone under `lax.switch`; "select" runs every op and keeps the
chosen output (`nas.cells`). Measures side by side in one process, on digits (8x8x1) and on
CIFAR-shaped data (32x32x3), for the same architectures: the train step time of the child
net and of the supernet built each way (median over steps, mean over architectures), and
each supernet's first train step (its compile). ``threads`` is the cores the process may run
on (``taskset -c 0 python -m ...`` measures on one). ``--set run=4`` times 4 steps of a side
in a row per turn, as a search runs them, rather than one.

Run from the repository root: ``python -m experiments.bench_branching`` (``--quick`` for a
smoke run). The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np

from experiments import entry
from experiments.timing import median_ms
from nas.cells import BRANCHINGS
from nas.data import Dataset, load_digits, synthetic_cifar
from nas.supernet import child_net, supernet
from nas.train import TrainConfig, Trainer
from search_spaces import nb201


@dataclasses.dataclass(frozen=True)
class Config:
    channels: int = 16
    cells_digits: int = 5  # as bench_supernet
    cells_cifar: int = 1
    batch_size: int = 64
    n_archs: int = 3
    timed_steps: int = 20
    run: int = 1  # steps of one side in a row per turn (`experiments.timing.median_ms`)
    seed: int = 0


QUICK = Config(channels=4, cells_digits=1, cells_cifar=1, n_archs=1, timed_steps=2)


def compare(space, data: Dataset, config: Config) -> dict:
    """Child, switch and select train steps for the same architectures, timed in turns."""
    train = TrainConfig(batch_size=config.batch_size)
    x, y = data.x_train[: config.batch_size], data.y_train[: config.batch_size]
    archs = np.asarray(space.sample(jax.random.key(config.seed), config.n_archs))
    figures, nets = {}, {}
    for branching in BRANCHINGS:
        net = supernet(space, data.input_shape, data.num_classes, branching=branching)
        nets[branching] = Trainer(net, train, 1000)
        start = time.perf_counter()
        jax.block_until_ready(nets[branching].train_step(x, y, archs[0]))
        figures[f"{branching}_compile_s"] = round(time.perf_counter() - start, 2)
    times = {name: [] for name in ("child", *BRANCHINGS)}
    for arch in archs:
        child = Trainer(child_net(space, arch, data.input_shape, data.num_classes), train, 1000)
        steps = {"child": lambda child=child: child.train_step(x, y)}
        for branching, trainer in nets.items():
            steps[branching] = lambda t=trainer, arch=arch: t.train_step(x, y, arch)
        for name, ms in median_ms(steps, config.timed_steps, config.run).items():
            times[name].append(ms)
    for name, ms in times.items():
        figures[f"{name}_step_ms"] = round(float(np.mean(ms)), 2)
    for branching in BRANCHINGS:
        ratio = np.array(times[branching]) / np.array(times["child"])
        figures[f"{branching}_over_child"] = round(float(np.mean(ratio)), 3)
    return figures


def run(config: Config) -> dict:
    figures = {
        "jax": jax.__version__,
        "device": jax.devices()[0].device_kind,
        "threads": len(os.sched_getaffinity(0)),
    }
    datasets = {
        "digits": (load_digits(seed=config.seed), config.cells_digits),
        "cifar_shaped": (synthetic_cifar(seed=config.seed), config.cells_cifar),
    }
    for name, (data, cells) in datasets.items():
        space = nb201(channels=config.channels, cells_per_stage=cells)
        figures[name] = {"space": f"nb201(channels={config.channels}, cells_per_stage={cells})"}
        figures[name].update(compare(space, data, config))
        print(name, figures[name], flush=True)
    return figures


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
