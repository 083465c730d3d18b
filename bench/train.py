"""Training throughput (rollout + PPO update) of the K-Bot standing task beside raw physics.

    python -m bench.train num_envs=256,512,1024 iterations=8

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

import sys
import time
from dataclasses import dataclass
from typing import Literal, cast

import jax

from bench.physics import STEPS_PER_CALL, rates, raw_native
from examples.kbot.standing import StandingConfig, make_task
from ksim.config import opt
from ksim.engine.env import Env
from ksim.physics import BackendName
from ksim.physics.mujoco import MujocoBackend
from ksim.rl.learner import init_learner, make_train_step, start_rollout
from ksim.runner.cli import command_line
from ksim.runner.profiling import setup_compile_cache

ActorKind = Literal["mlp", "mirrored", "tied", "gru", "lstm"]


@dataclass(kw_only=True)
class TrainBenchConfig:
    """PPO training env-steps/s of the standing task beside raw physics, per backend and number of envs."""

    num_envs: tuple[int, ...] = opt((256, 512, 1024), "numbers of envs, e.g. 256,512", ge=1)
    backends: tuple[Literal["mujoco", "mjx"], ...] = opt(("mujoco",), "backends to measure")
    iterations: int = opt(8, "timed iterations after the first (compiling) one", ge=1)
    raw_seconds: float = opt(4.0, "seconds of the raw physics measurement", gt=0)
    compile_cache: str = opt("~/.cache/jax/jaxcache", "persistent compile cache folder ('' turns it off)")
    phase_timing: bool = opt(True, "split rollout from update time (a host callback: mjx then cannot cache the step)")
    symmetry: tuple[bool, ...] = opt((False,), "symmetry_augmentation settings to measure, e.g. false,true")
    actors: tuple[ActorKind, ...] = opt(
        ("mlp",),
        "actor networks to measure, e.g. mlp,gru (mirrored: the MLP averaged with its mirror image; tied: "
        "symmetric by weight tying)",
    )
    recurrent_hidden: tuple[int, ...] = opt((128, 128), "layer sizes of a recurrent actor (the MLP keeps 256,256)")


def train_rate(
    backend: str,
    num_envs: int,
    iterations: int,
    phase_timing: bool = True,
    symmetry: bool = False,
    actor: ActorKind = "mlp",
    recurrent_hidden: tuple[int, ...] = (128, 128),
) -> tuple[float, float, float, float, float]:
    """(env-steps/s, rollout share, first-iteration seconds, seconds per iteration, same-state physics rate).

    Same-state physics rate: the timed env-steps over the wall time inside MuJoCo's C calls
    during those iterations (`mujoco` backend only, else NaN).
    """
    cfg = StandingConfig(num_envs=num_envs, physics_backend=cast(BackendName, backend), symmetry_augmentation=symmetry)
    if actor in ("mirrored", "tied"):
        how = "tied" if actor == "tied" else "average"
        cfg = StandingConfig(**{**vars(cfg), "actor_mirrored": True, "actor_mirror": how})
    elif actor != "mlp":
        cfg = StandingConfig(**{**vars(cfg), "actor": actor, "actor_hidden": recurrent_hidden})
    env = Env(make_task(cfg), num_envs, backend)
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    rollout = start_rollout(env, learner, jax.random.PRNGKey(1))
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
    args = command_line(TrainBenchConfig, sys.argv[1:], "python -m bench.train")
    setup_compile_cache(args.compile_cache)
    model = make_task(StandingConfig()).load_model()
    print(f"devices: {jax.devices()}")
    print(
        "| backend | actor | symmetry | num_envs | raw physics env-steps/s | same-state physics env-steps/s | "
        "training env-steps/s | training / raw | training / same-state | rollout share | first iteration (s) | "
        "s/iteration |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends:
        for n in args.num_envs:
            at_rest = raw_native(model, n, 5, in_play=False)
            raw = rates({"raw": at_rest}, args.raw_seconds, 1)["raw"] * STEPS_PER_CALL * n
            for sym, actor in ((s, a) for s in args.symmetry for a in args.actors):
                rate, share, first, per_it, same = train_rate(
                    backend, n, args.iterations, args.phase_timing, sym, actor, args.recurrent_hidden
                )
                print(
                    f"| {backend} | {actor} | {sym} | {n} | {raw:,.0f} | {same:,.0f} | {rate:,.0f} | "
                    f"{rate / raw:.0%} | {rate / same:.0%} | {share:.0%} | {first:.1f} | {per_it:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
