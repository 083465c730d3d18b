import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ksim import components as c
from tests.conftest import context

S = np.sqrt(0.5)


def test_joint_position_relative_to_stance(hopper_model):
    obs = c.JointPosition(relative_to_keyframe="stance").bind(hopper_model)
    ctx = context(hopper_model, qpos=[0, 0, 0.5, 1, 0, 0, 0, 0.5, -0.1])
    np.testing.assert_allclose(obs.observe(ctx), [0.3, 0.1], atol=1e-6)


def test_joint_velocity_in_actuator_order(hopper_model):
    obs = c.JointVelocity().bind(hopper_model)
    ctx = context(hopper_model, qvel=[0, 0, 0, 0, 0, 0, 1.5, -2.0])
    np.testing.assert_allclose(obs.observe(ctx), [1.5, -2.0])


def test_projected_gravity_when_rolled(hopper_model):
    obs = c.ProjectedGravity().bind(hopper_model)
    # rolled 90° about +x: gravity (world -z) is along the body's -y
    ctx = context(hopper_model, qpos=[0, 0, 0.5, S, S, 0, 0, 0, 0])
    np.testing.assert_allclose(obs.observe(ctx), [0, -1, 0], atol=1e-6)


def test_base_velocities_are_in_the_base_frame(hopper_model):
    # yawed 90°: a world +x velocity is the body's -y
    qpos = [0, 0, 0.5, S, 0, 0, S, 0, 0]
    ctx = context(hopper_model, qpos=qpos, qvel=[1.0, 0, 0, 0, 0, 0.7, 0, 0])
    np.testing.assert_allclose(c.BaseLinearVelocity().bind(hopper_model).observe(ctx), [0, -1, 0], atol=1e-6)
    np.testing.assert_allclose(c.BaseAngularVelocity().bind(hopper_model).observe(ctx), [0, 0, 0.7], atol=1e-6)


def test_imu_sensors_read_gravity_and_spin(hopper_model):
    ctx = context(hopper_model, qpos=[0, 0, 2.0, 1, 0, 0, 0, 0, 0], qvel=[0, 0, 0, 0, 0, 0.25, 0, 0])
    gyro = c.SensorObservation(sensor="imu_gyro", name="gyro").bind(hopper_model).observe(ctx)
    np.testing.assert_allclose(gyro, [0, 0, 0.25], atol=1e-6)
    # free fall: the accelerometer reads zero specific force
    acc = c.SensorObservation(sensor="imu_acc", name="acc").bind(hopper_model).observe(ctx)
    np.testing.assert_allclose(acc, [0, 0, 0], atol=1e-4)


def test_foot_contact_on_the_ground_and_in_the_air(hopper_model):
    obs = c.FootContact(sensors=("left_foot_touch", "right_foot_touch")).bind(hopper_model)
    resting = context(hopper_model, qpos=[0, 0, 0.39, 1, 0, 0, 0, 0, 0])
    flying = context(hopper_model, qpos=[0, 0, 1.0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(obs.observe(resting), [1, 1])
    np.testing.assert_allclose(obs.observe(flying), [0, 0])


def test_actuator_force_previous_action_and_command(hopper_model):
    # PD: τ = kp (ctrl - q) - kd q̇ = 30 (0 - 0.1) - 1 * 2 = -5
    ctx = context(hopper_model, qpos=[0, 0, 1, 1, 0, 0, 0, 0.1, 0], qvel=[0] * 6 + [2.0, 0])
    np.testing.assert_allclose(c.ActuatorForce().bind(hopper_model).observe(ctx), [-5.0, 0.0], atol=1e-5)
    ctx = context(hopper_model, action_t_minus_1=[0.5, -0.5], command={"velocity": jnp.array([1.0, 0.0, 0.2])})
    np.testing.assert_allclose(c.PreviousAction().bind(hopper_model).observe(ctx), [0.5, -0.5])
    np.testing.assert_allclose(c.CommandObservation(command="velocity").observe(ctx), [1.0, 0.0, 0.2])


def test_noise_kinds():
    x = jnp.full((20000,), 2.0)
    rng = jax.random.key(0)
    add = c.GaussianNoise(std=0.1).apply(x, rng)
    assert abs(float(jnp.std(add - x)) - 0.1) < 0.005
    mul = c.UniformNoise(half_width=0.5, multiplicative=True).apply(x, rng)
    ratio = mul / x
    assert 0.5 <= float(ratio.min()) and float(ratio.max()) <= 1.5
    assert abs(float(jnp.mean(ratio)) - 1.0) < 0.01


def test_unknown_sensor_is_a_clear_error(hopper_model):
    with pytest.raises(ValueError, match="no sensor named 'nope'"):
        c.SensorObservation(sensor="nope").bind(hopper_model)


def test_base_observation_on_a_fixed_base_is_a_clear_error(arm_model):
    with pytest.raises(ValueError, match="free-floating base"):
        c.ProjectedGravity().bind(arm_model)
