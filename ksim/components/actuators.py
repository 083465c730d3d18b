"""Actuators: how an action becomes joint torques.

Both modes configure MuJoCo's own actuator model, which recomputes the torque at
every physics substep on either backend:

- `PDActuators`: position targets, τ = kp (target − q) − kd q̇, clipped to the torque
  limit; the action is an offset from a keyframe's stance, times `action_scale`.
- `TorqueActuators`: the action (in [-1, 1]) times each joint's torque limit.

Both add optional action noise and a random per-episode latency of whole control
steps.
"""

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ksim.components.base import Component, ModelIndex, keyframe_id, per_joint
from ksim.components.noise import Noise


@dataclass(kw_only=True)
class Actuators(Component):
    """Base: `configure` edits the model once; `ctrl` maps an action to MuJoCo controls."""

    max_latency_steps: int = 0  # latency drawn per episode from {0, ..., max_latency_steps}
    action_noise: Noise | None = None

    def configure(self, model: mujoco.MjModel) -> None:
        """Write this mode's gains and limits into `model` (before the backends copy it)."""
        raise NotImplementedError

    def ctrl(self, action: Float[Array, " nu"]) -> Float[Array, " nu"]:
        """MuJoCo controls for one env."""
        raise NotImplementedError

    def action_of_offsets(self, offsets: Float[Array, "... nu"]) -> Float[Array, "... nu"]:
        """The action that moves each joint's target by `offsets` (rad); for an `ActionPrior`."""
        raise ValueError(f"{type(self).__name__} has no joint targets, so an action prior cannot offset them")

    def perturb(self, action: Float[Array, " nu"], rng: PRNGKeyArray) -> Float[Array, " nu"]:
        """The action with noise, if any."""
        return action if self.action_noise is None else self.action_noise.apply(action, rng)

    def sample_latency(self, rng: PRNGKeyArray) -> jax.Array:
        """An episode's latency, in control steps."""
        return jax.random.randint(rng, (), 0, self.max_latency_steps + 1)

    def _simulated(self) -> dict[str, Any]:
        """The latency and action noise training simulated (not runtime settings)."""
        return {
            "max_latency_steps": self.max_latency_steps,
            "action_noise": self.action_noise and self.action_noise.deploy_spec(),
        }


def torque_limits(model: mujoco.MjModel) -> list[float | None]:
    """Each actuator's torque limit (Nm) as written in the model; None where it is unlimited."""
    limited = model.actuator_forcelimited.astype(bool)
    return [float(hi) if on else None for on, hi in zip(limited, model.actuator_forcerange[:, 1], strict=True)]


@dataclass(kw_only=True)
class PDActuators(Actuators):
    """Joint-space PD control towards `keyframe`'s stance plus `action_scale` × action.

    `action_scale` may be per joint ({name: scale}, the rest 0): a joint whose scale is 0 is
    held at the stance whatever the policy outputs (say, arms held while the legs walk).
    """

    kp: float | dict[str, float] | None = None  # None keeps the model's values
    kd: float | dict[str, float] | None = None
    torque_limit: float | dict[str, float] | None = None
    action_scale: float | dict[str, float] = 0.5
    keyframe: str = "stance"
    _offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    _scale: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)

    def configure(self, model: mujoco.MjModel) -> None:
        """Make every actuator a PD position servo with the given gains and torque limits."""
        kp = per_joint(model, self.kp, model.actuator_gainprm[:, 0].copy(), "kp")
        kd = per_joint(model, self.kd, -model.actuator_biasprm[:, 2].copy(), "kd")
        model.actuator_gaintype[:] = mujoco.mjtGain.mjGAIN_FIXED
        model.actuator_biastype[:] = mujoco.mjtBias.mjBIAS_AFFINE
        model.actuator_gainprm[:] = 0.0
        model.actuator_biasprm[:] = 0.0
        model.actuator_gainprm[:, 0] = kp
        model.actuator_biasprm[:, 1] = -kp
        model.actuator_biasprm[:, 2] = -kd
        model.actuator_gear[:, 0] = 1.0
        if self.torque_limit is not None:
            limit = per_joint(model, self.torque_limit, model.actuator_forcerange[:, 1].copy(), "torque_limit")
            model.actuator_forcelimited[:] = 1
            model.actuator_forcerange[:] = np.stack([-limit, limit], axis=1)

    def _bind(self, model: mujoco.MjModel) -> None:
        key = keyframe_id(model, self.keyframe, self.name)
        self._offset = model.key_qpos[key][ModelIndex.of(model).joint_qpos_ids].astype(np.float32)
        self._scale = per_joint(model, self.action_scale, np.zeros(model.nu), "action_scale").astype(np.float32)
        self._gains = {
            "kp": model.actuator_gainprm[:, 0].tolist(),
            "kd": (-model.actuator_biasprm[:, 2]).tolist(),
            "torque_limit": torque_limits(model),
        }

    def deploy_spec(self) -> dict[str, Any]:
        """PD targets around the stance; the gains and limits a robot's motor drivers take."""
        return {
            "kind": "pd",
            "ctrl": "default_joint_pos + action_scale * action",
            **self._gains,
            "default_joint_pos": self._offset.tolist(),
            "action_scale": self._scale.tolist(),
            **self._simulated(),
        }

    def action_of_offsets(self, offsets: Float[Array, "... nu"]) -> Float[Array, "... nu"]:
        """The offsets divided by each joint's action scale; a joint held at the stance (scale 0) gets none."""
        inverse = np.divide(1.0, self._scale, out=np.zeros_like(self._scale), where=self._scale > 0)
        return offsets * jnp.asarray(inverse)

    def ctrl(self, action: Float[Array, " nu"]) -> Float[Array, " nu"]:
        """Position targets: stance + action_scale × action."""
        return jnp.asarray(self._offset) + jnp.asarray(self._scale) * action


@dataclass(kw_only=True)
class TorqueActuators(Actuators):
    """Direct torque control: τ = action × torque limit, action clipped to [-1, 1]."""

    torque_limit: float | dict[str, float] | None = None  # None keeps the model's forcerange
    _limit: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)

    def configure(self, model: mujoco.MjModel) -> None:
        """Make every actuator a plain motor with the given torque limits."""
        limit = per_joint(model, self.torque_limit, model.actuator_forcerange[:, 1].copy(), "torque_limit")
        if np.any(limit <= 0):
            raise ValueError("TorqueActuators needs a positive torque_limit for every actuator")
        model.actuator_gaintype[:] = mujoco.mjtGain.mjGAIN_FIXED
        model.actuator_biastype[:] = mujoco.mjtBias.mjBIAS_NONE
        model.actuator_gainprm[:] = 0.0
        model.actuator_biasprm[:] = 0.0
        model.actuator_gainprm[:, 0] = 1.0
        model.actuator_gear[:, 0] = 1.0
        model.actuator_forcelimited[:] = 1
        model.actuator_forcerange[:] = np.stack([-limit, limit], axis=1)

    def _bind(self, model: mujoco.MjModel) -> None:
        self._limit = model.actuator_forcerange[:, 1].astype(np.float32)

    def deploy_spec(self) -> dict[str, Any]:
        """Torques straight from the action."""
        return {
            "kind": "torque",
            "ctrl": "clip(action, -1, 1) * torque_limit",
            "torque_limit": self._limit.tolist(),
            **self._simulated(),
        }

    def ctrl(self, action: Float[Array, " nu"]) -> Float[Array, " nu"]:
        """Torques in Nm."""
        return jnp.clip(action, -1.0, 1.0) * jnp.asarray(self._limit)
