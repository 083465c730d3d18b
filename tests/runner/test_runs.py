"""Run directories, checkpoints, resume, Ctrl-C, eval and video through the real command line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from examples.cartpole.cartpole import CartPoleConfig, make_task
from ksim.engine.env import Env
from ksim.rl.learner import init_learner
from ksim.runner import checkpoint, run

ROOT = Path(__file__).parents[2]
FAST = ["num_envs=16", "rollout_length=8", "num_minibatches=2", "num_epochs=1", "compile_cache=", "video_every_iters=0"]


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

    cfg = CartPoleConfig(num_envs=16, rollout_length=8, num_minibatches=2, num_epochs=1)
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


def test_checkpoint_num_picks_a_checkpoint_and_a_missing_one_lists_the_others(tmp_path):
    run(CartPoleConfig, make_task, "cartpole.py", [*FAST, f"run_root={tmp_path}", "max_steps=3", "save_every_iters=1"])
    run_dir, path = checkpoint.resolve(tmp_path / "run_0", 2)
    assert path.name == "ckpt_2.eqx"
    with pytest.raises(FileNotFoundError, match=r"checkpoint_num=9: .* has checkpoints \[1, 2, 3\]"):
        checkpoint.resolve(run_dir, 9)


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
