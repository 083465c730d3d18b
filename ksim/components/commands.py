"""Commands: what the policy is asked to do, held in the env state and resampled over time."""

from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ksim.components.base import Component
from ksim.components.symmetry import SignedPermutation


class CommandState(eqx.Module):
    """A command's current value and the time (s) until it is resampled."""

    value: Float[Array, " dim"]
    time_left: Float[Array, ""]


@dataclass(kw_only=True)
class Command(Component):
    """Base command: `init` at reset, `step` every control step."""

    def init(self, rng: PRNGKeyArray) -> CommandState:
        """The command at the start of an episode."""
        raise NotImplementedError

    def mirror(self) -> SignedPermutation:
        """The command of the left/right mirror image of the task (needed only for symmetry)."""
        raise ValueError(f"command {self.name!r} ({type(self).__name__}) has no mirror rule")

    def step(self, state: CommandState, rng: PRNGKeyArray, ctrl_dt: float) -> CommandState:
        """Count down and resample when the time is up."""
        counted = CommandState(state.value, state.time_left - ctrl_dt)
        fresh = self.init(rng)
        return jax.tree.map(lambda new, old: jnp.where(counted.time_left <= 0.0, new, old), fresh, counted)


@dataclass(kw_only=True)
class ConstantCommand(Command):
    """A fixed value (zeros by default), never resampled."""

    value: tuple[float, ...] = (0.0,)

    def init(self, rng: PRNGKeyArray) -> CommandState:
        """The constant."""
        return CommandState(jnp.asarray(self.value, jnp.float32), jnp.float32(jnp.inf))

    def deploy_spec(self) -> dict[str, Any]:
        """The constant."""
        return {"kind": "constant", "value": list(self.value)}


@dataclass(kw_only=True)
class VelocityCommand(Command):
    """(vx, vy, wz) in the base frame, uniform in the given ranges, resampled every few seconds.

    With probability `still_probability` the command is zero: stand still.
    """

    name: str = "velocity"
    vx: tuple[float, float] = (-0.5, 1.0)
    vy: tuple[float, float] = (-0.3, 0.3)
    wz: tuple[float, float] = (-0.8, 0.8)
    resample_seconds: tuple[float, float] = (4.0, 8.0)
    still_probability: float = 0.1

    def init(self, rng: PRNGKeyArray) -> CommandState:
        """Draw a new velocity command and its holding time."""
        v_rng, still_rng, t_rng = jax.random.split(rng, 3)
        low = jnp.array([self.vx[0], self.vy[0], self.wz[0]])
        high = jnp.array([self.vx[1], self.vy[1], self.wz[1]])
        value = jax.random.uniform(v_rng, (3,), minval=low, maxval=high)
        value = jnp.where(jax.random.uniform(still_rng) < self.still_probability, 0.0, value)
        hold = jax.random.uniform(t_rng, (), minval=self.resample_seconds[0], maxval=self.resample_seconds[1])
        return CommandState(value, hold)

    def mirror(self) -> SignedPermutation:
        """Sideways speed and turning rate flip."""
        return SignedPermutation.identity(3, (1.0, -1.0, -1.0))

    def deploy_spec(self) -> dict[str, Any]:
        """(vx, vy, wz) in the base frame, and how evaluation draws them."""
        ranges = {"vx": list(self.vx), "vy": list(self.vy), "wz": list(self.wz)}
        return {
            "kind": "velocity",
            "ranges": ranges,
            "resample_seconds": list(self.resample_seconds),
            "still_probability": self.still_probability,
        }


@dataclass(kw_only=True)
class GaitClock(Command):
    """A gait phase φ that advances at a frequency drawn per episode: the value is (φ, f).

    Foot i's phase is φ + π·i (two feet, left first, half a cycle apart); a foot swings
    while the sine of its phase is positive and stands otherwise (`GaitPhase`, `FeetPhase`).
    """

    name: str = "gait"
    frequency: tuple[float, float] = (1.2, 1.6)  # cycles per second

    def init(self, rng: PRNGKeyArray) -> CommandState:
        """A random starting phase and this episode's frequency."""
        phase_rng, f_rng = jax.random.split(rng)
        phase = jax.random.uniform(phase_rng, (), maxval=2 * jnp.pi)
        frequency = jax.random.uniform(f_rng, (), minval=self.frequency[0], maxval=self.frequency[1])
        return CommandState(jnp.stack([phase, frequency]), jnp.float32(jnp.inf))

    def step(self, state: CommandState, rng: PRNGKeyArray, ctrl_dt: float) -> CommandState:
        """Advance the phase by 2π·f·ctrl_dt."""
        phase, frequency = state.value[0], state.value[1]
        phase = jnp.mod(phase + 2 * jnp.pi * frequency * ctrl_dt, 2 * jnp.pi)
        return CommandState(jnp.stack([phase, frequency]), state.time_left)

    def deploy_spec(self) -> dict[str, Any]:
        """(φ, f): φ advances by 2π·f per second, wrapped to [0, 2π); f is drawn per episode."""
        return {"kind": "gait_clock", "frequency": list(self.frequency)}
