"""The learner's state and the jitted training step: rollout, then PPO update.

`train_step(learner, env_state, rng)` is one iteration. It is jitted as a whole with its
state buffers donated, on both backends: on `mjx` everything is one XLA program; on
`mujoco` the physics inside it are host callbacks into `mujoco.batch`, and everything
else (policy, rewards, update) stays compiled.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ksim.engine.env import Env
from ksim.engine.state import EnvState, Transition
from ksim.rl.networks import MLPActor, MLPCritic, Policy, gaussian_log_prob
from ksim.rl.normalization import RunningNorm
from ksim.rl.ppo import Batch, PPOConfig, compute_gae, make_optimizer, update


def flatten_obs(obs: dict[str, Array], batch_ndim: int) -> Array:
    """Concatenate named observations (in name order) into one feature vector per batch element."""
    leaves = [x.reshape(x.shape[:batch_ndim] + (-1,)) for x in jax.tree.leaves(obs)]
    return jnp.concatenate(leaves, axis=-1)


class LearnerState(eqx.Module):
    """Everything a checkpoint holds: models, optimiser, normalisers, counters and RNG."""

    actor: Policy
    critic: MLPCritic
    opt_state: optax.OptState
    actor_norm: RunningNorm
    critic_norm: RunningNorm
    iteration: Int[Array, ""]
    env_steps: Float[Array, ""]  # float: int32 overflows after 2^31 steps
    rng: PRNGKeyArray


class _Collected(eqx.Module):
    """What the rollout half of an iteration hands to the update half."""

    batch: Batch
    carry_E: Array  # the policy carries at the start of the rollout
    raw_obs: tuple[Array, Array]  # un-normalised (actor, critic) observations, for the normalisers
    update_rng: PRNGKeyArray
    rng: PRNGKeyArray
    metrics: dict[str, Array]


class RolloutState(eqx.Module):
    """What lives across iterations on the env side; rebuilt from a reset on resume."""

    env: EnvState
    policy_carry: Float[Array, "E carry"]
    episode_return: Float[Array, " E"]


def init_learner(env: Env, cfg: PPOConfig, rng: PRNGKeyArray) -> LearnerState:
    """Fresh models sized from the env's observations (no hard-coded sizes)."""
    state = jax.eval_shape(env.reset, rng)
    obs_size = flatten_obs(jax.tree.map(lambda s: jnp.zeros(s.shape), state.obs), 1).shape[-1]
    critic_size = flatten_obs(jax.tree.map(lambda s: jnp.zeros(s.shape), state.critic_obs), 1).shape[-1]
    actor_key, critic_key, rng = jax.random.split(rng, 3)
    actor = MLPActor(obs_size, env.model.nu, cfg.actor_hidden, cfg.init_action_std, actor_key)
    critic = MLPCritic(critic_size, cfg.critic_hidden, critic_key)
    opt_state = make_optimizer(cfg).init(eqx.filter((actor, critic), eqx.is_inexact_array))
    return LearnerState(
        actor=actor,
        critic=critic,
        opt_state=opt_state,
        actor_norm=RunningNorm.init(obs_size),
        critic_norm=RunningNorm.init(critic_size),
        iteration=jnp.int32(0),
        env_steps=jnp.float32(0.0),
        rng=rng,
    )


def init_rollout(env: Env, learner: LearnerState, rng: PRNGKeyArray) -> RolloutState:
    """Reset every env and the policy carries."""
    carry0 = learner.actor.initial_carry()
    carry_E = jnp.broadcast_to(carry0, (env.num_envs, *carry0.shape))
    return RolloutState(env.reset(rng), jnp.array(carry_E), jnp.zeros(env.num_envs))


def act(
    learner: LearnerState, obs_E: dict[str, Array], carry_E: Array, rng: PRNGKeyArray | None
) -> tuple[Float[Array, "E act"], Float[Array, "E act"], Array]:
    """(action, mean, next carry) for a batch; `rng=None` acts deterministically (the mean)."""
    x_E = learner.actor_norm(flatten_obs(obs_E, 1))
    mean_E, carry_E = jax.vmap(learner.actor)(x_E, carry_E)
    if rng is None:
        return mean_E, mean_E, carry_E
    action_E = mean_E + jnp.exp(learner.actor.log_std) * jax.random.normal(rng, mean_E.shape)
    return action_E, mean_E, carry_E


def episode_metrics(traj: Transition, return_TE: Array, ctrl_dt: float) -> dict[str, Array]:
    """Per-term mean reward per step, episode length/return and termination shares, over ended episodes."""
    metrics = {f"reward/{k}": v.mean() for k, v in traj.reward_terms.items()}
    metrics["reward/total"] = traj.reward.mean()
    done = traj.done.astype(jnp.float32)
    num_done = jnp.maximum(done.sum(), 1.0)
    metrics["episode/num_ended"] = done.sum()
    metrics["episode/length_s"] = jnp.sum(traj.episode_step * done) * ctrl_dt / num_done
    metrics["episode/return"] = jnp.sum(return_TE * done) / num_done
    metrics["episode/failure_rate"] = jnp.sum(traj.terminated) / num_done
    for name, hit in traj.termination_reasons.items():
        metrics[f"termination/{name}"] = jnp.sum(hit & traj.done) / num_done
    return metrics


def make_train_step(
    env: Env, cfg: PPOConfig, on_rollout_done: Callable[[Array], None] | None = None
) -> Callable[[LearnerState, RolloutState], tuple[LearnerState, RolloutState, dict[str, Array]]]:
    """The jitted, buffer-donating iteration: `(learner, rollout) -> (learner, rollout, metrics)`.

    On `mjx` the iteration is one XLA program. On `mujoco` it is two, rollout then update,
    because JAX does not write programs containing host callbacks to the persistent
    compilation cache: split, the update is cached and a second launch compiles only the
    rollout.
    `on_rollout_done`, if given, is called on the host once the rollout's results exist
    (the runner records the time there to split rollout from update time).
    """
    cfg.validate()
    split_update = env.backend.name == "mujoco"
    optimizer = make_optimizer(cfg)
    step_E = env.step_batch

    def rollout(learner: LearnerState, ro: RolloutState, rng: PRNGKeyArray) -> tuple[RolloutState, tuple]:
        def env_step(ro: RolloutState, rng_t: PRNGKeyArray) -> tuple[RolloutState, tuple]:
            action_E, mean_E, carry_E = act(learner, ro.env.obs, ro.policy_carry, rng_t)
            log_prob_E = gaussian_log_prob(mean_E, learner.actor.log_std, action_E)
            env_state, tr = step_E(ro.env, action_E)
            carry_E = jnp.where(tr.done[:, None], learner.actor.initial_carry(), carry_E)
            ret_E = ro.episode_return + tr.reward
            next_ro = RolloutState(env_state, carry_E, jnp.where(tr.done, 0.0, ret_E))
            return next_ro, (tr, log_prob_E, mean_E, ret_E)

        return jax.lax.scan(env_step, ro, jax.random.split(rng, cfg.rollout_length))

    def collect(learner: LearnerState, ro: RolloutState) -> tuple[RolloutState, _Collected]:
        rollout_rng, update_rng, rng = jax.random.split(learner.rng, 3)
        carry_E = ro.policy_carry
        ro, (traj, log_prob_TE, mean_TE, return_TE) = rollout(learner, ro, rollout_rng)
        if on_rollout_done is not None:
            jax.debug.callback(on_rollout_done, traj.reward.sum())

        critic_value = jax.vmap(learner.critic)
        actor_obs_TE = flatten_obs(traj.obs, 2)
        critic_obs_TE = flatten_obs(traj.critic_obs, 2)
        critic_in_TE = learner.critic_norm(critic_obs_TE)
        value_TE = jax.vmap(critic_value)(critic_in_TE)
        value_last_E = critic_value(learner.critic_norm(flatten_obs(ro.env.critic_obs, 1)))
        # a truncated step still has a future: fold γ·V(state reached) into its reward
        next_value_TE = jax.vmap(critic_value)(learner.critic_norm(flatten_obs(traj.next_critic_obs, 2)))
        reward_TE = traj.reward + cfg.gamma * next_value_TE * traj.truncated
        advantage_TE, return_target_TE = compute_gae(
            reward_TE, value_TE, value_last_E, traj.done, cfg.gamma, cfg.gae_lambda
        )
        batch = Batch(
            actor_obs=learner.actor_norm(actor_obs_TE),
            critic_obs=critic_in_TE,
            action=traj.action,
            log_prob=log_prob_TE,
            mean=mean_TE,
            done=traj.done,
            value=value_TE,
            advantage=advantage_TE,
            ret=return_target_TE,
        )
        metrics = episode_metrics(traj, return_TE, env.ctrl_dt)
        metrics["value/mean"] = value_TE.mean()
        raw_obs = (actor_obs_TE.reshape(-1, actor_obs_TE.shape[-1]), critic_obs_TE.reshape(-1, critic_obs_TE.shape[-1]))
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
        )
        metrics |= c.metrics
        metrics["policy/action_std"] = jnp.mean(jnp.exp(actor.log_std))
        # statistics of this rollout take effect from the next one, so rollout and update agree
        learner = LearnerState(
            actor=actor,
            critic=critic,
            opt_state=opt_state,
            actor_norm=learner.actor_norm.update(c.raw_obs[0]),
            critic_norm=learner.critic_norm.update(c.raw_obs[1]),
            iteration=learner.iteration + 1,
            env_steps=learner.env_steps + cfg.rollout_length * env.num_envs,
            rng=c.rng,
        )
        return learner, metrics

    if not split_update:

        def train_step(learner: LearnerState, ro: RolloutState) -> tuple[LearnerState, RolloutState, dict[str, Array]]:
            ro, collected = collect(learner, ro)
            learner, metrics = learn(learner, collected)
            return learner, ro, metrics

        return eqx.filter_jit(train_step, donate="all")

    collect_jit = eqx.filter_jit(collect, donate="all-except-first")
    learn_jit = eqx.filter_jit(learn, donate="all")

    def split_step(learner: LearnerState, ro: RolloutState) -> tuple[LearnerState, RolloutState, dict[str, Array]]:
        ro, collected = collect_jit(learner, ro)
        learner, metrics = learn_jit(learner, collected)
        return learner, ro, metrics

    return split_step
