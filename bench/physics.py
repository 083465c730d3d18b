"""Env-steps/s of the ksim engine on each backend, beside the raw physics limits.

Measured side by side in one run, on the K-Bot standing task that users train
(`examples.kbot.standing`: its observations, rewards, terminations, resets, pushes and
randomizations):

- raw `mujoco.batch.Batch.step(nstep=substeps)` with controls written each step, at rest
  (robots fall once and lie still) and in play (fallen robots restart from the stance);
- the ksim engine on the `mujoco` backend (a jitted scan with zero actions);
- raw `jax.vmap(mjx.step)` (a jitted scan of fori_loops over substeps; on a CPU, vmapped
  in chunks of 32 envs like the engine, see `ksim.physics.mjx.MJX_CPU_CHUNK`), at rest and
  in play as above;
- the ksim engine on the `mjx` backend.

Usage: python -m bench.physics [num_envs=128,1024,4096] [backends=mujoco,mjx] [seconds=6] [rounds=3]
One env-step is one control step (ctrl_dt / dt physics substeps) of one env.
"""

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
import mujoco
import mujoco.batch
import numpy as np
from mujoco import mjx

import ksim
from examples.kbot.standing import StandingConfig, make_task
from ksim.config import opt
from ksim.engine.rollout import ZeroPolicy, init_rollout, rollout
from ksim.physics.mjx import vmap_envs
from ksim.runner.cli import command_line

STEPS_PER_CALL = 20
# "at rest" limits first step this long, so that every robot has fallen and lies still
SETTLE_SECONDS = 3.0


@dataclass(kw_only=True)
class PhysicsBenchConfig:
    """Engine env-steps/s against raw physics, per backend and number of envs."""

    num_envs: tuple[int, ...] = opt((128, 1024, 4096), "numbers of envs, e.g. 128,1024", ge=1)
    backends: tuple[Literal["mujoco", "mjx"], ...] = opt(("mujoco", "mjx"), "backends to measure")
    seconds: float = opt(6.0, "timed seconds per measurement", gt=0)
    rounds: int = opt(3, "alternating rounds the seconds are split into", ge=1)


def kbot_task() -> ksim.Task:
    return make_task(StandingConfig())


def rates(calls: dict[str, Callable[[], None]], seconds: float, rounds: int) -> dict[str, float]:
    """Median calls/s of each call, timed in alternating rounds so that machine drift hits all alike."""
    for call in calls.values():
        call()  # warm up
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / rounds or n == 0:
                call()
                n += 1
            samples[name].append(n / (time.perf_counter() - start))
    return {name: float(np.median(s)) for name, s in samples.items()}


def settle_calls(model: mujoco.MjModel, substeps: int) -> int:
    """Calls of STEPS_PER_CALL control steps that cover SETTLE_SECONDS."""
    return round(SETTLE_SECONDS / (STEPS_PER_CALL * model.opt.timestep * substeps))


def raw_native(model: mujoco.MjModel, num_envs: int, substeps: int, in_play: bool) -> Callable[[], None]:
    """Bare `mujoco.batch` control steps at the stance's controls.

    At rest (`in_play=False`) every env falls once and then lies still, which MuJoCo's
    solver steps cheaply. In play, an env whose base drops below 0.4 m or that reaches
    10 s restarts from the stance: the engine's episode structure, without its components.
    """
    batch = mujoco.batch.Batch(model, num_envs, 0)
    batch.reset(keyframe=0)
    ctrl = np.tile(model.key_ctrl[0], (num_envs, 1))

    def call() -> None:
        for _ in range(STEPS_PER_CALL):
            batch.ctrl[:] = ctrl
            batch.step(nstep=substeps)
            if in_play:
                ids = np.flatnonzero((batch.qpos[:, 2] < 0.4) | (batch.time >= 10.0))
                if ids.size:
                    batch.reset(ids, keyframe=0)

    if not in_play:
        for _ in range(settle_calls(model, substeps)):
            call()
    return call


def raw_mjx(model: mujoco.MjModel, num_envs: int, substeps: int, in_play: bool) -> Callable[[], None]:
    """Bare `jax.vmap(mjx.step)`: a jitted scan of control steps, each a fori_loop of substeps.

    Envs start at the stance with joint offsets of up to ±0.05 rad (so that they fall at
    different times, as the engine's do). In play, an env whose base drops below 0.4 m or
    that reaches 10 s goes back to the stance (a select, without recomputing derived fields:
    `mjx.step` computes them first). MJX costs much more while robots fall and collide than
    while they stand or lie still, and its solver loops run until every env of a vmapped
    batch has converged, so the in-play limit is the one that compares with the engine.
    """
    mx = mjx.put_model(model)
    stance = mjx.make_data(mx).replace(qpos=jnp.asarray(model.key_qpos[0]), ctrl=jnp.asarray(model.key_ctrl[0]))
    offsets = jax.random.uniform(jax.random.key(0), (num_envs, model.nq - 7), minval=-0.05, maxval=0.05)
    data = jax.vmap(lambda off: stance.replace(qpos=stance.qpos.at[7:].add(off)))(offsets)

    def one_step(d: mjx.Data) -> mjx.Data:
        d = jax.lax.fori_loop(0, substeps, lambda _, x: mjx.step(mx, x), d)
        if not in_play:
            return d
        restart = (d.qpos[2] < 0.4) | (d.time >= 10.0)
        return jax.tree.map(lambda new, old: jnp.where(restart, new, old), stance, d)

    # batched as the engine batches MJX (on a CPU in chunks: a plain vmap can hang, see MJX_CPU_CHUNK)
    step = vmap_envs(one_step, num_envs)

    @jax.jit
    def rollout(d: mjx.Data) -> mjx.Data:
        return jax.lax.scan(lambda d, _: (step(d), None), d, None, length=STEPS_PER_CALL)[0]

    box = [rollout(data)]  # one call first, so that later calls see the same input types
    if not in_play:
        for _ in range(settle_calls(model, substeps)):
            box[0] = rollout(box[0])

    def call() -> None:
        box[0] = jax.block_until_ready(rollout(box[0]))

    return call


def engine(backend: str, num_envs: int) -> tuple[Callable[[], None], float]:
    """(a call running STEPS_PER_CALL engine steps at zero action, the first call's seconds)."""
    env = ksim.Env(kbot_task(), num_envs=num_envs, physics_backend=backend)
    policy = ZeroPolicy(env.model.nu)
    run = jax.jit(lambda s, rng: rollout(env, policy, None, s, rng, STEPS_PER_CALL), donate_argnums=0)
    box = [init_rollout(env, policy, None, jax.random.key(0))]
    keys = iter(jax.random.split(jax.random.key(1), 1_000_000))

    def call() -> None:
        box[0], steps = run(box[0], next(keys))
        jax.block_until_ready(steps.transition.reward)

    start = time.perf_counter()
    call()
    return call, time.perf_counter() - start


def main() -> None:
    args = command_line(PhysicsBenchConfig, sys.argv[1:], "python -m bench.physics")
    model = ksim.Task.load_model(kbot_task())
    substeps = kbot_task().num_substeps(model)
    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, jax {jax.__version__} "
        f"on {jax.default_backend()}, mujoco {mujoco.__version__}, K-Bot nu={model.nu}, {substeps} substeps"
    )
    print(
        "| backend | num_envs | raw at rest | raw in play | engine | engine / at rest | engine / in play "
        "| first call (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for backend in args.backends:
        for n in args.num_envs:
            ours, first = engine(backend, n)
            calls = {"engine": ours}
            if backend == "mujoco":
                calls["rest"] = raw_native(model, n, substeps, in_play=False)
                calls["play"] = raw_native(model, n, substeps, in_play=True)
            else:
                calls["rest"] = raw_mjx(model, n, substeps, in_play=False)
                calls["play"] = raw_mjx(model, n, substeps, in_play=True)
            r = {k: v * STEPS_PER_CALL * n for k, v in rates(calls, args.seconds, args.rounds).items()}
            print(
                f"| {backend} | {n} | {r['rest']:,.0f} | {r['play']:,.0f} | {r['engine']:,.0f} | "
                f"{r['engine'] / r['rest']:.0%} | {r['engine'] / r['play']:.0%} | {first:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
