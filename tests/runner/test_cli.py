import pytest

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
    cfg = resolve_config(CartPoleConfig, ["num_envs=16", "num_minibatches=2", "physics_backend=mjx"])
    assert (cfg.num_envs, cfg.num_minibatches, cfg.physics_backend) == (16, 2, "mjx")


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
        (["action=fly"], "action='fly': must be one of train, env, eval"),
        (["physics_backend=gpu"], "physics_backend='gpu': must be one of auto, mjx, mujoco"),
        (["num_envs"], "arguments are key=value"),
        (["num_envs=10", "num_minibatches=4"], "num_minibatches=4 must divide num_envs=10"),
    ],
)
def test_bad_command_lines_are_one_line_errors(argv, message, capsys):
    with pytest.raises(CLIError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_config(CartPoleConfig, argv)
    with pytest.raises(SystemExit) as exit_info:
        run(CartPoleConfig, make_task, "cartpole.py", argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err


def test_help_lists_every_field_with_default_and_meaning(capsys):
    text = help_text(CartPoleConfig, "python -m examples.cartpole.cartpole")
    assert "num_envs=64  [int]" in text
    assert "environments simulated in parallel" in text
    assert "action=train  [train|env|eval]" in text
    run(CartPoleConfig, make_task, "cartpole.py", ["--help"])
    assert "learning_rate=0.001" in capsys.readouterr().out


def test_missing_pretrained_is_a_clear_error(capsys, tmp_path):
    with pytest.raises(SystemExit):
        run(CartPoleConfig, make_task, "cartpole.py", ["action=eval", f"pretrained={tmp_path / 'nope'}"])
    assert "no such run directory" in capsys.readouterr().err
