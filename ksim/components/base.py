"""What every task component shares: binding to a model, and the contexts it reads.

A component is a small dataclass of settings. `bind(model)` returns a copy with the
model indices it needs resolved by name, once, before anything is traced; the
bound copy is then called inside jit for one environment at a time.
"""

import copy
import re
from dataclasses import dataclass, field
from typing import Self

import equinox as eqx
import mujoco
import numpy as np
from jaxtyping import Array, Float, Int

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


class StepContext(eqx.Module):
    """What observations, rewards and terminations read about one env at one step."""

    physics: PhysicsData  # after the step (or after the reset, for observations)
    physics_before: PhysicsData  # before the step
    action: Float[Array, " nu"]  # the policy's action at this step
    prev_action: Float[Array, " nu"]  # the policy's action at the previous step
    command: dict[str, Array]
    episode_step: Int[Array, ""]  # control steps since the episode began, counting this one
    ctrl_dt: float = eqx.field(static=True)


@dataclass
class ModelIndex:
    """Addresses in a model that many components need, resolved once by name."""

    joint_names: tuple[str, ...]  # the actuated joints, in actuator order
    joint_qpos_ids: np.ndarray = field(repr=False)
    joint_dof_ids: np.ndarray = field(repr=False)
    root_qpos_id: int | None  # the free joint's qpos address; None for a fixed base
    root_dof_id: int | None
    root_body_id: int | None

    @staticmethod
    def of(model: mujoco.MjModel) -> "ModelIndex":
        """Index the actuated joints (in actuator order) and the free-floating root."""
        joint_ids = []
        for i in range(model.nu):
            if model.actuator_trntype[i] != mujoco.mjtTrn.mjTRN_JOINT:
                raise ValueError(f"actuator {model.actuator(i).name!r} does not drive a joint")
            joint_ids.append(int(model.actuator_trnid[i, 0]))
        free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
        root = free[0] if free else None
        return ModelIndex(
            joint_names=tuple(model.joint(j).name for j in joint_ids),
            joint_qpos_ids=np.array([model.jnt_qposadr[j] for j in joint_ids], np.int32),
            joint_dof_ids=np.array([model.jnt_dofadr[j] for j in joint_ids], np.int32),
            root_qpos_id=None if root is None else int(model.jnt_qposadr[root]),
            root_dof_id=None if root is None else int(model.jnt_dofadr[root]),
            root_body_id=None if root is None else int(model.jnt_bodyid[root]),
        )

    def require_root(self, who: str) -> tuple[int, int, int]:
        """The root's (qpos, dof, body) addresses, or a clear error naming `who`."""
        if self.root_qpos_id is None or self.root_dof_id is None or self.root_body_id is None:
            raise ValueError(f"{who} needs a free-floating base (a free joint), and the model has none")
        return self.root_qpos_id, self.root_dof_id, self.root_body_id


def sensor_slice(model: mujoco.MjModel, name: str, who: str) -> slice:
    """The sensordata slice of the named sensor, or a clear error naming `who`."""
    sensor_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, name)
    if sensor_id < 0:
        names = [model.sensor(i).name for i in range(model.nsensor)]
        raise ValueError(f"{who}: no sensor named {name!r}; the model has {names}")
    start = int(model.sensor_adr[sensor_id])
    return slice(start, start + int(model.sensor_dim[sensor_id]))


def keyframe_id(model: mujoco.MjModel, name: str, who: str) -> int:
    """The id of the named keyframe, or a clear error naming `who`."""
    key_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, name)
    if key_id < 0:
        names = [model.key(i).name for i in range(model.nkey)]
        raise ValueError(f"{who}: no keyframe named {name!r}; the model has {names}")
    return key_id
