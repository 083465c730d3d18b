"""The pretrained standing policy that ships with the examples: small, loadable, and it stands."""

from pathlib import Path

from examples.kbot import standing
from ksim.runner import run

PRETRAINED = Path(standing.__file__).parent / "pretrained" / "standing"
# short episodes keep the test cheap; the zero-action stance falls in about 1.5 s
EVAL = ["action=eval", "eval_num_envs=16", "eval_seconds=5", "physics_backend=mujoco"]


def test_pretrained_standing_is_small_and_complete():
    files = [p for p in PRETRAINED.rglob("*") if p.is_file()]
    assert (PRETRAINED / "config.json").is_file()
    assert any(p.suffix == ".eqx" for p in files)
    assert sum(p.stat().st_size for p in files) < 5 * 2**20


def test_pretrained_standing_outlasts_the_zero_action_baseline(capsys):
    trained = run(standing.StandingConfig, standing.make_task, standing.__file__, [*EVAL, f"pretrained={PRETRAINED}"])
    zero = run(standing.StandingConfig, standing.make_task, standing.__file__, [*EVAL, "policy=zero"])
    assert "survival_rate=" in capsys.readouterr().out
    assert zero["survival_rate"] <= 0.25, zero
    assert trained["survival_rate"] >= 0.9, trained
    assert trained["mean_episode_length_s"] > 2 * zero["mean_episode_length_s"], (trained, zero)
