"""The K-Bot model and every example task: loads, resets, steps, keeps its shapes, has no NaN."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from examples.cartpole import cartpole
from examples.kbot import standing, walking
from examples.kbot.common import SCENE
from ksim.components.base import ModelIndex
from ksim.engine.env import Env
from ksim.runner import run

# actuator order, documented in examples/kbot/kbot.xml and the README
KBOT_JOINTS = [
    *(f"left_{j}" for j in ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle")),
    *(f"right_{j}" for j in ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle")),
    *(f"right_{j}" for j in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist")),
    *(f"left_{j}" for j in ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist")),
]


def test_kbot_model_facts():
    model = mujoco.MjModel.from_xml_path(str(SCENE))
    assert model.nu == 20
    assert list(ModelIndex.of(model).joint_names) == KBOT_JOINTS
    assert all(model.jnt_type[model.actuator_trnid[i, 0]] == mujoco.mjtJoint.mjJNT_HINGE for i in range(20))
    total = float(model.body_subtreemass[0])
    assert abs(total - 36.0) / 36.0 < 0.05, total
    for sensor in ("imu_gyro", "imu_acc", "imu_quat", "left_foot_touch", "right_foot_touch"):
        assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, sensor) >= 0
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track") >= 0


@pytest.mark.parametrize(
    ("module", "config"),
    [(standing, standing.StandingConfig), (walking, walking.WalkingConfig), (cartpole, cartpole.CartPoleConfig)],
)
def test_every_task_resets_and_steps_without_nan(module, config):
    env = Env(module.make_task(config()), 4, "mujoco")
    state = env.reset(jax.random.PRNGKey(0))
    shapes = jax.tree.map(jnp.shape, state.obs)
    rng = jax.random.PRNGKey(1)
    for _ in range(60):
        rng, key = jax.random.split(rng)
        state, tr = env.step(state, 0.5 * jax.random.normal(key, (4, env.model.nu)))
        assert jax.tree.map(jnp.shape, state.obs) == shapes
        assert np.all(np.isfinite(np.asarray(tr.reward)))
        assert not np.any(np.asarray(tr.termination_reasons["unstable"]))


def test_walking_eval_reports_errors_per_command_kind_beside_those_of_standing_still():
    args = ["action=eval", "policy=zero", "eval_num_envs=16", "eval_seconds=1", "physics_backend=mujoco"]
    metrics = run(walking.WalkingConfig, walking.make_task, walking.__file__, args)
    for kind in ("forward", "sideways", "turning", "still"):
        assert f"lin_vel_error_{kind}" in metrics and f"ang_vel_error_{kind}" in metrics
    assert metrics["lin_vel_cycle_error"] >= 0 and metrics["ang_vel_cycle_error"] >= 0
    # in its first second the zero-action robot barely moves, so its errors are those of standing still
    assert metrics["lin_vel_still_error"] > 0.1
    assert abs(metrics["lin_vel_error"] - metrics["lin_vel_still_error"]) < 0.1
    assert abs(metrics["ang_vel_error"] - metrics["ang_vel_still_error"]) < 0.1


def test_walking_curriculum_moves_by_the_configured_step():
    curriculum = walking.make_task(walking.WalkingConfig(curriculum_step=0.25)).curriculum
    assert curriculum is not None
    lasted = curriculum.update(jnp.asarray(0.5), jnp.asarray(True), jnp.asarray(False))
    failed = curriculum.update(jnp.asarray(0.5), jnp.asarray(False), jnp.asarray(True))
    assert float(lasted) == pytest.approx(0.75) and float(failed) == pytest.approx(0.25)
    assert walking.make_task(walking.WalkingConfig(curriculum="off")).curriculum is None
