"""Measuring a policy (`action=eval`): survival, episode length and tracking errors over many episodes."""

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

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
    """Over each env's first episode (up to `seconds`): survival rate, mean length and tracking errors."""
    num_steps = math.ceil(seconds / env.ctrl_dt)
    base = env.index.base
    tracks_velocity = base is not None and "velocity" in [c.name for c in env.commands]

    def record(state_t: RolloutState, step: RolloutStep) -> dict:
        tr = step.transition
        out = {"done": tr.done, "terminated": tr.terminated, "reasons": tr.termination_reasons}
        if tracks_velocity and base is not None:
            # the command against the base velocity (in the base frame) at the start of the step
            lin_E = jax.vmap(base.linear_velocity)(state_t.env.physics)
            ang_E = jax.vmap(base.angular_velocity)(state_t.env.physics)
            out["lin_err"] = jnp.linalg.norm(tr.command["velocity"][:, :2] - lin_E[:, :2], axis=-1)
            out["ang_err"] = jnp.abs(tr.command["velocity"][:, 2] - ang_E[:, 2])
            out["command"] = tr.command["velocity"]
        return out

    rec = jax.device_get(episodes(env, policy, num_steps, record, "eval rollout")(params, rng))
    done_TE = np.asarray(rec["done"])
    reasons = {k: np.asarray(v) for k, v in rec["reasons"].items()}
    metrics = summary.survival(done_TE, np.asarray(rec["terminated"]), reasons, env.ctrl_dt)
    if "lin_err" in rec:
        command_TE3, lin_err_TE, ang_err_TE = (np.asarray(rec[k]) for k in ("command", "lin_err", "ang_err"))
        metrics |= summary.tracking(command_TE3, lin_err_TE, ang_err_TE, summary.live_steps(done_TE))
    return metrics
