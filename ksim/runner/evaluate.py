"""Policy rollouts for measurement (`action=eval`) and for videos (`action=env`)."""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from ksim.engine.env import Env
from ksim.engine.state import EnvState
from ksim.math import quat_rotate_inverse
from ksim.rl.learner import LearnerState, act

# (obs_E, carry_E, rng) -> (action_E, carry_E)
ActFn = Callable[[dict[str, Array], Array, PRNGKeyArray], tuple[Array, Array]]


def policy_act_fn(learner: LearnerState | None, deterministic: bool, nu: int) -> tuple[ActFn, Array]:
    """The acting function and one env's initial carry; `learner=None` is the zero-action baseline."""
    if learner is None:
        return lambda obs, carry, rng: (jnp.zeros((carry.shape[0], nu)), carry), jnp.zeros(0)

    def fn(obs: dict[str, Array], carry: Array, rng: PRNGKeyArray) -> tuple[Array, Array]:
        action, _, carry = act(learner, obs, carry, None if deterministic else rng)
        return action, carry

    return fn, learner.actor.initial_carry()


def _run(env: Env, act_fn: ActFn, carry0: Array, num_steps: int, rng: PRNGKeyArray, record: Callable) -> dict:
    def step(carry: tuple[EnvState, Array], rng_t: PRNGKeyArray) -> tuple[tuple[EnvState, Array], dict]:
        state, policy_carry = carry
        action, policy_carry = act_fn(state.obs, policy_carry, rng_t)
        before = state
        state, tr = env.step_batch(state, action)
        policy_carry = jnp.where(tr.done[:, None], carry0, policy_carry)
        return (state, policy_carry), record(before, tr)

    @jax.jit
    def run(rng: PRNGKeyArray) -> dict:
        reset_rng, roll_rng = jax.random.split(rng)
        state = env.reset(reset_rng)
        carry = jnp.broadcast_to(carry0, (env.num_envs, carry0.shape[0]))
        return jax.lax.scan(step, (state, carry), jax.random.split(roll_rng, num_steps))[1]

    return jax.device_get(run(rng))


def measure(env: Env, act_fn: ActFn, carry0: Array, seconds: float, rng: PRNGKeyArray) -> dict[str, float]:
    """Over each env's first episode (up to `seconds`): survival rate, mean length and tracking errors."""
    num_steps = math.ceil(seconds / env.ctrl_dt)
    has_velocity = "velocity" in [c.name for c in env.commands]
    has_root = bool(env.model.njnt) and env.model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE

    def record(before: EnvState, tr) -> dict:
        out = {"done": tr.done, "terminated": tr.terminated, "reasons": tr.termination_reasons}
        if has_velocity and has_root:
            # the command vs the base velocity at the start of the step, in the base frame (MuJoCo's free
            # joint keeps linear velocity in the world frame and angular velocity in the body frame)
            quat_E, qvel_E = before.physics.qpos[:, 3:7], before.physics.qvel
            lin_E = jax.vmap(quat_rotate_inverse)(quat_E, qvel_E[:, 0:3])
            out["lin_err"] = jnp.linalg.norm(tr.command["velocity"][:, :2] - lin_E[:, :2], axis=-1)
            out["ang_err"] = jnp.abs(tr.command["velocity"][:, 2] - qvel_E[:, 5])
        return out

    rec = _run(env, act_fn, carry0, num_steps, rng, record)
    done_TE, terminated_TE = np.asarray(rec["done"]), np.asarray(rec["terminated"])
    # a step counts while no earlier step of this env ended its first episode
    ended_before_TE = np.cumsum(done_TE, axis=0) - done_TE > 0
    live_TE = ~ended_before_TE
    fell_E = np.any(terminated_TE & live_TE, axis=0)
    length_E = live_TE.sum(axis=0) * env.ctrl_dt
    metrics = {
        "survival_rate": float(1.0 - fell_E.mean()),
        "mean_episode_length_s": float(length_E.mean()),
        "episodes": float(env.num_envs),
        "seconds": float(num_steps * env.ctrl_dt),
    }
    for name, hit_TE in rec["reasons"].items():
        metrics[f"ended_by_{name}"] = float(np.any(np.asarray(hit_TE) & live_TE, axis=0).mean())
    if "lin_err" in rec:
        metrics["lin_vel_error"] = float(np.sum(rec["lin_err"] * live_TE) / live_TE.sum())
        metrics["ang_vel_error"] = float(np.sum(rec["ang_err"] * live_TE) / live_TE.sum())
    return metrics


def collect_qpos(env: Env, act_fn: ActFn, carry0: Array, seconds: float, every: int, rng: PRNGKeyArray) -> np.ndarray:
    """Env 0's qpos every `every` control steps over `seconds`, for a video."""
    num_steps = math.ceil(seconds / env.ctrl_dt)
    rec = _run(env, act_fn, carry0, num_steps, rng, lambda before, tr: before.physics.qpos[0])
    return np.asarray(rec)[::every]
