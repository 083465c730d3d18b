"""A task: a robot model and the named components that describe what it must do."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco

from ksim.components.actuators import Actuators
from ksim.components.commands import Command
from ksim.components.curriculum import Curriculum
from ksim.components.events import Event
from ksim.components.observations import Observation
from ksim.components.priors import ActionPrior
from ksim.components.randomization import Randomization
from ksim.components.resets import Reset
from ksim.components.rewards import Reward
from ksim.components.terminations import Termination


@dataclass(kw_only=True)
class Task:
    """Everything that defines an RL task, as data. The engine turns it into an environment.

    `observations` are what the actor sees (with each one's noise); the critic sees
    their clean values plus `critic_observations` (privileged information).
    """

    model_path: str | Path
    actuators: Actuators
    observations: Sequence[Observation]
    rewards: Sequence[Reward]
    terminations: Sequence[Termination]
    resets: Sequence[Reset] = ()
    critic_observations: Sequence[Observation] = ()
    commands: Sequence[Command] = ()
    events: Sequence[Event] = ()
    randomizations: Sequence[Randomization] = ()
    curriculum: Curriculum | None = None
    # a fixed motion the policy's learned action is added to (`ksim.components.priors`)
    action_prior: ActionPrior | None = None
    ctrl_dt: float = 0.02
    sim_dt: float | None = None  # None keeps the model's timestep
    # left/right symmetry, where joint names (left_*/right_*) or axes do not say it: partners and signs
    mirror_pairs: dict[str, str] | None = None
    mirror_signs: dict[str, float] | None = None

    def load_model(self) -> mujoco.MjModel:
        """Compile the MJCF and let the actuators write their gains and limits into it."""
        model = mujoco.MjModel.from_xml_path(str(self.model_path))
        if self.sim_dt is not None:
            model.opt.timestep = self.sim_dt
        self.actuators.configure(model)
        return model

    def num_substeps(self, model: mujoco.MjModel) -> int:
        """Physics substeps per control step; `ctrl_dt` must be a whole multiple of the timestep."""
        dt = float(model.opt.timestep)
        n = round(self.ctrl_dt / dt)
        if n < 1 or abs(n * dt - self.ctrl_dt) > 1e-9:
            raise ValueError(f"ctrl_dt={self.ctrl_dt} is not a whole multiple of the physics timestep {dt}")
        return n
