"""The training loop: a thin host loop around the jitted train step, with saves, logs and videos."""

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import jax

from ksim.engine.env import Env
from ksim.engine.rollout import RolloutState
from ksim.rl.learner import HEALTH, LearnerState, make_train_step, start_rollout
from ksim.rl.policy import ActorPolicy
from ksim.rl.sharding import Cluster, to_local
from ksim.runner import checkpoint
from ksim.runner.config import RunConfig
from ksim.runner.logging import TrainLogger
from ksim.runner.profiling import profiled
from ksim.runner.video import VideoRecorder

TrainStep = Callable[[LearnerState, RolloutState], tuple[LearnerState, RolloutState, dict[str, jax.Array]]]


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to save and stop; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for sig in self._previous:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name}: saving after this iteration (again to abort)", flush=True)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def save(run_dir: Path, learner: LearnerState, cfg: RunConfig, env: Env, started: float) -> Path:
    """Checkpoint the learner at its current iteration, with what it was trained on."""
    learner = to_local(learner)  # a replicated learner: this process's copy
    header = {
        "env_steps": float(learner.env_steps),
        "wall_seconds": time.time() - started,
        "actor_observations": env.actor_layout.to_json(),
        "critic_observations": env.critic_layout.to_json(),
        "joints": list(env.index.joint_names),
        "policy_average": learner.averaged is not None,
    }
    return checkpoint.save(run_dir, int(learner.iteration), learner, header, cfg.keep_checkpoints)


def reward_table(env: Env) -> str:
    """The reward terms and their scales, one per line (printed when training starts)."""
    rows = [f"  {r.name:32s} {r.scale:+.4g}" for r in env.rewards]
    return "\n".join([f"reward terms (each × scale × ctrl_dt={env.ctrl_dt} per step):", *rows])


def _non_finite(host: dict[str, float], iteration: int, run_dir: Path) -> str | None:
    broken = [what for key, what in HEALTH.items() if not host.pop(key)]
    if not broken:
        return None
    return (
        f"iteration {iteration + 1} made the {' and '.join(broken)} non-finite, so that update was not adopted; "
        f"the last good state (iteration {iteration}) is saved in {run_dir}; resume with pretrained={run_dir} "
        "and a lower learning_rate= (or look for a reward or observation that can be NaN)"
    )


def train(
    env: Env,
    cfg: RunConfig,
    run_dir: Path,
    learner: LearnerState,
    write_video: "VideoWriter | None" = None,
    cluster: Cluster | None = None,
    write: bool = True,
    step: TrainStep | None = None,
) -> LearnerState:
    """Train until `max_steps` more iterations are done or a stop is requested; always saves at the end.

    With a `cluster`, the envs are split over its devices; `write=False` (every process but
    process 0) trains without writing or printing anything. `step` replaces the PPO iteration
    (distillation's); it gets no phase timing.
    """
    marks: list[float] = []
    mark = (lambda _: marks.append(time.perf_counter())) if cfg.phase_timing else None
    train_step = profiled("train_step", step or make_train_step(env, cfg, mark, cluster))
    start_iteration = int(to_local(learner.iteration))
    target = None if cfg.max_steps is None else start_iteration + cfg.max_steps
    if write:
        (run_dir / "task.json").write_text(json.dumps(env.spec(), indent=2))
    logger = TrainLogger(run_dir, start_iteration, target) if write else None
    if logger:
        logger.text(f"run directory: {run_dir}\n{env.describe()}\n{reward_table(env)}")
    rollout_state = start_rollout(env, learner, jax.random.fold_in(to_local(learner.rng), 1), cluster)
    stop = StopRequest()
    started = last_save = time.time()
    try:
        # one SIGINT/SIGTERM to any process (e.g. a scheduler's to all) stops every process at one iteration
        while not (cluster.anyone(stop.requested) if cluster else stop.requested) and (
            target is None or int(learner.iteration) < target
        ):
            marks.clear()
            t0 = time.perf_counter()
            learner, rollout_state, metrics = train_step(learner, rollout_state)
            host = {k: float(v) for k, v in jax.device_get(to_local(metrics)).items()}
            t1 = time.perf_counter()
            host["perf/env_steps_per_s"] = cfg.rollout_length * cfg.num_envs / (t1 - t0)
            if marks:
                host |= {"perf/rollout_s": marks[0] - t0, "perf/update_s": t1 - marks[0]}
            iteration = int(to_local(learner.iteration))
            problem = _non_finite(host, iteration, run_dir)
            if problem:
                raise FloatingPointError(problem)
            if logger is None:
                continue
            logger.log(iteration, float(to_local(learner.env_steps)), host)
            if iteration % cfg.save_every_iters == 0 or time.time() - last_save > cfg.save_every_seconds:
                save(run_dir, learner, cfg, env, started)
                last_save = time.time()
            if write_video is not None and cfg.video_every_iters and iteration % cfg.video_every_iters == 0:
                write_video(to_local(learner), run_dir / "videos" / f"iter_{iteration}.mp4")
    finally:
        stop.restore()
        if logger is not None:
            try:
                logger.text(f"saved {save(run_dir, learner, cfg, env, started)}")
            except Exception as err:  # e.g. interrupted inside a step whose inputs were already donated
                logger.text(f"could not save the final state ({err}); the newest checkpoint in {run_dir} stands")
            logger.close()
    return learner


class VideoWriter:
    """Validation videos during training; turns itself off (with one message) if OpenGL is missing."""

    def __init__(self, make_env: Callable[[], Env], cfg: RunConfig) -> None:
        """`make_env()` builds a 1-env Env on first use (so training without videos never builds it)."""
        self.make_env = make_env
        self.cfg = cfg
        self.recorder: VideoRecorder | None = None
        self.enabled = True

    def __call__(self, learner: LearnerState, path: Path) -> None:
        """Roll the policy out deterministically for `video_seconds` and write `path`."""
        if not self.enabled:
            return
        if self.recorder is None:
            env, cfg = self.make_env(), self.cfg
            self.recorder = VideoRecorder(
                env, ActorPolicy.of(env, True), cfg.video_seconds, cfg.video_fps, cfg.video_size
            )
        try:
            self.recorder(learner.eval_params, learner.rng, path)
            print(f"video: {path}", flush=True)
        except Exception as err:  # no OpenGL: keep training, say how to fix it once
            self.enabled = False
            print(f"validation videos off: rendering failed ({err}); see README 'Headless rendering'", flush=True)
