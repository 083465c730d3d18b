"""Action priors: the gait prior's profile, its mirror symmetry, the policy acting on top of it, PPO and export."""

import json

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

import ksim
from examples.kbot import walking
from examples.kbot.common import SCENE, STRIDE, SWING
from ksim import components as c
from ksim.components.base import ModelIndex
from ksim.engine.env import Env
from ksim.rl.learner import init_learner, make_train_step, start_rollout
from ksim.rl.networks import MLPActor
from ksim.rl.normalization import RunningNorm
from ksim.rl.policy import ActorPolicy, PolicyParams
from ksim.runner.export import export

SMALL = {"actor_hidden": (16, 16), "critic_hidden": (16, 16)}
KBOT = mujoco.MjModel.from_xml_path(str(SCENE))


@pytest.fixture(scope="module")
def env() -> Env:
    """K-Bot walking with the gait prior, stepping and striding, 4 envs."""
    cfg = walking.WalkingConfig(gait_prior=1.0, gait_stride=1.0, **SMALL)
    return Env(walking.make_task(cfg), 4, "mujoco", nthread=1)


def _obs(env: Env, phi: float, command: tuple[float, float, float]) -> jnp.ndarray:
    """A flat actor observation of zeros but for the gait phase φ and the velocity command."""
    obs = {n: jnp.zeros(s) for n, s in zip(env.actor_layout.names, env.actor_layout.sizes, strict=True)}
    phases = phi + jnp.array([0.0, jnp.pi])
    obs["gait_phase"] = jnp.concatenate([jnp.sin(phases), jnp.cos(phases)])
    obs["command_observation"] = jnp.asarray(command)
    return env.actor_layout.flatten(obs)


def _joint_obs(phi: float, command: tuple[float, float, float]) -> dict[str, jnp.ndarray]:
    phases = phi + jnp.array([0.0, jnp.pi])
    return {
        "gait_phase": jnp.concatenate([jnp.sin(phases), jnp.cos(phases)]),
        "command_observation": jnp.array(command),
    }


def test_the_gait_prior_swings_one_leg_at_a_time_and_holds_still_when_told():
    prior = c.GaitPrior(swing=SWING).bind(KBOT)
    names = list(ModelIndex.of(KBOT).joint_names)
    top_of_left = np.asarray(prior.joint_offsets(_joint_obs(np.pi / 2, (0.5, 0.0, 0.0))))
    expected = np.zeros(KBOT.nu)
    for joint, offset in SWING[0].items():
        expected[names.index(joint)] = offset
    np.testing.assert_allclose(top_of_left, expected, atol=1e-6)
    halfway_up_right = np.asarray(prior.joint_offsets(_joint_obs(-np.pi / 6, (0.0, 0.0, 0.4))))
    for joint, offset in SWING[1].items():
        assert halfway_up_right[names.index(joint)] == pytest.approx(0.5 * offset, abs=1e-6)
    assert np.count_nonzero(halfway_up_right) == len(SWING[1])
    np.testing.assert_array_equal(np.asarray(prior.joint_offsets(_joint_obs(np.pi / 2, (0.0, 0.0, 0.0)))), 0.0)


def test_the_stride_carries_each_planted_foot_back_at_the_commanded_speed():
    prior = c.GaitPrior(swing=SWING, stride=STRIDE).bind(KBOT)
    names = list(ModelIndex.of(KBOT).joint_names)
    # the left foot lands (φ = π), the right one lifts off (φ + π = 2π): neither is lifted, the left
    # hip is flexed forward and the right one extended back, by the gain times the speed
    at_landing = np.asarray(prior.joint_offsets(_joint_obs(np.pi, (0.5, 0.0, 0.0))))
    assert at_landing[names.index("left_hip_pitch")] == pytest.approx(0.5 * STRIDE[0]["left_hip_pitch"][0])
    assert at_landing[names.index("right_hip_pitch")] == pytest.approx(-0.5 * STRIDE[1]["right_hip_pitch"][0])
    assert np.count_nonzero(np.abs(at_landing) > 1e-6) == 2
    # which carries the feet apart along x: the left forward of the right
    data = mujoco.MjData(KBOT)
    mujoco.mj_resetDataKeyframe(KBOT, data, KBOT.key("stance").id)
    data.qpos[ModelIndex.of(KBOT).joint_qpos_ids] += at_landing
    mujoco.mj_kinematics(KBOT, data)
    left, right = (data.xpos[KBOT.body(f).id] for f in ("left_foot", "right_foot"))
    assert left[0] - right[0] > 0.1
    turning = np.asarray(prior.joint_offsets(_joint_obs(np.pi, (0.0, 0.0, 0.5))))
    assert turning[names.index("left_hip_yaw")] > 0 > turning[names.index("right_hip_yaw")]
    with pytest.raises(ValueError, match="stride has 1 legs, and swing has 2"):
        c.GaitPrior(swing=SWING, stride=STRIDE[:1]).bind(KBOT)


def test_gait_turn_scales_only_the_turning_sweep():
    names = list(ModelIndex.of(KBOT).joint_names)
    yaw = [names.index(f"{side}_hip_yaw") for side in ("left", "right")]
    obs = _joint_obs(np.pi, (0.4, 0.2, 0.5))
    offsets = []
    for turn in (1.0, 2.0):
        prior = walking.make_task(walking.WalkingConfig(gait_turn=turn, **SMALL)).action_prior
        assert prior is not None
        offsets.append(np.asarray(prior.bind(KBOT).joint_offsets(obs)))
    assert np.all(np.abs(offsets[0][yaw]) > 0.01)
    np.testing.assert_allclose(offsets[1][yaw], 2 * offsets[0][yaw], rtol=1e-6)
    others = np.setdiff1d(np.arange(len(names)), yaw)
    np.testing.assert_allclose(offsets[1][others], offsets[0][others], rtol=1e-6)


def test_the_gait_prior_is_its_own_mirror_image(env):
    assert env.prior is not None
    mirror = env.mirrors()
    obs_N = jax.random.normal(jax.random.PRNGKey(0), (64, env.actor_layout.size))
    np.testing.assert_allclose(
        np.asarray(mirror.action(env.prior(obs_N))), np.asarray(env.prior(mirror.actor_obs(obs_N))), atol=1e-6
    )


def test_the_policy_acts_with_the_prior_and_ppo_learns_only_the_residual(env):
    cfg = walking.WalkingConfig(num_envs=4, rollout_length=8, adaptive_lr=False, learning_rate=1e-9, **SMALL)
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    policy = ActorPolicy.of(env, deterministic=True)
    obs = env.reset(jax.random.PRNGKey(1)).obs
    one = jax.tree.map(lambda x: x[0], obs)
    out = policy(learner.policy_params, one, policy.init_carry(learner.policy_params), jax.random.PRNGKey(2))
    bare = ActorPolicy(env.actor_layout, deterministic=True)
    without = bare(learner.policy_params, one, jnp.zeros(0), jax.random.PRNGKey(2))
    assert env.prior is not None
    np.testing.assert_allclose(out.action, without.action + env.prior(env.actor_layout.flatten(one)), atol=1e-6)
    # PPO must compare the rollout's residual with the actor's: were it handed the prior-shifted
    # actions and means, an update that barely moves the weights would still see a large KL
    _, _, metrics = make_train_step(env, cfg)(learner, start_rollout(env, learner, jax.random.PRNGKey(3)))
    assert float(metrics["policy/kl"]) < 1e-6 and float(metrics["policy/clip_fraction"]) == 0.0


def test_the_exported_onnx_includes_the_prior(env, tmp_path):
    import onnxruntime as ort

    actor = MLPActor(env.actor_layout.size, env.model.nu, (8,), 0.5, jax.random.key(0))
    params = PolicyParams(actor, RunningNorm.init(env.actor_layout.size))
    assert export(env, params, {"file": "c", "iteration": 0, "sha256": "0"}, "t", tmp_path) <= 1e-5
    session = ort.InferenceSession(str(tmp_path / "policy.onnx"), providers=["CPUExecutionProvider"])
    obs = np.asarray(_obs(env, np.pi / 2, (0.5, 0.0, 0.0)), np.float32)
    got = session.run(["action"], {"obs": obs})[0]
    bare = np.asarray(actor(jnp.asarray(obs), jnp.zeros(0))[0])
    assert env.prior is not None
    np.testing.assert_allclose(got, bare + np.asarray(env.prior(jnp.asarray(obs))), atol=1e-5)
    assert np.abs(got - bare).max() > 1.0  # the prior's share is not lost in rounding
    assert json.loads((tmp_path / "metadata.json").read_text())["observation_size"] == env.actor_layout.size


def test_a_prior_that_cannot_work_is_a_one_line_error():
    base = walking.make_task(walking.WalkingConfig(gait_prior=1.0))
    swing = ({"left_knee": 0.5}, {"right_knee": -0.5})
    with pytest.raises(ValueError, match=r"reads observations \['speed'\] that the actor does not have"):
        Env(ksim.Task(**{**vars(base), "action_prior": c.GaitPrior(swing=swing, command_observation="speed")}), 1)
    with pytest.raises(ValueError, match=r"unknown joints \['left_knees'\]"):
        Env(ksim.Task(**{**vars(base), "action_prior": c.GaitPrior(swing=({"left_knees": 0.5}, {}))}), 1)
    torque = ksim.Task(**{**vars(base), "actuators": c.TorqueActuators(), "action_prior": c.GaitPrior(swing=swing)})
    with pytest.raises(ValueError, match="TorqueActuators has no joint targets"):
        Env(torque, 1)
