"""Randomizations: per-env model parameters drawn at every reset, from the model's defaults.

Each is a pure function `(params, rng) -> params` on `ModelParams`; both backends
apply the result (MJX through the model pytree, the native batch through
`Batch.expand`), so they stay unit-testable without any physics.
"""

from dataclasses import dataclass
from typing import Any

import jax
import mujoco
import numpy as np
from jaxtyping import PRNGKeyArray

from ksim.components.base import Component
from ksim.physics.data import ModelParams


@dataclass(kw_only=True)
class Randomization(Component):
    """Base randomization."""

    def __call__(self, params: ModelParams, rng: PRNGKeyArray) -> ModelParams:
        """The randomised parameters."""
        raise NotImplementedError


def _spec(
    field: str,
    scale_range: tuple[float, float],
    rows: list[int] | None = None,
    column: int | None = None,
    shared: bool = False,
) -> dict[str, Any]:
    """A model array scaled at each reset: `field[rows, column] *= U(range)`, one factor or one per entry."""
    return {"field": field, "scale_range": list(scale_range), "rows": rows, "column": column, "shared": shared}


def _scale(rng: PRNGKeyArray, scale_range: tuple[float, float], shape: tuple[int, ...] = ()) -> jax.Array:
    return jax.random.uniform(rng, shape, minval=scale_range[0], maxval=scale_range[1])


@dataclass(kw_only=True)
class FloorFriction(Randomization):
    """Scale the sliding friction of the named geoms (the floor by default) by one U(range) factor."""

    geoms: tuple[str, ...] = ("floor",)
    scale_range: tuple[float, float] = (0.6, 1.2)

    def _bind(self, model: mujoco.MjModel) -> None:
        ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, g) for g in self.geoms]
        missing = [g for g, i in zip(self.geoms, ids, strict=True) if i < 0]
        if missing:
            raise ValueError(f"{self.name}: no geoms named {missing}")
        self._ids = np.array(ids, np.int32)

    def __call__(self, params: ModelParams, rng: PRNGKeyArray) -> ModelParams:
        """One factor per env on the sliding coefficient."""
        friction = params.geom_friction.at[self._ids, 0].multiply(_scale(rng, self.scale_range))
        return ModelParams(**{**vars(params), "geom_friction": friction})

    def deploy_spec(self) -> dict[str, Any]:
        """One factor on the named geoms' sliding friction."""
        return _spec("geom_friction", self.scale_range, rows=self._ids.tolist(), column=0, shared=True)


@dataclass(kw_only=True)
class GeomFriction(Randomization):
    """Scale every geom's sliding friction by its own U(range) factor."""

    scale_range: tuple[float, float] = (0.8, 1.2)

    def __call__(self, params: ModelParams, rng: PRNGKeyArray) -> ModelParams:
        """A factor per geom."""
        factors = _scale(rng, self.scale_range, params.geom_friction.shape[:1])
        return ModelParams(**{**vars(params), "geom_friction": params.geom_friction.at[:, 0].multiply(factors)})

    def deploy_spec(self) -> dict[str, Any]:
        """A factor per geom on its sliding friction."""
        return _spec("geom_friction", self.scale_range, column=0)


@dataclass(kw_only=True)
class BodyMass(Randomization):
    """Scale every body's mass by its own U(range) factor."""

    scale_range: tuple[float, float] = (0.9, 1.1)

    def __call__(self, params: ModelParams, rng: PRNGKeyArray) -> ModelParams:
        """A factor per body."""
        factors = _scale(rng, self.scale_range, params.body_mass.shape)
        return ModelParams(**{**vars(params), "body_mass": params.body_mass * factors})

    def deploy_spec(self) -> dict[str, Any]:
        """A factor per body mass."""
        return _spec("body_mass", self.scale_range)


@dataclass(kw_only=True)
class Armature(Randomization):
    """Scale every dof's armature by its own U(range) factor."""

    scale_range: tuple[float, float] = (0.9, 1.1)

    def __call__(self, params: ModelParams, rng: PRNGKeyArray) -> ModelParams:
        """A factor per dof."""
        factors = _scale(rng, self.scale_range, params.dof_armature.shape)
        return ModelParams(**{**vars(params), "dof_armature": params.dof_armature * factors})

    def deploy_spec(self) -> dict[str, Any]:
        """A factor per dof armature."""
        return _spec("dof_armature", self.scale_range)


@dataclass(kw_only=True)
class JointDamping(Randomization):
    """Scale every dof's passive damping by its own U(range) factor."""

    scale_range: tuple[float, float] = (0.9, 1.1)

    def __call__(self, params: ModelParams, rng: PRNGKeyArray) -> ModelParams:
        """A factor per dof."""
        factors = _scale(rng, self.scale_range, params.dof_damping.shape)
        return ModelParams(**{**vars(params), "dof_damping": params.dof_damping * factors})

    def deploy_spec(self) -> dict[str, Any]:
        """A factor per dof damping."""
        return _spec("dof_damping", self.scale_range)


@dataclass(kw_only=True)
class ActuatorGains(Randomization):
    """Scale each actuator's kp by U(kp_range) and kd by U(kd_range) (position actuators).

    MuJoCo's position actuator computes τ = kp·ctrl − kp·q − kd·q̇, so kp lives in
    gainprm[0] and −biasprm[1], kd in −biasprm[2].
    """

    kp_range: tuple[float, float] = (0.9, 1.1)
    kd_range: tuple[float, float] = (0.9, 1.1)

    def __call__(self, params: ModelParams, rng: PRNGKeyArray) -> ModelParams:
        """A kp and a kd factor per actuator."""
        kp_rng, kd_rng = jax.random.split(rng)
        nu = params.actuator_gainprm.shape[0]
        kp = _scale(kp_rng, self.kp_range, (nu,))
        kd = _scale(kd_rng, self.kd_range, (nu,))
        gain = params.actuator_gainprm.at[:, 0].multiply(kp)
        bias = params.actuator_biasprm.at[:, 1].multiply(kp).at[:, 2].multiply(kd)
        return ModelParams(**{**vars(params), "actuator_gainprm": gain, "actuator_biasprm": bias})


__all__ = ["ActuatorGains", "Armature", "BodyMass", "FloorFriction", "GeomFriction", "JointDamping", "Randomization"]
