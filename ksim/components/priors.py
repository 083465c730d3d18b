"""Action priors: a fixed motion, read off the actor's own observations, that the learned action is added to.

The policy's action is `prior(obs) + residual`, where only the residual is learned. The
prior is part of the policy, so evaluation, the viewer and the exported ONNX all act with
it, and a robot's runtime needs nothing new; PPO sees only the residual (a Gaussian's
log-density does not change when a fixed offset moves its mean and its sample alike).

A prior makes a skill that exploration rarely finds, such as stepping, the starting point
instead: the policy learns to balance on a gait that is already there.
"""

from dataclasses import dataclass, field

import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Float

from ksim.components.base import Component, per_joint


@dataclass(kw_only=True)
class ActionPrior(Component):
    """Base: joint-position offsets from the stance (rad), a fixed function of the actor's observations."""

    def needs(self) -> tuple[str, ...]:
        """The actor observations this prior reads."""
        raise NotImplementedError

    def joint_offsets(self, obs: dict[str, Float[Array, "... dim"]]) -> Float[Array, "... nu"]:
        """Each actuated joint's offset (rad) for these observations (any leading batch axes)."""
        raise NotImplementedError


@dataclass(kw_only=True)
class GaitPrior(ActionPrior):
    """Each leg steps on the gait clock while the robot is told to move, and strides with the command.

    - `swing[i]`: for foot i's leg (the clock's order, left first), each joint's offset from the
      stance at the top of the swing, as in `GaitReference`: offset · max(sin φ_i, 0).
    - `stride[i]`: each joint's sweep per unit of the velocity command (vx, vy, wz), as
      −cos φ_i · (gains · command): forward through the swing, back through the stance, which
      carries the body the commanded way over a planted foot. Empty: stepping in place.

    The legs hold the stance while the command is below `still_speed`. It reads a `GaitPhase`
    observation (sin φ of each foot, then cos φ) and a `CommandObservation` of (vx, vy, wz).
    """

    swing: tuple[dict[str, float], ...] = ()
    stride: tuple[dict[str, tuple[float, float, float]], ...] = ()
    phase_observation: str = "gait_phase"
    command_observation: str = "command_observation"
    still_speed: float = 0.05  # |command| below this means stand still
    # (legs, nu): row i holds leg i's offsets at the top of its swing, zeros elsewhere
    _top: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)
    # (legs, 3, nu): leg i's stride gains on (vx, vy, wz) for each joint
    _gain: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 0), np.float32), repr=False)

    def _bind(self, model: mujoco.MjModel) -> None:
        if not self.swing:
            raise ValueError(f"{self.name}: swing is empty; give each leg's joint offsets at the top of its swing")
        if self.stride and len(self.stride) != len(self.swing):
            raise ValueError(f"{self.name}: stride has {len(self.stride)} legs, and swing has {len(self.swing)}")
        zeros = np.zeros(model.nu)
        self._top = np.stack([per_joint(model, leg, zeros, self.name) for leg in self.swing]).astype(np.float32)
        self._gain = np.zeros((len(self.swing), 3, model.nu), np.float32)
        for i, leg in enumerate(self.stride):
            for c in range(3):  # vx, vy, wz
                self._gain[i, c] = per_joint(model, {joint: gains[c] for joint, gains in leg.items()}, zeros, self.name)

    def needs(self) -> tuple[str, ...]:
        """The gait phase and the velocity command."""
        return (self.phase_observation, self.command_observation)

    def joint_offsets(self, obs: dict[str, Float[Array, "... dim"]]) -> Float[Array, "... nu"]:
        """Each leg's swing profile in its swing half of the cycle, plus its stride sweep, while told to move."""
        legs = len(self.swing)
        sin_phase = obs[self.phase_observation][..., :legs]
        cos_phase = obs[self.phase_observation][..., legs : 2 * legs]
        command = obs[self.command_observation]
        moving = jnp.linalg.norm(command, axis=-1, keepdims=True) >= self.still_speed
        lift = jnp.where(moving, jnp.maximum(sin_phase, 0.0), 0.0)
        sweep = jnp.where(moving, -cos_phase, 0.0)
        # matmuls, not scatters or gathers: the ONNX export takes them as they are
        amplitude = jnp.einsum("...c,lcn->...ln", command, jnp.asarray(self._gain))
        return lift @ jnp.asarray(self._top) + jnp.einsum("...l,...ln->...n", sweep, amplitude)
