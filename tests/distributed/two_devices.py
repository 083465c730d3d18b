"""Run in a fresh process with two forced CPU devices (XLA_FLAGS): training on 1 and on 2 devices.

`python -m tests.distributed.two_devices OUT` writes OUT.npz with both learners' leaves and the
sharding facts the test checks. JAX reads XLA_FLAGS only at start-up, hence a separate process.
"""

import sys

import equinox as eqx
import jax
import numpy as np

from examples.cartpole.cartpole import CartPoleConfig, make_task
from ksim.engine.env import SHARDED_PRNG_IMPL, Env
from ksim.rl.learner import init_learner, make_train_step, start_rollout
from ksim.rl.sharding import make_cluster, replicate, to_local

ITERATIONS, E = 3, 16


def train(devices: int) -> tuple[list[np.ndarray], int]:
    cfg = CartPoleConfig(num_envs=E, physics_backend="mjx", num_minibatches=4, rollout_length=16)
    env = Env(make_task(cfg), E, "mjx", prng_impl=SHARDED_PRNG_IMPL)  # both runs draw the same keys
    cluster = make_cluster(devices) if devices > 1 else None
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    if cluster is not None:
        learner = replicate(cluster, learner)
    ro = start_rollout(env, learner, jax.random.PRNGKey(1), cluster)
    step = make_train_step(env, cfg, None, cluster)
    for _ in range(ITERATIONS):
        learner, ro, _ = step(learner, ro)
    spread = len(jax.tree.leaves(ro)[0].sharding.device_set)
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(to_local(learner), eqx.is_inexact_array))], spread


if __name__ == "__main__":
    one, spread_one = train(1)
    two, spread_two = train(2)
    np.savez(
        sys.argv[1],
        spread=np.array([spread_one, spread_two]),
        **{f"one_{i}": x for i, x in enumerate(one)},
        **{f"two_{i}": x for i, x in enumerate(two)},
    )
