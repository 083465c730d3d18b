"""Resets: where a new episode starts. Each maps (qpos, qvel, rng) to new ones, in order."""

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ksim.components.base import Component, ModelIndex, keyframe_id
from ksim.math import quat_from_yaw, quat_mul


@dataclass(kw_only=True)
class Reset(Component):
    """Base reset."""

    def __call__(
        self, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"], rng: PRNGKeyArray
    ) -> tuple[Float[Array, " nq"], Float[Array, " nv"]]:
        """The new (qpos, qvel)."""
        raise NotImplementedError


@dataclass(kw_only=True)
class StanceReset(Reset):
    """Start from a keyframe, with uniform noise on actuated joint positions and velocities."""

    keyframe: str = "stance"
    joint_pos_noise: float = 0.0  # rad, half-width
    joint_vel_noise: float = 0.0  # rad/s, half-width

    def _bind(self, model: mujoco.MjModel) -> None:
        key = keyframe_id(model, self.keyframe, self.name)
        self._qpos = model.key_qpos[key].astype(np.float32)
        self._qvel = model.key_qvel[key].astype(np.float32)
        index = ModelIndex.of(model)
        self._qpos_ids, self._dof_ids = index.joint_qpos_ids, index.joint_dof_ids

    def __call__(
        self, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"], rng: PRNGKeyArray
    ) -> tuple[Float[Array, " nq"], Float[Array, " nv"]]:
        """Keyframe plus U(-noise, noise) on each actuated joint."""
        pos_rng, vel_rng = jax.random.split(rng)
        n = len(self._qpos_ids)
        qpos = (
            jnp.asarray(self._qpos)
            .at[self._qpos_ids]
            .add(jax.random.uniform(pos_rng, (n,), minval=-self.joint_pos_noise, maxval=self.joint_pos_noise))
        )
        qvel = (
            jnp.asarray(self._qvel)
            .at[self._dof_ids]
            .add(jax.random.uniform(vel_rng, (n,), minval=-self.joint_vel_noise, maxval=self.joint_vel_noise))
        )
        return qpos, qvel

    def deploy_spec(self) -> dict[str, Any]:
        """The keyframe and the noise half-widths."""
        return {
            "reset": "stance",
            "keyframe": self.keyframe,
            "joint_pos_noise": self.joint_pos_noise,
            "joint_vel_noise": self.joint_vel_noise,
        }


@dataclass(kw_only=True)
class BasePoseReset(Reset):
    """Shift the free base by U(-xy, xy) in x and y, and turn it by U(-yaw, yaw) about z."""

    xy: float = 0.0  # m, half-width
    yaw: float = 0.0  # rad, half-width

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def __call__(
        self, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"], rng: PRNGKeyArray
    ) -> tuple[Float[Array, " nq"], Float[Array, " nv"]]:
        """Randomise the base's planar position and heading."""
        xy_rng, yaw_rng = jax.random.split(rng)
        xy = self._base.qpos.start + np.arange(2)
        qpos = qpos.at[xy].add(jax.random.uniform(xy_rng, (2,), minval=-self.xy, maxval=self.xy))
        yaw = jax.random.uniform(yaw_rng, (), minval=-self.yaw, maxval=self.yaw)
        quat = self._base.orientation_ids
        qpos = qpos.at[quat].set(quat_mul(quat_from_yaw(yaw), qpos[quat]))
        return qpos, qvel

    def deploy_spec(self) -> dict[str, Any]:
        """The half-widths of the base's planar shift and turn."""
        return {"reset": "base_pose", "xy": self.xy, "yaw": self.yaw}
