"""Shared helpers: the tiny test models and hand-built physics snapshots."""

from pathlib import Path

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from ksim.components.base import StepContext
from ksim.engine.rollout import Policy, PolicyOutput
from ksim.physics.data import PhysicsData
from ksim.rl.networks import Actor, gaussian_log_prob
from ksim.rl.ppo import Batch

ASSETS = Path(__file__).parent / "assets"
ARM = ASSETS / "arm.xml"
HOPPER = ASSETS / "hopper.xml"
KBOT = Path(__file__).parents[1] / "examples" / "kbot" / "scene.xml"

# The suite compares code paths (vmapped vs per env, a scan vs step by step) to float32
# rounding. On a GPU, float32 dot products default to TF32, whose rounding depends on the
# batch shape (measured on an H100: a 5-step actor scan vs its single steps differed beyond
# rtol 1e-6). Full float32 makes those comparisons mean the same on every device. Not on the
# CPU, which computes in float32 anyway, and where asking for it made the MJX learning test take
# over 4 minutes instead of about one.
if jax.default_backend() != "cpu":
    jax.config.update("jax_default_matmul_precision", "highest")


def physics_of(model: mujoco.MjModel, data: mujoco.MjData) -> PhysicsData:
    """A PhysicsData snapshot of a MuJoCo data (after mj_forward)."""
    f32 = lambda x: jnp.asarray(np.array(x), jnp.float32)  # noqa: E731
    return PhysicsData(
        time=f32(data.time),
        qpos=f32(data.qpos),
        qvel=f32(data.qvel),
        ctrl=f32(data.ctrl),
        xpos=f32(data.xpos),
        xquat=f32(data.xquat),
        sensordata=f32(data.sensordata),
        actuator_force=f32(data.actuator_force),
        unstable=jnp.bool_(False),
        raw=None,
    )


class UniformPolicy(Policy):
    """Actions uniform in ±`scale`, independent per env and step; the carry counts the episode's steps."""

    def __init__(self, nu: int, scale: float = 1.0) -> None:
        self.nu, self.scale = nu, scale

    def init_carry(self, params):
        return jnp.zeros(1, jnp.int32)

    def __call__(self, params, obs, carry, rng):
        action = self.scale * jax.random.uniform(rng, (self.nu,), minval=-1, maxval=1)
        return PolicyOutput(action, carry + 1, jnp.float32(0.0), action)


def context(
    model: mujoco.MjModel,
    qpos=None,
    qvel=None,
    action_t=None,
    action_t_minus_1=None,
    command=None,
    episode_step: int = 1,
    ctrl_dt: float = 0.02,
) -> StepContext:
    """A StepContext at (qpos, qvel) with derived fields from mj_forward."""
    data = mujoco.MjData(model)
    if qpos is not None:
        data.qpos[:] = qpos
    if qvel is not None:
        data.qvel[:] = qvel
    mujoco.mj_forward(model, data)
    physics = physics_of(model, data)
    zeros = jnp.zeros(model.nu)
    return StepContext(
        physics=physics,
        action_t=zeros if action_t is None else jnp.asarray(action_t, jnp.float32),
        action_t_minus_1=zeros if action_t_minus_1 is None else jnp.asarray(action_t_minus_1, jnp.float32),
        command=command or {},
        episode_step=jnp.int32(episode_step),
        ctrl_dt=ctrl_dt,
    )


@pytest.fixture(scope="session")
def hopper_model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(HOPPER))


@pytest.fixture(scope="session")
def arm_model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(ARM))


def synthetic_batch(actor: Actor, actor_obs: jax.Array, critic_obs: jax.Array, key: jax.Array) -> Batch:
    """A PPO batch as a rollout of `actor` (an MLP) would give it: actions drawn around its means, random advantages."""
    action_key, advantage_key = jax.random.split(key)
    mean = jax.vmap(jax.vmap(lambda o: actor(o, actor.initial_carry())[0]))(actor_obs)
    action = mean + jax.random.normal(action_key, mean.shape)
    zeros = jnp.zeros(actor_obs.shape[:2])
    return Batch(
        actor_obs=actor_obs,
        critic_obs=critic_obs,
        action=action,
        log_prob=gaussian_log_prob(mean, actor.log_std, action),
        mean=mean,
        done=zeros.astype(bool),
        value=zeros,
        advantage=jax.random.normal(advantage_key, zeros.shape),
        ret=zeros,
    )
