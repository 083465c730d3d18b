"""Rewards: named terms, each returning an unscaled value; the task's `scale` sets sign and weight.

Penalties return a positive cost (a sum of squares, say) and take a negative scale.
The engine logs every term by name, scaled, and sums them into the step reward,
which is multiplied by `ctrl_dt` so that totals do not depend on the control rate.
"""

from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Float

from ksim.components.base import Component, ModelIndex, StepContext, body_id, keyframe_id, per_joint, sensor_slice


@dataclass(kw_only=True)
class Reward(Component):
    """Base reward term. Stateless terms implement `compute`; stateful ones `step`."""

    scale: float = 1.0

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """The unscaled value of this term for one env at one step."""
        raise NotImplementedError

    def init_carry(self) -> Any:
        """The term's state at the start of an episode (none by default)."""
        return ()

    def step(self, ctx: StepContext, carry: Any) -> tuple[Float[Array, ""], Any]:
        """The unscaled value and the next carry."""
        return self.compute(ctx), carry


class _BaseReward(Reward):
    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)


@dataclass(kw_only=True)
class StayAlive(Reward):
    """1 for every step the episode goes on."""

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Always 1."""
        return jnp.float32(1.0)


@dataclass(kw_only=True)
class Upright(_BaseReward):
    """Cosine of the base's tilt: 1 upright, 0 lying, -1 upside down."""

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """-z of gravity in the base frame."""
        return -self._base.projected_gravity(ctx.physics)[2]


@dataclass(kw_only=True)
class BaseHeight(_BaseReward):
    """exp(-((z - target) / sigma)²): 1 at the target base height."""

    target: float = 0.7
    sigma: float = 0.05

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Gaussian kernel of the base height error."""
        return jnp.exp(-jnp.square((self._base.height(ctx.physics) - self.target) / self.sigma))


@dataclass(kw_only=True)
class JointDeviation(Reward):
    """Sum of squared joint-angle deviations from a keyframe's stance (rad²); a cost."""

    keyframe: str = "stance"

    def _bind(self, model: mujoco.MjModel) -> None:
        self._ids = ModelIndex.of(model).joint_qpos_ids
        key = keyframe_id(model, self.keyframe, self.name)
        self._stance = model.key_qpos[key][self._ids].astype(np.float32)

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Σ (q - q_stance)²."""
        return jnp.sum(jnp.square(ctx.physics.qpos[self._ids] - self._stance))


@dataclass(kw_only=True)
class ActionRate(Reward):
    """Sum of squared changes of the action between steps; a cost."""

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Σ (a_t - a_{t-1})²."""
        return jnp.sum(jnp.square(ctx.action_t - ctx.action_t_minus_1))


@dataclass(kw_only=True)
class Torque(Reward):
    """Sum of squared actuator torques (Nm²); a cost."""

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Σ τ²."""
        return jnp.sum(jnp.square(ctx.physics.actuator_force))


@dataclass(kw_only=True)
class Energy(Reward):
    """Mechanical power drawn by the joints, Σ |τ · q̇| (W); a cost."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._dof_ids = ModelIndex.of(model).joint_dof_ids

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Σ |τ q̇|."""
        return jnp.sum(jnp.abs(ctx.physics.actuator_force * ctx.physics.qvel[self._dof_ids]))


@dataclass(kw_only=True)
class JointVelocityPenalty(Reward):
    """Sum of squared actuated joint velocities ((rad/s)²); a cost."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._dof_ids = ModelIndex.of(model).joint_dof_ids

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Σ q̇²."""
        return jnp.sum(jnp.square(ctx.physics.qvel[self._dof_ids]))


@dataclass(kw_only=True)
class BaseAngularVelocityPenalty(_BaseReward):
    """Sum of squared roll and pitch rates of the base ((rad/s)²); a cost that damps wobble."""

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """ω_x² + ω_y², in the base frame."""
        return jnp.sum(jnp.square(self._base.angular_velocity(ctx.physics)[:2]))


@dataclass(kw_only=True)
class LinearVelocityTracking(_BaseReward):
    """exp(-|v_cmd - v_xy|² / sigma²), the base's planar velocity in its own frame."""

    command: str = "velocity"
    sigma: float = 0.5

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Gaussian kernel of the planar velocity error; the command is (vx, vy, wz)."""
        err = ctx.command[self.command][:2] - self._base.linear_velocity(ctx.physics)[:2]
        return jnp.exp(-jnp.sum(jnp.square(err)) / self.sigma**2)


@dataclass(kw_only=True)
class AngularVelocityTracking(_BaseReward):
    """exp(-(wz_cmd - wz)² / sigma²), the yaw rate in the base frame."""

    command: str = "velocity"
    sigma: float = 0.5

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Gaussian kernel of the yaw-rate error; the command is (vx, vy, wz)."""
        err = ctx.command[self.command][2] - self._base.angular_velocity(ctx.physics)[2]
        return jnp.exp(-jnp.square(err) / self.sigma**2)


@dataclass(kw_only=True)
class FeetAirTime(Reward):
    """At each touchdown, the foot's air time minus `threshold` (s); rewards real steps.

    Zero while the named velocity command asks to stand still, so that standing is
    not punished.
    """

    sensors: tuple[str, ...] = ()
    contact_threshold: float = 1.0
    threshold: float = 0.3
    command: str | None = "velocity"

    def _bind(self, model: mujoco.MjModel) -> None:
        self._ids = np.array([sensor_slice(model, s, self.name).start for s in self.sensors], np.int32)

    def init_carry(self) -> Float[Array, " feet"]:
        """Air time of each foot so far (s)."""
        return jnp.zeros(len(self.sensors), jnp.float32)

    def step(self, ctx: StepContext, carry: Float[Array, " feet"]) -> tuple[Float[Array, ""], Float[Array, " feet"]]:
        """Pay out at touchdown, then zero that foot's air time."""
        contact = ctx.physics.sensordata[self._ids] > self.contact_threshold
        air_time = carry + ctx.ctrl_dt
        touchdown = contact & (carry > 0.0)
        value = jnp.sum(jnp.where(touchdown, air_time - self.threshold, 0.0))
        if self.command is not None:
            value = jnp.where(jnp.linalg.norm(ctx.command[self.command]) > 0.05, value, 0.0)
        return value, jnp.where(contact, 0.0, air_time)


@dataclass(kw_only=True)
class _Feet(Reward):
    """What the gait terms share: foot bodies (left first), their touch sensors, the clock and the command."""

    feet: tuple[str, ...] = ("left_foot", "right_foot")  # bodies
    sensors: tuple[str, ...] = ("left_foot_touch", "right_foot_touch")
    contact_threshold: float = 1.0  # N
    gait: str = "gait"  # a GaitClock command
    command: str | None = "velocity"  # while this command is zero, both feet should stay down
    keyframe: str = "stance"  # where each foot's height is zero

    def _bind(self, model: mujoco.MjModel) -> None:
        self._bodies = np.array([body_id(model, b, self.name) for b in self.feet], np.int32)
        self._sensors = np.array([sensor_slice(model, s, self.name).start for s in self.sensors], np.int32)
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, keyframe_id(model, self.keyframe, self.name))
        mujoco.mj_forward(model, data)
        self._stand_z = data.xpos[self._bodies, 2].astype(np.float32)

    def _heights(self, ctx: StepContext) -> Float[Array, " feet"]:
        return ctx.physics.xpos[self._bodies, 2] - self._stand_z

    def _contact(self, ctx: StepContext) -> Array:
        return ctx.physics.sensordata[self._sensors] > self.contact_threshold

    def _still(self, ctx: StepContext) -> Array:
        return jnp.bool_(False) if self.command is None else jnp.linalg.norm(ctx.command[self.command]) < 0.05

    def _phases(self, ctx: StepContext) -> Float[Array, " feet"]:
        return ctx.command[self.gait][0] + jnp.pi * jnp.arange(len(self.feet))

    def _swing(self, ctx: StepContext) -> Array:
        return (jnp.sin(self._phases(ctx)) > 0) & ~self._still(ctx)


@dataclass(kw_only=True)
class FeetPhase(_Feet):
    """exp(-Σ (h - h_target)² / σ²): a swinging foot rises to `clearance`·sin φ, a standing one stays down."""

    clearance: float = 0.08  # m
    sigma: float = 0.05

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Gaussian kernel of the feet's height errors against the clock's profile."""
        target = jnp.where(self._swing(ctx), self.clearance * jnp.sin(self._phases(ctx)), 0.0)
        return jnp.exp(-jnp.sum(jnp.square(self._heights(ctx) - target)) / self.sigma**2)


@dataclass(kw_only=True)
class GaitReference(_Feet):
    """exp(-Σ (q - q_ref)² / σ²): each leg's joints follow a swing profile on the gait clock.

    `swing[i]` gives, for foot i's leg (feet in the clock's order, left first), each joint's
    offset from the stance (rad) at the top of the swing: q_ref = stance + offset · sin φ_i while
    foot i swings, the stance while it stands and while the robot is told to stand still. It makes
    stepping a dense target from the first iteration instead of a skill found by exploration.
    """

    swing: tuple[dict[str, float], ...] = ()
    sigma: float = 0.5  # rad

    def _bind(self, model: mujoco.MjModel) -> None:
        super()._bind(model)
        if len(self.swing) != len(self.feet):
            raise ValueError(f"{self.name}: swing has {len(self.swing)} legs, and there are {len(self.feet)} feet")
        index = ModelIndex.of(model)
        top = np.stack([per_joint(model, leg, np.zeros(model.nu), self.name) for leg in self.swing])
        listed = {joint for leg in self.swing for joint in leg}
        columns = [i for i, name in enumerate(index.joint_names) if name in listed]
        self._qpos_ids = index.joint_qpos_ids[columns]
        self._stance = model.key_qpos[keyframe_id(model, self.keyframe, self.name)][self._qpos_ids].astype(np.float32)
        self._top = top[:, columns].astype(np.float32)  # (legs, listed joints): offsets at the top of each swing

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Gaussian kernel of the legs' joint errors against the clock's swing profile."""
        lift = jnp.where(self._swing(ctx), jnp.sin(self._phases(ctx)), 0.0)
        target = self._stance + lift @ jnp.asarray(self._top)
        return jnp.exp(-jnp.sum(jnp.square(ctx.physics.qpos[self._qpos_ids] - target)) / self.sigma**2)


@dataclass(kw_only=True)
class FeetContactMatch(_Feet):
    """The share of feet whose contact is what the clock says: down in stance, up in swing."""

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """1 when every foot agrees with the clock."""
        return jnp.mean((self._contact(ctx) == ~self._swing(ctx)).astype(jnp.float32))


@dataclass(kw_only=True)
class FeetSlip(_Feet):
    """Σ over feet in contact of the squared horizontal foot speed ((m/s)²); a cost."""

    def init_carry(self) -> tuple[Array, Array]:
        """The feet's last horizontal positions, and whether there are any yet."""
        return jnp.zeros((len(self.feet), 2)), jnp.bool_(False)

    def step(self, ctx: StepContext, carry: tuple[Array, Array]) -> tuple[Float[Array, ""], tuple[Array, Array]]:
        """Speed from the feet's displacement over the control step."""
        xy_t_minus_1, seen = carry
        xy = ctx.physics.xpos[self._bodies, :2]
        speed_sq = jnp.sum(jnp.square(xy - xy_t_minus_1), axis=-1) / ctx.ctrl_dt**2
        return jnp.where(seen, jnp.sum(speed_sq * self._contact(ctx)), 0.0), (xy, jnp.bool_(True))


@dataclass(kw_only=True)
class StandStill(Reward):
    """While the velocity command is zero, Σ q̇² of the actuated joints ((rad/s)²); a cost, 0 while moving."""

    command: str = "velocity"

    def _bind(self, model: mujoco.MjModel) -> None:
        self._dof_ids = ModelIndex.of(model).joint_dof_ids

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Joint motion, counted only while asked to stand."""
        still = jnp.linalg.norm(ctx.command[self.command]) < 0.05
        return jnp.where(still, jnp.sum(jnp.square(ctx.physics.qvel[self._dof_ids])), 0.0)
