"""A cosine learning rate whose length is an argument of the update, not a compiled constant.

`optax.cosine_decay_schedule` bakes its number of steps into the program as a constant: two
searches that differ only in their budget, warm-up or steps per evaluation would compile
different train steps, and the persistent compilation cache (`nas.compile_cache`) would miss.
Here the number of steps reaches `scale_by_cosine`'s update as the extra argument
``total_steps`` (`Trainer` passes it at every step), and one compiled step serves every plan.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def scale_by_cosine(learning_rate: float) -> optax.GradientTransformationExtraArgs:
    """Scales updates by ``-learning_rate * 0.5 * (1 + cos(pi * min(t, T) / T))`` at step t of
    ``T = max(total_steps, 1)``, the values of ``optax.cosine_decay_schedule(learning_rate, T)``.

    Its state is optax's `ScaleByScheduleState`, so checkpoints of a `scale_by_schedule`
    optimizer restore into it.
    """

    def init(params):
        del params
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, *, total_steps, **extra_args):
        del params, extra_args
        total = jnp.maximum(jnp.asarray(total_steps, jnp.float32), 1.0)
        count = jnp.minimum(state.count, total)
        step_size = -learning_rate * (0.5 * (1 + jnp.cos(jnp.pi * count / total)))
        updates = jax.tree.map(lambda g: jnp.array(step_size, dtype=g.dtype) * g, updates)
        return updates, optax.ScaleByScheduleState(count=optax.safe_increment(state.count))

    return optax.GradientTransformationExtraArgs(init, update)
