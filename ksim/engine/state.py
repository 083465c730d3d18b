"""The engine's state and trajectory pytrees: the contract between the env and the learner.

Shapes are for one env; the engine batches them with a leading env axis `E`, and a
rollout stacks trajectories as `(T, E, ...)`.

- `done` = `terminated | truncated`: the env was reset after this step.
- `terminated`: a failure (fell, illegal contact, unstable physics). No future value.
- `truncated`: the episode-length limit. The future value is estimated from
  `critic_obs_t_plus_1`, the observation of the state the step reached, before the reset.
"""

from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ksim.components.commands import CommandState
from ksim.physics.data import ModelParams, PhysicsData


@dataclass(frozen=True)
class ObsLayout:
    """Named observations in the order they are concatenated into a network's input, with their sizes."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def flatten(self, obs: dict[str, Float[Array, "... dim"]]) -> Float[Array, "... total"]:
        """One feature vector per batch element, in this layout's order (not the dict's)."""
        return jnp.concatenate([obs[name] for name in self.names], axis=-1)

    def unflatten(self, flat: Float[Array, "... total"]) -> dict[str, Float[Array, "... dim"]]:
        """The inverse of `flatten`: each observation's slice of the feature vector, by name."""
        ends = np.cumsum(self.sizes)
        return {n: flat[..., e - s : e] for n, s, e in zip(self.names, self.sizes, ends, strict=True)}

    @property
    def size(self) -> int:
        """Features in the flattened vector."""
        return sum(self.sizes)

    def to_json(self) -> list[dict[str, Any]]:
        """`[{"name": ..., "size": ...}, ...]`, in order (saved in run directories and checkpoints)."""
        return [{"name": n, "size": s} for n, s in zip(self.names, self.sizes, strict=True)]

    @staticmethod
    def from_json(items: list[dict[str, Any]]) -> "ObsLayout":
        """The inverse of `to_json`."""
        return ObsLayout(tuple(i["name"] for i in items), tuple(int(i["size"]) for i in items))

    def diff(self, other: "ObsLayout") -> str | None:
        """How `other` differs from this layout (names, sizes, order), in words; None when it does not."""
        if self == other:
            return None
        mine, theirs = dict(zip(self.names, self.sizes, strict=True)), dict(zip(other.names, other.sizes, strict=True))
        parts = [f"{n!r} ({s}) was dropped" for n, s in mine.items() if n not in theirs]
        parts += [f"{n!r} ({s}) was added" for n, s in theirs.items() if n not in mine]
        parts += [f"{n!r} changed size {s} -> {theirs[n]}" for n, s in mine.items() if theirs.get(n, s) != s]
        return "; ".join(parts) or f"the order changed: {list(self.names)} -> {list(other.names)}"


class EnvState(eqx.Module):
    """Everything one env carries from step to step."""

    physics: PhysicsData
    params: ModelParams  # this episode's randomised model parameters
    obs: dict[str, Float[Array, " dim"]]  # the actor's (noisy) observations of the current state
    critic_obs: dict[str, Float[Array, " dim"]]  # clean observations plus privileged ones
    commands: dict[str, CommandState]
    reward_carry: dict[str, Any]
    event_carry: dict[str, Any]
    action_history: Float[Array, "latency_plus_1 nu"]  # newest first
    latency: Int[Array, ""]  # this episode's action latency, in control steps
    action_t_minus_1: Float[Array, " nu"]  # the last action taken (zeros after a reset)
    episode_step: Int[Array, ""]
    level: Float[Array, ""]  # the curriculum's difficulty in [0, 1] (1 without a curriculum); kept across resets
    rng: PRNGKeyArray


class Transition(eqx.Module):
    """One step of a trajectory: what was seen, what was done, what it led to."""

    obs: dict[str, Float[Array, " dim"]]
    critic_obs: dict[str, Float[Array, " dim"]]
    command: dict[str, Float[Array, " dim"]]
    action: Float[Array, " nu"]
    reward: Float[Array, ""]  # the sum of reward_terms
    reward_terms: dict[str, Float[Array, ""]]  # scaled, × ctrl_dt
    done: Bool[Array, ""]
    terminated: Bool[Array, ""]
    truncated: Bool[Array, ""]
    termination_reasons: dict[str, Bool[Array, ""]]  # each termination by name, plus `unstable`
    critic_obs_t_plus_1: dict[str, Float[Array, " dim"]]  # of the state reached, before any reset
    episode_step: Int[Array, ""]  # steps into the episode, counting this one
