"""The experiment runner: `run(ConfigClass, make_task, __file__)` is a task file's whole `main`.

It parses `key=value` overrides, then trains (`action=train`), films (`action=env`) or
measures (`action=eval`), with numbered run directories, checkpoints and resume.
"""

import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jax

from ksim.engine.env import Env
from ksim.rl.learner import LearnerState, init_learner
from ksim.runner import checkpoint
from ksim.runner.cli import CLIError, build, exit_on_error, help_text, parse_overrides
from ksim.runner.config import PER_LAUNCH_FIELDS, RunConfig, load_saved
from ksim.runner.profiling import jit_profile_enabled, setup_compile_cache
from ksim.task import Task

C = TypeVar("C", bound=RunConfig)

_RUN = re.compile(r"run_(\d+)$")


def new_run_dir(root: Path) -> Path:
    """The next free `run_N` under `root` (created)."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in root.iterdir() if (m := _RUN.match(p.name))]
    path = root / f"run_{max(taken, default=-1) + 1}"
    path.mkdir()
    return path


def resolve_config(cls: type[C], argv: list[str]) -> C:
    """Defaults, then (with `pretrained=`) the run's saved config, then the command line."""
    values = parse_overrides(cls, argv)
    if values.get("pretrained"):
        run_dir, _ = checkpoint.resolve(values["pretrained"], values.get("checkpoint_num"))
        saved_path = run_dir / "config.json"
        if saved_path.exists():
            known = {f.name for f in dataclasses.fields(cls)}
            saved = {k: v for k, v in load_saved(saved_path).items() if k in known and k not in PER_LAUNCH_FIELDS}
            saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
            values = saved | values
    return build(cls, values)


def load_learner(env: Env, cfg: RunConfig) -> tuple[LearnerState, Path]:
    """The learner from `cfg.pretrained` (and `checkpoint_num`), and its file."""
    assert cfg.pretrained is not None
    _, path = checkpoint.resolve(cfg.pretrained, cfg.checkpoint_num)
    like = init_learner(env, cfg, jax.random.PRNGKey(cfg.seed))
    learner, _ = checkpoint.load(path, like)
    return learner, path


def run(cls: type[C], make_task: Callable[[C], Task], task_file: str, argv: list[str] | None = None) -> Any:
    """Parse the command line into `cls` and do `action`; returns the learner (train) or the metrics (eval)."""
    argv = sys.argv[1:] if argv is None else argv
    prog = f"python -m {Path(task_file).stem}"
    if any(a in ("-h", "--help", "help") for a in argv):
        print(help_text(cls, prog))
        return None
    try:
        cfg = resolve_config(cls, argv)
    except (CLIError, FileNotFoundError) as err:
        exit_on_error(str(err))
    setup_compile_cache(cfg.compile_cache)
    if jit_profile_enabled():
        jax.config.update("jax_log_compiles", True)
    task = make_task(cfg)
    runs_root = Path(cfg.run_root) if cfg.run_root else Path(task_file).resolve().parent / "runs" / Path(task_file).stem
    if cfg.action == "train":
        return _train(cfg, task, runs_root)
    if cfg.action == "env":
        return _film(cfg, task, runs_root)
    return _eval(cfg, task)


def _train(cfg: RunConfig, task: Task, runs_root: Path) -> LearnerState:
    from ksim.runner.train import VideoWriter, train

    env = Env(task, cfg.num_envs, cfg.physics_backend, cfg.nthread)
    if cfg.pretrained:
        learner, path = load_learner(env, cfg)
        source = Path(cfg.pretrained).expanduser()
        source = source.parent.parent if source.is_file() else source
        # resume in place when it is one of our run directories; otherwise start a new run from its weights
        run_dir = source if _RUN.match(source.name) and os.access(source, os.W_OK) else new_run_dir(runs_root)
        print(f"resuming from {path} (iteration {int(learner.iteration)})")
    else:
        learner = init_learner(env, cfg, jax.random.PRNGKey(cfg.seed))
        run_dir = new_run_dir(runs_root)
    (run_dir / "config.json").write_text(cfg.to_json())
    video = VideoWriter(lambda: Env(task, 1, cfg.physics_backend, cfg.nthread), cfg) if cfg.video_every_iters else None
    return train(env, cfg, run_dir, learner, video)


def _film(cfg: RunConfig, task: Task, runs_root: Path) -> Path:
    from ksim.runner.evaluate import collect_qpos, policy_act_fn
    from ksim.runner.video import render_mp4

    env = Env(task, 1, cfg.physics_backend, cfg.nthread)
    learner, name, folder = None, "zero_policy", runs_root / "videos"
    if cfg.policy == "trained":
        if not cfg.pretrained:
            exit_on_error("action=env needs pretrained=<run dir> (or policy=zero)")
        learner, path = load_learner(env, cfg)
        name, folder = path.stem, path.parent.parent / "videos"
        if not os.access(path.parent.parent, os.W_OK):
            folder = runs_root / "videos"
    act_fn, carry0 = policy_act_fn(learner, cfg.deterministic, env.model.nu)
    every = max(1, round(1.0 / (cfg.video_fps * env.ctrl_dt)))
    qpos_F = collect_qpos(env, act_fn, carry0, cfg.video_seconds, every, jax.random.PRNGKey(cfg.seed))
    out = render_mp4(env.model, qpos_F, folder / f"{name}.mp4", cfg.video_fps, cfg.video_size)
    print(f"video: {out}")
    return out


def _eval(cfg: RunConfig, task: Task) -> dict[str, float]:
    from ksim.runner.evaluate import measure, policy_act_fn

    env = Env(task, cfg.eval_num_envs, cfg.physics_backend, cfg.nthread)
    learner = None
    if cfg.policy == "trained":
        if not cfg.pretrained:
            exit_on_error("action=eval needs pretrained=<run dir> (or policy=zero for the baseline)")
        learner, path = load_learner(env, cfg)
        print(f"policy: {path}")
    else:
        print("policy: zero actions (hold the stance)")
    act_fn, carry0 = policy_act_fn(learner, cfg.deterministic, env.model.nu)
    metrics = measure(env, act_fn, carry0, cfg.eval_seconds, jax.random.PRNGKey(cfg.seed + 1))
    for key, value in metrics.items():
        print(f"  {key:28s} {value:.4f}")
    summary = " ".join(f"{k}={v:.4g}" if not math.isnan(v) else f"{k}=nan" for k, v in metrics.items())
    print(f"policy={cfg.policy} backend={env.backend.name} {summary}")
    return metrics
