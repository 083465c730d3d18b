"""The run configuration: the learner's settings plus what the runner needs. Tasks subclass it.

Every field is a command-line `key=value`; its help text and bounds live beside it (`opt`).
"""

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ksim.config import opt
from ksim.rl.learner import LearnerConfig


@dataclass(kw_only=True)
class RunConfig(LearnerConfig):
    """What to do (`action`), where from (`pretrained`), and how to train, save, log and film."""

    num_envs: int = opt(256, "environments simulated in parallel", ge=1)
    action: Literal["train", "env", "eval", "export", "sim2sim", "distill"] = opt(
        "train",
        "train: PPO; env: roll the policy out and save an mp4; eval: survival and tracking metrics; "
        "export: policy.onnx + model.mjb + metadata.json; sim2sim: mujoco vs mjx vs the exported ONNX; "
        "distill: train this task's actor to imitate teacher= on the states it visits (DAgger)",
    )
    pretrained: str | None = opt(None, "a run directory (or checkpoint file) to resume or evaluate")
    teacher: str | None = opt(None, "action=distill: the run directory (or checkpoint) of the teacher policy")
    checkpoint_num: int | None = opt(None, "which checkpoint of `pretrained` (its iteration); latest if unset", ge=0)
    max_steps: int | None = opt(
        None, "train this many iterations (rollout + update), save and exit; unset: forever", ge=1
    )
    physics_backend: Literal["auto", "mjx", "mujoco"] = opt(
        "auto", "auto picks mjx on a GPU/TPU and the native mujoco batch on a CPU"
    )
    nthread: int = opt(0, "threads of the mujoco backend (0: one per core)", ge=0)
    seed: int = opt(0, "random seed")
    run_root: str | None = opt(None, "folder for run_N directories (default: beside the task file)")
    save_every_iters: int = opt(50, "save a checkpoint every this many iterations", ge=1)
    save_every_seconds: float = opt(600.0, "... and at least this often (wall-clock seconds)", gt=0)
    keep_checkpoints: int = opt(5, "keep the newest this many checkpoints", ge=1)
    video_every_iters: int = opt(
        100, "write a validation mp4 every this many iterations (0: never; no OpenGL needed)", ge=0
    )
    video_seconds: float = opt(4.0, "length of evaluation and validation videos (s)", gt=0)
    video_size: tuple[int, int] = opt((320, 240), "video width,height in pixels", ge=16)
    video_fps: int = opt(25, "frames per second of videos (frames are rendered at this rate, not per step)", ge=1)
    export_dir: str | None = opt(None, "action=export's folder (default: <run dir>/export/ckpt_<N>)")
    eval_num_envs: int = opt(64, "episodes (one per env) that action=eval measures", ge=1)
    eval_seconds: float = opt(10.0, "episode length that action=eval measures over (s)", gt=0)
    policy: Literal["trained", "zero"] = opt("trained", "zero: hold the stance (all-zero actions) as a baseline")
    deterministic: bool = opt(True, "env/eval act with the policy mean instead of sampling")
    phase_timing: bool = opt(
        True,
        "log rollout and update time apart (a host callback; on mjx it keeps the train step out of the compile cache)",
    )
    compile_cache: str = opt("~/.cache/jax/jaxcache", "persistent XLA compile cache folder ('' turns it off)")
    devices: int = opt(1, "local devices to split the envs over (0: all); see README 'Scale out'", ge=0)
    coordinator: str | None = opt(None, "host:port of process 0, for a multi-process run (JAX may detect it)")
    num_processes: int | None = opt(None, "processes of a multi-process run", ge=1)
    process_id: int | None = opt(None, "this process's index in a multi-process run (0 writes the run directory)", ge=0)

    @property
    def num_env_states_per_minibatch(self) -> int:
        """Env states in one minibatch."""
        return self.rollout_length * self.num_envs // self.num_minibatches

    def validate(self) -> None:
        """Raise a one-line error when a number is out of range or the batch numbers do not fit together."""
        super().validate()  # every field's bounds, and PPO's own rules
        mirror_uses = [f"{name}=true" for name in ("symmetry_augmentation", "actor_mirrored") if getattr(self, name)]
        mirror_uses += [f"symmetry_loss_coef={self.symmetry_loss_coef}"] if self.symmetry_loss_coef > 0 else []
        if self.actor != "mlp" and mirror_uses:
            # a task may turn these on by default, so name the ones to switch off
            raise ValueError(
                f"actor={self.actor} cannot take {', '.join(mirror_uses)}: the mirrors need actor=mlp (a mirrored "
                "sequence would need its own recurrent state); set them to false/0 or use actor=mlp"
            )
        # a task may pick the kind by default, so only a kind other than the task's own asks for a mirrored actor
        if self.actor_mirror != type(self).__dataclass_fields__["actor_mirror"].default and not self.actor_mirrored:
            raise ValueError(
                f"actor_mirror={self.actor_mirror} says how a mirrored actor is built: it needs actor_mirrored=true"
            )
        tied = self.actor_mirrored and self.actor_mirror == "tied"
        if tied and any(h % 2 or h != self.actor_hidden[0] for h in self.actor_hidden):
            raise ValueError(
                f"actor_hidden={','.join(map(str, self.actor_hidden))}: actor_mirror=tied splits each layer into two "
                "mirrored halves, so the widths must be equal and even, e.g. actor_hidden=256,256"
            )
        if self.process_id is not None and self.num_processes is not None and self.process_id >= self.num_processes:
            raise ValueError(f"process_id={self.process_id} must be below num_processes={self.num_processes}")
        if self.coordinator is not None and not re.fullmatch(r"[^\s:]+:\d+", self.coordinator):
            raise ValueError(f"coordinator={self.coordinator} must be host:port, e.g. coordinator=10.0.0.1:1234")
        if self.num_envs % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} must divide num_envs={self.num_envs} "
                "(minibatches split the env axis)"
            )

    def to_json(self) -> str:
        """The resolved config as JSON (saved in each run directory)."""
        return json.dumps(dataclasses.asdict(self), indent=2, default=list)


# fields that say what to do now, never taken from a saved run's config
PER_LAUNCH_FIELDS = (
    "action",
    "pretrained",
    "checkpoint_num",
    "max_steps",
    "policy",
    "teacher",
    # where this launch writes a new run (one trained elsewhere must not write into the trainer's folders)
    "run_root",
    # a checkpoint resumes on any number of devices and processes
    "devices",
    "coordinator",
    "num_processes",
    "process_id",
)

# fields that a resumed run takes from its checkpoint, whatever the command line says
RESTORED_ON_RESUME = {"seed": "the RNG state", "init_action_std": "the policy's standard deviation"}


def load_saved(path: Path) -> dict[str, Any]:
    """A run directory's saved config, as field values; a one-line ValueError if it cannot be read."""
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable config ({err}); fix or delete it") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} is not a readable config (not a JSON object); fix or delete it")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
