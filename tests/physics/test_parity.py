"""The two backends give the same trajectory for the same model, initial state and actions.

Tolerance: MJX computes in float32 (eps ≈ 1.2e-7) and MuJoCo in float64. On this
damped, contact-free arm the rounding differences do not grow chaotically; over
150 control steps (750 substeps) we measured a largest gap of about 1e-5 rad in
joint angles. We allow 1e-3 rad / 1e-2 rad/s: 100× the measured gap, yet far below
the motion itself (the actions move each joint by about a radian).
"""

import jax
import numpy as np

import ksim
from ksim import components as c
from tests.conftest import ARM

STEPS, E = 150, 2


def _trajectory(backend: str):
    task = ksim.Task(
        model_path=ARM,
        actuators=c.PDActuators(action_scale=1.0),
        observations=[c.JointPosition(), c.JointVelocity(), c.SensorObservation(sensor="tip_pos", name="tip")],
        rewards=[c.StayAlive()],
        terminations=[],
        resets=[c.StanceReset(joint_pos_noise=0.2, joint_vel_noise=0.5)],
        ctrl_dt=0.025,
    )
    env = ksim.Env(task, num_envs=E, physics_backend=backend)
    # smooth random actions, the same on both backends (same keys)
    rollout = env.rollout_fn(lambda obs, rng: 0.8 * jax.random.uniform(rng, (E, 3), minval=-1, maxval=1), STEPS)
    _, traj = rollout(env.reset(jax.random.key(0)), jax.random.key(1))
    return {k: np.asarray(v) for k, v in traj.obs.items()}


def test_mjx_and_mujoco_trajectories_match():
    native, mjx = _trajectory("mujoco"), _trajectory("mjx")
    assert native["joint_position"].shape == (STEPS, E, 3)
    assert np.ptp(native["joint_position"]) > 0.5  # the arm really moves
    np.testing.assert_allclose(mjx["joint_position"], native["joint_position"], atol=1e-3)
    np.testing.assert_allclose(mjx["joint_velocity"], native["joint_velocity"], atol=1e-2)
    np.testing.assert_allclose(mjx["tip"], native["tip"], atol=1e-3)
