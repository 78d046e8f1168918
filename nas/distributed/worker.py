"""The evaluation worker: a long-lived Ray actor that scores architectures sent to it.

A worker is built from picklable inputs (the `SearchConfig`): it loads the dataset, builds the
supernet and compiles its train and eval steps once, in its constructor, so no evaluation pays
for a compile. It lives for the whole search. For each architecture it pulls the shared weights
from the `WeightStore` (unless it holds that version already; with few-shot, the copy the
architecture trains), trains the architecture's path `train_steps` steps with its own optimizer
state (one per copy), pushes the weight delta back, and returns the validation score by value.
See `nas.distributed.weights` for the consistency model.

The batches of evaluation ``index`` come from a stream seeded by ``(seed, index)``, so an
evaluation re-run after a crash, or on another worker, trains on the same data.

Evaluators without shared weights (``--evaluator standalone``) are simply called.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import jax
import numpy as np
import ray

from nas import compile_cache
from nas.config import SearchConfig
from nas.data import BatchStream, load_dataset
from nas.evaluators import EvalResult, SharedWeightsEvaluator
from nas.evaluators.base import Timer
from nas.executor import evaluate_safely
from nas.parallel import use_cpu_devices
from nas.space import load_space


class EvalWorker:
    """Evaluates architectures for a search; run it as a Ray actor (`ray.remote(EvalWorker)`).

    Args:
      config: the search's options (space, dataset, evaluator and training settings).
      store: the name of the `WeightStore` actor (shared-weights evaluation only). A name, not
        a handle: Ray keeps a restartable actor's constructor arguments, and a handle there
        counts as an object it cannot promise to keep.
      planned_evaluations: evaluations this worker's learning-rate schedule plans for
        (default: the whole budget).
      cache_dir: the persistent JAX compilation cache, shared by the workers of a node, so a
        restarted worker loads its steps instead of compiling them: a folder, None for this
        node's default, ``"none"`` for no cache (`nas.compile_cache.resolve`).
      make_evaluator: builds the evaluator, ``make_evaluator(config, space, data,
        planned_evaluations=...)``; default `nas.experiment.make_evaluator`.
    """

    def __init__(
        self,
        config: SearchConfig,
        store: str | None = None,
        *,
        planned_evaluations: int | None = None,
        cache_dir: str | None = None,
        make_evaluator: Callable | None = None,
    ):
        start = time.perf_counter()
        compile_cache.enable(cache_dir)
        use_cpu_devices(config.devices)  # before JAX starts its backend in this process
        if make_evaluator is None:
            from nas.experiment import make_evaluator
        self.config, self._store_name, self._store = config, store, None
        self.space = load_space(
            config.space, channels=config.channels, cells_per_stage=config.cells
        )
        self.data = load_dataset(config.dataset)
        self.evaluator = make_evaluator(
            config, self.space, self.data, planned_evaluations=planned_evaluations
        )
        self.shared = isinstance(self.evaluator, SharedWeightsEvaluator)
        self._pulled: dict[int, tuple] = {}  # copy -> (version, leaves) last pulled
        self._opt_states: dict[int, object] = {}  # copy -> this worker's optimizer state
        if self.shared:
            trainer = self.evaluator.trainer
            self._params_def = jax.tree.structure(trainer.params)
            self._opt_def = jax.tree.structure(trainer.opt_state)
            self.evaluator.compile()
        self.setup_seconds = time.perf_counter() - start

    def info(self) -> dict:
        """Where the worker runs and how long it took to start (a ready check, too)."""
        context = ray.get_runtime_context()
        return {
            "node": context.get_node_id(),
            "pid": os.getpid(),
            "setup_seconds": round(self.setup_seconds, 3),
        }

    def warmup(self) -> float | None:
        """Warms the supernet up here and initializes the store with the result.

        Returns the mean warm-up loss, or None for an evaluator without shared weights.
        """
        if not self.shared:
            return None
        loss = self.evaluator.warmup()
        copies = self.evaluator.take_copies()
        params = [[np.asarray(p) for p in jax.tree.leaves(c[0])] for c in copies]
        opt_states = [[np.asarray(s) for s in jax.tree.leaves(c[1])] for c in copies]
        version = ray.get(self.store().initialize.remote(params, opt_states))
        self._pulled = {i: (version, p) for i, p in enumerate(params)}
        self._opt_states = {i: c[1] for i, c in enumerate(copies)}
        return loss

    def evaluate_batch(self, calls: list[tuple]) -> list[EvalResult]:
        """`evaluate` for each ``(index, ticket, arch, pinned)`` of `calls`, in order."""
        return [self.evaluate(*call) for call in calls]

    def evaluate(self, index: int, ticket: int, arch, pinned=None) -> EvalResult:
        """Scores `arch`, the search's `index`-th architecture; never raises.

        Args:
          index: the architecture's place in the search (seeds its training batches).
          ticket: the evaluation's sequence number, sent with the weight update.
          arch: the architecture.
          pinned: ``(version, ref)`` of each copy, from `WeightStore.pull_all`, to train
            from (synchronous rounds); None pulls the store's current version.
        """
        if not self.shared:
            return evaluate_safely(self.evaluator, arch)
        timer, pushed = Timer(), False
        evaluator = self.evaluator
        try:
            arch = self.space.validate(arch)
            copy = evaluator.copy_of(arch)
            version, base = self._pull(copy, None if pinned is None else pinned[copy])
            evaluator.trainer.params = jax.tree.unflatten(self._params_def, base)
            evaluator.trainer.opt_state = self._opt_state(copy)
            loss = evaluator.train_path(arch, self._stream(index))
            self._opt_states[copy] = evaluator.trainer.opt_state
            delta = None
            if np.isfinite(loss) and evaluator.write_back:
                trained = jax.tree.leaves(evaluator.trainer.params)
                delta = [np.asarray(new) - old for new, old in zip(trained, base)]
            ray.get(self.store().push.remote(ticket, delta, version, copy))
            pushed = True
            if not np.isfinite(loss):
                return EvalResult(
                    float("nan"), evaluator.train_steps, timer(), f"training loss {loss}"
                )
            return EvalResult(evaluator.score(arch), evaluator.train_steps, timer())
        except Exception as error:  # noqa: BLE001 - one failing child must not end the search
            if not pushed:  # let an ordered store move past this ticket
                ray.get(self.store().push.remote(ticket, None, -1))
            return EvalResult(float("nan"), 0, timer(), f"{type(error).__name__}: {error}")

    def store(self):
        """The weight store's actor handle."""
        if self._store is None:
            self._store = ray.get_actor(self._store_name)
        return self._store

    def _pull(self, copy: int, pinned) -> tuple[int, list]:
        """The version and leaves of a copy: `pinned`, or the store's current version."""
        version, ref = pinned if pinned is not None else ray.get(self.store().pull.remote(copy))
        if self._pulled.get(copy, (None,))[0] != version:
            leaves = ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref
            self._pulled[copy] = (version, leaves)
        return self._pulled[copy]

    def _opt_state(self, copy: int):
        """This worker's optimizer state for a copy; the store's after warm-up at first."""
        if copy not in self._opt_states:
            leaves = ray.get(self.store().initial_opt_state.remote(copy))
            self._opt_states[copy] = jax.tree.unflatten(self._opt_def, leaves)
        return self._opt_states[copy]

    def _stream(self, index: int) -> BatchStream:
        seed = int(np.random.SeedSequence([self.config.seed, index]).generate_state(1)[0])
        x, y = self.data.x_train, self.data.y_train
        return BatchStream(x, y, self.evaluator.trainer.config.batch_size, seed=seed)
