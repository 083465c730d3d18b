"""The physics contract shared by both backends.

Task code reads physics only through `PhysicsData`, so the same components run on
MJX and on MuJoCo's native batch. Derived fields (`xpos`, `xquat`, `sensordata`,
`actuator_force`) follow MuJoCo's `mj_step` convention on both backends: they
describe the state before the last physics substep, while `qpos`, `qvel` and
`time` are the state after it. Right after a reset every field is current.
"""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import mujoco
from jaxtyping import Array, Bool, Float

# Model fields that randomizations may change per environment; both backends
# apply exactly these, so a task randomized on one backend matches the other.
RANDOMIZABLE_FIELDS = (
    "geom_friction",
    "body_mass",
    "dof_armature",
    "dof_damping",
    "actuator_gainprm",
    "actuator_biasprm",
)


class ModelParams(eqx.Module):
    """Per-environment values of the randomizable model fields (one env, unbatched)."""

    geom_friction: Float[Array, "ngeom 3"]
    body_mass: Float[Array, " nbody"]
    dof_armature: Float[Array, " nv"]
    dof_damping: Float[Array, " nv"]
    actuator_gainprm: Float[Array, "nu 10"]
    actuator_biasprm: Float[Array, "nu 10"]

    @staticmethod
    def from_model(model: mujoco.MjModel) -> "ModelParams":
        """The model's own values, as float32 arrays."""
        fields = {name: jnp.asarray(getattr(model, name), jnp.float32) for name in RANDOMIZABLE_FIELDS}
        return ModelParams(**fields)


class PhysicsData(eqx.Module):
    """One environment's physics state and the derived fields that tasks read."""

    time: Float[Array, ""]
    qpos: Float[Array, " nq"]
    qvel: Float[Array, " nv"]
    ctrl: Float[Array, " nu"]
    xpos: Float[Array, "nbody 3"]
    xquat: Float[Array, "nbody 4"]
    sensordata: Float[Array, " nsensordata"]
    actuator_force: Float[Array, " nu"]
    # MuJoCo reported a failure (divergence, bad acceleration) in the last call
    unstable: Bool[Array, ""]
    # the backend's own full state: an `mjx.Data`, or the native state row as bits
    raw: Any
