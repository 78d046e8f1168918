"""Benchmark: the compile-once supernet against one fixed child net per architecture.

Measures side by side in one process, on digits (8x8x1) and on CIFAR-shaped data (32x32x3):

- ``step_ratio``: the supernet's train step time over the fixed child net's, for the same
  architectures (median over steps, mean over architectures; target at most 1.1), each step
  its own call (``train_step``); ``loop_step_ratio`` the same for steps run as a search runs
  them, ``train_steps`` steps to a call of `Trainer.train_steps`'s compiled loop (per step);
- ``recompiles``: XLA compiles while `n_archs_compile` different architectures pass through
  the supernet's train and eval steps after the first (target 0);
- ``speedup``: evaluations per second of shared-weights evaluation against one jit per
  architecture, at equal train steps and the same validation pass (target at least 3).

Run from the repository root: ``python -m experiments.bench_supernet`` (``--quick`` for a
smoke run). The last line
printed is a JSON object of the figures.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from experiments import entry
from experiments.timing import median_ms
from nas.compiles import count_compiles
from nas.data import Dataset, load_digits, synthetic_cifar
from nas.evaluators import SharedWeightsEvaluator, StandaloneEvaluator
from nas.supernet import child_net, supernet
from nas.train import TrainConfig, Trainer
from search_spaces import nb201


@dataclasses.dataclass(frozen=True)
class Config:
    channels: int = 16
    cells_digits: int = 5  # the NAS-Bench-201 network on digits
    cells_cifar: int = 1  # a smaller one on 32x32x3, to keep the CPU run short
    batch_size: int = 64
    n_archs_ratio: int = 5
    timed_steps: int = 10
    n_archs_compile: int = 100
    n_archs_throughput: int = 20
    # Train steps per evaluation: the CLI default on digits; on 32x32x3, the 10 of the
    # protocol DESIGN.md measured with.
    train_steps_digits: int = 20
    train_steps_cifar: int = 10
    seed: int = 0

    def __post_init__(self):
        if self.n_archs_throughput < 2:
            raise ValueError(
                f"n_archs_throughput={self.n_archs_throughput}: the throughput needs at least 2 "
                "architectures, one that compiles and one timed alone"
            )


QUICK = Config(
    channels=4,
    cells_digits=1,
    cells_cifar=1,
    n_archs_ratio=1,
    timed_steps=2,
    n_archs_compile=3,
    n_archs_throughput=2,
    train_steps_digits=2,
    train_steps_cifar=2,
)


def step_ratio(space, data: Dataset, config: Config, train_steps: int) -> dict:
    """Supernet step time over child step time, architecture by architecture: a step a call,
    and `train_steps` steps a call of the trainers' compiled loops."""
    train = TrainConfig(batch_size=config.batch_size)
    x, y = data.x_train[: config.batch_size], data.y_train[: config.batch_size]
    xs, ys = np.stack([x] * train_steps), np.stack([y] * train_steps)

    def trainer(net):
        return Trainer(net, train, 1000, steps_per_call=train_steps)

    net = trainer(supernet(space, data.input_shape, data.num_classes))
    archs = np.asarray(space.sample(jax.random.key(config.seed), config.n_archs_ratio))
    ms = {"supernet": [], "child": [], "supernet_loop": [], "child_loop": []}
    for arch in archs:
        child = trainer(child_net(space, arch, data.input_shape, data.num_classes))
        steps = {
            "child": lambda child=child: child.train_step(x, y),
            "supernet": lambda arch=arch: net.train_step(x, y, arch),
            "child_loop": lambda child=child: child.train_steps(xs, ys),
            "supernet_loop": lambda arch=arch: net.train_steps(xs, ys, arch),
        }
        for name, t in median_ms(steps, config.timed_steps).items():
            ms[name].append(t / train_steps if name.endswith("_loop") else t)
    figures = {}
    for loop, name in (("", "step_ratio"), ("_loop", "loop_step_ratio")):
        ratios = np.array(ms[f"supernet{loop}"]) / np.array(ms[f"child{loop}"])
        figures |= {
            f"supernet{loop}_step_ms": round(float(np.mean(ms[f"supernet{loop}"])), 2),
            f"child{loop}_step_ms": round(float(np.mean(ms[f"child{loop}"])), 2),
            name: round(float(np.mean(ratios)), 3),
            f"{name}_max": round(float(np.max(ratios)), 3),
        }
    return figures


def recompiles(space, data: Dataset, config: Config) -> dict:
    """XLA compiles while new architectures pass through the train and eval steps."""
    train = TrainConfig(batch_size=config.batch_size)
    trainer = Trainer(supernet(space, data.input_shape, data.num_classes), train, 1000)
    x, y = data.x_train[: config.batch_size], data.y_train[: config.batch_size]
    archs = np.asarray(space.sample(jax.random.key(config.seed + 1), config.n_archs_compile + 1))
    trainer.train_step(x, y, archs[0])
    trainer.evaluate(data.x_val, data.y_val, archs[0])
    with count_compiles() as counter:
        for arch in archs[1:]:
            trainer.train_step(x, y, arch)
            trainer.evaluate(data.x_val, data.y_val, arch)
    return {"recompiles": counter.count, "archs": config.n_archs_compile}


def throughput(space, data: Dataset, config: Config, train_steps: int) -> dict:
    """Evaluations per second: shared weights against a fresh jit per architecture.

    Both sides evaluate the same `n_archs_throughput` architectures once each. The supernet
    compiles during the first of them; `speedup` counts that compile, `speedup_per_eval`
    compares the other evaluations alone (the limit of a long search).
    """
    train = TrainConfig(batch_size=config.batch_size)
    archs = np.asarray(space.sample(jax.random.key(config.seed + 2), config.n_archs_throughput))
    jax.clear_caches()  # trainers of equal networks share compiled steps: time a cold compile
    start = time.perf_counter()
    shared = SharedWeightsEvaluator(
        space,
        data,
        train_steps=train_steps,
        warmup_steps=0,
        config=train,
        seed=config.seed,
    )
    shared.evaluate(archs[0])  # compiles the train and eval steps: the first of the n
    compiled = time.perf_counter()
    for arch in archs[1:]:
        shared.evaluate(arch)
    shared_s, compile_s = time.perf_counter() - compiled, compiled - start
    # Standalone with the same number of train steps: one epoch sized to `train_steps`.
    subset = dataclasses.replace(
        data,
        x_train=data.x_train[: train_steps * config.batch_size],
        y_train=data.y_train[: train_steps * config.batch_size],
    )
    start = time.perf_counter()
    alone = StandaloneEvaluator(space, subset, epochs=1, config=train, seed=config.seed)
    for arch in archs:
        alone.evaluate(arch)
    alone_s = time.perf_counter() - start
    n = len(archs)
    shared_per_eval_s = shared_s / (n - 1)
    return {
        "shared_evals_per_s": round(n / (shared_s + compile_s), 3),
        "supernet_first_eval_s": round(compile_s, 2),  # its compile plus one evaluation
        "jit_per_arch_evals_per_s": round(n / alone_s, 3),
        "speedup": round(alone_s / (shared_s + compile_s), 2),
        "speedup_per_eval": round(alone_s / (n * shared_per_eval_s), 2),
    }


def run(config: Config) -> dict:
    figures = {"jax": jax.__version__, "device": jax.devices()[0].device_kind}
    datasets = {
        "digits": (load_digits(seed=config.seed), config.cells_digits, config.train_steps_digits),
        "cifar_shaped": (
            synthetic_cifar(seed=config.seed),
            config.cells_cifar,
            config.train_steps_cifar,
        ),
    }
    for name, (data, cells, train_steps) in datasets.items():
        space = nb201(channels=config.channels, cells_per_stage=cells)
        figures[name] = {
            "space": f"nb201(channels={config.channels}, cells_per_stage={cells})",
            "train_steps": train_steps,
        }
        parts = ((step_ratio, (train_steps,)), (recompiles, ()), (throughput, (train_steps,)))
        for part, extra in parts:  # each printed when done, so that a run cut short keeps it
            figures[name].update(part(space, data, config, *extra))
            print(name, figures[name], flush=True)
    return figures


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
