"""Left/right mirror symmetry: the reflection y → -y of the robot, its actions and its observations.

Each mirror is a signed permutation `x ↦ sign * x[perm]`. Joints pair by name
(`left_*` ↔ `right_*`; a joint without either prefix is its own partner), and each
pair's sign comes from the joint axes: a reflection maps a rotation axis a to
(-a_x, a_y, -a_z), so a partner whose axis equals that moves the same way for the same
angle (sign +1), and one whose axis is its negation for the opposite angle (sign -1).
Names or axes that do not say it are given by the user as `pairs=` and `signs=`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np
from jaxtyping import Array, Float

from ksim.components.base import ModelIndex

# a reflection y → -y acting on a polar vector (position, velocity, gravity) and on an axial
# one (angular velocity, rotation axis): the cross product's handedness flips
POLAR = np.array([1.0, -1.0, 1.0])
AXIAL = np.array([-1.0, 1.0, -1.0])


@dataclass(frozen=True)
class SignedPermutation:
    """`x ↦ sign * x[..., perm]`: a mirror of a vector whose entries swap places and maybe sign."""

    perm: np.ndarray
    sign: np.ndarray

    def __call__(self, x: Float[Array, "... n"]) -> Float[Array, "... n"]:
        """The mirrored vector(s)."""
        return x[..., self.perm] * self.sign

    @staticmethod
    def identity(n: int, sign: Sequence[float] | np.ndarray | None = None) -> "SignedPermutation":
        """No swap, with optional per-entry signs."""
        return SignedPermutation(np.arange(n), np.ones(n) if sign is None else np.asarray(sign, float))

    @staticmethod
    def concat(parts: Sequence["SignedPermutation"]) -> "SignedPermutation":
        """The block-diagonal mirror of consecutive vectors."""
        offsets = np.cumsum([0] + [len(p.perm) for p in parts])
        perm = np.concatenate([p.perm + o for p, o in zip(parts, offsets, strict=False)])
        return SignedPermutation(perm, np.concatenate([p.sign for p in parts]))


def partner_name(name: str) -> str:
    """`left_x` ↔ `right_x`; other names are their own partners."""
    for a, b in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(a):
            return b + name[len(a) :]
    return name


def swap_by_name(names: Sequence[str], who: str) -> SignedPermutation:
    """The permutation that swaps left_*/right_* entries of `names` (e.g. foot sensors)."""
    missing = [partner_name(n) for n in names if partner_name(n) not in names]
    if missing:
        raise ValueError(f"{who}: no mirror partner for {missing} among {list(names)}")
    return SignedPermutation(np.array([list(names).index(partner_name(n)) for n in names]), np.ones(len(names)))


def joint_mirror(
    model: mujoco.MjModel, pairs: dict[str, str] | None = None, signs: dict[str, float] | None = None
) -> SignedPermutation:
    """The mirror of a vector over the actuated joints (actuator order): partners by name, signs by axes.

    Axes are compared in the world frame at the model's reference pose (qpos0).
    """
    names = list(ModelIndex.of(model).joint_names)
    pairs = {**{v: k for k, v in (pairs or {}).items()}, **(pairs or {})}
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    axis = {n: data.xaxis[model.joint(n).id] for n in names}
    perm, sign = [], []
    for name in names:
        partner = pairs.get(name, partner_name(name))
        if partner not in names:
            raise ValueError(f"mirror: joint {name!r} has no partner {partner!r}; give pairs={{...}}")
        perm.append(names.index(partner))
        mirrored = AXIAL * axis[name]
        if signs and name in signs:
            sign.append(float(signs[name]))
        elif np.allclose(axis[partner], mirrored, atol=1e-6):
            sign.append(1.0)
        elif np.allclose(axis[partner], -mirrored, atol=1e-6):
            sign.append(-1.0)
        else:
            raise ValueError(f"mirror: the axes of {name!r} and {partner!r} are not mirror images; give signs={{...}}")
    for i, j in enumerate(perm):
        if perm[j] != i:
            raise ValueError(f"mirror: {names[i]!r} pairs with {names[j]!r}, which pairs with {names[perm[j]]!r}")
        if sign[j] != sign[i]:
            raise ValueError(f"mirror: {names[i]!r} and {names[j]!r} have different signs; give both in signs=")
    return SignedPermutation(np.array(perm), np.array(sign))


@dataclass(frozen=True)
class MirrorContext:
    """What observations need to say how they mirror: the joint mirror and the commands (by name)."""

    joints: SignedPermutation
    commands: dict[str, Any]  # `Command`s, whose `mirror()` gives theirs


def state_mirrors(model: mujoco.MjModel, joints: SignedPermutation) -> tuple[SignedPermutation, SignedPermutation]:
    """The mirrors of a whole qpos and qvel: the floating base reflected, actuated joints by `joints`.

    A base quaternion (w, x, y, z) mirrors to (w, -x, y, -z); its angular velocity is axial.
    """
    index = ModelIndex.of(model)
    qpos, qvel = SignedPermutation.identity(model.nq), SignedPermutation.identity(model.nv)
    for ids, full in ((index.joint_qpos_ids, qpos), (index.joint_dof_ids, qvel)):
        full.perm[ids] = ids[joints.perm]
        full.sign[ids] = joints.sign
    if index.base is not None:
        qpos.sign[index.base.qpos] = np.concatenate([POLAR, [1.0, -1.0, 1.0, -1.0]])
        qvel.sign[index.base.qvel] = np.concatenate([POLAR, AXIAL])
    covered = len(index.joint_qpos_ids) + (7 if index.base is not None else 0)
    if covered != model.nq:
        raise ValueError("mirror: only a floating base and actuated joints can be mirrored")
    return qpos, qvel
