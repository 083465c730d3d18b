import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ksim.rl.networks import MLPActor, MLPCritic, gaussian_entropy, gaussian_log_prob
from ksim.rl.normalization import RunningNorm
from ksim.rl.ppo import PPOConfig, compute_gae, make_optimizer, update
from tests.conftest import synthetic_batch


def test_gae_by_hand():
    # one env, three steps, the episode ends (failure) after step 1
    reward = jnp.array([[1.0], [2.0], [3.0]])
    value = jnp.array([[0.5], [1.0], [2.0]])
    done = jnp.array([[False], [True], [False]])
    last = jnp.array([4.0])
    g, lam = 0.9, 0.5
    adv, ret = compute_gae(reward, value, last, done, g, lam)
    d2 = 3.0 + g * 4.0 - 2.0
    d1 = 2.0 - 1.0  # no bootstrap across the end
    d0 = 1.0 + g * 1.0 - 0.5
    expected = np.array([d0 + g * lam * d1, d1, d2])
    np.testing.assert_allclose(np.asarray(adv)[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ret), np.asarray(adv) + np.asarray(value), rtol=1e-6)


def test_running_norm_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 2.0, (50, 4)), rng.normal(-1.0, 0.5, (70, 4))
    norm = RunningNorm.init(4).update(jnp.asarray(a)).update(jnp.asarray(b))
    both = np.concatenate([a, b])
    np.testing.assert_allclose(np.asarray(norm.mean), both.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(norm.var), both.var(0), rtol=1e-4)
    z = np.asarray(norm(jnp.asarray(both)))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-3)


def test_gaussian_log_prob_and_entropy():
    mean, log_std, x = jnp.array([0.0, 1.0]), jnp.log(jnp.array([1.0, 2.0])), jnp.array([0.5, -1.0])
    expected = sum(
        -0.5 * ((xi - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi) for xi, m, s in [(0.5, 0, 1), (-1, 1, 2)]
    )
    assert float(gaussian_log_prob(mean, log_std, x)) == pytest.approx(expected, rel=1e-6)
    assert float(gaussian_entropy(log_std)) == pytest.approx(
        sum(0.5 * np.log(2 * np.pi * np.e * s**2) for s in (1, 2)), rel=1e-6
    )


def test_actor_sequence_equals_stepwise_calls():
    actor = MLPActor(3, 2, (8, 8), 0.5, jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    done = jnp.array([False, True, False, False, True])
    seq = actor.sequence(obs, done, actor.initial_carry())
    generic = super(MLPActor, actor).sequence(obs, done, actor.initial_carry())  # the scan the base class does
    one_by_one = jnp.stack([actor(o, actor.initial_carry())[0] for o in obs])
    np.testing.assert_allclose(np.asarray(seq), np.asarray(one_by_one), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(generic), np.asarray(one_by_one), rtol=1e-6)
    assert not actor.log_std.weak_type  # a weak type here recompiled the train step after one iteration


def test_the_adaptive_learning_rate_stays_in_its_range_and_a_reversed_range_is_refused():
    cfg = PPOConfig(num_minibatches=2, num_epochs=2, learning_rate=1e-3, learning_rate_range=(2e-4, 5e-4))
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    actor, critic = MLPActor(3, 2, (8, 8), 1.0, keys[0]), MLPCritic(3, (8, 8), keys[1])
    T, E = 4, 4
    obs = jax.random.normal(keys[2], (T, E, 3))
    batch = synthetic_batch(actor, obs, obs, keys[3])
    optimizer = make_optimizer(cfg)
    opt_state = optimizer.init(eqx.filter((actor, critic), eqx.is_inexact_array))
    carry = (jnp.zeros((E, 0)), jnp.zeros((E, 0)))
    *_, metrics = update(actor, critic, opt_state, batch, carry, actor.log_std, keys[0], cfg, optimizer)
    assert 2e-4 <= float(metrics["policy/learning_rate"]) <= 5e-4 * (1 + 1e-6)  # 1e-3 would be kept or raised
    with pytest.raises(ValueError, match="learning_rate_range=0.01,0.001: the first must not exceed the second"):
        PPOConfig(learning_rate_range=(1e-2, 1e-3)).validate()


def test_an_update_of_one_step_reads_a_kl_of_zero_so_the_adaptive_rate_needs_three_steps():
    # one step reads the rollout policy itself: its KL is 0, so the rate can only rise
    cfg = PPOConfig(num_minibatches=1, num_epochs=1, learning_rate=1e-3)
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    actor, critic = MLPActor(3, 2, (8, 8), 1.0, keys[0]), MLPCritic(3, (8, 8), keys[1])
    obs = jax.random.normal(keys[2], (4, 4, 3))
    optimizer = make_optimizer(cfg)
    opt_state = optimizer.init(eqx.filter((actor, critic), eqx.is_inexact_array))
    carry = (jnp.zeros((4, 0)), jnp.zeros((4, 0)))
    batch = synthetic_batch(actor, obs, obs, keys[3])
    *_, metrics = update(actor, critic, opt_state, batch, carry, actor.log_std, keys[0], cfg, optimizer)
    assert float(metrics["policy/kl"]) < 1e-6
    assert float(metrics["policy/learning_rate"]) == pytest.approx(1.5e-3)
    with pytest.raises(ValueError, match="num_epochs=2 x num_minibatches=1: adaptive_lr needs at least 3"):
        PPOConfig(num_epochs=2, num_minibatches=1).validate()
    PPOConfig(num_epochs=2, num_minibatches=1, adaptive_lr=False).validate()
    PPOConfig(num_epochs=3, num_minibatches=1).validate()
