"""The pretrained policies that ship with the examples: small, loadable, and they stand and walk."""

from pathlib import Path

import pytest

from examples.kbot import standing, walking
from ksim.runner import run

PRETRAINED = Path(standing.__file__).parent / "pretrained"
# short episodes keep the test cheap; the zero-action stance falls in about 1.5 s
EVAL = ["action=eval", "eval_num_envs=16", "eval_seconds=5", "physics_backend=mujoco"]


@pytest.mark.parametrize("name", ["standing", "walking"])
def test_pretrained_policies_are_small_and_complete(name):
    folder = PRETRAINED / name
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert (folder / "config.json").is_file()
    assert any(p.suffix == ".eqx" for p in files)
    assert sum(p.stat().st_size for p in files) < 5 * 2**20


def test_pretrained_standing_outlasts_the_zero_action_baseline(capsys):
    folder = PRETRAINED / "standing"
    trained = run(standing.StandingConfig, standing.make_task, standing.__file__, [*EVAL, f"pretrained={folder}"])
    zero = run(standing.StandingConfig, standing.make_task, standing.__file__, [*EVAL, "policy=zero"])
    assert "survival_rate=" in capsys.readouterr().out
    assert zero["survival_rate"] <= 0.25, zero
    assert trained["survival_rate"] >= 0.9, trained
    assert trained["mean_episode_length_s"] > 2 * zero["mean_episode_length_s"], (trained, zero)


def test_pretrained_walking_follows_commands_better_than_standing_still():
    folder = PRETRAINED / "walking"
    # 10 s, not 5: a walking eval starts every robot at rest, and the first seconds (turning up to
    # the first command from the stance) would weigh twice as much as in a 10 s episode
    args = [*EVAL, "eval_seconds=10", f"pretrained={folder}"]
    trained = run(walking.WalkingConfig, walking.make_task, walking.__file__, args)
    assert trained["survival_rate"] >= 0.9, trained
    # the still errors are those of a robot that stands perfectly still (the mean commanded speeds)
    assert trained["lin_vel_error"] < 0.8 * trained["lin_vel_still_error"], trained
    assert trained["ang_vel_error"] < 0.8 * trained["ang_vel_still_error"], trained
    # an alternating gait (issue 14: both feet up in at most 5% of steps), and feet that slow down when told to stand
    assert trained["feet_airborne"] <= 0.05, trained
    assert trained["feet_speed_still"] < 0.5 * trained["feet_speed_moving"], trained
