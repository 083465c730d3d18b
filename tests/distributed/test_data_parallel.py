"""Training split over devices and processes (`ksim.rl.sharding`), on the CPU.

Several devices in one process need `XLA_FLAGS=--xla_force_host_platform_device_count=2`
before JAX starts, and several processes need their own interpreters: every run here is
a subprocess.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[2]
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cartpole(*args: str, extra: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "examples.cartpole.cartpole", "num_envs=32", "num_minibatches=2", "nthread=1", *args]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=_env(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


def _two_processes(tmp_path: Path, *args: str) -> list[subprocess.Popen]:
    coordinator = f"coordinator=127.0.0.1:{_free_port()}"
    return [
        _cartpole(coordinator, "num_processes=2", f"process_id={i}", f"run_root={tmp_path / 'runs'}", *args)
        for i in (0, 1)
    ]


def _wait_for_iteration_3(proc: subprocess.Popen) -> None:
    # training is under way once process 0 logs iterations
    deadline = time.time() + 300
    assert proc.stdout is not None
    for line in proc.stdout:
        if " it 3 " in line or time.time() > deadline:
            break


def test_two_devices_train_like_one_with_the_same_global_batch(tmp_path):
    # The 2-device update averages gradients and statistics across devices, so it differs from
    # the 1-device one only in float32 summation order: measured 3.7e-7 at most after 3
    # iterations (parameters of order 1, statistics' counts of 768); 1e-5 leaves 25x room.
    out = tmp_path / "two.npz"
    done = subprocess.run(
        [sys.executable, "-m", "tests.distributed.two_devices", str(out)],
        cwd=ROOT,
        env=_env(TWO_DEVICES),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = np.load(out)
    assert list(result["spread"]) == [1, 2]  # the rollout state lay on one device, then on two
    ones = sorted(k for k in result if k.startswith("one_"))
    for key in ones:
        np.testing.assert_allclose(result[key], result[key.replace("one_", "two_")], rtol=1e-5, atol=1e-5)


def test_two_processes_train_the_cartpole_write_one_run_and_resume_on_one(tmp_path):
    procs = _two_processes(tmp_path, "max_steps=40")
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "data-parallel: 32 envs over 2 devices in 2 process(es)" in outputs[0]
    runs = list((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == ["run_0"]  # only process 0 wrote
    assert (runs[0] / "checkpoints" / "ckpt_40.eqx").exists()

    evaluated = _cartpole("action=eval", f"pretrained={runs[0]}", "eval_num_envs=32")
    line = evaluated.communicate(timeout=300)[0].strip().splitlines()[-1]
    survival = float(line.split("survival_rate=")[1].split()[0])
    assert survival >= 0.9, line  # the learning threshold of tests/rl/test_learning.py

    # the checkpoint of 2 devices resumes in 1 process on 1 device
    resumed = _cartpole(f"pretrained={runs[0]}", "max_steps=1")
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out
    assert (runs[0] / "checkpoints" / "ckpt_41.eqx").exists()


def test_a_dead_process_ends_the_other_within_seconds(tmp_path):
    procs = _two_processes(tmp_path, "max_steps=100000", "save_every_iters=5")
    _wait_for_iteration_3(procs[0])
    procs[1].kill()
    killed = time.time()
    try:
        procs[0].communicate(timeout=120)
    finally:
        procs[0].kill()
    waited = time.time() - killed
    # JAX's distributed runtime notices the missing heartbeats (HEARTBEAT_SECONDS = 10) and ends it
    assert procs[0].returncode != 0
    assert waited < 60, waited
    assert list((tmp_path / "runs" / "run_0" / "checkpoints").glob("ckpt_*.eqx"))  # what was saved stays


def test_envs_that_do_not_divide_over_the_devices_are_a_one_line_error():
    uneven = _cartpole("physics_backend=mjx", "devices=2", "num_envs=33", "num_minibatches=1", extra=TWO_DEVICES)
    out = uneven.communicate(timeout=120)[0]
    assert uneven.returncode == 2
    assert out.strip().splitlines()[-1] == (
        "error: num_envs=33 must divide over the 2 devices (1 process(es)); use a multiple of 2, e.g. num_envs=32"
    )
    native = _cartpole("physics_backend=mujoco", "devices=0", extra=TWO_DEVICES)
    out = native.communicate(timeout=120)[0]
    assert native.returncode == 2
    assert "physics_backend=mujoco steps a process's envs on its own CPU threads" in out.strip().splitlines()[-1]


def test_ctrl_c_to_one_process_stops_both_at_one_iteration_and_saves(tmp_path):
    procs = _two_processes(tmp_path, "max_steps=100000", "save_every_iters=1000")
    _wait_for_iteration_3(procs[0])
    procs[1].send_signal(signal.SIGINT)  # the process that writes nothing: its stop must reach process 0
    try:
        outputs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    saved = list((tmp_path / "runs" / "run_0" / "checkpoints").glob("ckpt_*.eqx"))
    assert len(saved) == 1 and int(saved[0].stem.split("_")[1]) >= 3, saved  # the stop's iteration, not a periodic save
    assert "saved" in outputs[0].strip().splitlines()[-1]
