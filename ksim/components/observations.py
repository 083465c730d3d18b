"""Observations: what the policy (and the critic) sees of one environment.

Each returns a clean 1-D vector; the engine adds the observation's `noise` for the
actor and keeps the clean value for the critic.
"""

from dataclasses import dataclass
from typing import Any, Literal

import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Float

from ksim.components.base import Component, ModelIndex, StepContext, keyframe_id, sensor_slice
from ksim.components.noise import Noise
from ksim.components.symmetry import AXIAL, POLAR, MirrorContext, SignedPermutation, swap_by_name


@dataclass(kw_only=True)
class Observation(Component):
    """Base observation; `noise` (if any) is applied to the actor's copy only."""

    noise: Noise | None = None

    def observe(self, ctx: StepContext) -> Float[Array, " dim"]:
        """The clean value, a 1-D vector."""
        raise NotImplementedError

    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """How the observation of the state's left/right mirror image follows from this one (for symmetry)."""
        raise ValueError(f"observation {self.name!r} ({type(self).__name__}) has no mirror rule")


class _JointSpace(Observation):
    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """Joints swap with their partners, signs from the axes."""
        return ctx.joints


@dataclass(kw_only=True)
class JointPosition(_JointSpace):
    """Actuated joint positions (rad), minus the stance if `relative_to_keyframe` is set."""

    relative_to_keyframe: str | None = None

    def _bind(self, model: mujoco.MjModel) -> None:
        self._ids = ModelIndex.of(model).joint_qpos_ids
        self._offset = np.zeros(len(self._ids), np.float32)
        if self.relative_to_keyframe is not None:
            key = keyframe_id(model, self.relative_to_keyframe, self.name)
            self._offset = model.key_qpos[key][self._ids].astype(np.float32)

    def observe(self, ctx: StepContext) -> Float[Array, " nu"]:
        """Joint angles in actuator order."""
        return ctx.physics.qpos[self._ids] - self._offset

    def deploy_spec(self) -> dict[str, Any]:
        """The actuated joints' qpos minus `offset`."""
        return {"source": "joint_position", "offset": self._offset.tolist()}


@dataclass(kw_only=True)
class JointVelocity(_JointSpace):
    """Actuated joint velocities (rad/s)."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._ids = ModelIndex.of(model).joint_dof_ids

    def observe(self, ctx: StepContext) -> Float[Array, " nu"]:
        """Joint velocities in actuator order."""
        return ctx.physics.qvel[self._ids]

    def deploy_spec(self) -> dict[str, Any]:
        """The actuated joints' qvel."""
        return {"source": "joint_velocity"}


@dataclass(kw_only=True)
class ProjectedGravity(Observation):
    """Gravity's direction in the base frame: (0, 0, -1) when upright."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def observe(self, ctx: StepContext) -> Float[Array, "3"]:
        """Unit gravity vector in the base frame."""
        return self._base.projected_gravity(ctx.physics)

    def deploy_spec(self) -> dict[str, Any]:
        """From the base orientation (on a robot: the IMU's)."""
        return {"source": "projected_gravity"}

    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """A polar vector: y flips."""
        return SignedPermutation.identity(3, POLAR)


@dataclass(kw_only=True)
class BaseLinearVelocity(Observation):
    """The base's linear velocity in its own frame (m/s)."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def observe(self, ctx: StepContext) -> Float[Array, "3"]:
        """Linear velocity in the base frame."""
        return self._base.linear_velocity(ctx.physics)

    def deploy_spec(self) -> dict[str, Any]:
        """The free joint's linear velocity, rotated into the base frame."""
        return {"source": "base_linear_velocity"}

    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """A polar vector: y flips."""
        return SignedPermutation.identity(3, POLAR)


@dataclass(kw_only=True)
class BaseAngularVelocity(Observation):
    """The base's angular velocity in its own frame (rad/s)."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def observe(self, ctx: StepContext) -> Float[Array, "3"]:
        """Angular velocity in the base frame."""
        return self._base.angular_velocity(ctx.physics)

    def deploy_spec(self) -> dict[str, Any]:
        """The free joint's angular velocity (MuJoCo keeps it in the base frame)."""
        return {"source": "base_angular_velocity"}

    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """An axial vector: x and z flip."""
        return SignedPermutation.identity(3, AXIAL)


@dataclass(kw_only=True)
class SensorObservation(Observation):
    """Any MuJoCo sensor by name (IMU gyro, accelerometer, touch, force, ...)."""

    sensor: str = ""
    scale: float = 1.0
    # how the reading mirrors: "polar" (positions, accelerations: y flips), "axial" (gyros: x and z
    # flip), "even" (unchanged); None: no rule (only symmetry needs one)
    mirror_as: Literal["polar", "axial", "even"] | None = None

    def _bind(self, model: mujoco.MjModel) -> None:
        self._slice = sensor_slice(model, self.sensor, self.name)

    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """Per `mirror_as`, for each 3-vector of the reading."""
        size = self._slice.stop - self._slice.start
        if self.mirror_as is None or (self.mirror_as != "even" and size % 3):
            raise ValueError(f"observation {self.name!r}: set mirror_as= polar, axial or even for symmetry")
        sign = (
            np.ones(size)
            if self.mirror_as == "even"
            else np.tile(POLAR if self.mirror_as == "polar" else AXIAL, size // 3)
        )
        return SignedPermutation.identity(size, sign)

    def observe(self, ctx: StepContext) -> Float[Array, " dim"]:
        """The sensor's reading times `scale`."""
        return ctx.physics.sensordata[self._slice] * self.scale

    def deploy_spec(self) -> dict[str, Any]:
        """The named sensor's reading times `scale`."""
        return {"source": "sensor", "sensor": self.sensor, "scale": self.scale}


@dataclass(kw_only=True)
class FootContact(Observation):
    """1.0 where the named touch sensors read more than `threshold` newtons, else 0.0."""

    sensors: tuple[str, ...] = ()
    threshold: float = 1.0

    def _bind(self, model: mujoco.MjModel) -> None:
        self._ids = np.array([sensor_slice(model, s, self.name).start for s in self.sensors], np.int32)
        # a touch sensor sits on a site; its body is the foot (eval reads the feet's positions)
        sensor_ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, s) for s in self.sensors]
        self.bodies = np.array([model.site_bodyid[model.sensor_objid[i]] for i in sensor_ids], np.int32)

    def observe(self, ctx: StepContext) -> Float[Array, " feet"]:
        """One contact flag per foot."""
        return (ctx.physics.sensordata[self._ids] > self.threshold).astype(jnp.float32)

    def deploy_spec(self) -> dict[str, Any]:
        """1.0 per touch sensor above `threshold`."""
        return {"source": "touch", "sensors": list(self.sensors), "threshold": self.threshold}

    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """Left and right feet swap."""
        return swap_by_name(self.sensors, self.name)


@dataclass(kw_only=True)
class ActuatorForce(_JointSpace):
    """Actuator forces (torques, Nm) times `scale`."""

    scale: float = 1.0

    def observe(self, ctx: StepContext) -> Float[Array, " nu"]:
        """Actuator forces in actuator order."""
        return ctx.physics.actuator_force * self.scale

    def deploy_spec(self) -> dict[str, Any]:
        """MuJoCo's actuator_force times `scale`."""
        return {"source": "actuator_force", "scale": self.scale}


@dataclass(kw_only=True)
class PreviousAction(_JointSpace):
    """The policy's previous action."""

    def observe(self, ctx: StepContext) -> Float[Array, " nu"]:
        """The action of the last control step (zeros after a reset)."""
        return ctx.action_t_minus_1

    def deploy_spec(self) -> dict[str, Any]:
        """The policy's last output (zeros at the start)."""
        return {"source": "previous_action"}


@dataclass(kw_only=True)
class GaitPhase(Observation):
    """(sin φ_left, sin φ_right, cos φ_left, cos φ_right) of a `GaitClock` command."""

    command: str = "gait"

    def observe(self, ctx: StepContext) -> Float[Array, "4"]:
        """The feet's phases on the unit circle."""
        phases = ctx.command[self.command][0] + jnp.array([0.0, jnp.pi])
        return jnp.concatenate([jnp.sin(phases), jnp.cos(phases)])

    def deploy_spec(self) -> dict[str, Any]:
        """Sine and cosine of (φ, φ + π), φ the first entry of the gait command."""
        return {"source": "gait_phase", "command": self.command}

    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """The feet swap phases: the left foot of the mirror image does what the right foot did."""
        return SignedPermutation(np.array([1, 0, 3, 2]), np.ones(4))


@dataclass(kw_only=True)
class CommandObservation(Observation):
    """The current value of the named command."""

    command: str = ""

    def observe(self, ctx: StepContext) -> Float[Array, " dim"]:
        """The command vector."""
        return jnp.atleast_1d(ctx.command[self.command])

    def deploy_spec(self) -> dict[str, Any]:
        """The command's value."""
        return {"source": "command", "command": self.command}

    def mirror(self, ctx: MirrorContext) -> SignedPermutation:
        """As the command mirrors."""
        return ctx.commands[self.command].mirror()
