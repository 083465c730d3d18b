"""The visualizer's key handling and session logic, without a window."""

import jax
import numpy as np
import pytest

from examples.kbot.standing import StandingConfig, make_task
from ksim.engine.env import Env
from ksim.engine.rollout import ZeroPolicy
from ksim.rl.learner import init_learner
from ksim.rl.policy import ActorPolicy
from ksim.utils.interactive.base import Controls, Key, SimSession
from ksim.utils.interactive.plot import RewardPlot


@pytest.fixture(scope="module")
def session():
    env = Env(make_task(StandingConfig()), 1, "mujoco")
    return SimSession(env, ZeroPolicy(env.model.nu), None)


def test_controls_map_the_spec_keys():
    c = Controls(move_step=0.1)
    assert c.press(Key.SPACE) == "paused" and c.paused
    assert c.press(Key.SPACE) == "running" and not c.paused
    assert c.press(Key.S) == "suspended" and c.suspended
    for key in (Key.UP, Key.UP, Key.DOWN, Key.RIGHT, Key.LEFT, Key.LEFT, Key.P, Key.P, Key.L):
        c.press(key)
    np.testing.assert_allclose(c.base_shift, [0.1, -0.1, 0.1])
    c.press(Key.N)
    c.press(Key.N)
    assert c.step_requests == 2
    assert c.press(Key.R) == "reset" and c.reset_requested
    assert c.press(ord("Q")) is None


def test_pause_and_single_step(session):
    session.tick()
    steps, t = session.steps, session.time
    session.controls.press(Key.SPACE)
    assert session.tick() is None and session.tick() is None
    assert session.time == t
    session.controls.press(Key.N)
    assert session.tick() is not None
    assert session.steps == steps + 1 and session.time == pytest.approx(t + 0.02)
    assert session.tick() is None  # one N, one step
    session.controls.press(Key.SPACE)


def test_suspend_holds_the_base_and_moves_shift_it(session):
    session.controls.press(Key.R)
    session.controls.press(Key.S)
    session.tick()
    held = session.qpos[:3].copy()
    for _ in range(30):  # 0.6 s: free, the robot would sag and start to fall
        session.tick()
    np.testing.assert_allclose(session.qpos[:3], held, atol=1e-6)
    np.testing.assert_allclose(session.qvel[:6], 0.0, atol=1e-6)
    session.controls.press(Key.UP)
    session.controls.press(Key.RIGHT)
    session.controls.press(Key.P)
    session.tick()
    np.testing.assert_allclose(session.qpos[:3], held + [0.05, 0.05, 0.05], atol=1e-5)
    session.controls.press(Key.S)  # release: gravity acts again
    for _ in range(10):
        session.tick()
    assert session.qpos[2] < held[2] + 0.05 - 1e-3


def test_reset_restores_the_initial_pose(session):
    for _ in range(40):
        session.tick()
    session.controls.press(Key.R)
    session.apply_controls()
    assert session.qpos[2] == pytest.approx(0.705, abs=1e-4)  # the stance keyframe's base height
    np.testing.assert_allclose(session.qvel[:6], 0.0, atol=1e-6)


def test_reward_plot_is_a_valid_png_written_atomically(tmp_path):
    from PIL import Image

    plot = RewardPlot(tmp_path / "rewards.png", window=50, every_seconds=0.05)
    for i in range(80):
        plot.add(i * 0.02, {"upright": 0.02, "action_rate": -0.001 * i})
    assert plot.wait_written()
    plot.close()
    with Image.open(tmp_path / "rewards.png") as image:
        image.verify()
    assert [p.name for p in tmp_path.iterdir()] == ["rewards.png"]  # no temp file left behind
    assert len(plot.terms["total"]) == 50


def test_a_recurrent_policy_steps_with_its_carry_and_reset_restarts_it():
    cfg = StandingConfig(actor="gru", actor_hidden=(8,))
    env = Env(make_task(cfg), 1, "mujoco")
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    gru = SimSession(env, ActorPolicy.of(env, deterministic=True), learner.policy_params)
    assert not np.any(gru.state.policy_carry)
    for _ in range(3):
        assert gru.tick() is not None
    assert gru.state.policy_carry.shape == (1, 8) and np.any(gru.state.policy_carry)  # the carry moved
    gru.controls.press(Key.R)
    gru.apply_controls()
    assert not np.any(gru.state.policy_carry)
