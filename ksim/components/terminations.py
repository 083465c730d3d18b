"""Terminations: why an episode ends.

A `failure` ends the episode with no future value (the learner does not bootstrap);
a `truncation` (the episode-length limit) ends it with the future value estimated
from the last state. The engine adds its own `unstable` failure for NaN or diverged
physics.
"""

from dataclasses import dataclass
from typing import Any, Literal

import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Bool

from ksim.components.base import Component, ModelIndex, StepContext, sensor_slice


@dataclass(kw_only=True)
class Termination(Component):
    """Base termination; `kind` says whether it is a failure or a truncation."""

    kind: Literal["failure", "truncation"] = "failure"

    def __call__(self, ctx: StepContext) -> Bool[Array, ""]:
        """Whether the episode ends at this step."""
        raise NotImplementedError


@dataclass(kw_only=True)
class BaseHeightOutOfRange(Termination):
    """The base is lower than `min_height` or higher than `max_height` (m)."""

    min_height: float = 0.3
    max_height: float = 2.0

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def __call__(self, ctx: StepContext) -> Bool[Array, ""]:
        """Z outside [min_height, max_height]."""
        z = self._base.height(ctx.physics)
        return (z < self.min_height) | (z > self.max_height)

    def deploy_spec(self) -> dict[str, Any]:
        """The base's world z outside [min, max]."""
        return {"check": "base_height", "kind": self.kind, "min": self.min_height, "max": self.max_height}


@dataclass(kw_only=True)
class NotUpright(Termination):
    """The base tilts more than `max_tilt` radians from vertical."""

    max_tilt: float = 1.0

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def __call__(self, ctx: StepContext) -> Bool[Array, ""]:
        """cos(tilt) below cos(max_tilt)."""
        return -self._base.projected_gravity(ctx.physics)[2] < jnp.cos(self.max_tilt)

    def deploy_spec(self) -> dict[str, Any]:
        """The base's tilt from vertical above `max_tilt` (rad)."""
        return {"check": "tilt", "kind": self.kind, "max_tilt": self.max_tilt}


@dataclass(kw_only=True)
class IllegalContact(Termination):
    """Any of the named touch sensors reads more than `threshold` newtons."""

    sensors: tuple[str, ...] = ()
    threshold: float = 1.0

    def _bind(self, model: mujoco.MjModel) -> None:
        self._ids = np.array([sensor_slice(model, s, self.name).start for s in self.sensors], np.int32)

    def __call__(self, ctx: StepContext) -> Bool[Array, ""]:
        """A forbidden body touches something."""
        return jnp.any(ctx.physics.sensordata[self._ids] > self.threshold)

    def deploy_spec(self) -> dict[str, Any]:
        """Any named touch sensor above `threshold`."""
        return {"check": "touch", "kind": self.kind, "sensors": list(self.sensors), "threshold": self.threshold}


@dataclass(kw_only=True)
class EpisodeLength(Termination):
    """The episode has lasted `max_seconds`: a truncation, not a failure."""

    max_seconds: float = 10.0
    kind: Literal["failure", "truncation"] = "truncation"

    def __call__(self, ctx: StepContext) -> Bool[Array, ""]:
        """episode_step × ctrl_dt reached max_seconds."""
        return ctx.episode_step >= round(self.max_seconds / ctx.ctrl_dt)

    def deploy_spec(self) -> dict[str, Any]:
        """The episode's time limit."""
        return {"check": "episode_length", "kind": self.kind, "max_seconds": self.max_seconds}
