"""What every task component shares: binding to a model, and the contexts it reads.

A component is a small dataclass of settings. `bind(model)` returns a copy with the
model indices it needs resolved by name, once, before anything is traced; the
bound copy is then called inside jit for one environment at a time.
"""

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Self

import equinox as eqx
import mujoco
import numpy as np
from jaxtyping import Array, Float, Int

from ksim.math import projected_gravity, quat_rotate_inverse
from ksim.physics.data import PhysicsData


@dataclass(kw_only=True)
class Component:
    """Base of every component: settings, plus indices filled in by `bind`."""

    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            # CamelCase class name -> snake_case default name
            self.name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()

    def bind(self, model: mujoco.MjModel) -> Self:
        """A copy of this component with its model indices resolved."""
        bound = copy.copy(self)
        bound._bind(model)
        return bound

    def _bind(self, model: mujoco.MjModel) -> None:
        """Resolve indices into `model`; subclasses override."""

    def deploy_spec(self) -> dict[str, Any] | None:
        """How a runtime without JAX reproduces this component, as JSON-ready data (`ksim.deploy`).

        None: it has no such description. Observations and commands need one to be exported.
        """
        return None


class StepContext(eqx.Module):
    """What observations, rewards and terminations read about one env at one step."""

    physics: PhysicsData  # after the step (or after the reset, for observations)
    action_t: Float[Array, " nu"]  # the policy's action at this step
    action_t_minus_1: Float[Array, " nu"]  # its action at the previous step (zeros after a reset)
    command: dict[str, Array]
    episode_step: Int[Array, ""]  # control steps since the episode began, counting this one
    ctrl_dt: float = eqx.field(static=True)


@dataclass(frozen=True)
class FloatingBase:
    """A free joint's slices of qpos and qvel, resolved once, and the base quantities read through them.

    MuJoCo keeps a free joint's linear velocity in the world frame and its angular velocity in
    the body frame; the methods here return both in the base frame.
    """

    qpos: slice  # position (3) then orientation quaternion (4, w first)
    qvel: slice  # linear (3, world frame) then angular (3, base frame) velocity

    @staticmethod
    def at(qpos_id: int, dof_id: int) -> "FloatingBase":
        """The base whose free joint starts at `qpos_id` in qpos and `dof_id` in qvel."""
        return FloatingBase(slice(qpos_id, qpos_id + 7), slice(dof_id, dof_id + 6))

    @property
    def orientation_ids(self) -> slice:
        """Qpos slice of the orientation quaternion."""
        return slice(self.qpos.start + 3, self.qpos.stop)

    @property
    def linear_velocity_ids(self) -> slice:
        """Qvel slice of the linear velocity (world frame)."""
        return slice(self.qvel.start, self.qvel.start + 3)

    def height(self, physics: PhysicsData) -> Float[Array, ""]:
        """Base z in the world (m)."""
        return physics.qpos[self.qpos.start + 2]

    def orientation(self, physics: PhysicsData) -> Float[Array, "4"]:
        """The base's orientation quaternion (w, x, y, z)."""
        return physics.qpos[self.orientation_ids]

    def projected_gravity(self, physics: PhysicsData) -> Float[Array, "3"]:
        """Gravity's unit direction in the base frame: (0, 0, -1) when upright."""
        return projected_gravity(self.orientation(physics))

    def linear_velocity(self, physics: PhysicsData) -> Float[Array, "3"]:
        """The base's linear velocity in its own frame (m/s)."""
        return quat_rotate_inverse(self.orientation(physics), physics.qvel[self.linear_velocity_ids])

    def angular_velocity(self, physics: PhysicsData) -> Float[Array, "3"]:
        """The base's angular velocity in its own frame (rad/s)."""
        return physics.qvel[self.qvel.start + 3 : self.qvel.stop]


@dataclass
class ModelIndex:
    """Addresses in a model that many components need, resolved once by name."""

    joint_names: tuple[str, ...]  # the actuated joints, in actuator order
    joint_qpos_ids: np.ndarray = field(repr=False)
    joint_dof_ids: np.ndarray = field(repr=False)
    base: FloatingBase | None  # the free-floating base; None for a fixed base

    @staticmethod
    def of(model: mujoco.MjModel) -> "ModelIndex":
        """Index the actuated joints (in actuator order) and the free-floating base."""
        joint_ids = []
        for i in range(model.nu):
            if model.actuator_trntype[i] != mujoco.mjtTrn.mjTRN_JOINT:
                raise ValueError(f"actuator {model.actuator(i).name!r} does not drive a joint")
            joint_ids.append(int(model.actuator_trnid[i, 0]))
        free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
        return ModelIndex(
            joint_names=tuple(model.joint(j).name for j in joint_ids),
            joint_qpos_ids=np.array([model.jnt_qposadr[j] for j in joint_ids], np.int32),
            joint_dof_ids=np.array([model.jnt_dofadr[j] for j in joint_ids], np.int32),
            base=FloatingBase.at(int(model.jnt_qposadr[free[0]]), int(model.jnt_dofadr[free[0]])) if free else None,
        )

    def require_base(self, who: str) -> FloatingBase:
        """The floating base, or a clear error naming `who`."""
        if self.base is None:
            raise ValueError(f"{who} needs a free-floating base (a free joint), and the model has none")
        return self.base


def sensor_slice(model: mujoco.MjModel, name: str, who: str) -> slice:
    """The sensordata slice of the named sensor, or a clear error naming `who`."""
    sensor_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, name)
    if sensor_id < 0:
        names = [model.sensor(i).name for i in range(model.nsensor)]
        raise ValueError(f"{who}: no sensor named {name!r}; the model has {names}")
    start = int(model.sensor_adr[sensor_id])
    return slice(start, start + int(model.sensor_dim[sensor_id]))


def body_id(model: mujoco.MjModel, name: str, who: str) -> int:
    """The id of the named body, or a clear error naming `who`."""
    found = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
    if found < 0:
        raise ValueError(
            f"{who}: no body named {name!r}; the model has {[model.body(i).name for i in range(model.nbody)]}"
        )
    return found


def keyframe_id(model: mujoco.MjModel, name: str, who: str) -> int:
    """The id of the named keyframe, or a clear error naming `who`."""
    key_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, name)
    if key_id < 0:
        names = [model.key(i).name for i in range(model.nkey)]
        raise ValueError(f"{who}: no keyframe named {name!r}; the model has {names}")
    return key_id


def per_joint(
    model: mujoco.MjModel, values: float | dict[str, float] | None, current: np.ndarray, what: str
) -> np.ndarray:
    """Resolve a scalar, a {joint name: value} dict or None (keep `current`) to a per-actuator array."""
    if values is None:
        return current
    if isinstance(values, int | float):
        return np.full(model.nu, float(values))
    names = ModelIndex.of(model).joint_names
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"{what}: unknown joints {unknown}; the actuated joints are {list(names)}")
    return np.array([values.get(n, current[i]) for i, n in enumerate(names)])
