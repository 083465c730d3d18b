"""Teacher–student distillation, DAgger-style: the student acts, the teacher labels the states it visits.

The student sees what the robot senses: the task's actor observations, noise included. The
teacher is a trained policy of the same robot that may see more: its observations are
looked up by name among the env's critic observations (clean, privileged) and then its actor
observations. Each iteration rolls the student out (its mean action: DAgger trains on the
states the student itself reaches), asks the teacher for its mean action at every step, and
regresses the student onto it: `num_epochs` passes of `num_minibatches` Adam steps over
whole per-env sequences, so that a recurrent student learns through its carry.

The result is an ordinary `LearnerState` (the critic is carried along untouched), so its
checkpoints evaluate, export, view and fine-tune with PPO like any other.
"""

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from ksim.engine.env import Env
from ksim.engine.rollout import RolloutState, rollout
from ksim.engine.state import ObsLayout, Transition
from ksim.rl.learner import LearnerConfig, LearnerState, adopt_if, all_finite, episode_metrics
from ksim.rl.networks import Actor
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

    def loss(actor: Actor, obs_TB: Array, done_TB: Array, carry_B: Array, target_TB: Array) -> Array:
        mean_TB = jax.vmap(actor.sequence, in_axes=(1, 1, 0), out_axes=1)(obs_TB, done_TB, carry_B)
        return jnp.mean(jnp.sum(jnp.square(mean_TB - target_TB), axis=-1))

    grad_fn = eqx.filter_value_and_grad(loss)

    def step(learner: LearnerState, ro: RolloutState) -> tuple[LearnerState, RolloutState, dict[str, Array]]:
        rollout_rng, epoch_rng, rng = jax.random.split(learner.rng, 3)
        carry_E = ro.policy_carry
        ro, steps = rollout(env, student_policy, learner.policy_params, ro, rollout_rng, cfg.rollout_length)
        traj = steps.transition
        raw_TE = env.actor_layout.flatten(traj.obs)
        obs_TE = learner.actor_norm(raw_TE)
        target_TE = teacher.actions(traj)
        # the optimiser state is not kept across iterations: each one fits a fresh dataset
        params, static = eqx.partition(learner.actor, eqx.is_inexact_array)

        def minibatch(carry: tuple, slot_G: Array) -> tuple[tuple, Array]:
            params, opt_state = carry
            obs_TB, done_TB, target_TB = (pick_envs(x, slot_G, 1) for x in (obs_TE, traj.done, target_TE))
            value, grads = grad_fn(
                eqx.combine(params, static), obs_TB, done_TB, pick_envs(carry_E, slot_G, 0), target_TB
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (eqx.apply_updates(params, updates), opt_state), value

        (params, _), losses = minibatch_epochs(
            minibatch, (params, optimizer.init(params)), env.num_envs, cfg, epoch_rng
        )
        actor_norm = learner.actor_norm.update(raw_TE.reshape(-1, raw_TE.shape[-1]))
        health = {
            "health/loss_finite": jnp.all(jnp.isfinite(losses)),
            "health/params_finite": all_finite(params),
            "health/obs_stats_finite": all_finite(actor_norm),
        }
        # a non-finite fit is not adopted: the runner stops with the last good state
        actor, actor_norm = adopt_if(
            jnp.all(jnp.stack(list(health.values()))),
            (eqx.combine(params, static), actor_norm),
            (learner.actor, learner.actor_norm),
        )
        learner = eqx.tree_at(
            lambda s: (s.actor, s.actor_norm, s.iteration, s.env_steps, s.rng),
            learner,
            (actor, actor_norm, learner.iteration + 1, learner.env_steps + cfg.rollout_length * env.num_envs, rng),
        )
        metrics = episode_metrics(steps, env.ctrl_dt) | {
            "distill/loss_first_epoch": losses[0].mean(),
            "distill/loss_last_epoch": losses[-1].mean(),
        }
        return learner, ro, metrics | health

    return eqx.filter_jit(step, donate="all")
