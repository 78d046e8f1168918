"""How long one ``ask`` takes once a strategy holds many observations (NAS-Bench-Graph's space).

Tells each strategy `observations` random architectures with random scores, then times `rounds`
asks of one architecture (median, after one untimed ask that compiles). BayesOpt's target is
at most 0.2 s at 500 observations; both of its kernel distances are timed side by side. The
last line printed is a JSON object of the figures.

``python -m experiments.bench_ask``
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from experiments import entry
from nas.strategies import STRATEGIES
from search_spaces import nasbench_graph

ARMS = {
    "bayesopt": ("bayesopt", {}),
    "bayesopt_l1": ("bayesopt", {"metric": "l1"}),
    "reinforce": ("reinforce", {}),
    "evolution": ("evolution", {}),
}


@dataclasses.dataclass(frozen=True)
class Config:
    observations: int = 500
    rounds: int = 20
    arms: tuple[str, ...] = tuple(ARMS)


QUICK = Config(observations=20, rounds=2, arms=("bayesopt", "evolution"))


def time_ask(name: str, options: dict, config: Config) -> float:
    """The median seconds of one ask after `config.observations` tells."""
    space = nasbench_graph("cora")
    strategy = STRATEGIES[name](space, **options)
    key = jax.random.key(0)
    state = strategy.init(key)
    archs = space.sample(jax.random.key(1), config.observations)
    scores = np.random.default_rng(0).uniform(size=config.observations).astype(np.float32)
    state = strategy.tell(archs, scores, state)
    jax.block_until_ready(strategy.ask(key, state, 1))  # compiles
    times = []
    for i in range(config.rounds):
        start = time.perf_counter()
        jax.block_until_ready(strategy.ask(jax.random.fold_in(key, i), state, 1))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(config: Config) -> dict:
    seconds = {}
    for arm in config.arms:
        seconds[arm] = round(time_ask(*ARMS[arm], config), 4)
        print(f"{arm}: {1000 * seconds[arm]:.1f} ms an ask at {config.observations} observations")
    return {"observations": config.observations, "seconds_per_ask": seconds}


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
