"""The strategy contract, run for every registered strategy, and each one's own behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nas.strategies import STRATEGIES, BayesOpt, RegularizedEvolution, Reinforce
from search_spaces import darts, nb201


def drive(strategy, seed, rounds=8, n=4, score=lambda a: a.sum(-1)):
    """Asks and tells `rounds` batches; returns every asked arch and the final state."""
    key = jax.random.key(seed)
    key, init_key = jax.random.split(key)
    state, asked = strategy.init(init_key), []
    for _ in range(rounds):
        key, ask_key = jax.random.split(key)
        archs, state = strategy.ask(ask_key, state, n)
        asked.append(np.asarray(archs))
        state = strategy.tell(archs, np.asarray(score(np.asarray(archs)), np.float32), state)
    return np.concatenate(asked), state


@pytest.fixture(params=sorted(STRATEGIES))
def strategy(request):
    return STRATEGIES[request.param](darts(channels=4, cells_per_stage=1))


AVOIDING_REPEATS = {
    **{
        f"bayesopt-{a}": lambda space, a=a: BayesOpt(space, acquisition=a, initial=3, random=40)
        for a in ("ei", "ucb", "thompson")
    },
    # A fast-learning policy soon repeats its favourites (with draws=1, 5 of these 6 asks would).
    "reinforce": lambda space: Reinforce(space, draws=64, learning_rate=0.1),
}


@pytest.mark.parametrize("name", sorted(AVOIDING_REPEATS))
def test_never_reproposes_an_evaluated_key_while_fresh_ones_remain(name, small_space):
    space = small_space
    n_keys = len({space.key(np.array(a)) for a in np.ndindex(*space.cardinalities)})
    strategy = AVOIDING_REPEATS[name](space)
    state, key, seen = strategy.init(jax.random.key(0)), jax.random.key(1), set()
    for _ in range(n_keys // 2):
        key, k = jax.random.split(key)
        archs, state = strategy.ask(k, state, 2)
        keys = {space.key(a) for a in np.asarray(archs)}
        assert len(keys) == 2 and not keys & seen
        seen |= keys
        state = strategy.tell(archs, np.asarray(archs).sum(1).astype(np.float32), state)


def test_asks_are_valid_and_batched(strategy):
    archs, state = drive(strategy, 0)
    assert archs.shape == (32, strategy.space.n_decisions)
    for arch in archs:
        strategy.space.validate(arch)
    assert int(state.n_told) == 32


def test_same_seed_same_search(strategy):
    a, state_a = drive(strategy, 3)
    b, state_b = drive(strategy, 3)
    c, _ = drive(strategy, 4)
    assert (a == b).all()
    assert not (a == c).all()
    for x, y in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)):
        assert (np.asarray(x) == np.asarray(y)).all()


def test_best_tracks_the_highest_score_and_nan_is_worst(strategy):
    key = jax.random.key(0)
    state = strategy.init(key)
    archs, state = strategy.ask(key, state, 3)
    state = strategy.tell(archs, np.array([0.2, np.nan, 0.5], np.float32), state)
    assert float(state.best_score) == pytest.approx(0.5)
    assert (np.asarray(state.best_arch) == np.asarray(archs[2])).all()
    state = strategy.tell(archs[:1], np.array([np.nan], np.float32), state)
    assert float(state.best_score) == pytest.approx(0.5)


def test_tell_checks_lengths(strategy):
    state = strategy.init(jax.random.key(0))
    archs, state = strategy.ask(jax.random.key(1), state, 2)
    with pytest.raises(ValueError, match="2 archs but 3 scores"):
        strategy.tell(archs, np.zeros(3), state)


def test_state_survives_a_save_and_load_and_continues_identically(strategy, tmp_path):
    """A state written to disk and read back into a fresh template asks and tells the same."""
    _, state = drive(strategy, 1, rounds=3)
    np.savez(tmp_path / "state.npz", *[np.asarray(x) for x in jax.tree.leaves(state)])
    with np.load(tmp_path / "state.npz") as saved:
        leaves = [jnp.asarray(saved[f"arr_{i}"]) for i in range(len(saved.files))]
    template = strategy.init(jax.random.key(123))  # the shape of a state, as at a restart
    restored = jax.tree.unflatten(jax.tree.structure(template), leaves)

    def go_on(state):
        key, asked = jax.random.key(9), []
        for _ in range(3):
            key, k = jax.random.split(key)
            archs, state = strategy.ask(k, state, 4)
            state = strategy.tell(archs, np.asarray(archs).sum(-1).astype(np.float32), state)
            asked.append(np.asarray(archs))
        return np.concatenate(asked)

    np.testing.assert_array_equal(go_on(state), go_on(restored))


def test_evolution_beats_random_on_a_simple_score():
    space = nb201()
    target = np.array([3, 3, 3, 3, 3, 3])

    def score(archs):
        return (archs == target).sum(-1)

    best = {}
    for name in ("random", "evolution"):
        cls = STRATEGIES[name]
        strategy = (
            cls(space, population_size=10, tournament_size=3) if name == "evolution" else cls(space)
        )
        results = [
            float(drive(strategy, s, rounds=30, n=2, score=score)[1].best_score) for s in range(5)
        ]
        best[name] = np.mean(results)
    assert best["evolution"] > best["random"]


def test_evolution_replaces_the_oldest_member():
    strategy = RegularizedEvolution(nb201(), population_size=3, tournament_size=2)
    state = strategy.init(jax.random.key(0))
    archs = np.arange(24, dtype=np.int32).reshape(4, 6) % 5
    state = strategy.tell(archs, np.array([9.0, 1.0, 1.0, 0.0], np.float32), state)
    population = np.asarray(state.inner.archs)
    # Four told into three slots: the first (and best) is gone, the fourth took its slot.
    assert (population[0] == archs[3]).all()
    assert not any((row == archs[0]).all() for row in population)


def test_evolution_argument_errors():
    with pytest.raises(ValueError, match="tournament_size must be in 1..population_size"):
        RegularizedEvolution(nb201(), population_size=4, tournament_size=5)
