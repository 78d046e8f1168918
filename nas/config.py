"""The options of a search, in one place: defaults, help texts, checks, and a config file.

The same names serve the command line (``--train-steps``) and a TOML config file
(``train_steps = 20``); the command line wins over the file, the file over the defaults.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from nas.cells import BRANCHINGS
from nas.evaluators import EVALUATORS
from nas.evaluators.paths import SAMPLINGS
from nas.evaluators.shared import SCORES
from nas.strategies import STRATEGIES
from nas.strategies.bayesopt import ACQUISITIONS
from nas.train import OPTIMIZERS


def _opt(default, help: str, choices=None):
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Every option of `nas search`, with its default."""

    space: str = _opt("nb201", "built-in space name (see `nas spaces`) or path/to/file.py:NAME")
    strategy: str = _opt("evolution", "search strategy", tuple(STRATEGIES))
    dataset: str = _opt(
        "digits", "digits, fashion_mnist, synthetic_cifar, or a path to your own .npz file"
    )
    evaluator: str = _opt("shared", "shared weights (supernet) or standalone", tuple(EVALUATORS))
    budget: int = _opt(100, "architectures to evaluate")
    max_minutes: float | None = _opt(
        None,
        "stop asking for architectures after this many minutes of the search, warm-up "
        "included (the evaluations under way finish; the budget still caps it)",
    )
    seed: int = _opt(0, "seed of the search, the weights and the data order")
    out: str = _opt("runs/search", "run directory for the config, event log and results")
    batch: int = _opt(
        1, "architectures asked from the strategy at once (in this process, or --sync rounds)"
    )
    channels: int | None = _opt(None, "channels of the first stage (default: the space's)")
    cells: int | None = _opt(None, "cells per stage (default: the space's)")
    train_steps: int = _opt(20, "shared weights: steps each architecture trains its path")
    warmup_steps: int = _opt(200, "shared weights: sampled-path supernet steps before searching")
    warmup_sampling: str = _opt(
        "fair",
        "shared weights: warm-up paths uniformly random, or fair (every op equally often)",
        SAMPLINGS,
    )
    score_by: str = _opt(
        "accuracy", "shared weights: score by validation accuracy or negative loss", SCORES
    )
    few_shot: bool = _opt(
        False,
        "shared weights: after half the warm-up, one copy of the supernet per op of the first "
        "edge (with --workers, the weight store holds every copy)",
    )
    scan_edges: bool = _opt(
        False, "shared weights: scan each cell's edges (compiles 3-4x faster, steps ~30% slower)"
    )
    scan_cells: bool = _opt(
        False,
        "shared weights: run each stage's identical cells as one scanned cell (nb201 with 5 "
        "cells a stage compiles in about half the time, steps about 14% slower)",
    )
    branching: str = _opt(
        "switch",
        "shared weights: an edge runs its chosen op alone under a conditional (switch), or "
        "runs every op and keeps the chosen output, with no conditional (select: for GPUs)",
        BRANCHINGS,
    )
    epochs: int = _opt(3, "standalone: epochs of training from scratch per architecture")
    optimizer: str = _opt("sgd", "optimizer", OPTIMIZERS)
    learning_rate: float = _opt(0.05, "peak learning rate (cosine schedule)")
    batch_size: int = _opt(64, "training batch size")
    devices: int = _opt(
        1,
        "local devices each training batch is split across (data parallelism, batch norm per "
        "device's share); on a CPU that many CPU devices (nb201 train steps 16-33% faster "
        "with 2 on 2 cores; best with --scan-cells: the unscanned digits supernet's split "
        "step compiles in 22 s against 13 s)",
    )
    weight_decay: float = _opt(3e-4, "weight decay")
    population: int = _opt(20, "evolution: population size")
    tournament: int = _opt(5, "evolution: tournament size")
    acquisition: str = _opt("ei", "bayesopt: acquisition function", ACQUISITIONS)
    initial: int = _opt(10, "bayesopt: random architectures before the surrogate takes over")
    top: int = _opt(5, "architectures to print at the end")
    checkpoint_every: int = _opt(
        10, "evaluations between checkpoints of the search (0: only the first and the last)"
    )
    workers: int = _opt(0, "Ray workers evaluating architectures (0: evaluate in this process)")
    address: str | None = _opt(
        None, "Ray cluster address (default: $RAY_ADDRESS, else start a local Ray for the workers)"
    )
    in_flight: int = _opt(2, "Ray: calls queued on each worker at once")
    per_call: int = _opt(
        1, "Ray: evaluations in one call to a worker (more for evaluations of a few milliseconds)"
    )
    cpus_per_worker: float = _opt(1.0, "Ray: CPUs each worker reserves")
    gpus_per_worker: float = _opt(0.0, "Ray: GPUs each worker reserves (a fraction shares a GPU)")
    tpus_per_worker: float = _opt(0.0, "Ray: TPU chips each worker reserves (Ray's TPU resource)")
    sync: bool = _opt(
        False,
        "Ray: synchronous rounds of max(batch, workers x in_flight x per_call) architectures, "
        "reproducible from the seed, instead of asking one whenever a worker slot frees",
    )
    compile_cache: str | None = _opt(
        None,
        "the persistent JAX compilation cache: a later search of the same network (a resume, "
        "another seed or strategy, a restarted Ray worker) loads the compiled steps from it "
        "(default: $JAX_COMPILATION_CACHE_DIR, else ~/.cache/nas/jax on each node; none: off)",
    )

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, choices = getattr(self, f.name), f.metadata["choices"]
            if choices and value not in choices:
                raise ValueError(f"invalid {f.name} {value!r}; valid values: {', '.join(choices)}")
        positive = (
            "budget",
            "batch",
            "batch_size",
            "population",
            "tournament",
            "top",
            "initial",
            "in_flight",
            "per_call",
            "devices",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("train_steps", "warmup_steps", "epochs", "workers", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")
        if self.batch_size % self.devices:
            raise ValueError(
                f"batch_size {self.batch_size} does not split into devices={self.devices} "
                "equal shares"
            )
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")
        for name in ("cpus_per_worker", "gpus_per_worker", "tpus_per_worker"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")


def field_types() -> dict[str, type]:
    """Each option's Python type (int, float, str or bool), for parsing and checking."""
    types = {}
    for f in dataclasses.fields(SearchConfig):
        name = f.type if isinstance(f.type, str) else f.type.__name__
        types[f.name] = {"int": int, "float": float, "str": str, "bool": bool}[name.split(" ")[0]]
    return types


def load_config_file(path) -> dict:
    """Reads a TOML file of options, checking every key and type.

    Raises:
      ValueError: naming the file, the key and what was expected.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {path} is not valid TOML: {error}") from None
    return check_options(data, f"config file {path}")


def check_options(data: dict, source: str) -> dict:
    """Checks that every key of `data` is an option and every value of its type; returns
    `data` with integers given for float options made floats.

    Raises:
      ValueError: naming `source`, the key and what was expected.
    """
    types = field_types()
    defaults = {f.name: f.default for f in dataclasses.fields(SearchConfig)}
    for key, value in data.items():
        if key not in types:
            raise ValueError(f"{source}: unknown option {key!r}; valid options: {', '.join(types)}")
        expected = types[key]
        ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            data[key], ok = float(value), True
        if value is None and defaults[key] is None:
            ok = True
        if not ok:
            raise ValueError(f"{source}: {key} = {value!r} should be a {expected.__name__}")
    return data
