"""Teacher–student distillation, DAgger-style: the student acts, the teacher labels the states it visits.

The student sees what the robot senses: the task's actor observations, noise included. The
teacher is a trained policy of the same robot that may see more: its observations are
looked up by name among the env's critic observations (clean, privileged) and then its actor
observations. Each iteration rolls the student out (its mean action: DAgger trains on the
states the student itself reaches), asks the teacher for its mean action at every step, and
regresses the student onto it: `num_epochs` passes of `num_minibatches` Adam steps over
whole per-env sequences, so that a recurrent student learns through its carry.

The student's critic learns alongside, the value of the student's own policy from its
rollouts' returns (as in PPO, minus the clipping): a fine-tune with PPO then starts from
a critic that knows the policy rather than from random values. The result is an ordinary
`LearnerState`, so its checkpoints evaluate, export, view and fine-tune like any other.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from ksim.engine.env import Env
from ksim.engine.rollout import RolloutState, rollout
from ksim.engine.state import ObsLayout, Transition
from ksim.rl.learner import LearnerConfig, LearnerState, adopt_if, all_finite, episode_metrics, value_targets
from ksim.rl.networks import Actor, Critic
from ksim.rl.policy import ActorPolicy, PolicyParams
from ksim.rl.ppo import minibatch_epochs, pick_envs


class DistillError(ValueError):
    """A teacher that this student cannot learn from, said in one line."""


@dataclass(frozen=True)
class Teacher:
    """A trained policy and the observations it was trained on (names in its input order)."""

    params: PolicyParams
    layout: ObsLayout

    def check(self, env: Env) -> None:
        """Raise a one-line error if `env` computes none of an observation the teacher needs."""
        known = dict(zip(env.actor_layout.names, env.actor_layout.sizes, strict=True))
        known |= dict(zip(env.critic_layout.names, env.critic_layout.sizes, strict=True))
        for name, size in zip(self.layout.names, self.layout.sizes, strict=True):
            if known.get(name) != size:
                raise DistillError(
                    f"the teacher observes {name!r} ({size}), which the student's task does not compute "
                    f"(it has {sorted(known)}); give the task that observation, e.g. as a critic observation"
                )

    def actions(self, traj: Transition) -> Float[Array, "T E act"]:
        """The teacher's mean action at every step of a student's trajectory.

        With an action prior, this is the residual over it, as is what the student learns: the
        two tasks are the same but for privileged inputs, so their priors (which read only the
        gait phase and the command) agree.
        """
        source = {**traj.obs, **traj.critic_obs}  # the clean (critic) version of a shared name wins
        obs_TE = self.params.obs_norm(self.layout.flatten({n: source[n] for n in self.layout.names}))
        act_TE, _ = jax.vmap(jax.vmap(lambda o: self.params.actor(o, self.params.actor.initial_carry())))(obs_TE)
        return act_TE


def make_distill_step(
    env: Env, cfg: LearnerConfig, teacher: Teacher
) -> Callable[[LearnerState, RolloutState], tuple[LearnerState, RolloutState, dict[str, Array]]]:
    """One DAgger iteration, `(learner, rollout) -> (learner, rollout, metrics)`, jitted with donated state.

    The teacher must be feed-forward (a recurrent teacher would need its own carry per env).
    """
    cfg.validate()
    teacher.check(env)
    optimizer = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate))
    student_policy = ActorPolicy.of(env, deterministic=True)

    def imitation_loss(actor: Actor, mb: dict[str, Array], carry_B: Array) -> Array:
        mean_TB = jax.vmap(actor.sequence, in_axes=(1, 1, 0), out_axes=1)(mb["obs"], mb["done"], carry_B)
        return jnp.mean(jnp.sum(jnp.square(mean_TB - mb["target"]), axis=-1))

    def value_loss(critic: Critic, mb: dict[str, Array], carry_B: Array) -> Array:
        value_TB = critic.batch_sequence(mb["critic_in"], mb["done"], carry_B)
        return 0.5 * jnp.mean(jnp.square(value_TB - mb["ret"]))

    # two optimisers, so that one global-norm clip does not let the critic's gradients shrink the actor's
    fits: tuple[Callable[..., tuple[Array, Any]], ...] = (
        eqx.filter_value_and_grad(imitation_loss),
        eqx.filter_value_and_grad(value_loss),
    )

    def step(learner: LearnerState, ro: RolloutState) -> tuple[LearnerState, RolloutState, dict[str, Array]]:
        rollout_rng, epoch_rng, rng = jax.random.split(learner.rng, 3)
        carry_E = (ro.policy_carry, ro.value_carry)
        ro, steps = rollout(env, student_policy, learner.policy_params, ro, rollout_rng, cfg.rollout_length)
        traj = steps.transition
        raw_TE = env.actor_layout.flatten(traj.obs)
        critic_raw_TE = env.critic_layout.flatten(traj.critic_obs)
        targets = value_targets(learner, env.critic_layout, traj, ro.env.critic_obs, carry_E[1], cfg)
        ro = eqx.tree_at(lambda r: r.value_carry, ro, targets.carry_E)
        data = {
            "obs": learner.actor_norm(raw_TE),
            "critic_in": targets.critic_in_TE,
            "done": traj.done,
            "target": teacher.actions(traj),
            "ret": targets.return_TE,
        }
        # the optimiser state is not kept across iterations: each one fits a fresh dataset
        params, static = eqx.partition((learner.actor, learner.critic), eqx.is_inexact_array)

        def minibatch(carry: tuple, slot_G: Array) -> tuple[tuple, tuple[Array, ...]]:
            params, opt_states = carry
            mb = {k: pick_envs(x, slot_G, 1) for k, x in data.items()}
            out, losses = [], []
            for fit, p, s, c, st in zip(fits, params, opt_states, carry_E, static, strict=True):
                loss, grads = fit(eqx.combine(p, st), mb, pick_envs(c, slot_G, 0))
                updates, s = optimizer.update(grads, s, p)
                out.append((eqx.apply_updates(p, updates), s))
                losses.append(loss)
            return (tuple(p for p, _ in out), tuple(s for _, s in out)), tuple(losses)

        opt_states = tuple(optimizer.init(p) for p in params)
        (params, _), (imitation, value) = minibatch_epochs(
            minibatch, (params, opt_states), env.num_envs, cfg, epoch_rng
        )
        actor_norm = learner.actor_norm.update(raw_TE.reshape(-1, raw_TE.shape[-1]))
        critic_norm = learner.critic_norm.update(critic_raw_TE.reshape(-1, critic_raw_TE.shape[-1]))
        health = {
            "health/loss_finite": jnp.all(jnp.isfinite(imitation)) & jnp.all(jnp.isfinite(value)),
            "health/params_finite": all_finite(params),
            "health/obs_stats_finite": all_finite((actor_norm, critic_norm)),
        }
        # a non-finite fit is not adopted: the runner stops with the last good state
        actor, critic = eqx.combine(params, static)
        # the student explores as its teacher ended up doing, should PPO fine-tune it
        actor = actor.with_log_std(teacher.params.actor.log_std)
        actor, critic, actor_norm, critic_norm = adopt_if(
            jnp.all(jnp.stack(list(health.values()))),
            (actor, critic, actor_norm, critic_norm),
            (learner.actor, learner.critic, learner.actor_norm, learner.critic_norm),
        )
        env_steps = learner.env_steps + cfg.rollout_length * env.num_envs
        learner = eqx.tree_at(
            lambda s: (s.actor, s.critic, s.actor_norm, s.critic_norm, s.iteration, s.env_steps, s.rng),
            learner,
            (actor, critic, actor_norm, critic_norm, learner.iteration + 1, env_steps, rng),
        ).advance_average(cfg.policy_average_iters)
        metrics = episode_metrics(steps, env.ctrl_dt) | {
            "distill/loss_first_epoch": imitation[0].mean(),
            "distill/loss_last_epoch": imitation[-1].mean(),
            "loss/value": value.mean(),
            "value/mean": targets.value_TE.mean(),
        }
        return learner, ro, metrics | health

    return eqx.filter_jit(step, donate="all")
