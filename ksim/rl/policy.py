"""A trained actor as a `Policy`: normalise the observations, run the actor, sample or take the mean."""

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ksim.engine.env import Env
from ksim.engine.rollout import Policy, PolicyOutput
from ksim.engine.state import ObsLayout
from ksim.rl.networks import Actor, Carry, gaussian_log_prob
from ksim.rl.normalization import RunningNorm


class PolicyParams(eqx.Module):
    """Everything an actor policy computes with: the network and its observation statistics."""

    actor: Actor
    obs_norm: RunningNorm


@dataclass(frozen=True)
class ActorPolicy(Policy):
    """Acts with `PolicyParams` on observations concatenated in `layout`'s order.

    With a `prior` (the task's action prior, on the flat observations), the actor's output is a
    residual added to it.
    """

    layout: ObsLayout
    deterministic: bool = False  # act with the mean instead of sampling
    prior: Callable[[Array], Array] | None = None

    @staticmethod
    def of(env: Env, deterministic: bool = False) -> "ActorPolicy":
        """The actor policy of `env`'s task: its observation layout and its action prior, if any."""
        return ActorPolicy(env.actor_layout, deterministic, env.prior)

    def init_carry(self, params: PolicyParams) -> Carry:
        """The actor's carry at the start of an episode."""
        return params.actor.initial_carry()

    def __call__(self, params: PolicyParams, obs: dict[str, Array], carry: Carry, rng: PRNGKeyArray) -> PolicyOutput:
        """A Gaussian action (or its mean), its log-density and the next carry."""
        flat = self.layout.flatten(obs)
        mean, carry = params.actor(params.obs_norm(flat), carry)
        if self.prior is not None:
            mean = mean + self.prior(flat)
        log_std = params.actor.log_std
        action = mean if self.deterministic else mean + jnp.exp(log_std) * jax.random.normal(rng, mean.shape)
        return PolicyOutput(action, carry, gaussian_log_prob(mean, log_std, action), mean)
