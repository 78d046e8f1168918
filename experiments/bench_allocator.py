"""Benchmark: the supernet's train step under the C library's malloc, under the same malloc
with huge pages (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``), and under tcmalloc.

Why they differ: `nas.allocator`. Each setting runs in its own process, since a process picks
its allocator and the C library's tunables when it starts (``LD_PRELOAD``,
``GLIBC_TUNABLES``), and the settings take turns, `rounds` times. Per dataset and setting: the
train step's compile, its median step over `steps`, and the minor page faults and system CPU
time per step (medians over rounds); per setting but malloc, its speedups over malloc.

Run from the repository root: ``python -m experiments.bench_allocator`` (``--quick`` for a
smoke run). It preloads tcmalloc (``apt install libtcmalloc-minimal4`` on Debian and Ubuntu),
or the library ``--set library=PATH`` names. The last line printed is a JSON object of the
figures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

import jax
import numpy as np

from experiments import entry
from experiments.timing import median_ms
from nas.allocator import tcmalloc
from nas.data import load_digits, synthetic_cifar
from nas.supernet import supernet
from nas.train import TrainConfig, Trainer
from search_spaces import nb201

HUGE_PAGES = "glibc.malloc.hugetlb=1"  # glibc's malloc asks for transparent huge pages


@dataclasses.dataclass(frozen=True)
class Config:
    channels: int = 16
    cells_digits: int = 5  # as bench_vs_torch, with the cells scanned
    cells_cifar: int = 1
    batch_size: int = 64
    steps: int = 20
    rounds: int = 3
    datasets: tuple[str, ...] = ("digits", "cifar_shaped")
    library: str = ""  # the allocator to preload; by default tcmalloc where it is installed


QUICK = Config(channels=4, cells_digits=1, steps=3, rounds=1, datasets=("cifar_shaped",))


def allocator(config: Config) -> str:
    """The library to preload: the one `config` names, else tcmalloc's, else an error."""
    if config.library:
        if "/" in config.library and not os.path.exists(config.library):
            raise ValueError(f"library={config.library}: no such file")
        return config.library
    if found := tcmalloc():
        return found
    raise ValueError(
        "tcmalloc not found (apt install libtcmalloc-minimal4 on Debian and Ubuntu); "
        "or name an allocator with --set library=PATH"
    )


def measure(dataset: str, cells: int, config: Config) -> dict:
    """One process's figures: the train step's compile and median step, and the minor page
    faults and system CPU seconds per step, for the nb201 supernet on `dataset`."""
    data = {"digits": load_digits, "cifar_shaped": synthetic_cifar}[dataset](seed=0)
    space = nb201(channels=config.channels, cells_per_stage=cells)
    arch = np.asarray(space.sample(jax.random.key(0), 1))[0]
    net = supernet(space, data.input_shape, data.num_classes, scan_cells=cells > 1)
    trainer = Trainer(net, TrainConfig(batch_size=config.batch_size), 1000)
    x, y = data.x_train[: config.batch_size], data.y_train[: config.batch_size]
    start = time.perf_counter()
    jax.block_until_ready(trainer.train_step(x, y, arch))
    compile_s = time.perf_counter() - start
    before = resource.getrusage(resource.RUSAGE_SELF)
    step_ms = median_ms({"step": lambda: trainer.train_step(x, y, arch)}, config.steps)["step"]
    after = resource.getrusage(resource.RUSAGE_SELF)
    calls = config.steps + 1  # median_ms makes one untimed call first
    return {
        "compile_s": compile_s,
        "step_ms": step_ms,
        "faults_per_step": (after.ru_minflt - before.ru_minflt) / calls,
        "sys_ms_per_step": 1000 * (after.ru_stime - before.ru_stime) / calls,
    }


def _in_process(dataset: str, cells: int, config: Config, setting: dict) -> dict:
    """`measure` in a new Python process, its environment without ``LD_PRELOAD`` and
    ``GLIBC_TUNABLES`` but for what `setting` sets."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES")}
    env.update(setting)
    argv = json.dumps([dataset, cells, dataclasses.asdict(config)])
    code = "import sys; from experiments.bench_allocator import _child; _child(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", code, argv], env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"{dataset} with {setting}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def _child(argv: str) -> None:
    dataset, cells, fields = json.loads(argv)
    fields["datasets"] = tuple(fields["datasets"])
    print(json.dumps(measure(dataset, cells, Config(**fields))))


def run(config: Config) -> dict:
    cells = {"digits": config.cells_digits, "cifar_shaped": config.cells_cifar}
    unknown = set(config.datasets) - set(cells)
    if unknown or not config.datasets or config.rounds < 1 or config.steps < 1:
        raise ValueError(
            f"datasets={','.join(config.datasets)}, rounds={config.rounds}, "
            f"steps={config.steps}: expected some of {', '.join(cells)} and at least 1 of each"
        )
    library = allocator(config)
    settings = {
        "malloc": {},
        "hugetlb": {"GLIBC_TUNABLES": HUGE_PAGES},
        "preloaded": {"LD_PRELOAD": library},
    }
    figures = {"library": library, "threads": len(os.sched_getaffinity(0))}
    for dataset in config.datasets:
        runs = {name: [] for name in settings}
        for _ in range(config.rounds):
            for name, setting in settings.items():
                runs[name].append(_in_process(dataset, cells[dataset], config, setting))
                print(f"  {dataset} {name}:", _rounded(runs[name][-1]), flush=True)
        medians = {
            f"{name}_{key}": float(np.median([r[key] for r in rs]))
            for name, rs in runs.items()
            for key in rs[0]
        }
        for name in list(settings)[1:]:
            for key, unit in (("step", "ms"), ("compile", "s")):
                speedup = medians[f"malloc_{key}_{unit}"] / medians[f"{name}_{key}_{unit}"]
                medians[f"{name}_{key}_speedup"] = speedup
        figures[dataset] = _rounded(medians)
        print(dataset, figures[dataset], flush=True)
    return figures


def _rounded(figures: dict) -> dict:
    return {key: round(value, 3) for key, value in figures.items()}


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
