"""Measuring a policy (`action=eval`): survival, episode length and tracking errors over many episodes."""

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from ksim.components import FootContact
from ksim.deploy import summary
from ksim.engine.env import Env
from ksim.engine.rollout import Policy, RolloutState, RolloutStep, init_rollout, rollout
from ksim.runner.profiling import profiled


def episodes(
    env: Env, policy: Policy, num_steps: int, record: Callable[[RolloutState, RolloutStep], Any], name: str
) -> Callable[[Any, PRNGKeyArray], Any]:
    """A compiled `(params, rng) -> recorded (T, E, ...)`: reset every env, then act for `num_steps`.

    The policy's params are an argument, so one compilation serves every checkpoint. A
    curriculum runs at its full difficulty (level 1).
    """

    def run(params: Any, rng: PRNGKeyArray) -> Any:
        reset_rng, rollout_rng = jax.random.split(rng)
        state = init_rollout(env, policy, params, reset_rng)
        state = eqx.tree_at(lambda s: s.env.level, state, jnp.ones(env.num_envs))  # full difficulty
        return rollout(env, policy, params, state, rollout_rng, num_steps, record)[1]

    return profiled(name, eqx.filter_jit(run))


def measure(env: Env, policy: Policy, params: Any, seconds: float, rng: PRNGKeyArray) -> dict[str, float]:
    """Over each env's first episode (up to `seconds`): survival rate, mean length, tracking errors and feet."""
    num_steps = math.ceil(seconds / env.ctrl_dt)
    base = env.index.base
    tracks_velocity = base is not None and "velocity" in [c.name for c in env.commands]
    feet = next((o for o in env.observations + env.critic_observations if isinstance(o, FootContact)), None)

    def record(state_t: RolloutState, step: RolloutStep) -> dict:
        tr = step.transition
        out = {"done": tr.done, "terminated": tr.terminated, "reasons": tr.termination_reasons}
        if tracks_velocity and base is not None:
            # the command minus the base velocity (in the base frame) at the start of the step
            lin_E3 = jax.vmap(base.linear_velocity)(state_t.env.physics)
            ang_E3 = jax.vmap(base.angular_velocity)(state_t.env.physics)
            out["error"] = tr.command["velocity"] - jnp.concatenate([lin_E3[:, :2], ang_E3[:, 2:]], axis=-1)
            out["command"] = tr.command["velocity"]
        if tracks_velocity and feet is not None:
            out["contact"] = tr.critic_obs[feet.name]
            out["feet_xy"] = state_t.env.physics.xpos[:, feet.bodies, :2]
        return out

    rec = jax.device_get(episodes(env, policy, num_steps, record, "eval rollout")(params, rng))
    done_TE = np.asarray(rec["done"])
    reasons = {k: np.asarray(v) for k, v in rec["reasons"].items()}
    metrics = summary.survival(done_TE, np.asarray(rec["terminated"]), reasons, env.ctrl_dt)
    live_TE = summary.live_steps(done_TE)
    if "error" in rec:
        metrics |= summary.tracking(np.asarray(rec["command"]), np.asarray(rec["error"]), live_TE, env.ctrl_dt)
    if "contact" in rec:
        contact, feet_xy, command = (np.asarray(rec[k]) for k in ("contact", "feet_xy", "command"))
        metrics |= summary.gait(contact, feet_xy, command, live_TE, env.ctrl_dt)
    return metrics
