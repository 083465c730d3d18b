"""The one rollout: a policy acting in a batch of envs.

Training, `action=eval`, `action=env`, validation videos, the viewer and the benchmarks
all step through `rollout_step` (one control step of every env) or `rollout` (a
`lax.scan` of it) with a `Policy`. A policy is written for one env and its parameters
are an argument, so one compiled rollout serves every set of weights.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ksim.engine.env import Env
from ksim.engine.state import EnvState, Transition


class PolicyOutput(eqx.Module):
    """What a policy decides for one env at one step."""

    action: Float[Array, " nu"]
    carry: Any  # the recurrent state for the next step
    log_prob: Float[Array, ""]  # log-density of `action` (0 for a deterministic policy)
    mean: Float[Array, " nu"]  # the action distribution's mean (the action, when deterministic)


class Policy(ABC):
    """`policy(params, obs, carry, rng) -> PolicyOutput` for one env, `params` being any pytree."""

    @abstractmethod
    def init_carry(self, params: Any) -> Any:
        """The recurrent state at the start of an episode (an empty array for feed-forward policies)."""

    @abstractmethod
    def __call__(self, params: Any, obs: dict[str, Array], carry: Any, rng: PRNGKeyArray) -> PolicyOutput:
        """Act on one env's observations."""


class ZeroPolicy(Policy):
    """All-zero actions: hold the stance (PD actuators) or apply no torque. Takes `params=None`."""

    def __init__(self, nu: int) -> None:
        """A policy for `nu` actuators."""
        self.nu = nu

    def init_carry(self, params: Any) -> Array:
        """No state."""
        return jnp.zeros(0)

    def __call__(self, params: Any, obs: dict[str, Array], carry: Any, rng: PRNGKeyArray) -> PolicyOutput:
        """Zeros."""
        zeros = jnp.zeros(self.nu)
        return PolicyOutput(zeros, carry, jnp.float32(0.0), zeros)


class RolloutState(eqx.Module):
    """What a rollout carries from step to step, for every env."""

    env: EnvState
    policy_carry: Any
    episode_returns: dict[str, Float[Array, " E"]]  # each reward term summed over the episode so far
    # a recurrent critic's state, kept from one training rollout to the next: the learner runs the
    # critic after each rollout, so the steps pass it through untouched
    value_carry: Any = None


class RolloutStep(eqx.Module):
    """One step of one env's rollout: the env's transition and what the policy said about it."""

    transition: Transition
    log_prob: Float[Array, ""]
    mean: Float[Array, " nu"]
    episode_returns: dict[str, Float[Array, ""]]  # each term's episode sum up to and including this step, and `total`


def _where_done(done_E: Bool[Array, " E"], new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(done_E.reshape(done_E.shape + (1,) * (b.ndim - 1)), a, b), new, old)


def init_rollout(
    env: Env, policy: Policy, params: Any, rng: PRNGKeyArray, value_carry: Array | None = None
) -> RolloutState:
    """Reset every env and start every policy carry and episode sum afresh (and `value_carry`, one env's, if given)."""

    def per_env(carry: Any) -> Any:
        return jax.tree.map(lambda c: jnp.broadcast_to(c, (env.num_envs, *c.shape)), carry)

    returns = {r.name: jnp.zeros(env.num_envs) for r in env.rewards}
    return RolloutState(env.reset(rng), per_env(policy.init_carry(params)), returns, per_env(value_carry))


def rollout_step(
    env: Env,
    policy: Policy,
    params: Any,
    state_t: RolloutState,
    rng_E: PRNGKeyArray,
    external_xfrc_E: Float[Array, "E nbody 6"] | None = None,
) -> tuple[RolloutState, RolloutStep]:
    """The policy acts in every env (one key each), the envs step, and carries restart where an episode ended."""
    out_E = jax.vmap(policy, in_axes=(None, 0, 0, 0))(params, state_t.env.obs, state_t.policy_carry, rng_E)
    env_state, tr_E = env.step_batch(state_t.env, out_E.action, external_xfrc_E)
    carry = _where_done(tr_E.done, policy.init_carry(params), out_E.carry)
    returns = {k: v + tr_E.reward_terms[k] for k, v in state_t.episode_returns.items()}
    returns_t_plus_1 = {k: jnp.where(tr_E.done, 0.0, v) for k, v in returns.items()}
    state_t_plus_1 = RolloutState(env_state, carry, returns_t_plus_1, state_t.value_carry)
    total = sum(returns.values(), jnp.zeros_like(tr_E.reward))
    return state_t_plus_1, RolloutStep(tr_E, out_E.log_prob, out_E.mean, returns | {"total": total})


def rollout(
    env: Env,
    policy: Policy,
    params: Any,
    state: RolloutState,
    rng: PRNGKeyArray,
    num_steps: int,
    record: Callable[[RolloutState, RolloutStep], Any] | None = None,
) -> tuple[RolloutState, Any]:
    """`num_steps` of `rollout_step` in a `lax.scan`; returns the final state and the stacked `(T, E, ...)` steps.

    `record(state_t, step)`, if given, picks what to keep of each step (eval keeps a few
    numbers, a video one env's pose) in place of the whole `RolloutStep`. Not jitted itself:
    callers jit it, or compose it into a larger program such as the train step.
    """

    def scan_step(state_t: RolloutState, rng_E: PRNGKeyArray) -> tuple[RolloutState, Any]:
        state_t_plus_1, step = rollout_step(env, policy, params, state_t, rng_E)
        return state_t_plus_1, step if record is None else record(state_t, step)

    # one vectorised split for the whole rollout, rather than one per step
    return jax.lax.scan(scan_step, state, jax.random.split(rng, (num_steps, env.num_envs)))
