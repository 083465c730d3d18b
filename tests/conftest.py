"""Shared helpers: the tiny test models and hand-built physics snapshots."""

from pathlib import Path

import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from ksim.components.base import StepContext
from ksim.physics.data import PhysicsData

ASSETS = Path(__file__).parent / "assets"
ARM = ASSETS / "arm.xml"
HOPPER = ASSETS / "hopper.xml"
KBOT = Path(__file__).parents[1] / "examples" / "kbot" / "scene.xml"


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


def context(
    model: mujoco.MjModel,
    qpos=None,
    qvel=None,
    action=None,
    prev_action=None,
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
        physics_before=physics,
        action=zeros if action is None else jnp.asarray(action, jnp.float32),
        prev_action=zeros if prev_action is None else jnp.asarray(prev_action, jnp.float32),
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
