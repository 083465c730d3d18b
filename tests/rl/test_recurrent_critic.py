"""A recurrent critic: its values over a rollout, the carry PPO re-runs them from and keeps between rollouts."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from examples.cartpole.cartpole import CartPoleConfig, make_task
from ksim.engine.env import Env
from ksim.rl.learner import init_learner, make_train_step, start_rollout
from ksim.rl.networks import MLPActor, MLPCritic, RecurrentCritic
from ksim.rl.ppo import PPOConfig, make_optimizer, update
from tests.conftest import synthetic_batch


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_rollout_values_step_by_step_with_resets_and_the_state_each_step_reached(kind):
    critic = RecurrentCritic(3, (8, 8), jax.random.PRNGKey(0), kind)
    obs, reached = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 3))
    done = jnp.array([False, True, False, False, True])
    start = jax.random.normal(jax.random.PRNGKey(2), critic.initial_carry().shape)
    value, value_reached, end = critic.rollout_values(obs, reached, done, start)
    carry, expected, expected_reached = start, [], []
    for o, r, d in zip(obs, reached, done, strict=True):
        v, carry = critic(o, carry)
        expected.append(v)
        expected_reached.append(critic(r, carry)[0])  # valued before the reset: what a truncation bootstraps
        carry = critic.initial_carry() if d else carry
    np.testing.assert_allclose(value, np.stack(expected), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(value_reached, np.stack(expected_reached), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(end, critic.initial_carry())  # the last step ended an episode
    np.testing.assert_allclose(critic.sequence(obs, done, start), value, rtol=1e-5, atol=1e-6)
    mlp = MLPCritic(3, (8, 8), jax.random.PRNGKey(3))
    generic = super(MLPCritic, mlp).rollout_values(obs, reached, done, mlp.initial_carry())  # the base class's scan
    for a, b in zip(mlp.rollout_values(obs, reached, done, mlp.initial_carry()), generic, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _value_loss_of_a_rollout(critic_carry_in_update):
    """PPO's value loss on a batch whose returns are the GRU critic's own rollout values."""
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    T, E = 6, 4
    actor, critic = MLPActor(3, 2, (8,), 1.0, keys[0]), RecurrentCritic(3, (8,), keys[1], "gru")
    obs = jax.random.normal(keys[2], (T, E, 3))
    done = jnp.zeros((T, E), bool).at[2, 1].set(True)
    carry_E = jax.random.normal(keys[3], (E, 8))  # mid-episode: the critic has seen earlier rollouts
    value_TE, _, _ = jax.vmap(critic.rollout_values, in_axes=(1, 1, 1, 0), out_axes=(1, 1, 0))(obs, obs, done, carry_E)
    batch = synthetic_batch(actor, obs, obs, keys[4])
    batch = eqx.tree_at(lambda b: (b.done, b.value, b.ret), batch, (done, value_TE, value_TE))
    cfg = PPOConfig(num_minibatches=2, num_epochs=1, learning_rate=1e-9, adaptive_lr=False)
    optimizer = make_optimizer(cfg)
    opt_state = optimizer.init(eqx.filter((actor, critic), eqx.is_inexact_array))
    carries = (jnp.zeros((E, 0)), carry_E if critic_carry_in_update else jnp.zeros_like(carry_E))
    *_, metrics = update(actor, critic, opt_state, batch, carries, actor.log_std, keys[0], cfg, optimizer)
    return float(metrics["loss/value"])


def test_ppo_reruns_the_critic_from_the_carry_the_rollout_started_with():
    assert _value_loss_of_a_rollout(True) < 1e-10
    assert _value_loss_of_a_rollout(False) > 1e-4  # starting from zeros instead gives other values


def test_the_critic_carry_persists_from_one_training_rollout_to_the_next():
    cfg = CartPoleConfig(num_envs=4, rollout_length=8, num_minibatches=2, critic="gru", critic_hidden=(8,))
    env = Env(make_task(cfg), cfg.num_envs, "mujoco")
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    rollout = start_rollout(env, learner, jax.random.PRNGKey(1))
    assert rollout.value_carry.shape == (4, 8) and not np.any(rollout.value_carry)
    train_step = make_train_step(env, cfg)
    learner, rollout, metrics = train_step(learner, rollout)
    assert rollout.value_carry.shape == (4, 8) and np.all(np.any(rollout.value_carry != 0, axis=1))
    learner, rollout, metrics = train_step(learner, rollout)
    assert np.isfinite(float(metrics["loss/value"]))
