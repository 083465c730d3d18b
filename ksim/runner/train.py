"""The training loop: a thin host loop around the jitted train step, with saves, logs and videos."""

import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import jax
import numpy as np

from ksim.engine.env import Env
from ksim.rl.learner import LearnerState, init_rollout, make_train_step
from ksim.runner import checkpoint
from ksim.runner.config import RunConfig
from ksim.runner.logging import TrainLogger
from ksim.runner.profiling import profiled


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


def save(run_dir: Path, learner: LearnerState, cfg: RunConfig, started: float) -> Path:
    """Checkpoint the learner at its current iteration."""
    header = {"env_steps": float(learner.env_steps), "wall_seconds": time.time() - started}
    return checkpoint.save(run_dir, int(learner.iteration), learner, header, cfg.keep_checkpoints)


def train(
    env: Env,
    cfg: RunConfig,
    run_dir: Path,
    learner: LearnerState,
    write_video: "VideoWriter | None" = None,
) -> LearnerState:
    """Train until `max_steps` more iterations are done or a stop is requested; always saves at the end."""
    marks: list[float] = []
    mark = (lambda _: marks.append(time.perf_counter())) if cfg.phase_timing else None
    train_step = profiled("train_step", make_train_step(env, cfg, mark))
    start_iteration = int(learner.iteration)
    target = None if cfg.max_steps is None else start_iteration + cfg.max_steps
    logger = TrainLogger(run_dir, start_iteration, target)
    logger.text(f"run directory: {run_dir}\n{env.describe()}")
    rollout_state = init_rollout(env, learner, jax.random.fold_in(learner.rng, 1))
    stop = StopRequest()
    started = last_save = time.time()
    try:
        while not stop.requested and (target is None or int(learner.iteration) < target):
            marks.clear()
            t0 = time.perf_counter()
            learner, rollout_state, metrics = train_step(learner, rollout_state)
            host = {k: float(v) for k, v in jax.device_get(metrics).items()}
            t1 = time.perf_counter()
            host["perf/env_steps_per_s"] = cfg.rollout_length * env.num_envs / (t1 - t0)
            if marks:
                host |= {"perf/rollout_s": marks[0] - t0, "perf/update_s": t1 - marks[0]}
            if not np.isfinite(host["loss/total"]):
                raise FloatingPointError(f"the loss is {host['loss/total']} at iteration {int(learner.iteration)}")
            iteration = int(learner.iteration)
            logger.log(iteration, float(learner.env_steps), host)
            if iteration % cfg.save_every_iters == 0 or time.time() - last_save > cfg.save_every_seconds:
                save(run_dir, learner, cfg, started)
                last_save = time.time()
            if write_video is not None and cfg.video_every_iters and iteration % cfg.video_every_iters == 0:
                write_video(learner, run_dir / "videos" / f"iter_{iteration}.mp4")
    finally:
        stop.restore()
        try:
            logger.text(f"saved {save(run_dir, learner, cfg, started)}")
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
        self.env: Env | None = None
        self.enabled = True

    def __call__(self, learner: LearnerState, path: Path) -> None:
        """Roll the policy out deterministically for `video_seconds` and write `path`."""
        from ksim.runner.evaluate import collect_qpos, policy_act_fn
        from ksim.runner.video import render_mp4

        if not self.enabled:
            return
        if self.env is None:
            self.env = self.make_env()
        env = self.env
        act_fn, carry0 = policy_act_fn(learner, True, env.model.nu)
        every = max(1, round(1.0 / (self.cfg.video_fps * env.ctrl_dt)))
        qpos_F = collect_qpos(env, act_fn, carry0, self.cfg.video_seconds, every, learner.rng)
        try:
            render_mp4(env.model, qpos_F, path, self.cfg.video_fps, self.cfg.video_size)
            print(f"video: {path}", flush=True)
        except Exception as err:  # no OpenGL: keep training, say how to fix it once
            self.enabled = False
            print(f"validation videos off: rendering failed ({err}); see README 'Headless rendering'", flush=True)
