"""The run configuration: PPO's numbers plus what the runner needs. Tasks subclass it.

Every field is a command-line `key=value`; its help text lives beside it (`opt`).
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ksim.rl.ppo import PPOConfig, opt


@dataclass(kw_only=True)
class RunConfig(PPOConfig):
    """What to do (`action`), where from (`pretrained`), and how to train, save, log and film."""

    action: Literal["train", "env", "eval"] = opt(
        "train", "train: PPO; env: roll the policy out and save an mp4; eval: survival and tracking metrics"
    )
    pretrained: str | None = opt(None, "a run directory (or checkpoint file) to resume or evaluate")
    checkpoint_num: int | None = opt(None, "which checkpoint of `pretrained` (its iteration); latest if unset")
    max_steps: int | None = opt(None, "train this many iterations (rollout + update), save and exit; unset: forever")
    physics_backend: Literal["auto", "mjx", "mujoco"] = opt(
        "auto", "auto picks mjx on a GPU/TPU and the native mujoco batch on a CPU"
    )
    nthread: int = opt(0, "threads of the mujoco backend (0: one per core)")
    seed: int = opt(0, "random seed")
    run_root: str | None = opt(None, "folder for run_N directories (default: beside the task file)")
    save_every_iters: int = opt(50, "save a checkpoint every this many iterations")
    save_every_seconds: float = opt(600.0, "... and at least this often (wall-clock seconds)")
    keep_checkpoints: int = opt(5, "keep the newest this many checkpoints")
    video_every_iters: int = opt(100, "write a validation mp4 every this many iterations (0: never; no OpenGL needed)")
    video_seconds: float = opt(4.0, "length of evaluation and validation videos (s)")
    video_size: tuple[int, ...] = opt((320, 240), "video width,height in pixels")
    video_fps: int = opt(25, "frames per second of videos (frames are rendered at this rate, not per step)")
    eval_num_envs: int = opt(64, "episodes (one per env) that action=eval measures")
    eval_seconds: float = opt(10.0, "episode length that action=eval measures over (s)")
    policy: Literal["trained", "zero"] = opt("trained", "zero: hold the stance (all-zero actions) as a baseline")
    deterministic: bool = opt(True, "env/eval act with the policy mean instead of sampling")
    phase_timing: bool = opt(
        True,
        "log rollout and update time apart (a host callback; on mjx it keeps the train step out of the compile cache)",
    )
    compile_cache: str = opt("~/.cache/jax/jaxcache", "persistent XLA compile cache folder ('' turns it off)")

    def to_json(self) -> str:
        """The resolved config as JSON (saved in each run directory)."""
        return json.dumps(dataclasses.asdict(self), indent=2, default=list)


# fields that say what to do now, never taken from a saved run's config
PER_LAUNCH_FIELDS = ("action", "pretrained", "checkpoint_num", "max_steps", "policy")


def load_saved(path: Path) -> dict[str, Any]:
    """A run directory's saved config, as field values."""
    return json.loads(path.read_text())
