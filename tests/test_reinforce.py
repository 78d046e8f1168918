"""The ENAS controller's own behaviour; the strategy contract is in test_strategies.py."""

import jax
import numpy as np
import pytest

from nas.strategies import Reinforce
from search_spaces import nb201


@pytest.fixture(scope="module")
def controller():
    return Reinforce(nb201(), elite=0, draws=1)  # the ENAS controller alone


def finite_leaves(state):
    return all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state))


def test_samples_are_valid_and_probabilities_normalised(tiny_space):
    strategy = Reinforce(tiny_space, lstm_size=16)
    state = strategy.init(jax.random.key(0))
    archs, _ = strategy.ask(jax.random.key(1), state, 64)
    archs = np.asarray(archs)
    for arch in archs:
        tiny_space.validate(arch)
    # The masks hide only the padding: each decision's last choice is still drawn.
    card = tiny_space.cardinalities
    assert (archs.max(0) == card - 1).all()
    # At the smallest decision, the probabilities of its valid choices sum to 1 (padding: 0).
    i = int(np.argmin(card))
    variants = np.repeat(archs[:1], card[i], axis=0)
    variants[:, i] = np.arange(card[i])
    probs = np.exp(np.asarray(strategy.decision_log_probs(state, variants))[:, i])
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    # The masked padding passes no NaN into the gradients.
    scores = np.linspace(0.0, 1.0, len(archs)).astype(np.float32)
    scores[::7] = np.nan
    state = strategy.tell(archs, scores, strategy.tell(archs, scores[::-1], state))
    assert finite_leaves(state.inner)


def test_policy_gradient_moves_toward_the_rewarded_choice(controller):
    state = controller.init(jax.random.key(0))
    probe = np.full((1, 6), 2, np.int32)

    def p_first_is_2(state):
        return float(np.exp(controller.decision_log_probs(state, probe)[0, 0]))

    assert p_first_is_2(state) == pytest.approx(0.2, abs=0.05)
    key = jax.random.key(1)
    for _ in range(30):
        key, ask_key = jax.random.split(key)
        archs, state = controller.ask(ask_key, state, 10)
        state = controller.tell(archs, (np.asarray(archs)[:, 0] == 2).astype(np.float32), state)
    # tanh_constant 1.1 caps a 5-way choice at e^1.1 / (e^1.1 + 4 e^-1.1) = 0.69.
    assert p_first_is_2(state) > 0.5


def test_an_ask_still_proposes_once_every_key_is_told(small_space):
    strategy = Reinforce(small_space, draws=64)
    every = np.array(list(np.ndindex(*small_space.cardinalities)), np.int32)
    state = strategy.tell(every, every.sum(1).astype(np.float32), strategy.init(jax.random.key(0)))
    archs = np.asarray(strategy.ask(jax.random.key(1), state, 3)[0])
    assert archs.shape == (3, small_space.n_decisions)


def test_local_edits_change_one_decision_of_the_best_elite_architecture():
    space = nb201()
    strategy = Reinforce(space, elite=4, local=1.0, tournament=64, draws=1)
    state = strategy.init(jax.random.key(0))
    told = np.asarray(space.sample(jax.random.key(1), 4))

    def distances(state, parents):
        archs = np.asarray(strategy.ask(jax.random.key(2), state, 32)[0])
        return (archs[:, None, :] != parents[None]).sum(-1).min(1)

    # Until the elite queue is full, every proposal is a whole sample from the policy.
    state = strategy.tell(told[:1], np.ones(1, np.float32), state)
    assert (distances(state, told[:1]) > 1).any()
    state = strategy.tell(told[1:], np.array([4.0, 2.0, 3.0], np.float32), state)
    # Then every one is the best of 64 draws from the queue (almost surely its best) with one
    # decision changed.
    assert (distances(state, told[1:2]) == 1).all()


def test_tell_learns_from_archs_it_did_not_propose(controller):
    """Teacher forcing: the told archs' own log-probabilities are what the step changes."""
    good, bad = np.array([0, 1, 2, 3, 4, 0]), np.array([4, 3, 2, 1, 0, 4])
    archs, scores = np.stack([good, bad]), np.array([1.0, 0.0], np.float32)
    state = controller.init(jax.random.key(0))
    before = np.asarray(controller.decision_log_probs(state, archs)).sum(-1)
    for _ in range(8):
        state = controller.tell(archs, scores, state)
    after = np.asarray(controller.decision_log_probs(state, archs)).sum(-1)
    assert after[0] > before[0] + 0.5 and after[1] < before[1] - 0.5


def test_baseline_starts_at_the_first_mean_then_moves_per_sample(controller):
    state = controller.init(jax.random.key(0))
    archs, state = controller.ask(jax.random.key(1), state, 3)
    state = controller.tell(archs, np.array([1.0, 2.0, 3.0], np.float32), state)
    b = 2.0
    for r in (1.0, 2.0, 3.0):
        b = 0.99 * b + 0.01 * r
    assert float(state.inner.baseline) == pytest.approx(b, rel=1e-6)
    state = controller.tell(archs, np.array([5.0, 5.0, 5.0], np.float32), state)
    for _ in range(3):
        b = 0.99 * b + 0.01 * 5.0
    assert float(state.inner.baseline) == pytest.approx(b, rel=1e-6)


def test_failed_scores_keep_the_policy_finite(controller):
    state = controller.init(jax.random.key(0))
    archs, state = controller.ask(jax.random.key(1), state, 4)
    # With no finite reward told yet there is nothing to learn from: the policy stays, and
    # only the memory of told architectures grows.
    failed = controller.tell(archs, np.array([-np.inf, np.nan, -np.inf, np.nan]), state)
    assert (np.asarray(failed.inner.told[:4]) == np.asarray(archs)).all()
    learnt = failed.inner.replace(told=state.inner.told, told_count=state.inner.told_count)
    for x, y in zip(jax.tree.leaves(learnt), jax.tree.leaves(state.inner)):
        assert (np.asarray(x) == np.asarray(y)).all()
    state = controller.tell(archs, np.array([0.5, np.nan, -np.inf, 0.25], np.float32), state)
    assert finite_leaves(state.inner)
    # The failed ones count as the worst finite reward, 0.25.
    assert float(state.inner.worst) == pytest.approx(0.25)
    rewards = [0.5, 0.25, 0.25, 0.25]
    b = np.mean(rewards)
    for r in rewards:
        b = 0.99 * b + 0.01 * r
    assert float(state.inner.baseline) == pytest.approx(b, rel=1e-6)
    state = controller.tell(archs, np.array([np.nan, -np.inf, np.inf, np.nan]), state)
    assert finite_leaves(state.inner)


def test_restored_state_continues_identically(controller):
    """A state copied through NumPy leaves asks and tells exactly as the original."""

    def run(state, key, rounds=3):
        asked = []
        for _ in range(rounds):
            key, ask_key = jax.random.split(key)
            archs, state = controller.ask(ask_key, state, 10)
            asked.append(np.asarray(archs))
            state = controller.tell(archs, np.asarray(archs).sum(-1).astype(np.float32), state)
        return np.concatenate(asked), state

    _, state = run(controller.init(jax.random.key(0)), jax.random.key(1))
    leaves, treedef = jax.tree.flatten(state)
    restored = jax.tree.unflatten(treedef, [np.array(x) for x in leaves])
    a, state_a = run(state, jax.random.key(2))
    b, state_b = run(restored, jax.random.key(2))
    assert (a == b).all()
    for x, y in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)):
        assert (np.asarray(x) == np.asarray(y)).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lstm_size": 0}, "lstm_size must be a positive integer"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive finite"),
        ({"temperature": 0.0}, "temperature must be a positive finite"),
        ({"tanh_constant": float("inf")}, "tanh_constant must be a positive finite"),
        ({"baseline_decay": 1.0}, r"baseline_decay must be in \[0, 1\)"),
        ({"entropy_weight": -1e-4}, "entropy_weight must be a finite number >= 0"),
        ({"elite": -1}, "elite must be an integer >= 0"),
        ({"elite_weight": float("nan")}, "elite_weight must be a finite number >= 0"),
        ({"local": 1.5}, r"local must be a probability in \[0, 1\]"),
        ({"tournament": 0}, "tournament must be a positive integer"),
        ({"draws": 0}, "draws must be a positive integer"),
        ({"memory": 2.5}, "memory must be a positive integer"),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Reinforce(nb201(), **kwargs)


def test_the_elite_queue_keeps_the_best_distinct_architectures():
    strategy = Reinforce(nb201(), elite=3)
    state = strategy.init(jax.random.key(0))
    archs = np.array([[0] * 6, [1] * 6, [2] * 6, [1] * 6, [3] * 6], np.int32)
    state = strategy.tell(archs, np.array([0.1, 0.9, np.nan, 0.8, 0.5], np.float32), state)
    state = strategy.tell(archs[:2], np.array([0.7, 0.95], np.float32), state)  # both seen
    inner = state.inner
    np.testing.assert_allclose(inner.elite_rewards, [0.9, 0.5, 0.1])
    np.testing.assert_array_equal(inner.elite, [[1] * 6, [3] * 6, [0] * 6])


def test_the_elite_term_alone_raises_the_elites_likelihood():
    """Equal rewards leave no advantage, so only the elite term moves the policy."""
    strategy = Reinforce(nb201(), elite=2, entropy_weight=0.0, learning_rate=0.05)
    state = strategy.init(jax.random.key(0))
    archs = np.asarray(strategy.ask(jax.random.key(1), state, 6)[0])
    before = np.asarray(strategy.decision_log_probs(state, archs)).sum(-1)
    after_state = strategy.tell(archs, np.full(6, 0.5, np.float32), state)
    after = np.asarray(strategy.decision_log_probs(after_state, archs)).sum(-1)
    elite = [i for i, a in enumerate(archs) if (a == after_state.inner.elite).all(-1).any()]
    assert len(elite) == 2 and all(after[i] > before[i] for i in elite)
    plain = Reinforce(nb201(), elite=0, entropy_weight=0.0, learning_rate=0.05)
    unchanged = plain.tell(archs, np.full(6, 0.5, np.float32), plain.init(jax.random.key(0)))
    np.testing.assert_allclose(plain.decision_log_probs(unchanged, archs).sum(-1), before)
