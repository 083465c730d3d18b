"""PPO: generalised advantage estimation, the clipped losses and the minibatch update.

The update is a `lax.scan` over epochs of a `lax.scan` over minibatches. Minibatches
split the env axis and keep whole time sequences, so a recurrent actor can be re-run
over them from the carry it had at the start of the rollout.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ksim.config import check_fields, opt
from ksim.rl.networks import Actor, Critic, gaussian_entropy, gaussian_log_prob

C = TypeVar("C")  # what a minibatch step carries (parameters, optimiser state)
M = TypeVar("M")  # what it outputs (metrics, losses)


@dataclass(kw_only=True)
class PPOConfig:
    """PPO's numbers. The dataset of one update is `rollout_length * num_envs` env states."""

    rollout_length: int = opt(32, "control steps per env per rollout (T)", ge=1)
    num_minibatches: int = opt(4, "minibatches per epoch; must divide num_envs (minibatches split the env axis)", ge=1)
    num_epochs: int = opt(4, "passes over the dataset per update", ge=1)
    learning_rate: float = opt(3e-4, "Adam learning rate (the initial one when adaptive_lr is on)", gt=0)
    adaptive_lr: bool = opt(True, "scale the learning rate to keep the KL near desired_kl")
    desired_kl: float = opt(0.01, "target KL between the rollout policy and the updated one", gt=0)
    learning_rate_range: tuple[float, float] = opt((1e-5, 1e-2), "where adaptive_lr keeps the learning rate", gt=0)
    kl_coef: float = opt(0.0, "weight of a KL penalty in the loss (0 turns it off)", ge=0)
    gamma: float = opt(0.99, "discount per control step", ge=0, le=1)
    gae_lambda: float = opt(0.95, "GAE lambda", ge=0, le=1)
    clip_eps: float = opt(0.2, "PPO ratio clip", gt=0)
    value_clip: float = opt(0.2, "value-loss clip around the rollout's value (0 turns it off)", ge=0)
    value_coef: float = opt(0.5, "weight of the value loss", ge=0)
    entropy_coef: float = opt(0.001, "weight of the entropy bonus")
    max_grad_norm: float = opt(1.0, "global gradient-norm clip", gt=0)
    normalize_advantages: bool = opt(True, "standardise advantages per minibatch")
    symmetry_augmentation: bool = opt(False, "add each rollout's left/right mirror image to the dataset")
    symmetry_loss_coef: float = opt(0.0, "weight of the mirror loss |pi(mirror(o)) - mirror(pi(o))|^2 (0: off)", ge=0)
    freeze_obs_norm: bool = opt(
        False, "keep the observation statistics as loaded (a distilled student's actions change with new ones)"
    )

    def validate(self) -> None:
        """Raise a one-line error for a NaN, infinite or out-of-range number."""
        check_fields(self)
        low, high = self.learning_rate_range
        if low > high:
            raise ValueError(f"learning_rate_range={low},{high}: the first must not exceed the second")
        # the rate moves on the KL read before each gradient step, and the first step of an update
        # reads the rollout policy itself (KL 0: up by 1.5); with two steps it could never come down
        steps = self.num_epochs * self.num_minibatches
        if self.adaptive_lr and steps < 3:
            raise ValueError(
                f"num_epochs={self.num_epochs} x num_minibatches={self.num_minibatches}: adaptive_lr needs at least "
                "3 gradient steps per update (the first one's KL is always 0); raise one of them, or adaptive_lr=false"
            )


class Batch(eqx.Module):
    """What the update needs from one rollout, all shaped (T, E, ...)."""

    actor_obs: Float[Array, "T E obs"]  # normalised
    critic_obs: Float[Array, "T E cobs"]  # normalised
    action: Float[Array, "T E act"]
    log_prob: Float[Array, "T E"]  # under the rollout policy
    mean: Float[Array, "T E act"]  # the rollout policy's mean, for the KL
    done: Bool[Array, "T E"]
    value: Float[Array, "T E"]
    advantage: Float[Array, "T E"]
    ret: Float[Array, "T E"]
    actor_obs_mirror: Float[Array, "T E obs"] | None = None  # normalised, for the mirror loss


def compute_gae(
    reward_TE: Float[Array, "T E"],
    value_TE: Float[Array, "T E"],
    value_last_E: Float[Array, " E"],
    done_TE: Bool[Array, "T E"],
    gamma: float,
    lam: float,
) -> tuple[Float[Array, "T E"], Float[Array, "T E"]]:
    """(advantages, returns). `done` cuts the bootstrap; truncations are folded into the reward."""
    value_t_plus_1_TE = jnp.concatenate([value_TE[1:], value_last_E[None]])
    not_done_TE = 1.0 - done_TE.astype(jnp.float32)
    delta_TE = reward_TE + gamma * value_t_plus_1_TE * not_done_TE - value_TE

    def back(gae_E: Array, x: tuple[Array, Array]) -> tuple[Array, Array]:
        delta_E, not_done_E = x
        gae_E = delta_E + gamma * lam * not_done_E * gae_E
        return gae_E, gae_E

    _, advantage_TE = jax.lax.scan(back, jnp.zeros_like(value_last_E), (delta_TE, not_done_TE), reverse=True)
    return advantage_TE, advantage_TE + value_TE


def make_optimizer(cfg: PPOConfig) -> optax.GradientTransformation:
    """Adam behind a global-norm clip, with the learning rate kept in the state (adaptive, saved)."""

    def build(learning_rate: float) -> optax.GradientTransformation:
        return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(learning_rate))

    return optax.inject_hyperparams(build)(learning_rate=cfg.learning_rate)


def with_learning_rate(opt_state: Any, learning_rate: float | Array) -> Any:
    """`make_optimizer`'s state with its learning rate replaced."""
    old = opt_state.hyperparams["learning_rate"]
    return opt_state._replace(
        hyperparams={**opt_state.hyperparams, "learning_rate": jnp.asarray(learning_rate, old.dtype)}
    )


def _loss(
    models: tuple[Actor, Critic],
    mb: Batch,
    carry_B: tuple[Array, Array],
    old_log_std: Array,
    cfg: PPOConfig,
    action_mirror: Callable[[Array], Array] | None,
) -> tuple[Array, dict[str, Array]]:
    actor, critic = models
    means = jax.vmap(actor.sequence, in_axes=(1, 1, 0), out_axes=1)
    actor_carry_B, critic_carry_B = carry_B
    mean_TB = means(mb.actor_obs, mb.done, actor_carry_B)
    log_std = actor.log_std
    log_prob_TB = gaussian_log_prob(mean_TB, log_std, mb.action)
    ratio_TB = jnp.exp(log_prob_TB - mb.log_prob)
    adv_TB = mb.advantage
    if cfg.normalize_advantages:
        adv_TB = (adv_TB - adv_TB.mean()) / (adv_TB.std() + 1e-8)
    policy_loss = -jnp.mean(
        jnp.minimum(ratio_TB * adv_TB, jnp.clip(ratio_TB, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * adv_TB)
    )

    value_TB = critic.batch_sequence(mb.critic_obs, mb.done, critic_carry_B)
    value_err = (value_TB - mb.ret) ** 2
    if cfg.value_clip > 0:
        clipped = mb.value + jnp.clip(value_TB - mb.value, -cfg.value_clip, cfg.value_clip)
        value_err = jnp.maximum(value_err, (clipped - mb.ret) ** 2)
    value_loss = 0.5 * jnp.mean(value_err)

    entropy = gaussian_entropy(log_std)
    # KL(rollout policy ‖ current policy), exact for diagonal Gaussians
    kl_TB = jnp.sum(
        log_std
        - old_log_std
        + (jnp.exp(2 * old_log_std) + (mb.mean - mean_TB) ** 2) / (2 * jnp.exp(2 * log_std))
        - 0.5,
        axis=-1,
    )
    kl = jnp.mean(kl_TB)
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy + cfg.kl_coef * kl
    symmetry_loss = jnp.float32(0.0)
    if cfg.symmetry_loss_coef > 0 and action_mirror is not None and mb.actor_obs_mirror is not None:
        mirrored_TB = means(mb.actor_obs_mirror, mb.done, actor_carry_B)
        symmetry_loss = jnp.mean(jnp.sum(jnp.square(mirrored_TB - action_mirror(mean_TB)), axis=-1))
        loss = loss + cfg.symmetry_loss_coef * symmetry_loss
    metrics = {
        "loss/symmetry": symmetry_loss,
        "loss/policy": policy_loss,
        "loss/value": value_loss,
        "loss/total": loss,
        "policy/entropy": entropy,
        "policy/kl": kl,
        "policy/clip_fraction": jnp.mean(jnp.abs(ratio_TB - 1) > cfg.clip_eps),
    }
    return loss, metrics


def pick_envs(x: Array, slot_G: Int[Array, " G"], axis: int) -> Array:
    """From each group of M consecutive envs along `axis` (E = G·M), the env in slot `slot_G[g]`.

    Minibatches are stratified this way rather than drawn as one global permutation so that,
    with the envs split over devices in whole groups, a minibatch is gathered from each
    device's own envs: the gather is batched over the (split) group axis and moves no data
    between devices. Every minibatch still holds E/M envs and every env is in exactly one.
    """
    num_groups = slot_G.shape[0]
    grouped = x.reshape(*x.shape[:axis], num_groups, x.shape[axis] // num_groups, *x.shape[axis + 1 :])
    return jax.vmap(lambda g, s: jnp.take(g, s, axis=axis), in_axes=(axis, 0), out_axes=axis)(grouped, slot_G)


def minibatch_epochs(
    step: Callable[[C, Int[Array, " G"]], tuple[C, M]], carry: C, num_envs: int, cfg: PPOConfig, rng: PRNGKeyArray
) -> tuple[C, M]:
    """`cfg.num_epochs` passes of `cfg.num_minibatches` calls `carry, out = step(carry, slot_G)`.

    `slot_G` says which env of each group is in this minibatch (gather with `pick_envs`);
    the outputs come back stacked as (epoch, minibatch, ...).
    """
    per_mb = num_envs // cfg.num_minibatches
    # each group of M consecutive envs deals one env to each of the M minibatches
    deal = jax.vmap(lambda k: jax.random.permutation(k, cfg.num_minibatches))

    def epoch_step(carry: C, rng_epoch: PRNGKeyArray) -> tuple[C, M]:
        return jax.lax.scan(step, carry, deal(jax.random.split(rng_epoch, per_mb)).T)

    return jax.lax.scan(epoch_step, carry, jax.random.split(rng, cfg.num_epochs))


def update(
    actor: Actor,
    critic: Critic,
    opt_state: optax.OptState,
    batch: Batch,
    carry_E: tuple[Array, Array],
    old_log_std: Float[Array, " act"],
    rng: PRNGKeyArray,
    cfg: PPOConfig,
    optimizer: optax.GradientTransformation,
    action_mirror: Callable[[Array], Array] | None = None,
) -> tuple[Actor, Critic, optax.OptState, dict[str, Array]]:
    """`num_epochs` passes of `num_minibatches` gradient steps; returns the mean of each metric."""
    grad_fn = eqx.filter_value_and_grad(_loss, has_aux=True)
    # scan carries arrays only: the networks' static parts (activations) stay outside
    params, static = eqx.partition((actor, critic), eqx.is_inexact_array)

    def minibatch_step(carry: tuple, slot_G: Array) -> tuple[tuple, dict[str, Array]]:
        params, opt_state = carry
        models = eqx.combine(params, static)
        mb = jax.tree.map(lambda x: pick_envs(x, slot_G, 1), batch)
        carry_B = jax.tree.map(lambda c: pick_envs(c, slot_G, 0), carry_E)
        (_, metrics), grads = grad_fn(models, mb, carry_B, old_log_std, cfg, action_mirror)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        if cfg.adaptive_lr:
            lr = opt_state.hyperparams["learning_rate"]
            lr = jnp.where(metrics["policy/kl"] > 2 * cfg.desired_kl, lr / 1.5, lr)
            lr = jnp.where(metrics["policy/kl"] < cfg.desired_kl / 2, lr * 1.5, lr)
            opt_state = with_learning_rate(opt_state, jnp.clip(lr, *cfg.learning_rate_range))
        return (params, opt_state), metrics

    (params, opt_state), metrics = minibatch_epochs(minibatch_step, (params, opt_state), batch.done.shape[1], cfg, rng)
    models = eqx.combine(params, static)
    metrics = jax.tree.map(jnp.mean, metrics)
    metrics["policy/learning_rate"] = opt_state.hyperparams["learning_rate"]
    return models[0], models[1], opt_state, metrics
