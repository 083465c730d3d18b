"""Run directories, checkpoints, resume, Ctrl-C, eval and video through the real command line."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from examples.cartpole.cartpole import CartPoleConfig, make_task
from ksim.components import Reward, SensorObservation
from ksim.engine.env import Env
from ksim.rl.learner import init_learner
from ksim.rl.policy import ActorPolicy
from ksim.runner import checkpoint, resolve_config, run
from ksim.runner.video import VideoRecorder

ROOT = Path(__file__).parents[2]
FAST = [
    "num_envs=16",
    "rollout_length=8",
    "num_minibatches=2",
    "num_epochs=1",
    "adaptive_lr=false",
    "compile_cache=",
    "video_every_iters=0",
]


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def test_train_save_and_resume_restore_the_whole_learner(tmp_path):
    args = [*FAST, f"run_root={tmp_path}", "save_every_iters=2", "keep_checkpoints=2"]
    trained = run(CartPoleConfig, make_task, "cartpole.py", [*args, "max_steps=5"])
    run_dir = tmp_path / "run_0"
    assert (run_dir / "config.json").exists()
    assert any((run_dir / "tensorboard").iterdir())
    assert sorted(checkpoint.list_checkpoints(run_dir)) == [4, 5]  # every 2 and at the end, newest 2 kept
    assert not list((run_dir / "checkpoints").glob("*.tmp"))

    cfg = CartPoleConfig(num_envs=16, rollout_length=8, num_minibatches=2, num_epochs=1, adaptive_lr=False)
    like = init_learner(Env(make_task(cfg), 16, "mujoco"), cfg, jax.random.PRNGKey(123))
    loaded, header = checkpoint.load(checkpoint.resolve(run_dir, None)[1], like)
    assert header["iteration"] == 5 and int(loaded.iteration) == 5
    # model, optimiser state (with the adaptive learning rate), normalisers, counters and RNG all come back
    for a, b in zip(_leaves(trained), _leaves(loaded), strict=True):
        np.testing.assert_array_equal(a, b)

    resumed = run(CartPoleConfig, make_task, "cartpole.py", [*args, f"pretrained={run_dir}", "max_steps=2"])
    assert int(resumed.iteration) == 7 and float(resumed.env_steps) == 7 * 16 * 8
    assert not (tmp_path / "run_1").exists()  # resumed in place
    assert max(checkpoint.list_checkpoints(run_dir)) == 7
    second = run(CartPoleConfig, make_task, "cartpole.py", [*args, "max_steps=1"])
    assert int(second.iteration) == 1 and (tmp_path / "run_1").is_dir()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A cart-pole run with checkpoints 1, 2 and 3; tests copy it before changing it."""
    root = tmp_path_factory.mktemp("runs")
    run(CartPoleConfig, make_task, "cartpole.py", [*FAST, f"run_root={root}", "max_steps=3", "save_every_iters=1"])
    return root / "run_0"


@pytest.fixture
def run_dir(trained_run, tmp_path):
    return Path(shutil.copytree(trained_run, tmp_path / "run_0"))


def _fails(argv, capsys, code=1, make=make_task) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run(CartPoleConfig, make, "cartpole.py", [*FAST, *argv])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == code and err.startswith("error: ") and "Traceback" not in err
    return err


def test_checkpoint_num_picks_a_checkpoint_and_a_missing_one_lists_the_others(run_dir):
    assert checkpoint.resolve(run_dir, 2)[1].name == "ckpt_2.eqx"
    with pytest.raises(FileNotFoundError, match=r"checkpoint_num=9: .* has checkpoints \[1, 2, 3\]"):
        checkpoint.resolve(run_dir, 9)


def test_a_run_directory_describes_its_task_and_checkpoints_carry_the_layout(run_dir):
    task = json.loads((run_dir / "task.json").read_text())
    names = ["cart_pos", "pole_angle", "cart_vel", "pole_vel"]
    assert [o["name"] for o in task["actor_observations"]] == names and task["joints"] == ["slider"]
    assert {r["name"]: r["scale"] for r in task["components"]["rewards"]} == {"stay_alive": 1.0, "pole_upright": 1.0}
    header, _ = checkpoint.read(run_dir / "checkpoints" / "ckpt_3.eqx")
    assert header["actor_observations"] == task["actor_observations"] and len(header["sha256"]) == 64


def test_a_corrupt_newest_checkpoint_is_skipped_with_a_warning_and_named_when_asked_for(run_dir, capsys):
    newest = run_dir / "checkpoints" / "ckpt_3.eqx"
    newest.write_bytes(newest.read_bytes()[:-100])  # truncated, as by a full disk
    assert checkpoint.resolve(run_dir, None)[1].name == "ckpt_2.eqx"
    assert "ckpt_3.eqx is corrupt or truncated" in capsys.readouterr().err
    err = _fails(["action=eval", f"pretrained={run_dir}", "checkpoint_num=3"], capsys)
    assert "ckpt_3.eqx is corrupt or truncated" in err


def test_resuming_from_an_older_checkpoint_sets_the_newer_ones_aside_and_says_what_overrides_do(run_dir, capsys):
    args = [f"pretrained={run_dir}", "checkpoint_num=1", "max_steps=1", "adaptive_lr=false"]
    learner = run(CartPoleConfig, make_task, "cartpole.py", [*FAST, *args, "learning_rate=0.005", "seed=7"])
    out = capsys.readouterr().out
    assert "set aside ckpt_2.eqx" in out and "set aside ckpt_3.eqx" in out
    assert "note: seed=7 has no effect on resume" in out and "learning_rate=0.005 replaces the restored rate" in out
    assert float(learner.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.005)
    # the new branch's iteration 2 is the latest; the abandoned ones are kept, never picked
    assert sorted(checkpoint.list_checkpoints(run_dir)) == [1, 2] and int(learner.iteration) == 2
    assert (run_dir / "checkpoints" / "ckpt_3.eqx.abandoned").exists()


def test_a_corrupt_config_is_a_one_line_error(run_dir, capsys):
    (run_dir / "config.json").write_text('{"num_envs": 16,')
    assert "config.json is not a readable config" in _fails([f"pretrained={run_dir}"], capsys, code=2)


def test_a_config_saved_before_a_setting_existed_says_which_defaults_it_takes(run_dir, capsys):
    saved = json.loads((run_dir / "config.json").read_text())
    del saved["entropy_coef"]  # as if the run predated the field
    (run_dir / "config.json").write_text(json.dumps(saved))
    cfg = resolve_config(CartPoleConfig, [f"pretrained={run_dir}", "gamma=0.9"])
    assert cfg.entropy_coef == CartPoleConfig().entropy_coef
    out = capsys.readouterr().out
    assert f"predates ['entropy_coef']; using today's defaults (entropy_coef={cfg.entropy_coef})" in out
    del saved["gamma"]  # a field given on the command line is not in question
    (run_dir / "config.json").write_text(json.dumps(saved))
    resolve_config(CartPoleConfig, [f"pretrained={run_dir}", "gamma=0.9"])
    assert "['entropy_coef']" in capsys.readouterr().out


def test_a_saved_run_root_is_not_inherited(run_dir):
    # the run was trained with run_root=<its tmp folder>; a later launch writes where it is told, or beside the task
    assert json.loads((run_dir / "config.json").read_text())["run_root"]
    assert resolve_config(CartPoleConfig, [f"pretrained={run_dir}"]).run_root is None


def test_a_checkpoint_of_other_observations_is_refused_naming_the_difference(run_dir, capsys):
    def renamed(cfg):
        task = make_task(cfg)
        task.observations = [*task.observations[:1], SensorObservation(name="angle", sensor="pole_angle")]
        return task

    err = _fails(["action=eval", f"pretrained={run_dir}"], capsys, make=renamed)
    assert "trained on other actor observations: 'pole_angle' (1) was dropped; 'cart_vel' (1) was dropped" in err
    assert "'angle' (1) was added" in err


def test_a_checkpoint_of_other_networks_is_a_one_line_error_naming_the_settings(run_dir, capsys):
    err = _fails(["action=eval", f"pretrained={run_dir}", "actor_hidden=8"], capsys)
    assert "ckpt_3.eqx does not fit this task's networks" in err and "actor_hidden" in err and "actor_mirror" in err


@dataclass(kw_only=True)
class NanReward(Reward):
    def compute(self, ctx):
        return jnp.float32(jnp.nan)


def test_a_non_finite_update_is_never_adopted_or_saved(run_dir, capsys):
    def poisoned(cfg):
        task = make_task(cfg)
        task.rewards = [*task.rewards, NanReward()]
        return task

    err = _fails([f"pretrained={run_dir}", "max_steps=2"], capsys, make=poisoned)
    assert "iteration 4 made the loss and parameters or optimiser state non-finite" in err and "resume with" in err
    cfg = CartPoleConfig(**{k: v for k, v in json.loads((run_dir / "config.json").read_text()).items()})
    like = init_learner(Env(make_task(cfg), 16, "mujoco"), cfg, jax.random.PRNGKey(0))
    assert max(checkpoint.list_checkpoints(run_dir)) == 3
    for path in checkpoint.list_checkpoints(run_dir).values():
        assert all(np.isfinite(x).all() for x in _leaves(checkpoint.load(path, like)[0]) if x.dtype.kind == "f")


def test_a_video_rollout_compiles_once_for_every_set_of_weights():
    cfg = CartPoleConfig()
    env = Env(make_task(cfg), 1, "mujoco")
    recorder = VideoRecorder(env, ActorPolicy.of(env, True), 0.5, 25, (64, 48))
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(lambda event, *a, **k: compiles.append(event))
    first = recorder.rollout(init_learner(env, cfg, jax.random.PRNGKey(0)).policy_params, jax.random.PRNGKey(0))
    compiled = len(compiles)
    second = recorder.rollout(init_learner(env, cfg, jax.random.PRNGKey(1)).policy_params, jax.random.PRNGKey(0))
    assert compiled > 0 and len(compiles) == compiled  # the second learner's weights reuse the program
    assert not np.allclose(first, second)


def _cli(args, **kwargs):
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    cmd = [sys.executable, "-m", "examples.cartpole.cartpole", *FAST, *args]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


def test_sigint_saves_and_exits_cleanly(tmp_path):
    proc = _cli([f"run_root={tmp_path}"])
    deadline = time.time() + 120
    lines = []
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("it 3 "):
            proc.send_signal(signal.SIGINT)
            break
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, "".join(lines) + out
    assert "SIGINT: saving" in out and "saved" in out
    assert max(checkpoint.list_checkpoints(tmp_path / "run_0")) >= 3


def test_eval_prints_the_summary_line_and_env_writes_a_decodable_mp4(tmp_path):
    run(CartPoleConfig, make_task, "cartpole.py", [*FAST, f"run_root={tmp_path}", "max_steps=2"])
    proc = _cli(["action=eval", f"pretrained={tmp_path / 'run_0'}", "eval_num_envs=8", "eval_seconds=1"])
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    summary = out.strip().splitlines()[-1]
    fields = dict(kv.split("=") for kv in summary.split())
    assert 0.0 <= float(fields["survival_rate"]) <= 1.0 and float(fields["mean_episode_length_s"]) > 0

    proc = _cli(["action=env", f"pretrained={tmp_path / 'run_0'}", "checkpoint_num=2", "video_seconds=1"])
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    path = Path(out.strip().splitlines()[-1].removeprefix("video: "))
    assert path.name == "ckpt_2.mp4" and path.stat().st_size > 1000
    import imageio.v3 as iio

    frames = iio.imread(path)
    assert frames.shape == (25, 240, 320, 3)  # 1 s at 25 fps
    assert frames.std() > 5  # an image, not a blank frame


def test_a_recurrent_actor_trains_saves_resumes_evaluates_films_and_exports(tmp_path, capsys):
    args = [
        *FAST,
        f"run_root={tmp_path}",
        "actor=gru",
        "actor_hidden=8",
        "observe=positions",
        "critic=lstm",
        "critic_hidden=4",
    ]
    run(CartPoleConfig, make_task, "cartpole.py", [*args, "max_steps=2"])
    run_dir = tmp_path / "run_0"
    assert checkpoint.read(run_dir / "checkpoints" / "ckpt_2.eqx")[0]["iteration"] == 2
    resumed = run(CartPoleConfig, make_task, "cartpole.py", [*FAST, f"pretrained={run_dir}", "max_steps=1"])
    assert int(resumed.iteration) == 3 and resumed.actor.initial_carry().shape == (8,)  # the saved config's gru
    assert resumed.critic.initial_carry().shape == (8,)  # and its lstm critic: hidden and cell state
    metrics = run(CartPoleConfig, make_task, "cartpole.py", ["action=eval", f"pretrained={run_dir}", "eval_seconds=1"])
    assert 0 < metrics["mean_episode_length_s"] <= 1
    # filmed in a subprocess, where MUJOCO_GL can still choose the headless renderer
    film = _cli(["action=env", f"pretrained={run_dir}", "video_seconds=0.2", "video_size=32,32"])
    out = film.communicate(timeout=120)[0]
    assert film.returncode == 0, out
    assert Path(out.strip().splitlines()[-1].removeprefix("video: ")).stat().st_size > 0
    folder = run(CartPoleConfig, make_task, "cartpole.py", ["action=export", f"pretrained={run_dir}"])
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["policy"]["carry_size"] == 8 and meta["policy"]["inputs"] == ["obs", "carry"]
    assert "exported:" in capsys.readouterr().out


def test_distill_writes_a_normal_run_that_evaluates_and_refuses_a_missing_teacher(trained_run, tmp_path, capsys):
    # the trained run sees every sensor; the student only the positions, with a GRU
    args = [*FAST, f"run_root={tmp_path}", "observe=positions", "privileged_critic=true", "actor=gru", "actor_hidden=8"]
    student = run(
        CartPoleConfig, make_task, "cartpole.py", [*args, "action=distill", f"teacher={trained_run}", "max_steps=2"]
    )
    assert int(student.iteration) == 2
    out = capsys.readouterr().out
    assert f"teacher: {trained_run}" in out and "fit " in out
    run_dir = tmp_path / "run_0"
    assert json.loads((run_dir / "config.json").read_text())["teacher"] == str(trained_run)  # where it came from
    metrics = run(CartPoleConfig, make_task, "cartpole.py", ["action=eval", f"pretrained={run_dir}", "eval_seconds=1"])
    assert 0 < metrics["mean_episode_length_s"] <= 1
    assert _fails([f"run_root={tmp_path}", "action=distill"], capsys, code=2) == (
        "error: action=distill needs teacher=<run dir> (a trained policy of this task, e.g. a privileged one)"
    )
