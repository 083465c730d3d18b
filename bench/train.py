"""Training throughput (rollout + PPO update) of the K-Bot standing task beside raw physics.

    python -m bench.train --num-envs 256 512 1024 --iterations 8

For each num_envs it measures, in one run: raw `mujoco.batch` control steps/s on the
same model and substeps, and PPO training env-steps/s with the standing task's default
2×256 MLPs, after the first (compiling) iteration. It also times the first compile, so a
second launch shows what the persistent cache saves.

Two physics limits are shown. "Raw" steps every env from the stance keyframe at zero
action: the robots fall once and then lie still, which MuJoCo's solver handles cheaply.
"Same-state" divides the steps by the time spent inside MuJoCo's C calls during the
timed training iterations: the physics cost of exactly the states (and resets) that
training visits, where robots are kept standing, falling and being reset.
"""

import argparse
import time
from typing import cast

import jax

from bench.physics import STEPS_PER_CALL, rates, raw_native
from examples.kbot.standing import StandingConfig, make_task
from ksim.engine.env import Env
from ksim.physics import BackendName
from ksim.physics.mujoco import MujocoBackend
from ksim.rl.learner import init_learner, init_rollout, make_train_step
from ksim.runner.profiling import setup_compile_cache


def train_rate(
    backend: str, num_envs: int, iterations: int, phase_timing: bool = True
) -> tuple[float, float, float, float, float]:
    """(env-steps/s, rollout share, first-iteration seconds, seconds per iteration, same-state physics rate).

    Same-state physics rate: the timed env-steps over the wall time inside MuJoCo's C calls
    during those iterations (`mujoco` backend only, else NaN).
    """
    cfg = StandingConfig(num_envs=num_envs, physics_backend=cast(BackendName, backend))
    env = Env(make_task(cfg), num_envs, backend)
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    rollout = init_rollout(env, learner, jax.random.PRNGKey(1))
    marks: list[float] = []
    mark = (lambda _: marks.append(time.perf_counter())) if phase_timing else None
    step = make_train_step(env, cfg, mark)
    start = time.perf_counter()
    learner, rollout, metrics = step(learner, rollout)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - start
    rollout_s = total_s = 0.0
    native = env.backend if isinstance(env.backend, MujocoBackend) else None
    if native:
        native.physics_seconds = 0.0
    for _ in range(iterations):
        marks.clear()
        t0 = time.perf_counter()
        learner, rollout, metrics = step(learner, rollout)
        jax.block_until_ready(metrics)
        t1 = time.perf_counter()
        total_s += t1 - t0
        rollout_s += marks[0] - t0 if marks else float("nan")
    steps = iterations * cfg.rollout_length * num_envs
    same_state = steps / native.physics_seconds if native else float("nan")
    return steps / total_s, rollout_s / total_s, first, total_s / iterations, same_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--backends", nargs="+", default=["mujoco"], choices=["mujoco", "mjx"])
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--raw-seconds", type=float, default=4.0)
    parser.add_argument("--compile-cache", default="~/.cache/jax/jaxcache")
    parser.add_argument(
        "--no-phase-timing", action="store_true", help="no rollout/update split (no host callback: mjx caches the step)"
    )
    args = parser.parse_args()
    setup_compile_cache(args.compile_cache)
    model = make_task(StandingConfig()).load_model()
    print(f"devices: {jax.devices()}")
    print(
        "| backend | num_envs | raw physics env-steps/s | same-state physics env-steps/s | training env-steps/s | "
        "training / raw | training / same-state | rollout share | first iteration (s) | s/iteration |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends:
        for n in args.num_envs:
            at_rest = raw_native(model, n, 5, in_play=False)
            raw = rates({"raw": at_rest}, args.raw_seconds, 1)["raw"] * STEPS_PER_CALL * n
            rate, share, first, per_it, same = train_rate(backend, n, args.iterations, not args.no_phase_timing)
            print(
                f"| {backend} | {n} | {raw:,.0f} | {same:,.0f} | {rate:,.0f} | {rate / raw:.0%} | {rate / same:.0%} | "
                f"{share:.0%} | {first:.1f} | {per_it:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
