"""The real viewer under Xvfb, driven by real key presses from xdotool."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MISSING = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]


def _status(path: Path) -> dict:
    return json.loads(path.read_text())


def _wait(predicate, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = predicate()
        except (FileNotFoundError, json.JSONDecodeError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def display():
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed (.ci/run installs them with apt-get)")
    number = 90 + os.getpid() % 9
    xvfb = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1024x768x24"], stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield f":{number}"
    xvfb.terminate()
    xvfb.wait(timeout=10)


def test_keys_drive_the_real_viewer(display, tmp_path):
    status, plot = tmp_path / "status.json", tmp_path / "plot" / "rewards.png"
    env = {**os.environ, "DISPLAY": display, "MUJOCO_GL": "glfw"}
    cmd = [sys.executable, "-m", "examples.kbot.viz_standing", "--physics-backend", "mujoco", "policy=zero"]
    cmd += [f"status_path={status}", f"plot_path={plot}", "max_seconds=120"]
    viewer = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def xdo(*args: str) -> str:
        return subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True, text=True).stdout

    try:
        _wait(lambda: status.exists() and _status(status)["steps"] > 5, 120, "the viewer to start stepping")
        window = xdo("search", "--name", "MuJoCo").split()[0]
        xdo("windowfocus", "--sync", window)

        def press(key: str) -> None:
            xdo("key", "--delay", "50", key)

        press("s")  # suspend: the base holds still, so moves are exact
        _wait(lambda: _status(status)["suspended"], 10, "S to suspend")
        x0 = _status(status)["base"][0]
        press("Up")
        press("Up")
        _wait(lambda: _status(status)["base"][0] > x0 + 0.09, 10, "Up to move the base in +x")

        press("space")
        _wait(lambda: _status(status)["paused"], 10, "Space to pause")
        t_paused = _status(status)["time"]
        time.sleep(1.0)
        assert _status(status)["time"] == t_paused  # paused: simulated time stands still
        press("n")
        _wait(lambda: _status(status)["time"] > t_paused, 10, "N to step")
        time.sleep(0.5)
        assert _status(status)["time"] == pytest.approx(t_paused + 0.02)  # exactly one control step

        press("space")
        _wait(lambda: _status(status)["time"] > t_paused + 0.2, 20, "Space to resume")
        _wait(lambda: plot.exists(), 10, "the reward plot")
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        from PIL import Image

        with Image.open(plot) as image:
            image.verify()
    finally:
        viewer.terminate()
        out = viewer.communicate(timeout=30)[0]
    assert "[key] suspended" in out and "[key] step" in out, out
