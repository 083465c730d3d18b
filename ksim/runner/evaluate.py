"""Measuring a policy (`action=eval`): survival, episode length and tracking errors over many episodes."""

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

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
    done_TE, terminated_TE = np.asarray(rec["done"]), np.asarray(rec["terminated"])
    # a step counts while no earlier step of this env ended its first episode
    live_TE = ~(np.cumsum(done_TE, axis=0) - done_TE > 0)
    fell_E = np.any(terminated_TE & live_TE, axis=0)
    metrics = {
        "survival_rate": float(1.0 - fell_E.mean()),
        "mean_episode_length_s": float((live_TE.sum(axis=0) * env.ctrl_dt).mean()),
        "episodes": float(env.num_envs),
        "seconds": float(num_steps * env.ctrl_dt),
    }
    for name, hit_TE in rec["reasons"].items():
        metrics[f"ended_by_{name}"] = float(np.any(np.asarray(hit_TE) & live_TE, axis=0).mean())
    if "lin_err" in rec:
        metrics |= _tracking(rec, live_TE)
    return metrics


def _tracking(rec: dict[str, Any], live_TE: np.ndarray) -> dict[str, float]:
    """Mean tracking errors, overall and per command kind, beside those of a robot that stands still.

    A step's kind is `still` when its command (vx, vy, wz) is below 0.05 in norm, else the
    largest of |vx| (forward), |vy| (sideways) and |wz| (turning).
    """
    command_TE3 = np.asarray(rec["command"])
    moving_TE = np.linalg.norm(command_TE3, axis=-1) >= 0.05
    kind_TE = np.where(moving_TE, np.argmax(np.abs(command_TE3), axis=-1), 3)
    errors = {
        "lin_vel": np.asarray(rec["lin_err"]),
        "ang_vel": np.asarray(rec["ang_err"]),
        "lin_vel_still": np.linalg.norm(command_TE3[..., :2], axis=-1),  # a robot standing still
        "ang_vel_still": np.abs(command_TE3[..., 2]),
    }
    out = {f"{k}_error": float(np.sum(v * live_TE) / max(live_TE.sum(), 1)) for k, v in errors.items()}
    for i, kind in enumerate(("forward", "sideways", "turning", "still")):
        mask_TE = live_TE & (kind_TE == i)
        for k in ("lin_vel", "ang_vel"):
            out[f"{k}_error_{kind}"] = float(np.sum(errors[k] * mask_TE) / mask_TE.sum()) if mask_TE.any() else math.nan
    return out
