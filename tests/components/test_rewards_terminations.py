import jax.numpy as jnp
import numpy as np

from ksim import components as c
from tests.conftest import context

S = np.sqrt(0.5)
UPRIGHT = [0, 0, 0.5, 1, 0, 0, 0, 0.2, -0.2]


def test_upright_and_height(hopper_model):
    up = context(hopper_model, qpos=UPRIGHT)
    lying = context(hopper_model, qpos=[0, 0, 0.1, S, S, 0, 0, 0, 0])
    upright = c.Upright().bind(hopper_model)
    assert np.isclose(upright.compute(up), 1.0) and np.isclose(upright.compute(lying), 0.0, atol=1e-6)
    height = c.BaseHeight(target=0.5, sigma=0.1).bind(hopper_model)
    assert np.isclose(height.compute(up), 1.0)
    assert np.isclose(height.compute(lying), np.exp(-16.0), rtol=1e-4)  # (0.4 / 0.1)² = 16


def test_costs(hopper_model):
    ctx = context(
        hopper_model,
        qpos=[0, 0, 1, 1, 0, 0, 0, 0.5, -0.2],
        qvel=[0] * 6 + [1.0, -2.0],
        action_t=[1.0, 0.0],
        action_t_minus_1=[0.0, 0.5],
    )
    assert np.isclose(c.JointDeviation().bind(hopper_model).compute(ctx), 0.3**2)
    assert np.isclose(c.ActionRate().compute(ctx), 1.0 + 0.25)
    assert np.isclose(c.JointVelocityPenalty().bind(hopper_model).compute(ctx), 1.0 + 4.0)
    # τ = 30 (0 - q) - q̇: left 30(-0.5) - 1 = -16, right 30(0.2) + 2 = 8
    tau = np.array([-16.0, 8.0])
    assert np.isclose(c.Torque().compute(ctx), np.sum(tau**2), rtol=1e-5)
    assert np.isclose(c.Energy().bind(hopper_model).compute(ctx), abs(-16.0 * 1.0) + abs(8.0 * -2.0), rtol=1e-5)
    assert float(c.StayAlive().compute(ctx)) == 1.0
    # roll and pitch rates count, yaw rate and linear velocity do not
    wobble = context(hopper_model, qpos=UPRIGHT, qvel=[5.0, 0, 0, 0.3, -0.4, 9.0, 0, 0])
    assert np.isclose(c.BaseAngularVelocityPenalty().bind(hopper_model).compute(wobble), 0.09 + 0.16)


def test_velocity_tracking(hopper_model):
    command = {"velocity": jnp.array([1.0, 0.0, 0.5])}
    on_track = context(hopper_model, qpos=UPRIGHT, qvel=[1.0, 0, 0, 0, 0, 0.5, 0, 0], command=command)
    off = context(hopper_model, qpos=UPRIGHT, qvel=[0.0, 0, 0, 0, 0, 0.0, 0, 0], command=command)
    lin = c.LinearVelocityTracking(sigma=0.5).bind(hopper_model)
    ang = c.AngularVelocityTracking(sigma=0.5).bind(hopper_model)
    assert np.isclose(lin.compute(on_track), 1.0) and np.isclose(lin.compute(off), np.exp(-4.0), rtol=1e-5)
    assert np.isclose(ang.compute(on_track), 1.0) and np.isclose(ang.compute(off), np.exp(-1.0), rtol=1e-5)


def test_feet_air_time_pays_at_touchdown(hopper_model):
    reward = c.FeetAirTime(sensors=("left_foot_touch", "right_foot_touch"), threshold=0.1, command=None)
    reward = reward.bind(hopper_model)
    air = context(hopper_model, qpos=[0, 0, 1.0, 1, 0, 0, 0, 0, 0], ctrl_dt=0.02)
    ground = context(hopper_model, qpos=[0, 0, 0.39, 1, 0, 0, 0, 0, 0], ctrl_dt=0.02)
    carry = reward.init_carry()
    for _ in range(10):  # 0.2 s in the air
        value, carry = reward.step(air, carry)
        assert float(value) == 0.0
    value, carry = reward.step(ground, carry)
    assert np.isclose(value, 2 * (0.22 - 0.1), atol=1e-5)  # both feet, 0.2 s + this step
    np.testing.assert_allclose(carry, [0.0, 0.0])


def test_terminations(hopper_model):
    low = context(hopper_model, qpos=[0, 0, 0.1, 1, 0, 0, 0, 0, 0])
    tilted = context(hopper_model, qpos=[0, 0, 0.5, np.cos(0.6), np.sin(0.6), 0, 0, 0, 0])  # 1.2 rad roll
    fine = context(hopper_model, qpos=[0, 0, 1.0, 1, 0, 0, 0, 0, 0])
    height = c.BaseHeightOutOfRange(min_height=0.2, max_height=1.5).bind(hopper_model)
    assert bool(height(low)) and not bool(height(fine))
    upright = c.NotUpright(max_tilt=1.0).bind(hopper_model)
    assert bool(upright(tilted)) and not bool(upright(fine))
    contact = c.IllegalContact(sensors=("torso_touch",)).bind(hopper_model)
    lying = context(hopper_model, qpos=[0, 0, 0.04, 1, 0, 0, 0, 1.4, 1.4])  # torso 1 cm into the floor
    assert bool(contact(lying)) and not bool(contact(fine))
    length = c.EpisodeLength(max_seconds=1.0)
    assert length.kind == "truncation"
    assert not bool(length(context(hopper_model, episode_step=49)))
    assert bool(length(context(hopper_model, episode_step=50)))
