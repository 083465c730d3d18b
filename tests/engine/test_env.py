"""The engine's auto-reset and NaN guard, on both backends."""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ksim
from ksim import components as c
from ksim.components.events import EventEffect
from ksim.engine.rollout import init_rollout, rollout
from tests.conftest import HOPPER, UniformPolicy

E = 4


@dataclass(kw_only=True)
class Explode(c.Event):
    """Test-only event: an env whose carry is True gets an absurd velocity kick."""

    def init_carry(self, rng):
        return jnp.bool_(False)

    def __call__(self, carry, effect, rng, ctrl_dt):
        kick = jnp.where(carry, 1e9, 0.0) * jnp.ones_like(effect.qvel_kick)
        return carry, EventEffect(effect.xfrc_applied, effect.qvel_kick + kick)


def hopper_task(**overrides) -> ksim.Task:
    settings = dict(
        model_path=HOPPER,
        actuators=c.PDActuators(),
        observations=[c.JointPosition(), c.JointVelocity(), c.ProjectedGravity(), c.PreviousAction()],
        critic_observations=[c.BaseLinearVelocity()],
        rewards=[c.StayAlive(), c.Upright(scale=2.0), c.ActionRate(scale=-0.1)],
        terminations=[c.BaseHeightOutOfRange(min_height=0.2), c.EpisodeLength(max_seconds=1.0)],
        resets=[c.StanceReset(joint_pos_noise=0.05)],
        events=[Explode()],
        ctrl_dt=0.02,
    )
    settings.update(overrides)
    return ksim.Task(**settings)


@pytest.fixture(scope="module", params=["mujoco", "mjx"])
def env(request) -> ksim.Env:
    return ksim.Env(hopper_task(), num_envs=E, physics_backend=request.param)


def test_reset_shapes_and_names(env):
    state = env.reset(jax.random.key(0))
    assert state.obs["joint_position"].shape == (E, 2)
    assert set(state.critic_obs) == {
        "joint_position",
        "joint_velocity",
        "projected_gravity",
        "previous_action",
        "base_linear_velocity",
    }
    assert np.all(np.asarray(state.physics.time) == 0.0)
    # each env drew its own joint noise
    assert len({tuple(np.round(q, 6)) for q in np.asarray(state.physics.qpos[:, 7:])}) == E


def test_auto_reset_restarts_only_the_done_env(env):
    state = env.reset(jax.random.key(1))
    state = eqx.tree_at(lambda s: s.episode_step, state, jnp.array([49, 0, 0, 0], jnp.int32))
    state, tr = env.step(state, env.zero_action())
    np.testing.assert_array_equal(tr.done, [True, False, False, False])
    np.testing.assert_array_equal(tr.truncated, [True, False, False, False])
    np.testing.assert_array_equal(tr.terminated, [False] * E)
    np.testing.assert_array_equal(state.episode_step, [0, 1, 1, 1])
    time = np.asarray(state.physics.time)
    assert time[0] == 0.0 and np.allclose(time[1:], 0.02)
    # the restarted env is back at a stance, its bootstrap observation is of the state it reached
    np.testing.assert_allclose(state.physics.qpos[0, 2], 0.43, atol=1e-6)
    np.testing.assert_allclose(tr.critic_obs_t_plus_1["joint_position"][1:], state.critic_obs["joint_position"][1:])
    assert np.all(np.isfinite(np.asarray(tr.reward))) and np.allclose(tr.reward, tr.reward[0])


def test_nan_guard_resets_and_counts_without_poisoning_the_batch(env):
    state = env.reset(jax.random.key(2))
    state = eqx.tree_at(lambda s: s.event_carry["explode"], state, jnp.array([False, True, False, False]))
    state, tr = env.step(state, env.zero_action())
    np.testing.assert_array_equal(tr.termination_reasons["unstable"], [False, True, False, False])
    np.testing.assert_array_equal(tr.terminated, [False, True, False, False])
    assert float(tr.reward[1]) == 0.0 and float(tr.reward[0]) > 0.0
    for leaf in jax.tree.leaves((state.obs, state.critic_obs, tr.critic_obs_t_plus_1, tr.reward_terms)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert float(state.physics.time[1]) == 0.0 and np.allclose(state.physics.time[np.array([0, 2, 3])], 0.02)
    # the other envs carry on exactly as without the explosion
    calm = eqx.tree_at(lambda s: s.event_carry["explode"], env.reset(jax.random.key(2)), jnp.zeros(E, bool))
    calm, _ = env.step(calm, env.zero_action())
    np.testing.assert_allclose(
        state.physics.qpos[np.array([0, 2, 3])], calm.physics.qpos[np.array([0, 2, 3])], atol=1e-6
    )


def test_rollout_scans_a_policy_and_restarts_its_carry_and_sums_per_episode(env):
    policy = UniformPolicy(2)
    state = init_rollout(env, policy, None, jax.random.key(3))
    state, steps = jax.jit(lambda s, k: rollout(env, policy, None, s, k, 60))(state, jax.random.key(4))
    # the carry counts steps and restarts with each episode
    np.testing.assert_array_equal(state.policy_carry[:, 0], state.env.episode_step)
    first_end = np.argmax(np.asarray(steps.transition.done), axis=0)
    for e, t in enumerate(first_end):
        total = float(steps.episode_returns["total"][t, e])
        assert total == pytest.approx(float(steps.transition.reward[: t + 1, e].sum()), rel=1e-5)
        assert total == pytest.approx(sum(float(v[t, e]) for k, v in steps.episode_returns.items() if k != "total"))
    traj, state = steps.transition, state.env
    assert traj.reward.shape == (60, E) and traj.obs["joint_position"].shape == (60, E, 2)
    steps, truncated, terminated = (np.asarray(x) for x in (traj.episode_step, traj.truncated, traj.terminated))
    # 1 s episodes of 50 steps: every env ends one within 60 steps, truncations exactly at step 50
    assert steps.max() <= 50 and np.asarray(traj.done).any(axis=0).all()
    np.testing.assert_array_equal(truncated, (steps == 50) & ~terminated)
    assert np.all(np.asarray(state.episode_step) < 50)


@pytest.mark.parametrize("backend", ["mujoco", "mjx"])
def test_a_reset_without_randomness_starts_every_env_alike(backend):
    # no reset noise, no randomization: nothing in the reset varies across envs, so vmap leaves
    # the backend's reset unbatched; it must still reset every env (the native batch included)
    env = ksim.Env(hopper_task(resets=[], events=[]), num_envs=E, physics_backend=backend)
    state = env.reset(jax.random.key(5))
    np.testing.assert_allclose(state.physics.qpos, np.tile(env.model.qpos0, (E, 1)), atol=1e-6)
    state, tr = env.step(state, env.zero_action())
    np.testing.assert_allclose(state.physics.qpos, np.tile(state.physics.qpos[0], (E, 1)), atol=1e-6)
    assert np.allclose(state.physics.time, 0.02) and np.all(np.isfinite(np.asarray(tr.reward)))


def test_rewards_and_the_transition_judge_the_command_the_policy_saw():
    # a command resampled at every step: rewards computed after resampling would judge one it never saw
    command = c.VelocityCommand(resample_seconds=(0.01, 0.01), still_probability=0.0)
    task = hopper_task(
        commands=[command],
        observations=[c.CommandObservation(name="cmd", command="velocity")],
        rewards=[c.LinearVelocityTracking(sigma=0.5)],
        events=[],
    )
    env = ksim.Env(task, num_envs=E, physics_backend="mujoco")
    state = env.reset(jax.random.key(7))
    for _ in range(5):
        seen = np.array(state.obs["cmd"])  # the state is donated to the step
        state, tr = env.step(state, env.zero_action())
        np.testing.assert_allclose(tr.command["velocity"], seen)  # the command acted on
        np.testing.assert_allclose(tr.obs["cmd"], seen)
        assert not np.allclose(state.obs["cmd"], seen)  # resampled for the next step
        vel = jax.vmap(env.index.base.linear_velocity)(state.physics)
        expected = np.exp(-np.sum(np.square(seen[:, :2] - np.asarray(vel)[:, :2]), -1) / 0.25)
        np.testing.assert_allclose(tr.reward_terms["linear_velocity_tracking"], expected * env.ctrl_dt, rtol=1e-4)


def test_a_curriculum_level_rises_with_survival_falls_with_failure_and_scales_commands_and_pushes():
    curriculum = c.Curriculum(commands=("velocity",), initial_level=0.5, step=0.25, low=0.0)
    task = hopper_task(
        commands=[c.ConstantCommand(name="velocity", value=(1.0, 0.0, 0.0))],
        observations=[c.CommandObservation(name="cmd", command="velocity")],
        events=[Explode(), c.VelocityPush(interval_seconds=(0.01, 0.01), max_velocity=(1.0, 1.0))],
        curriculum=curriculum,
    )
    env = ksim.Env(task, num_envs=E, physics_backend="mujoco")
    state = env.reset(jax.random.key(8))
    np.testing.assert_allclose(state.obs["cmd"][:, 0], 0.5)  # the command at half difficulty
    # env 0 reaches its time limit, env 1 fails (its physics blows up), the rest go on
    state = eqx.tree_at(
        lambda s: (s.episode_step, s.event_carry["explode"]),
        state,
        (jnp.array([49, 0, 0, 0], jnp.int32), jnp.array([False, True, False, False])),
    )
    state, tr = env.step(state, env.zero_action())
    np.testing.assert_allclose(state.level, [0.75, 0.25, 0.5, 0.5])
    np.testing.assert_allclose(state.obs["cmd"][:, 0], [0.75, 0.25, 0.5, 0.5])
    for level in (0.0, 1.0):  # with low=0, level 0 means no command and no push
        fresh = eqx.tree_at(lambda s: s.level, env.reset(jax.random.key(9)), jnp.full(E, level))
        fresh, tr = env.step(fresh, env.zero_action())
        np.testing.assert_allclose(tr.command["velocity"][:, 0], level)
        assert (np.abs(np.asarray(fresh.physics.qvel)[:, :2]).max() > 0.1) == (level == 1.0)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="ctrl_dt=0.013 is not a whole multiple"):
        ksim.Env(hopper_task(ctrl_dt=0.013), num_envs=1, physics_backend="mujoco")
    with pytest.raises(ValueError, match="physics_backend='bullet' is not one of auto, mjx, mujoco"):
        ksim.Env(hopper_task(), num_envs=1, physics_backend="bullet")
    with pytest.raises(ValueError, match="share the names \\['stay_alive'\\]"):
        ksim.Env(hopper_task(rewards=[c.StayAlive(), c.StayAlive()]), num_envs=1, physics_backend="mujoco")


def test_auto_backend_picks_mujoco_on_cpu():
    from ksim.physics import resolve_backend_name

    expected = "mujoco" if jax.default_backend() == "cpu" else "mjx"
    assert resolve_backend_name("auto") == expected


def test_chunked_vmap_matches_vmap_with_keys_and_empty_leaves():
    from ksim.physics.mjx import chunked_vmap

    def fn(key, x, empty):
        return jax.random.normal(key, (2,)) + x.sum(), empty * 2

    keys = jax.random.split(jax.random.key(0), 13)
    x, empty = jnp.arange(39.0).reshape(13, 3), jnp.zeros((13, 0))
    expected = jax.vmap(fn)(keys, x, empty)
    got = jax.jit(chunked_vmap(fn, 13, 5))(keys, x, empty)  # 13 envs in 3 chunks of 5, two of them padding
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_prime_number_of_envs_is_padded_into_few_chunks_not_stepped_one_by_one():
    from ksim.physics.mjx import chunked_vmap

    run = chunked_vmap(lambda v: 2 * v, 37, 32)
    np.testing.assert_allclose(jax.jit(run)(jnp.arange(37.0)), 2 * np.arange(37.0))
    scans = [e for e in jax.make_jaxpr(run)(jnp.arange(37.0)).jaxpr.eqns if e.primitive.name == "scan"]
    assert [e.params["length"] for e in scans] == [2]  # 2 chunks of 19, where a divisor rule gave 37 of 1


def test_mjx_on_cpu_above_the_chunk_size_matches_a_plain_vmap():
    # MJX on a CPU runs envs in chunks (jax's batched LAPACK Cholesky can hang on 2 cores above 32)
    env = ksim.Env(hopper_task(), num_envs=40, physics_backend="mjx")
    chunked = env.reset(jax.random.key(6))
    plain = jax.jit(jax.vmap(env._reset_one))(jax.random.split(jax.random.key(6), 40))
    np.testing.assert_allclose(chunked.physics.qpos, plain.physics.qpos, atol=1e-6)
    np.testing.assert_allclose(chunked.obs["joint_position"], plain.obs["joint_position"], atol=1e-6)
    assert len({tuple(np.round(q, 6)) for q in np.asarray(chunked.physics.qpos[:, 7:])}) == 40


def test_native_backend_names_a_batch_of_the_wrong_size():
    env = ksim.Env(hopper_task(), num_envs=E, physics_backend="mujoco")
    state = env.reset(jax.random.key(0))
    doubled = jax.tree.map(lambda x: jnp.concatenate([x, x]), state)
    with pytest.raises(Exception, match=f"built for num_envs={E}, got a batch of {2 * E}"):
        env.step(doubled, jnp.zeros((2 * E, env.model.nu)))
