"""Videos of rollouts: env 0's poses replayed through `mujoco.Renderer`, encoded by imageio-ffmpeg.

Rendering needs OpenGL (headless: `MUJOCO_GL=egl`, see the README), but only here:
the renderer is imported and created when a video is written, never for training.
"""

import math
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
from jaxtyping import Float, PRNGKeyArray

from ksim.engine.env import Env
from ksim.engine.rollout import Policy
from ksim.runner.evaluate import episodes


class VideoRecorder:
    """Films env 0 of `env` acting with `policy`; the rollout compiles once, whatever params it is given."""

    def __init__(self, env: Env, policy: Policy, seconds: float, fps: int, size: tuple[int, int]) -> None:
        """A recorder of `seconds`-long videos at `fps`, `size` = (width, height)."""
        self.env, self.fps, self.size = env, fps, size
        self.every = max(1, round(1.0 / (fps * env.ctrl_dt)))  # control steps per frame
        steps = math.ceil(seconds / env.ctrl_dt)
        self.rollout = episodes(env, policy, steps, lambda state_t, step: state_t.env.physics.qpos[0], "video rollout")

    def __call__(self, params: Any, rng: PRNGKeyArray, path: Path) -> Path:
        """Roll out with `params` and write the mp4 to `path`."""
        qpos_F = np.asarray(self.rollout(params, rng))[:: self.every]
        return render_mp4(self.env.model, qpos_F, path, self.fps, self.size)


def render_mp4(
    model: mujoco.MjModel,
    qpos_F: Float[np.ndarray, "F nq"],
    path: Path,
    fps: int,
    size: tuple[int, int] = (320, 240),
    camera: str | None = "track",
) -> Path:
    """Render one frame per row of `qpos_F` and write an H.264 mp4 at `fps`; returns the path."""
    import warnings

    import imageio.v2 as imageio

    # imageio starts ffmpeg with subprocess (a fork); JAX's warning about forking is harmless here
    warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)

    width, height = size
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) if camera else -1
    data = mujoco.MjData(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.mp4")
    with mujoco.Renderer(model, height, width) as renderer:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=8, quality=7) as writer:
            for qpos in qpos_F:
                data.qpos[:] = qpos
                mujoco.mj_forward(model, data)
                renderer.update_scene(data, camera=camera_id)
                writer.append_data(renderer.render())  # type: ignore[attr-defined]
    tmp.replace(path)
    return path
