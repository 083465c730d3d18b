"""Actors and value functions as equinox modules (`ksim.rl.policy` turns an actor into a `Policy`).

Every actor maps `(obs, carry) -> (mean, carry)` and every critic `(obs, carry) -> (value,
carry)`; `initial_carry()` gives the state at the start of an episode. An MLP's carry is an
empty array; a GRU or LSTM carries its hidden state, which is reset where an episode ended
(`done`), and PPO re-runs each minibatch's whole sequences from the carry the rollout
started with.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ksim.config import opt

Carry = Float[Array, " carry"]
Out = TypeVar("Out")
Kind = Literal["mlp", "gru", "lstm"]


@dataclass(kw_only=True)
class NetworkConfig:
    """The actor's and the critic's shapes."""

    actor: Kind = opt("mlp", "actor network: mlp, or recurrent (gru, lstm) with a carry")
    actor_hidden: tuple[int, ...] = opt((256, 256), "actor hidden widths per layer, e.g. 256,256", ge=1)
    critic: Kind = opt("mlp", "value network: mlp, or recurrent (gru, lstm) with a carry")
    critic_hidden: tuple[int, ...] = opt((256, 256), "critic hidden widths per layer", ge=1)
    init_action_std: float = opt(0.5, "initial standard deviation of the Gaussian policy", gt=0)
    actor_mirrored: bool = opt(
        False, "average the actor with its own left/right mirror image: a symmetric policy by construction"
    )
    actor_mirror: Literal["average", "tied"] = opt(
        "average",
        "how actor_mirrored makes the MLP symmetric: average two passes, or one pass of weights tied so that "
        "each hidden layer is two halves the mirror swaps (half the parameters, the plain MLP's cost)",
    )


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

    def with_log_std(self, log_std: Float[Array, " act"]) -> "Actor":
        """A copy with its action noise (log std) replaced."""
        return eqx.tree_at(lambda a: a.log_std, self, log_std)

    def sequence(self, obs_T: Float[Array, "T obs"], done_T: Bool[Array, " T"], carry: Carry) -> Float[Array, "T act"]:
        """Means over one env's time sequence, resetting the carry after each `done` step."""
        return _scan(self, self.initial_carry(), obs_T, done_T, carry)


def _scan(
    net: Callable[[Array, Carry], tuple[Out, Carry]],
    initial: Carry,
    obs_T: Float[Array, "T obs"],
    done_T: Bool[Array, " T"],
    carry: Carry,
) -> Out:
    """`net`'s outputs over one env's time sequence, its carry back to `initial` after each `done` step."""

    def one(carry: Carry, x: tuple[Array, Array]) -> tuple[Carry, Out]:
        obs, done = x
        out, carry = net(obs, carry)
        return jnp.where(done, initial, carry), out

    return jax.lax.scan(one, carry, (obs_T, done_T))[1]


def _mlp(in_size: int, out_size: int, hidden: tuple[int, ...], key: PRNGKeyArray, final_scale: float) -> eqx.nn.MLP:
    """An MLP with ELU activations whose last layer is scaled down (small initial outputs)."""
    width = hidden[0] if hidden else out_size
    if any(h != width for h in hidden):
        raise ValueError(f"hidden sizes must be equal, got {hidden}")
    mlp = eqx.nn.MLP(in_size, out_size, width, len(hidden), activation=jax.nn.elu, key=key)
    last = mlp.layers[-1]
    return eqx.tree_at(lambda m: m.layers[-1].weight, mlp, last.weight * final_scale)


class FeedForwardActor(Actor):
    """An actor without recurrent state: its carry is empty and a sequence is one batched call."""

    def initial_carry(self) -> Carry:
        """No recurrent state."""
        return jnp.zeros(0)

    def sequence(self, obs_T: Float[Array, "T obs"], done_T: Bool[Array, " T"], carry: Carry) -> Float[Array, "T act"]:
        """Without a carry, the steps are independent: one batched call instead of a scan."""
        return jax.vmap(lambda o: self(o, carry)[0])(obs_T)


class MLPActor(FeedForwardActor):
    """A feed-forward Gaussian actor."""

    net: eqx.nn.MLP
    log_std_param: Float[Array, " act"]

    def __init__(
        self, obs_size: int, act_size: int, hidden: tuple[int, ...], init_std: float, key: PRNGKeyArray
    ) -> None:
        """An MLP from `obs_size` to `act_size` with `hidden` layer widths."""
        self.net = _mlp(obs_size, act_size, hidden, key, final_scale=0.01)
        self.log_std_param = jnp.full(act_size, math.log(init_std), dtype=jnp.float32)  # not weak-typed

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, " act"], Carry]:
        """The action mean."""
        return self.net(obs), carry

    @property
    def log_std(self) -> Float[Array, " act"]:
        """Per-action log standard deviation."""
        return self.log_std_param


class Cells(eqx.Module):
    """Stacked GRU or LSTM cells whose states are one flat carry vector.

    The carry holds each layer's hidden state (and, for an LSTM, its cell state) one after
    another, zeros at the start of an episode.
    """

    cells: tuple[eqx.nn.GRUCell | eqx.nn.LSTMCell, ...]
    kind: Literal["gru", "lstm"] = eqx.field(static=True)
    sizes: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, in_size: int, hidden: tuple[int, ...], kind: Literal["gru", "lstm"], keys: PRNGKeyArray) -> None:
        """Cells of the `hidden` sizes, the first reading `in_size` features; one key per cell."""
        cell = eqx.nn.GRUCell if kind == "gru" else eqx.nn.LSTMCell
        ins = (in_size, *hidden[:-1])
        self.cells = tuple(cell(i, h, key=k) for i, h, k in zip(ins, hidden, keys, strict=True))
        self.kind, self.sizes = kind, tuple(hidden)

    def initial_carry(self) -> Carry:
        """Zeros: every layer's state at the start of an episode."""
        return jnp.zeros(sum(self.sizes) * (1 if self.kind == "gru" else 2))

    def __call__(self, x: Float[Array, " in"], carry: Carry) -> tuple[Float[Array, " out"], Carry]:
        """The last layer's new hidden state, and the new carry."""
        states, offset = [], 0
        for cell, size in zip(self.cells, self.sizes, strict=True):
            if isinstance(cell, eqx.nn.GRUCell):
                x = cell(x, carry[offset : offset + size])
                states.append(x)
                offset += size
            else:
                x, c = cell(x, (carry[offset : offset + size], carry[offset + size : offset + 2 * size]))
                states += [x, c]
                offset += 2 * size
        return x, jnp.concatenate(states)


class RecurrentActor(Actor):
    """A Gaussian actor whose carry is the state of stacked GRU or LSTM cells, then a linear head."""

    core: Cells
    head: eqx.nn.Linear
    log_std_param: Float[Array, " act"]

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
        self.core = Cells(obs_size, hidden, kind, keys[:-1])
        head = eqx.nn.Linear(hidden[-1], act_size, key=keys[-1])
        self.head = eqx.tree_at(lambda h: h.weight, head, head.weight * 0.01)  # small initial actions
        self.log_std_param = jnp.full(act_size, math.log(init_std), dtype=jnp.float32)

    def initial_carry(self) -> Carry:
        """Zeros: every layer's state at the start of an episode."""
        return self.core.initial_carry()

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, " act"], Carry]:
        """The action mean from the last layer's new hidden state, and the new carry."""
        x, carry = self.core(obs, carry)
        return self.head(x), carry

    @property
    def log_std(self) -> Float[Array, " act"]:
        """Per-action log standard deviation."""
        return self.log_std_param


class Mirror(eqx.Module):
    """A signed permutation `x ↦ sign * x[perm]` held as constants of the program (no parameters to train)."""

    perm: tuple[int, ...] = eqx.field(static=True)
    sign: tuple[float, ...] = eqx.field(static=True)

    @staticmethod
    def of(perm: Sequence[int] | np.ndarray, sign: Sequence[float] | np.ndarray) -> "Mirror":
        """The mirror of these index and sign arrays."""
        return Mirror(tuple(int(i) for i in perm), tuple(float(x) for x in sign))

    def __call__(self, x: Float[Array, "... n"]) -> Float[Array, "... n"]:
        """The mirror image of `x`."""
        return x[..., jnp.asarray(self.perm)] * jnp.asarray(self.sign, dtype=x.dtype)

    def pair_mean(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        """Each entry averaged with its partner's, signs aside (a joint's noise shared with its partner's)."""
        return 0.5 * (x + x[jnp.asarray(self.perm)])


class MirroredActor(FeedForwardActor):
    """An actor equal to its own mirror image: mean(o) = ½(f(o) + M_a f(M_o o)).

    Then mean(M_o o) = M_a mean(o) for every o, and the log std, averaged with its
    permutation, gives each joint its partner's noise. The mirrors act on normalised
    observations, which commute with them when the normaliser's statistics are themselves
    mirror-symmetric (the learner shows it both halves of every rollout). Feed-forward only:
    a mirrored recurrent actor would need a second carry.
    """

    inner: MLPActor
    obs_mirror: Mirror
    act_mirror: Mirror

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, " act"], Carry]:
        """The mean of the inner actor's action and its mirror image's, mirrored back."""
        return 0.5 * (self.inner.net(obs) + self.act_mirror(self.inner.net(self.obs_mirror(obs)))), carry

    @property
    def log_std(self) -> Float[Array, " act"]:
        """The inner log std averaged over each joint and its partner."""
        return self.act_mirror.pair_mean(self.inner.log_std)

    def with_log_std(self, log_std: Float[Array, " act"]) -> "Actor":
        """A copy whose inner log std is `log_std` (its symmetric part is the noise acted with)."""
        return eqx.tree_at(lambda a: a.inner.log_std_param, self, log_std)


class TiedMirrorActor(FeedForwardActor):
    """An MLP actor mirror-symmetric by weight tying, in one pass of the plain MLP's multiply-adds.

    Each hidden layer is two halves (h1, h2) that the mirror swaps: the first layer reads o into
    h1 and M_o o into h2 through the same weights A, a hidden layer maps them to
    (B h1 + C h2, C h1 + B h2), and the mean is ½(E h1 + M_a E h2), bias ½(e + M_a e). Mirroring o
    swaps every (h1, h2), so mean(M_o o) = M_a mean(o) for every parameter value. A layer of width
    w holds one w/2-wide block pair, so it has half the parameters of a plain layer of width w.
    """

    first: eqx.nn.Linear
    hidden: tuple[eqx.nn.Linear, ...]  # each holds [B; C]: half -> 2 * half
    head: eqx.nn.Linear
    log_std_param: Float[Array, " act"]
    obs_mirror: Mirror
    act_mirror: Mirror

    def __init__(
        self,
        obs_size: int,
        act_size: int,
        hidden: tuple[int, ...],
        init_std: float,
        key: PRNGKeyArray,
        mirrors: tuple[Mirror, Mirror],
    ) -> None:
        """Layers of the `hidden` widths (each even: two mirrored halves) from `obs_size` to `act_size`."""
        if not hidden or any(h % 2 or h != hidden[0] for h in hidden):
            raise ValueError(f"actor_mirror=tied needs equal, even hidden widths (two halves each), got {hidden}")
        half = hidden[0] // 2
        keys = jax.random.split(key, len(hidden) + 1)
        self.first = eqx.nn.Linear(obs_size, half, key=keys[0])
        # B h1 + C h2 sums two half-wide products: 1/√2 keeps the plain layer's initial output scale
        layers = [eqx.nn.Linear(half, 2 * half, key=k) for k in keys[1:-1]]
        self.hidden = tuple(eqx.tree_at(lambda x: x.weight, x, x.weight / math.sqrt(2)) for x in layers)
        head = eqx.nn.Linear(half, act_size, key=keys[-1])
        self.head = eqx.tree_at(lambda h: h.weight, head, head.weight * 0.01)  # small initial actions
        self.log_std_param = jnp.full(act_size, math.log(init_std), dtype=jnp.float32)
        self.obs_mirror, self.act_mirror = mirrors

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, " act"], Carry]:
        """The action mean: the mean of the two halves' head outputs, the second mirrored back."""
        h = jax.nn.elu(jax.vmap(self.first)(jnp.stack([obs, self.obs_mirror(obs)])))  # rows h1, h2
        half = h.shape[-1]
        for layer in self.hidden:
            z = jax.vmap(layer)(h)
            h = jax.nn.elu(z[:, :half] + z[::-1, half:])  # row i: B h_i + C h_other (+ both biases)
        y = jax.vmap(self.head)(h)
        return 0.5 * (y[0] + self.act_mirror(y[1])), carry

    @property
    def log_std(self) -> Float[Array, " act"]:
        """The log std averaged over each joint and its partner."""
        return self.act_mirror.pair_mean(self.log_std_param)

    def with_log_std(self, log_std: Float[Array, " act"]) -> "Actor":
        """A copy whose log std is `log_std` (its symmetric part is the noise acted with)."""
        return eqx.tree_at(lambda a: a.log_std_param, self, log_std)


def make_actor(
    cfg: NetworkConfig,
    obs_size: int,
    act_size: int,
    key: PRNGKeyArray,
    mirrors: tuple[Mirror, Mirror] | None = None,
) -> Actor:
    """The actor `cfg.actor` names, with `cfg.actor_hidden` layers; `mirrors` (obs, action) if `cfg.actor_mirrored`."""
    if cfg.actor != "mlp":
        return RecurrentActor(obs_size, act_size, cfg.actor_hidden, cfg.init_action_std, key, cfg.actor)
    if not cfg.actor_mirrored:
        return MLPActor(obs_size, act_size, cfg.actor_hidden, cfg.init_action_std, key)
    if mirrors is None:
        raise ValueError("actor_mirrored=true needs the task's left/right mirrors")
    if cfg.actor_mirror == "tied":
        return TiedMirrorActor(obs_size, act_size, cfg.actor_hidden, cfg.init_action_std, key, mirrors)
    actor = MLPActor(obs_size, act_size, cfg.actor_hidden, cfg.init_action_std, key)
    return MirroredActor(inner=actor, obs_mirror=mirrors[0], act_mirror=mirrors[1])


class Critic(eqx.Module):
    """A state-value function with the same carry convention as the actors."""

    def initial_carry(self) -> Carry:
        """The recurrent state at the start of an episode (empty for feed-forward critics)."""
        raise NotImplementedError

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, ""], Carry]:
        """The value of one (critic) observation, and the next carry."""
        raise NotImplementedError

    def sequence(self, obs_T: Float[Array, "T obs"], done_T: Bool[Array, " T"], carry: Carry) -> Float[Array, " T"]:
        """Values over one env's time sequence, resetting the carry after each `done` step."""
        return _scan(self, self.initial_carry(), obs_T, done_T, carry)

    def rollout_values(
        self, obs_T: Float[Array, "T obs"], next_obs_T: Float[Array, "T obs"], done_T: Bool[Array, " T"], carry: Carry
    ) -> tuple[Float[Array, " T"], Float[Array, " T"], Carry]:
        """Over one env's rollout: V(obs_t), V(the state each step reached) and the carry after the last step.

        The state reached is valued with the carry that has seen `obs_t`, before a `done`
        resets it: that is the value a truncated episode bootstraps from.
        """

        def one(carry: Carry, x: tuple[Array, Array, Array]) -> tuple[Carry, tuple[Array, Array]]:
            obs, next_obs, done = x
            value, carry = self(obs, carry)
            next_value, _ = self(next_obs, carry)
            return jnp.where(done, self.initial_carry(), carry), (value, next_value)

        carry, (value_T, next_value_T) = jax.lax.scan(one, carry, (obs_T, next_obs_T, done_T))
        return value_T, next_value_T, carry

    def batch_sequence(
        self, obs_TE: Float[Array, "T E obs"], done_TE: Bool[Array, "T E"], carry_E: Float[Array, "E carry"]
    ) -> Float[Array, "T E"]:
        """`sequence` for every env of a (T, E) batch."""
        return jax.vmap(self.sequence, in_axes=(1, 1, 0), out_axes=1)(obs_TE, done_TE, carry_E)

    def batch_rollout_values(
        self,
        obs_TE: Float[Array, "T E obs"],
        next_obs_TE: Float[Array, "T E obs"],
        done_TE: Bool[Array, "T E"],
        carry_E: Float[Array, "E carry"],
    ) -> tuple[Float[Array, "T E"], Float[Array, "T E"], Float[Array, "E carry"]]:
        """`rollout_values` for every env of a (T, E) batch."""
        values = jax.vmap(self.rollout_values, in_axes=(1, 1, 1, 0), out_axes=(1, 1, 0))
        return values(obs_TE, next_obs_TE, done_TE, carry_E)


class MLPCritic(Critic):
    """A feed-forward state-value MLP."""

    net: eqx.nn.MLP

    def __init__(self, obs_size: int, hidden: tuple[int, ...], key: PRNGKeyArray) -> None:
        """An MLP from `obs_size` to a scalar."""
        self.net = _mlp(obs_size, 1, hidden, key, final_scale=1.0)

    def initial_carry(self) -> Carry:
        """No recurrent state."""
        return jnp.zeros(0)

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, ""], Carry]:
        """The value of one (critic) observation."""
        return self.net(obs)[0], carry

    def sequence(self, obs_T: Float[Array, "T obs"], done_T: Bool[Array, " T"], carry: Carry) -> Float[Array, " T"]:
        """Without a carry, the steps are independent: one batched call instead of a scan."""
        return jax.vmap(self.net)(obs_T)[:, 0]

    def rollout_values(
        self, obs_T: Float[Array, "T obs"], next_obs_T: Float[Array, "T obs"], done_T: Bool[Array, " T"], carry: Carry
    ) -> tuple[Float[Array, " T"], Float[Array, " T"], Carry]:
        """Batched calls: V(obs_t), V(the state each step reached), and the (empty) carry."""
        return self.sequence(obs_T, done_T, carry), self.sequence(next_obs_T, done_T, carry), carry

    # over a (T, E) batch, one call of the net on every step at once, as before critics had carries
    # (the same XLA program, so feed-forward training runs bit for bit as they did)
    def batch_sequence(
        self, obs_TE: Float[Array, "T E obs"], done_TE: Bool[Array, "T E"], carry_E: Float[Array, "E carry"]
    ) -> Float[Array, "T E"]:
        """`sequence` for every env of a (T, E) batch."""
        return jax.vmap(jax.vmap(lambda o: self.net(o)[0]))(obs_TE)

    def batch_rollout_values(
        self,
        obs_TE: Float[Array, "T E obs"],
        next_obs_TE: Float[Array, "T E obs"],
        done_TE: Bool[Array, "T E"],
        carry_E: Float[Array, "E carry"],
    ) -> tuple[Float[Array, "T E"], Float[Array, "T E"], Float[Array, "E carry"]]:
        """`rollout_values` for every env of a (T, E) batch."""
        return (
            self.batch_sequence(obs_TE, done_TE, carry_E),
            self.batch_sequence(next_obs_TE, done_TE, carry_E),
            carry_E,
        )


class RecurrentCritic(Critic):
    """A state-value function on stacked GRU or LSTM cells, then a linear head."""

    core: Cells
    head: eqx.nn.Linear

    def __init__(self, obs_size: int, hidden: tuple[int, ...], key: PRNGKeyArray, kind: Literal["gru", "lstm"]) -> None:
        """Cells of the `hidden` sizes reading `obs_size` features, and a head to one value."""
        keys = jax.random.split(key, len(hidden) + 1)
        self.core = Cells(obs_size, hidden, kind, keys[:-1])
        self.head = eqx.nn.Linear(hidden[-1], 1, key=keys[-1])

    def initial_carry(self) -> Carry:
        """Zeros: every layer's state at the start of an episode."""
        return self.core.initial_carry()

    def __call__(self, obs: Float[Array, " obs"], carry: Carry) -> tuple[Float[Array, ""], Carry]:
        """The value from the last layer's new hidden state, and the new carry."""
        x, carry = self.core(obs, carry)
        return self.head(x)[0], carry


def make_critic(cfg: NetworkConfig, obs_size: int, key: PRNGKeyArray) -> Critic:
    """The critic `cfg.critic` names, with `cfg.critic_hidden` layers."""
    if cfg.critic == "mlp":
        return MLPCritic(obs_size, cfg.critic_hidden, key)
    return RecurrentCritic(obs_size, cfg.critic_hidden, key, cfg.critic)


def gaussian_log_prob(
    mean: Float[Array, "... act"], log_std: Float[Array, " act"], x: Float[Array, "... act"]
) -> Float[Array, "..."]:
    """Log density of a diagonal Gaussian, summed over action dimensions."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def gaussian_entropy(log_std: Float[Array, " act"]) -> Float[Array, ""]:
    """Entropy of a diagonal Gaussian."""
    return jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e))
