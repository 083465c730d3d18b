"""Observations: what the policy (and the critic) sees of one environment.

Each returns a clean 1-D vector; the engine adds the observation's `noise` for the
actor and keeps the clean value for the critic.
"""

from dataclasses import dataclass

import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Float

from ksim.components.base import Component, ModelIndex, StepContext, keyframe_id, sensor_slice
from ksim.components.noise import Noise


@dataclass(kw_only=True)
class Observation(Component):
    """Base observation; `noise` (if any) is applied to the actor's copy only."""

    noise: Noise | None = None

    def observe(self, ctx: StepContext) -> Float[Array, " dim"]:
        """The clean value, a 1-D vector."""
        raise NotImplementedError


@dataclass(kw_only=True)
class JointPosition(Observation):
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


@dataclass(kw_only=True)
class JointVelocity(Observation):
    """Actuated joint velocities (rad/s)."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._ids = ModelIndex.of(model).joint_dof_ids

    def observe(self, ctx: StepContext) -> Float[Array, " nu"]:
        """Joint velocities in actuator order."""
        return ctx.physics.qvel[self._ids]


@dataclass(kw_only=True)
class ProjectedGravity(Observation):
    """Gravity's direction in the base frame: (0, 0, -1) when upright."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def observe(self, ctx: StepContext) -> Float[Array, "3"]:
        """Unit gravity vector in the base frame."""
        return self._base.projected_gravity(ctx.physics)


@dataclass(kw_only=True)
class BaseLinearVelocity(Observation):
    """The base's linear velocity in its own frame (m/s)."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def observe(self, ctx: StepContext) -> Float[Array, "3"]:
        """Linear velocity in the base frame."""
        return self._base.linear_velocity(ctx.physics)


@dataclass(kw_only=True)
class BaseAngularVelocity(Observation):
    """The base's angular velocity in its own frame (rad/s)."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def observe(self, ctx: StepContext) -> Float[Array, "3"]:
        """Angular velocity in the base frame."""
        return self._base.angular_velocity(ctx.physics)


@dataclass(kw_only=True)
class SensorObservation(Observation):
    """Any MuJoCo sensor by name (IMU gyro, accelerometer, touch, force, ...)."""

    sensor: str = ""
    scale: float = 1.0

    def _bind(self, model: mujoco.MjModel) -> None:
        self._slice = sensor_slice(model, self.sensor, self.name)

    def observe(self, ctx: StepContext) -> Float[Array, " dim"]:
        """The sensor's reading times `scale`."""
        return ctx.physics.sensordata[self._slice] * self.scale


@dataclass(kw_only=True)
class FootContact(Observation):
    """1.0 where the named touch sensors read more than `threshold` newtons, else 0.0."""

    sensors: tuple[str, ...] = ()
    threshold: float = 1.0

    def _bind(self, model: mujoco.MjModel) -> None:
        self._ids = np.array([sensor_slice(model, s, self.name).start for s in self.sensors], np.int32)

    def observe(self, ctx: StepContext) -> Float[Array, " feet"]:
        """One contact flag per foot."""
        return (ctx.physics.sensordata[self._ids] > self.threshold).astype(jnp.float32)


@dataclass(kw_only=True)
class ActuatorForce(Observation):
    """Actuator forces (torques, Nm) times `scale`."""

    scale: float = 1.0

    def observe(self, ctx: StepContext) -> Float[Array, " nu"]:
        """Actuator forces in actuator order."""
        return ctx.physics.actuator_force * self.scale


@dataclass(kw_only=True)
class PreviousAction(Observation):
    """The policy's previous action."""

    def observe(self, ctx: StepContext) -> Float[Array, " nu"]:
        """The action of the last control step (zeros after a reset)."""
        return ctx.action_t_minus_1


@dataclass(kw_only=True)
class CommandObservation(Observation):
    """The current value of the named command."""

    command: str = ""

    def observe(self, ctx: StepContext) -> Float[Array, " dim"]:
        """The command vector."""
        return jnp.atleast_1d(ctx.command[self.command])
