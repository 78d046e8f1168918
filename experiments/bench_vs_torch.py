"""Benchmark: our shared-weights supernet against PyTorch eager on the same child networks.

One protocol on every side, timed end to end: `n_archs` distinct nb201 architectures
(`experiments.ground_truth.sample_archs`), each trained `train_steps` SGD steps of
`batch_size` images (the same optimizer: gradient clipping, weight decay, Nesterov momentum,
cosine schedule; the same batch sequence), then scored on `val_samples` validation images.
On digits (8x8x1, 5 cells a stage) and CIFAR-shaped data (32x32x3, 1 cell a stage):

- ``torch_s``: PyTorch eager, a fresh `experiments.torch_child.TorchChild` per architecture
  (eager mode compiles nothing, so the fixed child net is how PyTorch evaluates one);
- ``supernet_s``: ours as a search runs it, `SharedWeightsEvaluator` (no warm-up) calling
  ``evaluate(arch)``: the supernet's one compile is included; ``supernet_after_first_s``
  leaves the first architecture out (on every side), the limit of a long search;
- ``child_s``: for reference, our fixed child net, `child_net` and `Trainer`, one jit each;
- ``speedup``: ``torch_s / supernet_s``, our throughput over PyTorch's (>= 1: we are at least
  as fast); ``speedup_after_first`` the same without the first architecture;
- ``*_step_ms``: the median train step of each side over `step_archs` of the architectures,
  one step a call; ``supernet_loop_step_ms`` per step of the supernet's calls of
  `Trainer.train_steps`, which its evaluations make (all of an architecture's steps a call).

Device: both sides run on the same one, JAX's default backend (``device="auto"``): on a machine
with a CUDA GPU that JAX sees, PyTorch runs on ``cuda`` too, and every timed region ends with a
synchronisation on both sides. ``--set device=cpu`` pins PyTorch to the CPU.

Threads: both sides use all the cores this process may run on; XLA's CPU client sizes its
thread pool to them, and PyTorch is given the same number with `torch.set_num_threads`. Run it
on a quiet machine: with the cores oversubscribed, PyTorch's OpenMP threads wait on each other
at every op (a 6 ms step took 1 s on a busy 2-core machine), which XLA's thread pool does not.

Allocator: both sides use the one this process started with, the C library's malloc unless
``LD_PRELOAD`` names another; the figures name it. Each side gains from tcmalloc, PyTorch more
on digits (`nas.allocator`, ``python -m experiments.bench_allocator``).

Options: ``--set scan_cells=true`` builds the supernet with each stage's cells scanned (one
compiled cell per stage, `nas.supernet.Network`); ``--set branching=select`` has its edges run
every op and keep the chosen one, with no conditional (`nas.cells`; for GPUs);
``--set devices=2`` trains our sides data-parallel over two devices (two CPU devices on a
CPU, each normalising with its half-batch's statistics: `nas.parallel`; PyTorch keeps its
threads on one batch); ``--set datasets=digits`` runs one dataset;
``--set compile_cache=DIR`` keeps JAX's compiled programs in DIR (`nas.compile_cache`, as a
search does by default; ``none`` keeps none; JAX's own setting where it is not given, no cache
unless ``$JAX_COMPILATION_CACHE_DIR`` is set): a second run with the same DIR measures a
repeated search, whose steps load instead of compiling.

Run from the repository root: ``python -m experiments.bench_vs_torch`` (``--quick`` for a
smoke run); it needs PyTorch (``pip install -e '.[torch]'``). The last line printed is a JSON
object of the figures.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import jax
import numpy as np
import torch

from experiments import entry
from experiments.ground_truth import sample_archs
from experiments.timing import median_ms
from experiments.torch_child import TorchChild, accuracy, make_optimizer, train_step
from nas import compile_cache
from nas.data import BatchStream, Dataset, load_digits, synthetic_cifar
from nas.evaluators import SharedWeightsEvaluator
from nas.parallel import use_cpu_devices
from nas.supernet import child_net
from nas.train import TrainConfig, Trainer
from search_spaces import nb201


@dataclasses.dataclass(frozen=True)
class Config:
    channels: int = 16
    cells_digits: int = 5  # the NAS-Bench-201 network on digits
    cells_cifar: int = 1  # a smaller one on 32x32x3, as bench_supernet
    n_archs: int = 20
    train_steps_digits: int = 50
    train_steps_cifar: int = 10
    batch_size: int = 64
    val_samples: int = 512  # digits has 360: all of them
    step_archs: int = 5
    timed_steps: int = 10
    seed: int = 0
    device: str = "auto"  # PyTorch's device: "auto" (JAX's backend), "cpu" or "cuda"
    scan_cells: bool = False  # the supernet's `scan_cells` (`nas.supernet.Network`)
    branching: str = "switch"  # the supernet's `branching`: "switch" or "select" (`nas.cells`)
    datasets: tuple[str, ...] = ("digits", "cifar_shaped")
    compile_cache: str = ""  # a folder for JAX's persistent compilation cache, or none
    devices: int = 1  # our sides' data-parallel devices (`TrainConfig.devices`)


QUICK = Config(
    channels=4,
    cells_digits=1,
    n_archs=2,
    train_steps_digits=2,
    train_steps_cifar=2,
    val_samples=64,
    step_archs=1,
    timed_steps=2,
)


Evaluate = Callable[[int, np.ndarray], float]  # (index, architecture) -> validation accuracy


@dataclasses.dataclass
class Side:
    """What one side measured: seconds and validation accuracy per architecture."""

    seconds: list[float] = dataclasses.field(default_factory=list)
    accuracy: list[float] = dataclasses.field(default_factory=list)

    def timed(self, evaluate: Callable[[], float]) -> None:
        start = time.perf_counter()
        score = evaluate()
        self.seconds.append(time.perf_counter() - start)
        self.accuracy.append(score)


def _train_config(config: Config) -> TrainConfig:
    """Our sides' training settings (PyTorch's `make_optimizer` reads the same ones)."""
    return TrainConfig(batch_size=config.batch_size, devices=config.devices)


def _nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def torch_device(config: Config) -> torch.device:
    """PyTorch's device: JAX's backend under ``"auto"`` (``cuda`` where JAX runs on a GPU)."""
    name = config.device
    if name == "auto":
        name = "cuda" if jax.default_backend() == "gpu" else "cpu"
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device={config.device!r}: expected 'auto', 'cpu' or 'cuda'")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda': this PyTorch build sees no CUDA GPU")
    return torch.device(name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def torch_evaluator(space, data: Dataset, config: Config, steps: int) -> Evaluate:
    """A fresh PyTorch child net per architecture: `steps` steps, then its accuracy."""
    n, device = config.val_samples, torch_device(config)
    x_val = torch.from_numpy(_nchw(data.x_val[:n])).to(device)
    y_val = torch.from_numpy(data.y_val[:n]).to(device)
    y = data.y_train.astype(np.int64)
    stream = BatchStream(_nchw(data.x_train), y, config.batch_size, seed=config.seed)
    train = TrainConfig(batch_size=config.batch_size)

    def evaluate(i: int, arch) -> float:
        torch.manual_seed(config.seed + i)
        model = TorchChild(space, arch, data.input_shape, data.num_classes).to(device)
        opt, schedule = make_optimizer(model, train, steps)
        for _ in range(steps):
            xb, yb = (torch.from_numpy(b).to(device) for b in stream.next())
            train_step(model, opt, schedule, train, xb, yb)
        return accuracy(model, x_val, y_val)  # reads the hits back: synchronises

    return evaluate


def supernet_evaluator(space, data: Dataset, config: Config, steps: int):
    """Our search's path: one supernet, ``evaluate(arch)`` per architecture. Returns the
    evaluation, the `SharedWeightsEvaluator` and the seconds its build took (which count in
    the first architecture's time, with the compile)."""
    start = time.perf_counter()
    shared = SharedWeightsEvaluator(
        space,
        data,
        train_steps=steps,
        warmup_steps=0,
        config=_train_config(config),
        planned_evaluations=config.n_archs,
        seed=config.seed,
        score_samples=config.val_samples,
        scan_cells=config.scan_cells,
        branching=config.branching,
    )
    return lambda i, arch: shared.evaluate(arch).score, shared, time.perf_counter() - start


def child_evaluator(space, data: Dataset, config: Config, steps: int) -> Evaluate:
    """Our fixed child net per architecture, one jit each: `steps` steps, then its accuracy."""
    train, n = _train_config(config), config.val_samples
    stream = BatchStream(data.x_train, data.y_train, config.batch_size, seed=config.seed)

    def evaluate(i: int, arch) -> float:
        net = child_net(space, arch, data.input_shape, data.num_classes, seed=config.seed + i)
        trainer = Trainer(net, train, steps)
        jax.block_until_ready([trainer.train_step(*stream.next()) for _ in range(steps)])
        return trainer.evaluate(data.x_val[:n], data.y_val[:n])[0]

    return evaluate


def step_times(space, data: Dataset, archs, config: Config, shared) -> dict:
    """Median train step of each side, mean over `archs`, on one fixed batch; ``supernet_loop``
    per step of the supernet's `train_steps` calls, as its evaluations run them."""
    train, device = _train_config(config), torch_device(config)
    x, y = data.x_train[: config.batch_size], data.y_train[: config.batch_size]
    k = shared.trainer.steps_per_call
    xs, ys = np.stack([x] * k), np.stack([y] * k)
    tx = torch.from_numpy(_nchw(x)).to(device)
    ty = torch.from_numpy(y.astype(np.int64)).to(device)
    ms = {"torch": [], "supernet": [], "supernet_loop": [], "child": []}
    for arch in archs:
        model = TorchChild(space, arch, data.input_shape, data.num_classes).to(device)
        opt, schedule = make_optimizer(model, train, config.timed_steps + 1)
        child = Trainer(child_net(space, arch, data.input_shape, data.num_classes), train, 1000)

        def torch_step(model=model, opt=opt, schedule=schedule):
            train_step(model, opt, schedule, train, tx, ty)
            _sync(device)

        steps = {
            "torch": torch_step,
            "supernet": lambda arch=arch: shared.trainer.train_step(x, y, arch),
            "supernet_loop": lambda arch=arch: shared.trainer.train_steps(xs, ys, arch),
            "child": lambda child=child: child.train_step(x, y),
        }
        for side, t in median_ms(steps, config.timed_steps).items():
            ms[side].append(t / k if side == "supernet_loop" else t)
        print("  train step ms:", {side: round(v[-1], 2) for side, v in ms.items()}, flush=True)
    return {f"{side}_step_ms": round(float(np.mean(v)), 2) for side, v in ms.items()}


def compare(space, data: Dataset, config: Config, steps: int) -> dict:
    """Every side on the same `n_archs` architectures; the figures of one dataset.

    The sides take each architecture in turns, so that a shared host whose speed drifts slows
    every side alike; each architecture's seconds are printed as they come.
    """
    archs = sample_archs(space, config.n_archs, config.seed)
    supernet, shared, build_s = supernet_evaluator(space, data, config, steps)
    evaluators = {
        "torch": torch_evaluator(space, data, config, steps),
        "supernet": supernet,
        "child": child_evaluator(space, data, config, steps),
    }
    runs = {name: Side() for name in evaluators}
    for i, arch in enumerate(archs):
        for name, evaluate in evaluators.items():
            runs[name].timed(lambda evaluate=evaluate, i=i, arch=arch: evaluate(i, arch))
        print(
            f"  architecture {i}:",
            {n: round(r.seconds[-1], 2) for n, r in runs.items()},
            flush=True,
        )
    runs["supernet"].seconds[0] += build_s
    totals = {
        name: (sum(run.seconds), sum(run.seconds[1:]), float(np.mean(run.accuracy)))
        for name, run in runs.items()
    }
    figures = {"n_archs": len(archs), "train_steps": steps}
    for name, (total, after_first, acc) in totals.items():
        figures[f"{name}_s"] = round(total, 2)
        figures[f"{name}_after_first_s"] = round(after_first, 2)
        figures[f"{name}_mean_accuracy"] = round(acc, 4)
    figures["speedup"] = round(totals["torch"][0] / totals["supernet"][0], 3)
    figures["speedup_after_first"] = round(totals["torch"][1] / totals["supernet"][1], 3)
    step_archs = archs[: config.step_archs]
    return {**figures, **step_times(space, data, step_archs, config, shared)}


ROWS = {
    "torch_s": "PyTorch eager, s",
    "supernet_s": "JAX supernet, its one compile included, s",
    "child_s": "JAX fixed child net, one jit per architecture, s",
    "speedup": "PyTorch s / JAX supernet s (>= 1: ours is as fast or faster)",
    "torch_after_first_s": "PyTorch eager without the first architecture, s",
    "supernet_after_first_s": "JAX supernet without the first architecture, s",
    "speedup_after_first": "PyTorch s / JAX supernet s without the first architecture",
    "torch_step_ms": "train step, PyTorch eager, ms",
    "supernet_step_ms": "train step, JAX supernet, ms",
    "supernet_loop_step_ms": "train step, JAX supernet, in its evaluations' loop, ms",
    "child_step_ms": "train step, JAX fixed child net, ms",
    "torch_mean_accuracy": "mean validation accuracy, PyTorch eager",
    "supernet_mean_accuracy": "mean validation accuracy, JAX supernet",
    "child_mean_accuracy": "mean validation accuracy, JAX fixed child net",
}


def table(figures: dict) -> str:
    """The figures of every dataset as a Markdown table."""
    names = [n for n, f in figures.items() if isinstance(f, dict)]
    runs = [f"{figures[n]['n_archs']} archs x {figures[n]['train_steps']} steps" for n in names]
    lines = [
        f"| {figures['threads']} threads | {' | '.join(names)} |",
        "|---" * (len(names) + 1) + "|",
        f"| protocol | {' | '.join(runs)} |",
    ]
    for key, label in ROWS.items():
        digits = 3 if key.endswith("accuracy") else 2
        lines.append(f"| {label} | {' | '.join(f'{figures[n][key]:.{digits}f}' for n in names)} |")
    return "\n".join(lines)


def run(config: Config) -> dict:
    if config.n_archs < 2 or not 1 <= config.step_archs <= config.n_archs:
        raise ValueError(
            f"n_archs={config.n_archs}, step_archs={config.step_archs}: expected n_archs >= 2 "
            f"(a figure leaves the first out) and 1 <= step_archs <= n_archs"
        )
    use_cpu_devices(config.devices)  # before JAX starts its backend
    cache = jax.config.jax_compilation_cache_dir  # JAX's own setting, unless one is given
    if config.compile_cache:
        cache = compile_cache.enable(config.compile_cache)
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    datasets = {
        "digits": (load_digits, config.cells_digits, config.train_steps_digits),
        "cifar_shaped": (synthetic_cifar, config.cells_cifar, config.train_steps_cifar),
    }
    unknown = set(config.datasets) - set(datasets)
    if unknown or not config.datasets:
        raise ValueError(
            f"datasets={','.join(config.datasets)}: expected some of {', '.join(datasets)}"
        )
    figures = {
        "threads": threads,
        "torch": torch.__version__,
        "jax": jax.__version__,
        "device": str(jax.devices()[0].device_kind),
        "torch_device": torch_device(config).type,
        "allocator": os.environ.get("LD_PRELOAD") or "malloc",  # both sides' (`nas.allocator`)
        "scan_cells": config.scan_cells,
        "branching": config.branching,
        "devices": config.devices,
        "compile_cache": cache,  # a folder, or None: every program compiled here
        "compile_cache_entries_before": _entries(cache),
    }
    for name in config.datasets:
        load, cells, steps = datasets[name]
        space = nb201(channels=config.channels, cells_per_stage=cells)
        figures[name] = {
            "space": f"nb201(channels={config.channels}, cells_per_stage={cells})",
            **compare(space, load(seed=config.seed), config, steps),
        }
        print(name, figures[name], flush=True)
    print(table(figures))
    return figures


def _entries(folder: str | None) -> int:
    """The entries in a compilation cache folder; 0 where there is none yet."""
    return len(os.listdir(folder)) if folder and os.path.isdir(folder) else 0


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
