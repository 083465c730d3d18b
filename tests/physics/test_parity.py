"""The two backends give the same trajectory for the same model, initial state and actions.

Tolerance: MJX computes in float32 (eps ≈ 1.2e-7) and MuJoCo in float64. On this
damped, contact-free arm the rounding differences do not grow chaotically; over
150 control steps (750 substeps) we measured largest gaps of 3.6e-7 rad in joint
angles, 4.3e-6 rad/s in joint velocities and 3e-7 m at the tip, against motions of
2 rad, 23 rad/s and 1.2 m. We allow 1e-5 rad, 1e-4 rad/s and 1e-5 m: about 25×
the measured gaps, and still five orders of magnitude below the motion.

The model uses the Euler integrator: with `implicitfast`, mujoco-mjx 3.17 and
mujoco 4.0 differ by about 1% per control step (see the README's sharp bits).
"""

import jax
import numpy as np

import ksim
from ksim import components as c
from ksim.engine.rollout import init_rollout, rollout
from tests.conftest import ARM, UniformPolicy

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
    # random actions, the same on both backends (same keys)
    policy = UniformPolicy(3, scale=0.8)
    state = init_rollout(env, policy, None, jax.random.key(0))
    _, steps = jax.jit(lambda s, k: rollout(env, policy, None, s, k, STEPS))(state, jax.random.key(1))
    return {k: np.asarray(v) for k, v in steps.transition.obs.items()}


def test_mjx_and_mujoco_trajectories_match():
    native, mjx = _trajectory("mujoco"), _trajectory("mjx")
    assert native["joint_position"].shape == (STEPS, E, 3)
    assert np.ptp(native["joint_position"]) > 0.5  # the arm really moves
    np.testing.assert_allclose(mjx["joint_position"], native["joint_position"], atol=1e-5)
    np.testing.assert_allclose(mjx["joint_velocity"], native["joint_velocity"], atol=1e-4)
    np.testing.assert_allclose(mjx["tip"], native["tip"], atol=1e-5)
