"""Actors and value functions as equinox modules (`ksim.rl.policy` turns an actor into a `Policy`).

Every actor maps `(obs, carry) -> (mean, carry)`, and `initial_carry()` gives the state
at the start of an episode. An MLP's carry is an empty array; a GRU or LSTM carries its
hidden state, which the rollout resets where an episode ended (`done`) and PPO re-runs
over each minibatch's whole sequences from the carry the rollout started with.
"""

import math
from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ksim.config import opt

Carry = Float[Array, " carry"]


@dataclass(kw_only=True)
class NetworkConfig:
    """The actor's and the critic's shapes."""

    actor: Literal["mlp", "gru", "lstm"] = opt("mlp", "actor network: mlp, or recurrent (gru, lstm) with a carry")
    actor_hidden: tuple[int, ...] = opt((256, 256), "actor hidden widths per layer, e.g. 256,256", ge=1)
    critic_hidden: tuple[int, ...] = opt((256, 256), "critic MLP hidden widths", ge=1)
    init_action_std: float = opt(0.5, "initial standard deviation of the Gaussian policy", gt=0)


class Actor(eqx.Module):
    """A Gaussian actor: a mean network plus a learned, state-free log std."""

    def initial_carry(self) -> Carry:
        """The recurrent state at the start of an episode (empty for feed-forward actors)."""
        raise NotImplementedError

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, " act"], Carry]:
        """The action mean for one observation, and the next carry."""
        raise NotImplementedError

    @property
    def log_std(self) -> Float[Array, " act"]:
        """Per-action log standard deviation."""
        raise NotImplementedError

    def sequence(self, obs_T: Float[Array, "T obs"], done_T: Bool[Array, " T"], carry: Carry) -> Float[Array, "T act"]:
        """Means over one env's time sequence, resetting the carry after each `done` step."""

        def one(carry: Carry, x: tuple[Array, Array]) -> tuple[Carry, Array]:
            obs, done = x
            mean, carry = self(obs, carry)
            return jnp.where(done, self.initial_carry(), carry), mean

        return jax.lax.scan(one, carry, (obs_T, done_T))[1]


def _mlp(in_size: int, out_size: int, hidden: tuple[int, ...], key: PRNGKeyArray, final_scale: float) -> eqx.nn.MLP:
    """An MLP with ELU activations whose last layer is scaled down (small initial outputs)."""
    width = hidden[0] if hidden else out_size
    if any(h != width for h in hidden):
        raise ValueError(f"hidden sizes must be equal, got {hidden}")
    mlp = eqx.nn.MLP(in_size, out_size, width, len(hidden), activation=jax.nn.elu, key=key)
    last = mlp.layers[-1]
    return eqx.tree_at(lambda m: m.layers[-1].weight, mlp, last.weight * final_scale)


class MLPActor(Actor):
    """A feed-forward Gaussian actor."""

    net: eqx.nn.MLP
    log_std_param: Float[Array, " act"]

    def __init__(
        self, obs_size: int, act_size: int, hidden: tuple[int, ...], init_std: float, key: PRNGKeyArray
    ) -> None:
        """An MLP from `obs_size` to `act_size` with `hidden` layer widths."""
        self.net = _mlp(obs_size, act_size, hidden, key, final_scale=0.01)
        self.log_std_param = jnp.full(act_size, math.log(init_std), dtype=jnp.float32)  # not weak-typed

    def initial_carry(self) -> Carry:
        """No recurrent state."""
        return jnp.zeros(0)

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, " act"], Carry]:
        """The action mean."""
        return self.net(obs), carry

    @property
    def log_std(self) -> Float[Array, " act"]:
        """Per-action log standard deviation."""
        return self.log_std_param

    def sequence(self, obs_T: Float[Array, "T obs"], done_T: Bool[Array, " T"], carry: Carry) -> Float[Array, "T act"]:
        """Without a carry, the steps are independent: one batched call instead of a scan."""
        return jax.vmap(self.net)(obs_T)


class RecurrentActor(Actor):
    """A Gaussian actor whose carry is the hidden state of stacked GRU or LSTM cells, then a linear head.

    The carry is one flat vector: each layer's hidden state (and, for an LSTM, its cell state)
    one after another, zeros at the start of an episode.
    """

    cells: tuple[eqx.nn.GRUCell | eqx.nn.LSTMCell, ...]
    head: eqx.nn.Linear
    log_std_param: Float[Array, " act"]
    kind: Literal["gru", "lstm"] = eqx.field(static=True)
    sizes: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        obs_size: int,
        act_size: int,
        hidden: tuple[int, ...],
        init_std: float,
        key: PRNGKeyArray,
        kind: Literal["gru", "lstm"] = "gru",
    ) -> None:
        """Cells of the `hidden` sizes reading `obs_size` features, and a head to `act_size` means."""
        keys = jax.random.split(key, len(hidden) + 1)
        cell = eqx.nn.GRUCell if kind == "gru" else eqx.nn.LSTMCell
        ins = (obs_size, *hidden[:-1])
        self.cells = tuple(cell(i, h, key=k) for i, h, k in zip(ins, hidden, keys[:-1], strict=True))
        head = eqx.nn.Linear(hidden[-1], act_size, key=keys[-1])
        self.head = eqx.tree_at(lambda h: h.weight, head, head.weight * 0.01)  # small initial actions
        self.log_std_param = jnp.full(act_size, math.log(init_std), dtype=jnp.float32)
        self.kind, self.sizes = kind, tuple(hidden)

    def initial_carry(self) -> Carry:
        """Zeros: every layer's state at the start of an episode."""
        return jnp.zeros(sum(self.sizes) * (1 if self.kind == "gru" else 2))

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, " act"], Carry]:
        """The action mean from the last layer's new hidden state, and the new carry."""
        x, states, offset = obs, [], 0
        for cell, size in zip(self.cells, self.sizes, strict=True):
            if isinstance(cell, eqx.nn.GRUCell):
                x = cell(x, carry[offset : offset + size])
                states.append(x)
                offset += size
            else:
                x, c = cell(x, (carry[offset : offset + size], carry[offset + size : offset + 2 * size]))
                states += [x, c]
                offset += 2 * size
        return self.head(x), jnp.concatenate(states)

    @property
    def log_std(self) -> Float[Array, " act"]:
        """Per-action log standard deviation."""
        return self.log_std_param


def make_actor(cfg: NetworkConfig, obs_size: int, act_size: int, key: PRNGKeyArray) -> Actor:
    """The actor `cfg.actor` names, with `cfg.actor_hidden` layers."""
    if cfg.actor == "mlp":
        return MLPActor(obs_size, act_size, cfg.actor_hidden, cfg.init_action_std, key)
    return RecurrentActor(obs_size, act_size, cfg.actor_hidden, cfg.init_action_std, key, cfg.actor)


class MLPCritic(eqx.Module):
    """A state-value MLP."""

    net: eqx.nn.MLP

    def __init__(self, obs_size: int, hidden: tuple[int, ...], key: PRNGKeyArray) -> None:
        """An MLP from `obs_size` to a scalar."""
        self.net = _mlp(obs_size, 1, hidden, key, final_scale=1.0)

    def __call__(self, obs: Float[Array, " obs"]) -> Float[Array, ""]:
        """The value of one (critic) observation."""
        return self.net(obs)[0]


def gaussian_log_prob(
    mean: Float[Array, "... act"], log_std: Float[Array, " act"], x: Float[Array, "... act"]
) -> Float[Array, "..."]:
    """Log density of a diagonal Gaussian, summed over action dimensions."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def gaussian_entropy(log_std: Float[Array, " act"]) -> Float[Array, ""]:
    """Entropy of a diagonal Gaussian."""
    return jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e))
