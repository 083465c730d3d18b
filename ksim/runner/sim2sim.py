"""`action=sim2sim`: one checkpoint on the `mujoco` backend, on `mjx`, and as the exported ONNX in `ksim.deploy`."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ksim.deploy.__main__ import evaluate as evaluate_export
from ksim.engine.env import Env
from ksim.rl.policy import ActorPolicy, PolicyParams
from ksim.runner.config import RunConfig
from ksim.runner.evaluate import measure
from ksim.runner.export import deterministic_actor
from ksim.task import Task

ROWS = ("survival_rate", "mean_episode_length_s", "lin_vel_error", "ang_vel_error")


def sim2sim(
    cfg: RunConfig, task: Task, params: PolicyParams, folder: Path, backends: tuple[str, ...] = ("mujoco", "mjx")
) -> str:
    """A markdown report: survival, episode length and tracking errors per column, and the JAX/ONNX divergence.

    `folder` is the checkpoint's export. Every column runs the same pushes, noise, latency and
    randomised parameters as training (the ONNX column through `ksim.deploy`'s simulation of them).
    """
    columns: dict[str, dict[str, float]] = {}
    for backend in backends:
        env = Env(task, cfg.eval_num_envs, backend, cfg.nthread)
        print(f"evaluating on {backend} ({cfg.eval_num_envs} episodes of {cfg.eval_seconds:g} s)")
        policy = ActorPolicy.of(env, deterministic=True)
        columns[backend] = measure(env, policy, params, cfg.eval_seconds, jax.random.PRNGKey(cfg.seed + 1))
    print("evaluating the exported ONNX in ksim.deploy (no JAX on its path)")
    log: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    columns["onnx (ksim.deploy)"] = evaluate_export(folder, cfg.eval_num_envs, cfg.eval_seconds, seed=cfg.seed, log=log)

    # the JAX actor on the very observations (and carries) the ONNX policy acted on
    obs_N, carry_N, onnx_N = (np.stack(x) for x in zip(*log, strict=True))
    act = jax.jit(jax.vmap(deterministic_actor(params, env.prior)))
    jax_N = np.asarray(act(jnp.asarray(obs_N, jnp.float32), jnp.asarray(carry_N, jnp.float32))[0])
    gap_N = np.abs(jax_N - onnx_N).max(axis=-1)

    names = list(columns)
    lines = [
        f"# sim2sim: {folder.name}",
        "",
        f"{cfg.eval_num_envs} episodes of up to {cfg.eval_seconds:g} s each, deterministic policy, training pushes.",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for row in ROWS:
        if any(row in c for c in columns.values()):
            values = [columns[n].get(row, math.nan) for n in names]
            lines.append(f"| {row} | " + " | ".join(f"{v:.4g}" for v in values) + " |")
    lines += [
        "",
        f"Action divergence, JAX vs ONNX on the same {len(gap_N)} observations (max over joints, per step): "
        f"mean {gap_N.mean():.2g}, p99 {np.quantile(gap_N, 0.99):.2g}, max {gap_N.max():.2g}.",
        "",
        "Every column simulates the training's observation noise, action latency and randomised friction and "
        "masses; the ONNX column does it in `ksim.deploy` (its `--ideal` flag leaves them out).",
    ]
    return "\n".join(lines) + "\n"
