"""The learner's state and the jitted training step: a rollout, then the PPO update.

`make_train_step(env, cfg)` gives one iteration, `(learner, rollout) -> (learner, rollout,
metrics)`, with its state buffers donated. An update is adopted only if its loss, its
parameters (with the optimiser state) and the observation statistics are all finite;
otherwise the learner stays as it was and the `health/*_finite` metrics say what broke.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ksim.config import opt
from ksim.engine.env import Env, Mirrors
from ksim.engine.rollout import RolloutState, RolloutStep, init_rollout, rollout
from ksim.engine.state import ObsLayout, Transition
from ksim.rl.networks import Actor, Critic, Mirror, NetworkConfig, make_actor, make_critic
from ksim.rl.normalization import RunningNorm
from ksim.rl.policy import ActorPolicy, PolicyParams
from ksim.rl.ppo import Batch, PPOConfig, compute_gae, make_optimizer, update
from ksim.rl.sharding import ENVS, Cluster, replicate, sharded_init

T = TypeVar("T")

# what each health flag covers, in the words the runner reports
HEALTH = {
    "health/loss_finite": "loss",
    "health/params_finite": "parameters or optimiser state",
    "health/obs_stats_finite": "observation statistics",
}


@dataclass(kw_only=True)
class LearnerConfig(PPOConfig, NetworkConfig):
    """What the learner needs: PPO's numbers, the networks' shapes and the policy average."""

    policy_average_iters: int = opt(
        0, "eval, videos and export act with the policy's weights averaged over ~this many iterations (0: off)", ge=0
    )


class LearnerState(eqx.Module):
    """Everything a checkpoint holds: models, optimiser, normalisers, counters and RNG."""

    actor: Actor
    critic: Critic
    opt_state: optax.OptState
    actor_norm: RunningNorm
    critic_norm: RunningNorm
    iteration: Int[Array, ""]
    env_steps: Float[Array, ""]  # float: int32 overflows after 2^31 steps
    rng: PRNGKeyArray
    # an exponential moving average of `policy_params` (None: off). Rollouts act with the live
    # policy; the average, which no longer jitters from update to update, is the one handed out
    averaged: PolicyParams | None = None

    @property
    def policy_params(self) -> PolicyParams:
        """What the actor policy acts with in training rollouts."""
        return PolicyParams(self.actor, self.actor_norm)

    @property
    def eval_params(self) -> PolicyParams:
        """What eval, videos, export and distillation act with: the averaged policy, if kept."""
        return self.policy_params if self.averaged is None else self.averaged

    def with_average(self, on: bool) -> "LearnerState":
        """The state with an average (started from the live policy where it had none), or without one."""
        # a copy: the live arrays and the average are donated to the train step side by side
        start = self.averaged if self.averaged is not None else _copy_arrays(self.policy_params)
        averaged = start if on else None
        return eqx.tree_at(lambda s: s.averaged, self, averaged, is_leaf=lambda x: x is None)

    def advance_average(self, iters: int) -> "LearnerState":
        """The average moved one update towards the live policy (an EMA over ~`iters` updates), if kept."""
        if self.averaged is None:
            return self
        return eqx.tree_at(lambda s: s.averaged, self, moving_average(self.averaged, self.policy_params, iters))


class _Collected(eqx.Module):
    """What the rollout half of an iteration hands to the update half."""

    batch: Batch
    carry_E: tuple[Array, Array]  # the (actor, critic) carries at the start of the rollout
    raw_obs: tuple[Array, Array]  # un-normalised (actor, critic) observations, for the normalisers
    update_rng: PRNGKeyArray
    rng: PRNGKeyArray
    metrics: dict[str, Array]


def init_learner(env: Env, cfg: LearnerConfig, rng: PRNGKeyArray) -> LearnerState:
    """Fresh models sized from the env's observation layouts (no hard-coded sizes)."""
    actor_size, critic_size = env.actor_layout.size, env.critic_layout.size
    actor_key, critic_key, rng = jax.random.split(rng, 3)
    mirrors = None
    if cfg.actor_mirrored:
        m = env.mirrors()
        mirrors = (Mirror.of(m.actor_obs.perm, m.actor_obs.sign), Mirror.of(m.action.perm, m.action.sign))
    actor = make_actor(cfg, actor_size, env.model.nu, actor_key, mirrors)
    critic = make_critic(cfg, critic_size, critic_key)
    opt_state = make_optimizer(cfg).init(eqx.filter((actor, critic), eqx.is_inexact_array))
    return LearnerState(
        actor=actor,
        critic=critic,
        opt_state=opt_state,
        actor_norm=RunningNorm.init(actor_size),
        critic_norm=RunningNorm.init(critic_size),
        iteration=jnp.int32(0),
        env_steps=jnp.float32(0.0),
        rng=rng,
    ).with_average(cfg.policy_average_iters > 0)


def start_rollout(env: Env, learner: LearnerState, rng: PRNGKeyArray, cluster: Cluster | None = None) -> RolloutState:
    """Reset every env for training with `learner`'s policy (split over `cluster`'s devices if given)."""
    value_carry = learner.critic.initial_carry()
    if cluster is None:
        return init_rollout(env, ActorPolicy.of(env), learner.policy_params, rng, value_carry)
    params, static = eqx.partition(learner.policy_params, eqx.is_array)
    init = sharded_init(
        cluster,
        lambda p, r: init_rollout(env, ActorPolicy.of(env), eqx.combine(p, static), r, value_carry),
        per_process=_per_process(env, cluster),
    )
    return init(params, replicate(cluster, rng))


def _per_process(env: Env, cluster: Cluster | None) -> bool:
    # host-callback physics see only their own process's envs: the rollout runs under shard_map
    return cluster is not None and env.backend.host_callbacks and cluster.num_devices > 1


def episode_metrics(steps: RolloutStep, ctrl_dt: float) -> dict[str, Array]:
    """Per-step mean and per-episode sum of each reward term, episode length and termination shares."""
    traj = steps.transition
    metrics = {f"reward/{k}": v.mean() for k, v in traj.reward_terms.items()}
    metrics["reward/total"] = traj.reward.mean()
    done = traj.done.astype(jnp.float32)
    num_done = jnp.maximum(done.sum(), 1.0)
    metrics |= {f"episode_reward/{k}": jnp.sum(v * done) / num_done for k, v in steps.episode_returns.items()}
    metrics["episode/num_ended"] = done.sum()
    metrics["episode/length_s"] = jnp.sum(traj.episode_step * done) * ctrl_dt / num_done
    metrics["episode/failure_rate"] = jnp.sum(traj.terminated) / num_done
    for name, hit in traj.termination_reasons.items():
        metrics[f"termination/{name}"] = jnp.sum(hit & traj.done) / num_done
    return metrics


class ValueTargets(eqx.Module):
    """The critic's view of one rollout."""

    critic_in_TE: Float[Array, "T E cobs"]  # normalised critic observations
    value_TE: Float[Array, "T E"]
    advantage_TE: Float[Array, "T E"]
    return_TE: Float[Array, "T E"]
    carry_E: Array  # the critic's carry after the rollout, for the next one


def value_targets(
    learner: LearnerState,
    layout: ObsLayout,
    traj: Transition,
    critic_obs_f: dict[str, Array],
    carry_E: Array,
    cfg: PPOConfig,
) -> ValueTargets:
    """Values, GAE advantages and returns of a rollout `traj` (T, E) that ended in `critic_obs_f`.

    `carry_E` is the critic's carry at the rollout's start; a truncated step still has a
    future, so γ·V(the state it reached) is folded into its reward.
    """
    critic_in_TE = learner.critic_norm(layout.flatten(traj.critic_obs))
    reached_in_TE = learner.critic_norm(layout.flatten(traj.critic_obs_t_plus_1))
    value_TE, value_t_plus_1_TE, carry_E = learner.critic.batch_rollout_values(
        critic_in_TE, reached_in_TE, traj.done, carry_E
    )
    value_t_f_E = jax.vmap(learner.critic)(learner.critic_norm(layout.flatten(critic_obs_f)), carry_E)[0]
    reward_TE = traj.reward + cfg.gamma * value_t_plus_1_TE * traj.truncated
    advantage_TE, return_TE = compute_gae(reward_TE, value_TE, value_t_f_E, traj.done, cfg.gamma, cfg.gae_lambda)
    return ValueTargets(critic_in_TE, value_TE, advantage_TE, return_TE, carry_E)


def _with_mirror(
    learner: LearnerState,
    batch: Batch,
    carry_E: tuple[Array, Array],
    actor_obs_m_TE: Array,
    critic_obs_m_TE: Array,
    mirror: Mirrors,
    cfg: LearnerConfig,
) -> tuple[Batch, tuple[Array, Array]]:
    """`batch` with its mirror image: for the mirror loss, and (with augmentation) as extra envs.

    `*_obs_m_TE` are the mirror images of the raw observations.
    """
    obs_m_TE = learner.actor_norm(actor_obs_m_TE)
    batch = eqx.tree_at(lambda b: b.actor_obs_mirror, batch, obs_m_TE, is_leaf=lambda x: x is None)
    if not cfg.symmetry_augmentation:
        return batch, carry_E
    # The mirrored steps keep the rollout's log-probabilities, means (mirrored) and values, as if the
    # rollout policy were already symmetric. Where it is not, a mirrored action is unlikely under the
    # current policy, its ratio is small and so is its gradient: recomputing the old log-probability
    # on the mirrored observation instead gave ratios of exp(±50) and non-finite updates.
    mirrored = Batch(
        actor_obs=obs_m_TE,
        critic_obs=learner.critic_norm(critic_obs_m_TE),
        action=mirror.action(batch.action),
        log_prob=batch.log_prob,
        mean=mirror.action(batch.mean),
        done=batch.done,
        value=batch.value,
        advantage=batch.advantage,
        ret=batch.ret,
        actor_obs_mirror=batch.actor_obs,
    )
    both = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), batch, mirrored)
    return both, jax.tree.map(lambda c: jnp.concatenate([c, c]), carry_E)


def _sharded_collect(
    collect: Callable[[LearnerState, RolloutState, Array], tuple[RolloutState, _Collected]], cluster: Cluster
) -> Callable[[LearnerState, RolloutState], tuple[RolloutState, _Collected]]:
    """`collect` under `shard_map`: each device rolls out its own envs; the results are global arrays."""
    env_axis = P(ENVS)
    # (T, E, ...) trajectories split on E; the normalisers' rows are only counted, so their order is free
    spec = _Collected(batch=P(None, ENVS), carry_E=env_axis, raw_obs=env_axis, update_rng=P(), rng=P(), metrics=P())  # type: ignore[arg-type]

    def run(learner: LearnerState, ro: RolloutState) -> tuple[RolloutState, _Collected]:
        dynamic, static = eqx.partition(learner, eqx.is_array)

        def local(dynamic: LearnerState, ro: RolloutState) -> tuple[RolloutState, _Collected]:
            return collect(eqx.combine(dynamic, static), ro, jax.lax.axis_index(ENVS))

        sharded = jax.shard_map(
            local, mesh=cluster.mesh, in_specs=(P(), env_axis), out_specs=(env_axis, spec), check_vma=False
        )
        return sharded(dynamic, ro)

    return run


def adopt_if(ok: Array, new: T, old: T) -> T:
    """`new` where `ok` holds, else `old`, array by array (the static parts are `new`'s)."""
    new_arrays, static = eqx.partition(new, eqx.is_array)
    old_arrays = eqx.filter(old, eqx.is_array)
    return eqx.combine(jax.tree.map(lambda a, b: jnp.where(ok, a, b), new_arrays, old_arrays), static)


def _copy_arrays(tree: T) -> T:
    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.tree.map(jnp.copy, arrays), static)


def moving_average(average: T, new: T, iters: int) -> T:
    """One step of an exponential moving average over ~`iters` steps, on the float arrays of `average`."""
    averaged, static = eqx.partition(average, eqx.is_inexact_array)
    step = jax.tree.map(lambda a, b: a + (b - a) / iters, averaged, eqx.filter(new, eqx.is_inexact_array))
    return eqx.combine(step, static)


def all_finite(tree: object) -> Array:
    """Whether every float array in `tree` is free of NaN and inf."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]
    return jnp.all(jnp.stack(leaves))


def make_train_step(
    env: Env,
    cfg: LearnerConfig,
    on_rollout_done: Callable[[Array], None] | None = None,
    cluster: Cluster | None = None,
) -> Callable[[LearnerState, RolloutState], tuple[LearnerState, RolloutState, dict[str, Array]]]:
    """The jitted, buffer-donating iteration: `(learner, rollout) -> (learner, rollout, metrics)`.

    One XLA program, unless the backend's physics are host callbacks: JAX never writes such a
    program to its persistent compile cache, so there the update is a second program, which is
    cached, and a second launch compiles only the rollout.
    `on_rollout_done`, if given, is called on the host once the rollout's results exist
    (the runner records the time there to split rollout from update time).
    With a `cluster`, the rollout state is split over its devices (`ksim.rl.sharding`); with
    host-callback physics `env` is then this process's share of the envs.
    """
    cfg.validate()
    optimizer = make_optimizer(cfg)
    policy, critic_layout = ActorPolicy.of(env), env.critic_layout
    # a mirrored actor needs the normalisers to see both halves (its mirror acts on normalised obs)
    mirror = env.mirrors() if cfg.symmetry_augmentation or cfg.symmetry_loss_coef > 0 or cfg.actor_mirrored else None
    per_process = _per_process(env, cluster)
    total_envs = env.num_envs * (cluster.num_devices if per_process and cluster else 1)

    def collect(learner: LearnerState, ro: RolloutState, shard: Array | None = None) -> tuple[RolloutState, _Collected]:
        rollout_rng, update_rng, rng = jax.random.split(learner.rng, 3)
        if shard is not None:  # each device's envs draw their own randomness
            rollout_rng = jax.random.fold_in(rollout_rng, shard)
        carry_E = (ro.policy_carry, ro.value_carry)
        ro, steps = rollout(env, policy, learner.policy_params, ro, rollout_rng, cfg.rollout_length)
        traj = steps.transition
        if on_rollout_done is not None:
            jax.debug.callback(on_rollout_done, traj.reward.sum())

        actor_obs_TE = env.actor_layout.flatten(traj.obs)
        critic_obs_TE = critic_layout.flatten(traj.critic_obs)
        targets = value_targets(learner, critic_layout, traj, ro.env.critic_obs, carry_E[1], cfg)
        ro = eqx.tree_at(lambda r: r.value_carry, ro, targets.carry_E)
        # PPO learns the residual over the action prior: a fixed shift of the Gaussian's mean and
        # sample leaves its log-density as it was
        prior_TE = None if env.prior is None else env.prior(actor_obs_TE)
        action_TE, mean_TE = (
            (traj.action, steps.mean) if prior_TE is None else (traj.action - prior_TE, steps.mean - prior_TE)
        )
        batch = Batch(
            actor_obs=learner.actor_norm(actor_obs_TE),
            critic_obs=targets.critic_in_TE,
            action=action_TE,
            log_prob=steps.log_prob,
            mean=mean_TE,
            done=traj.done,
            value=targets.value_TE,
            advantage=targets.advantage_TE,
            ret=targets.return_TE,
        )
        metrics = episode_metrics(steps, env.ctrl_dt) | {
            "value/mean": targets.value_TE.mean(),
            "curriculum/level": ro.env.level.mean(),
        }
        if mirror is not None:
            actor_obs_m_TE, critic_obs_m_TE = mirror.actor_obs(actor_obs_TE), mirror.critic_obs(critic_obs_TE)
            batch, carry_E = _with_mirror(learner, batch, carry_E, actor_obs_m_TE, critic_obs_m_TE, mirror, cfg)
            # the normalisers see both halves, so their statistics are mirror-symmetric too
            actor_obs_TE = jnp.concatenate([actor_obs_TE, actor_obs_m_TE], axis=1)
            critic_obs_TE = jnp.concatenate([critic_obs_TE, critic_obs_m_TE], axis=1)
        raw_obs = (actor_obs_TE.reshape(-1, actor_obs_TE.shape[-1]), critic_obs_TE.reshape(-1, critic_obs_TE.shape[-1]))
        if shard is not None:  # every device's envs are the same number: the mean of means is the mean
            metrics = jax.lax.pmean(metrics, ENVS)
        return ro, _Collected(batch, carry_E, raw_obs, update_rng, rng, metrics)

    def learn(learner: LearnerState, c: _Collected) -> tuple[LearnerState, dict[str, Array]]:
        actor, critic, opt_state, metrics = update(
            learner.actor,
            learner.critic,
            learner.opt_state,
            c.batch,
            c.carry_E,
            learner.actor.log_std,
            c.update_rng,
            cfg,
            optimizer,
            None if mirror is None else mirror.action,
        )
        metrics |= c.metrics
        metrics["policy/action_std"] = jnp.mean(jnp.exp(actor.log_std))
        # statistics of this rollout take effect from the next one, so rollout and update agree
        updated = LearnerState(
            actor=actor,
            critic=critic,
            opt_state=opt_state,
            actor_norm=learner.actor_norm if cfg.freeze_obs_norm else learner.actor_norm.update(c.raw_obs[0]),
            critic_norm=learner.critic_norm if cfg.freeze_obs_norm else learner.critic_norm.update(c.raw_obs[1]),
            iteration=learner.iteration + 1,
            env_steps=learner.env_steps + cfg.rollout_length * total_envs,
            rng=c.rng,
            averaged=learner.averaged,
        ).advance_average(cfg.policy_average_iters)
        health = {
            "health/loss_finite": jnp.isfinite(metrics["loss/total"]),
            "health/params_finite": all_finite((actor, critic, opt_state)),
            "health/obs_stats_finite": all_finite((updated.actor_norm, updated.critic_norm)),
        }
        return adopt_if(jnp.all(jnp.stack(list(health.values()))), updated, learner), metrics | health

    if not env.backend.host_callbacks:

        def train_step(learner: LearnerState, ro: RolloutState) -> tuple[LearnerState, RolloutState, dict[str, Array]]:
            ro, collected = collect(learner, ro)
            learner, metrics = learn(learner, collected)
            if cluster is not None:  # keep each env's state on its device from one iteration to the next
                ro = jax.lax.with_sharding_constraint(ro, cluster.envs)
            return learner, ro, metrics

        return eqx.filter_jit(train_step, donate="all")

    local_or_all = _sharded_collect(collect, cluster) if per_process and cluster is not None else collect
    collect_jit = eqx.filter_jit(local_or_all, donate="all-except-first")
    learn_jit = eqx.filter_jit(learn, donate="all")

    def split_step(learner: LearnerState, ro: RolloutState) -> tuple[LearnerState, RolloutState, dict[str, Array]]:
        ro, collected = collect_jit(learner, ro)
        learner, metrics = learn_jit(learner, collected)
        return learner, ro, metrics

    return split_step
