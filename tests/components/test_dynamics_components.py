"""Resets, commands, events, randomizations and actuators on hand-checked cases."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from ksim import components as c
from ksim.components.events import EventEffect
from ksim.physics.data import ModelParams
from tests.conftest import HOPPER


def test_stance_reset_noise_stays_in_bounds(hopper_model):
    reset = c.StanceReset(joint_pos_noise=0.1, joint_vel_noise=0.5).bind(hopper_model)
    qpos, qvel = reset(jnp.zeros(9), jnp.zeros(8), jax.random.key(0))
    np.testing.assert_allclose(qpos[:7], hopper_model.key_qpos[0][:7], atol=1e-7)
    assert np.all(np.abs(qpos[7:] - hopper_model.key_qpos[0][7:]) <= 0.1)
    assert np.all(np.abs(qvel[6:]) <= 0.5) and np.all(qvel[:6] == 0)
    assert not np.allclose(qpos[7:], hopper_model.key_qpos[0][7:])


def test_base_pose_reset_turns_and_shifts(hopper_model):
    reset = c.BasePoseReset(xy=1.0, yaw=np.pi).bind(hopper_model)
    qpos, _ = reset(jnp.asarray(hopper_model.key_qpos[0], jnp.float32), jnp.zeros(8), jax.random.key(3))
    assert np.all(np.abs(qpos[:2]) <= 1.0) and np.isclose(qpos[2], 0.43)
    quat = np.asarray(qpos[3:7])
    assert np.isclose(np.linalg.norm(quat), 1.0, atol=1e-6) and np.allclose(quat[1:3], 0.0, atol=1e-6)


def test_velocity_command_resamples_when_time_is_up():
    command = c.VelocityCommand(
        vx=(0.5, 1.0), vy=(0.0, 0.0), wz=(0.0, 0.0), resample_seconds=(0.1, 0.1), still_probability=0.0
    )
    state = command.init(jax.random.key(0))
    assert 0.5 <= float(state.value[0]) <= 1.0
    kept = command.step(state, jax.random.key(1), 0.04)
    np.testing.assert_allclose(kept.value, state.value)
    assert np.isclose(kept.time_left, 0.06)
    later = command.step(command.step(kept, jax.random.key(2), 0.04), jax.random.key(3), 0.04)
    assert not np.allclose(later.value, state.value) and np.isclose(later.time_left, 0.1)


def test_constant_command_never_changes():
    command = c.ConstantCommand(value=(0.3, 0.0, 0.0))
    state = command.step(command.init(jax.random.key(0)), jax.random.key(1), 100.0)
    np.testing.assert_allclose(state.value, [0.3, 0.0, 0.0])


def _no_effect(model: mujoco.MjModel) -> EventEffect:
    return EventEffect(jnp.zeros((model.nbody, 6)), jnp.zeros(model.nv))


def test_velocity_push_fires_on_schedule(hopper_model):
    push = c.VelocityPush(interval_seconds=(0.1, 0.1), max_velocity=(1.0, 1.0)).bind(hopper_model)
    carry = push.init_carry(jax.random.key(0))
    carry, effect = push(carry, _no_effect(hopper_model), jax.random.key(1), 0.06)
    assert np.all(effect.qvel_kick == 0)
    carry, effect = push(carry, _no_effect(hopper_model), jax.random.key(2), 0.06)
    assert np.any(effect.qvel_kick[:2] != 0) and np.all(effect.qvel_kick[2:] == 0)
    assert np.all(np.abs(effect.qvel_kick[:2]) <= 1.0) and np.isclose(carry, 0.1)


def test_force_push_lasts_its_duration(hopper_model):
    push = c.ForcePush(interval_seconds=(0.149, 0.149), max_force=50.0, duration_seconds=0.09).bind(hopper_model)
    carry = push.init_carry(jax.random.key(0))
    forces = []
    for i in range(6):
        carry, effect = push(carry, _no_effect(hopper_model), jax.random.key(i), 0.05)
        forces.append(np.asarray(effect.xfrc_applied[1, :3]))
    active = [np.linalg.norm(f) > 0 for f in forces]
    assert active == [False, False, True, True, False, True]  # one every 0.149 s, lasting 0.09 s
    assert all(np.linalg.norm(f) <= 50.0 and f[2] == 0 for f in forces)


def test_randomizations_scale_within_ranges(hopper_model):
    params = ModelParams.from_model(hopper_model)
    rng = jax.random.key(0)
    floor = c.FloorFriction(scale_range=(0.5, 0.5)).bind(hopper_model)(params, rng)
    assert np.isclose(floor.geom_friction[0, 0], 0.5 * params.geom_friction[0, 0])
    np.testing.assert_allclose(floor.geom_friction[1:], params.geom_friction[1:])
    mass = c.BodyMass(scale_range=(0.8, 1.2))(params, rng).body_mass / jnp.maximum(params.body_mass, 1e-9)
    assert np.all((mass[1:] >= 0.8) & (mass[1:] <= 1.2))
    damping = c.JointDamping(scale_range=(2.0, 2.0))(params, rng)
    np.testing.assert_allclose(damping.dof_damping, 2 * params.dof_damping)
    armature = c.Armature(scale_range=(3.0, 3.0))(params, rng)
    np.testing.assert_allclose(armature.dof_armature, 3 * params.dof_armature)
    gains = c.ActuatorGains(kp_range=(2.0, 2.0), kd_range=(0.5, 0.5))(params, rng)
    np.testing.assert_allclose(gains.actuator_gainprm[:, 0], [60.0, 60.0])
    np.testing.assert_allclose(gains.actuator_biasprm[:, 1:3], [[-60.0, -0.5], [-60.0, -0.5]])


def test_pd_actuators_configure_gains_and_targets():
    model = mujoco.MjModel.from_xml_path(str(HOPPER))
    pd = c.PDActuators(kp={"left_hip": 50.0}, kd=2.0, torque_limit=10.0, action_scale=0.5)
    pd.configure(model)
    np.testing.assert_allclose(model.actuator_gainprm[:, 0], [50.0, 30.0])
    np.testing.assert_allclose(model.actuator_biasprm[:, 1:3], [[-50.0, -2.0], [-30.0, -2.0]])
    np.testing.assert_allclose(model.actuator_forcerange, [[-10, 10], [-10, 10]])
    bound = pd.bind(model)
    np.testing.assert_allclose(bound.ctrl(jnp.array([1.0, -1.0])), [0.2 + 0.5, -0.2 - 0.5], atol=1e-6)
    # τ = kp (target - q) - kd q̇, clipped: 50 (0.7 - 0) - 0 = 35 → 10
    data = mujoco.MjData(model)
    data.ctrl[:] = [0.7, -0.01]
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.actuator_force, [10.0, -0.3], atol=1e-6)


def test_pd_action_scale_per_joint_holds_the_unnamed_joints_at_the_stance():
    model = mujoco.MjModel.from_xml_path(str(HOPPER))
    pd = c.PDActuators(action_scale={"right_hip": 0.5})
    pd.configure(model)
    bound = pd.bind(model)
    # left_hip is not named: its target stays at the stance (0.2) whatever the action
    np.testing.assert_allclose(bound.ctrl(jnp.array([3.0, -1.0])), [0.2, -0.2 - 0.5], atol=1e-6)
    assert bound.deploy_spec()["action_scale"] == [0.0, 0.5]
    with pytest.raises(ValueError, match="action_scale: unknown joints \\['knee'\\]"):
        c.PDActuators(action_scale={"knee": 1.0}).bind(model)


def test_torque_actuators_and_bad_joint_names():
    model = mujoco.MjModel.from_xml_path(str(HOPPER))
    torque = c.TorqueActuators(torque_limit={"left_hip": 5.0, "right_hip": 8.0})
    torque.configure(model)
    bound = torque.bind(model)
    np.testing.assert_allclose(bound.ctrl(jnp.array([0.5, -2.0])), [2.5, -8.0])
    data = mujoco.MjData(model)
    data.ctrl[:] = [2.5, -8.0]
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.actuator_force, [2.5, -8.0])
    with pytest.raises(ValueError, match="unknown joints \\['knee'\\]"):
        c.PDActuators(kp={"knee": 1.0}).configure(model)


def test_action_noise_and_latency_sampling(hopper_model):
    pd = c.PDActuators(max_latency_steps=2, action_noise=c.GaussianNoise(std=0.1)).bind(hopper_model)
    latencies = {int(pd.sample_latency(jax.random.key(i))) for i in range(40)}
    assert latencies == {0, 1, 2}
    noisy = pd.perturb(jnp.zeros(2), jax.random.key(0))
    assert np.all(noisy != 0) and np.all(np.abs(noisy) < 1.0)
