"""Events: things that happen to the robot during an episode, such as pushes."""

from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ksim.components.base import Component, ModelIndex


class EventEffect(eqx.Module):
    """What events do to the physics for the next control step."""

    xfrc_applied: Float[Array, "nbody 6"]  # world-frame force and torque on bodies
    qvel_kick: Float[Array, " nv"]  # an instant change of velocity


@dataclass(kw_only=True)
class Event(Component):
    """Base event with its own carried state."""

    def init_carry(self, rng: PRNGKeyArray) -> Any:
        """The event's state at the start of an episode."""
        raise NotImplementedError

    def __call__(self, carry: Any, effect: EventEffect, rng: PRNGKeyArray, ctrl_dt: float) -> tuple[Any, EventEffect]:
        """Add this event's forces and kicks to `effect`; return the next carry."""
        raise NotImplementedError


def _uniform_time(rng: PRNGKeyArray, interval: tuple[float, float]) -> Float[Array, ""]:
    return jax.random.uniform(rng, (), minval=interval[0], maxval=interval[1])


@dataclass(kw_only=True)
class VelocityPush(Event):
    """Every U(interval) seconds, add U(-max, max) m/s to the base's x and y velocity."""

    interval_seconds: tuple[float, float] = (2.0, 4.0)
    max_velocity: tuple[float, float] = (0.5, 0.5)

    def _bind(self, model: mujoco.MjModel) -> None:
        self._base = ModelIndex.of(model).require_base(self.name)

    def init_carry(self, rng: PRNGKeyArray) -> Float[Array, ""]:
        """Seconds until the first push."""
        return _uniform_time(rng, self.interval_seconds)

    def __call__(
        self, carry: Float[Array, ""], effect: EventEffect, rng: PRNGKeyArray, ctrl_dt: float
    ) -> tuple[Float[Array, ""], EventEffect]:
        """Kick when the timer runs out, then rearm it."""
        kick_rng, time_rng = jax.random.split(rng)
        time_left = carry - ctrl_dt
        fire = time_left <= 0.0
        limit = jnp.asarray(self.max_velocity)
        kick = jax.random.uniform(kick_rng, (2,), minval=-limit, maxval=limit) * fire
        qvel_kick = effect.qvel_kick.at[self._base.qvel.start + np.arange(2)].add(kick)  # world x, y
        time_left = jnp.where(fire, _uniform_time(time_rng, self.interval_seconds), time_left)
        return time_left, EventEffect(effect.xfrc_applied, qvel_kick)

    def deploy_spec(self) -> dict[str, Any]:
        """Every U(interval) s, U(-max, max) m/s added to the base's world x and y velocity."""
        return {
            "event": "velocity_push",
            "interval_seconds": list(self.interval_seconds),
            "max_velocity": list(self.max_velocity),
        }


class ForcePushState(eqx.Module):
    """Timer to the next push, time left in the current one, and its force."""

    time_to_next: Float[Array, ""]
    time_left: Float[Array, ""]
    force: Float[Array, "3"]


@dataclass(kw_only=True)
class ForcePush(Event):
    """Every U(interval) seconds, push `body` horizontally with up to `max_force` N for `duration` s."""

    body: str = "base"
    interval_seconds: tuple[float, float] = (2.0, 4.0)
    max_force: float = 100.0
    duration_seconds: float = 0.2

    def _bind(self, model: mujoco.MjModel) -> None:
        self._body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, self.body)
        if self._body_id < 0:
            raise ValueError(f"{self.name}: no body named {self.body!r}")

    def init_carry(self, rng: PRNGKeyArray) -> ForcePushState:
        """No push under way; the first in U(interval) seconds."""
        return ForcePushState(_uniform_time(rng, self.interval_seconds), jnp.float32(0.0), jnp.zeros(3))

    def __call__(
        self, carry: ForcePushState, effect: EventEffect, rng: PRNGKeyArray, ctrl_dt: float
    ) -> tuple[ForcePushState, EventEffect]:
        """Start a push when the timer runs out; apply it while it lasts."""
        dir_rng, mag_rng, time_rng = jax.random.split(rng, 3)
        time_to_next = carry.time_to_next - ctrl_dt
        start = time_to_next <= 0.0
        heading = jax.random.uniform(dir_rng, (), maxval=2 * jnp.pi)
        magnitude = jax.random.uniform(mag_rng, (), maxval=self.max_force)
        new_force = magnitude * jnp.array([jnp.cos(heading), jnp.sin(heading), 0.0])
        force = jnp.where(start, new_force, carry.force)
        time_left = jnp.where(start, self.duration_seconds, carry.time_left)
        active = time_left > 0.0
        xfrc = effect.xfrc_applied.at[self._body_id, :3].add(jnp.where(active, force, 0.0))
        state = ForcePushState(
            time_to_next=jnp.where(start, _uniform_time(time_rng, self.interval_seconds), time_to_next),
            time_left=time_left - ctrl_dt,
            force=force,
        )
        return state, EventEffect(xfrc, effect.qvel_kick)
