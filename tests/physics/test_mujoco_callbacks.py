"""The native backend's two callback paths (in place on a CPU, copying on an accelerator) agree bit for bit.

On a GPU host a `buffer_callback`'s buffers live in device memory, which numpy cannot read;
there the backend copies through `jax.pure_callback` instead. This machine has no GPU, so the
test forces the copying path and checks that it steps and resets exactly like the in-place one.
"""

import importlib

import jax
import numpy as np

import ksim
from ksim import components as c
from ksim.engine.rollout import init_rollout, rollout
from tests.conftest import HOPPER, UniformPolicy

STEPS, E = 60, 3
# `ksim.physics.mujoco` as an attribute is the mujoco package (imported there), hence the module lookup
native = importlib.import_module("ksim.physics.mujoco")


def _trajectory():
    task = ksim.Task(
        model_path=HOPPER,
        actuators=c.PDActuators(action_scale=1.0),
        observations=[c.JointPosition(), c.JointVelocity()],
        rewards=[c.StayAlive()],
        terminations=[c.EpisodeLength(max_seconds=0.5)],  # resets mid-rollout, through the reset callback
        resets=[c.StanceReset(joint_pos_noise=0.2, joint_vel_noise=0.5)],
    )
    env = ksim.Env(task, num_envs=E, physics_backend="mujoco")
    policy = UniformPolicy(env.model.nu, scale=0.8)
    state = init_rollout(env, policy, None, jax.random.key(0))
    _, steps = jax.jit(lambda s, k: rollout(env, policy, None, s, k, STEPS))(state, jax.random.key(1))
    return steps


def test_the_copying_callbacks_of_an_accelerator_host_equal_the_in_place_ones(monkeypatch):
    in_place = _trajectory()
    monkeypatch.setattr(native, "_buffers_on_host", lambda: False)
    monkeypatch.setattr(native, "buffer_callback", None)  # the copying path must not touch it
    copied = _trajectory()
    assert np.asarray(in_place.transition.done).any()  # the reset path ran too
    for a, b in zip(jax.tree.leaves(in_place), jax.tree.leaves(copied), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
