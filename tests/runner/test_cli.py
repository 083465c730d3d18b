import re

import pytest

from examples.cartpole import cartpole
from examples.cartpole.cartpole import CartPoleConfig, make_task
from ksim.runner import resolve_config, run
from ksim.runner.cli import CLIError, help_text, parse_overrides, parse_value


def test_overrides_are_typed():
    values = parse_overrides(
        CartPoleConfig, ["num_envs=16", "learning_rate=1e-4", "adaptive_lr=false", "actor_hidden=8,8", "max_steps=none"]
    )
    assert values == {
        "num_envs": 16,
        "learning_rate": 1e-4,
        "adaptive_lr": False,
        "actor_hidden": (8, 8),
        "max_steps": None,
    }
    assert parse_overrides(CartPoleConfig, ["--num-envs", "16", "--physics-backend=mjx"]) == {
        "num_envs": 16,
        "physics_backend": "mjx",
    }
    cfg = resolve_config(CartPoleConfig, ["num_envs=16", "num_minibatches=2", "physics_backend=mjx"])
    assert (cfg.num_envs, cfg.num_minibatches, cfg.physics_backend) == (16, 2, "mjx")
    assert cfg.num_env_states_per_minibatch == 32 * 16 // 2


def test_fixed_length_tuples_check_their_length():
    assert parse_value("push_interval", "1, 3.5", tuple[float, float]) == (1.0, 3.5)
    with pytest.raises(CLIError, match=r"push_interval='1,2,3': expected 2 comma-separated values \(float,float\)"):
        parse_value("push_interval", "1,2,3", tuple[float, float])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["num_env=4"], "unknown key 'num_env'; did you mean num_envs"),
        (["bogus=1"], "unknown key 'bogus'"),
        (["num_envs=many"], "num_envs='many': expected int"),
        (["adaptive_lr=maybe"], "adaptive_lr='maybe': expected true or false"),
        (["action=fly"], "action='fly': must be one of train, env, eval, export, sim2sim, distill"),
        (["physics_backend=gpu"], "physics_backend='gpu': must be one of auto, mjx, mujoco"),
        (["num_envs"], "arguments are key=value"),
        (["num_envs=10", "num_minibatches=4"], "num_minibatches=4 must divide num_envs=10"),
        (["learning_rate=nan"], "learning_rate=nan: must be a finite number"),
        (["learning_rate_range=1e-2,1e-3"], "learning_rate_range=0.01,0.001: the first must not exceed the second"),
        (["num_epochs=1", "num_minibatches=2"], "num_epochs=1 x num_minibatches=2: adaptive_lr needs at least 3"),
        (["gamma=inf"], "gamma=inf: must be a finite number"),
        (["eval_num_envs=0"], "eval_num_envs=0: must be >= 1"),
        (["video_size=10"], "video_size='10': expected 2 comma-separated values (int,int)"),
        (["video_size=10,8"], "video_size=10,8: must be >= 16"),
        (["max_steps=-1"], "max_steps=-1: must be >= 1"),
        (["keep_checkpoints=0"], "keep_checkpoints=0: must be >= 1"),
        (["save_every_iters=0"], "save_every_iters=0: must be >= 1"),
        (["actor_hidden=32,0"], "actor_hidden=32,0: must be >= 1"),
        (["episode_seconds=0"], "episode_seconds=0.0: must be > 0"),
        (["actor=gru", "actor_mirrored=true"], "actor=gru cannot take actor_mirrored=true: the mirrors need actor=mlp"),
        (["actor=lstm", "symmetry_loss_coef=0.5"], "actor=lstm cannot take symmetry_loss_coef=0.5"),
        (["actor_mirror=tied"], "actor_mirror=tied says how a mirrored actor is built: it needs actor_mirrored=true"),
        (
            ["actor_mirrored=true", "actor_mirror=tied", "actor_hidden=32,31"],
            "actor_hidden=32,31: actor_mirror=tied splits each layer into two mirrored halves",
        ),
    ],
)
def test_bad_command_lines_are_one_line_errors(argv, message, capsys):
    with pytest.raises(CLIError, match=re.escape(message)):
        resolve_config(CartPoleConfig, argv)
    with pytest.raises(SystemExit) as exit_info:
        run(CartPoleConfig, make_task, "cartpole.py", argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err


def test_a_task_that_mirrors_by_default_turns_it_off_with_one_switch():
    from examples.kbot.walking import WalkingConfig

    # walking builds its mirrored actor tied by default; switching mirroring off must not need actor_mirror too
    cfg = resolve_config(WalkingConfig, ["actor_mirrored=false"])
    assert not cfg.actor_mirrored and cfg.actor_mirror == "tied"
    with pytest.raises(CLIError, match="actor_mirror=average says how a mirrored actor is built"):
        resolve_config(WalkingConfig, ["actor_mirrored=false", "actor_mirror=average"])


def test_help_lists_every_field_with_default_and_meaning_under_the_real_module(capsys):
    text = help_text(CartPoleConfig, "python -m examples.cartpole.cartpole")
    assert "num_envs=64  [int]" in text
    assert "environments simulated in parallel" in text  # inherited by a subclass that only sets the default
    assert "action=train  [train|env|eval|export|sim2sim|distill]" in text
    with pytest.raises(SystemExit) as exit_info:
        run(CartPoleConfig, make_task, cartpole.__file__, ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m examples.cartpole.cartpole [key=value ...]" in out and "learning_rate=0.001" in out


def test_missing_pretrained_is_a_clear_error(capsys, tmp_path):
    with pytest.raises(SystemExit):
        run(CartPoleConfig, make_task, "cartpole.py", ["action=eval", f"pretrained={tmp_path / 'nope'}"])
    assert "no such run directory" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["eval", "export", "sim2sim"])
def test_actions_on_a_checkpoint_without_one_are_a_one_line_error(action, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(CartPoleConfig, make_task, "cartpole.py", [f"action={action}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: action={action} needs pretrained=") and "\n" not in err
