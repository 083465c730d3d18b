"""PPO must solve the cart-pole on both backends, measured against the zero-action baseline."""

import jax
import pytest

from examples.cartpole.cartpole import CartPoleConfig, make_task
from ksim.engine.env import Env
from ksim.engine.rollout import ZeroPolicy
from ksim.rl.learner import init_learner, make_train_step, start_rollout
from ksim.rl.policy import ActorPolicy
from ksim.runner.evaluate import measure


@pytest.mark.parametrize(("backend", "iterations"), [("mujoco", 40), ("mjx", 40)])
def test_ppo_balances_the_cartpole(backend, iterations):
    cfg = CartPoleConfig(num_envs=32, rollout_length=32, num_minibatches=2, physics_backend=backend)
    task = make_task(cfg)
    env = Env(task, cfg.num_envs, backend)
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    rollout = start_rollout(env, learner, jax.random.PRNGKey(1))
    train_step = make_train_step(env, cfg)
    for _ in range(iterations):
        learner, rollout, metrics = train_step(learner, rollout)
    assert int(learner.iteration) == iterations

    eval_env = Env(task, 32, backend)
    policy = ActorPolicy.of(eval_env, deterministic=True)
    trained = measure(eval_env, policy, learner.policy_params, seconds=5.0, rng=jax.random.PRNGKey(2))
    baseline = measure(eval_env, ZeroPolicy(1), None, seconds=5.0, rng=jax.random.PRNGKey(2))
    # the pole falls in about a second without control; a learned policy keeps it up for the whole episode
    assert baseline["survival_rate"] < 0.1
    assert trained["survival_rate"] >= 0.9, trained
    assert trained["mean_episode_length_s"] > 3 * baseline["mean_episode_length_s"]
