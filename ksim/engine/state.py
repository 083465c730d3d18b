"""The engine's state and trajectory pytrees: the contract between the env and the learner.

Shapes are for one env; the engine batches them with a leading env axis `E`, and a
rollout stacks trajectories as `(T, E, ...)`.

- `done` = `terminated | truncated`: the env was reset after this step.
- `terminated`: a failure (fell, illegal contact, unstable physics). No future value.
- `truncated`: the episode-length limit. The future value is estimated from
  `next_critic_obs`, the observation of the state the step reached, before the reset.
"""

from typing import Any

import equinox as eqx
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ksim.components.commands import CommandState
from ksim.physics.data import ModelParams, PhysicsData


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
    prev_action: Float[Array, " nu"]
    episode_step: Int[Array, ""]
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
    next_critic_obs: dict[str, Float[Array, " dim"]]
    episode_step: Int[Array, ""]  # steps into the episode, counting this one
