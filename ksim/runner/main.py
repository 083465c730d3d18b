"""The main program of a task file: `run(ConfigClass, make_task, __file__)`.

It parses `key=value` overrides, then trains (`action=train`), films (`action=env`) or
measures (`action=eval`), with numbered run directories, checkpoints and resume.
"""

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import equinox as eqx
import jax

from ksim.deploy.summary import summary_line
from ksim.engine.env import PRNG_IMPL, SHARDED_PRNG_IMPL, Env
from ksim.engine.rollout import Policy, ZeroPolicy
from ksim.engine.state import ObsLayout
from ksim.physics import resolve_backend_name
from ksim.rl.distill import DistillError
from ksim.rl.learner import LearnerState, init_learner
from ksim.rl.policy import ActorPolicy
from ksim.rl.ppo import with_learning_rate
from ksim.rl.sharding import Cluster, connect, describe, launched_together, make_cluster, replicate
from ksim.runner import checkpoint
from ksim.runner.cli import build, command_line, exit_on_error, parse_overrides
from ksim.runner.config import PER_LAUNCH_FIELDS, RESTORED_ON_RESUME, RunConfig, load_saved
from ksim.runner.export import ExportError
from ksim.runner.profiling import jit_profile_enabled, setup_compile_cache
from ksim.task import Task

C = TypeVar("C", bound=RunConfig)

_RUN = re.compile(r"run_(\d+)$")


def module_name(task_file: str) -> str:
    """The dotted module of a file, found by walking up its packages (what `python -m` takes)."""
    path = Path(task_file).resolve().with_suffix("")
    parts = [path.name]
    while (path.parent / "__init__.py").exists():
        path = path.parent
        parts.insert(0, path.name)
    return ".".join(parts)


def new_run_dir(root: Path) -> Path:
    """The next free `run_N` under `root` (created)."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in root.iterdir() if (m := _RUN.match(p.name))]
    path = root / f"run_{max(taken, default=-1) + 1}"
    path.mkdir()
    return path


def resolve(cls: type[C], values: dict[str, Any]) -> C:
    """Defaults, then (with `pretrained=`) the run's saved config, then the command line's `values`."""
    if values.get("pretrained"):
        run_dir, _ = checkpoint.resolve(values["pretrained"], values.get("checkpoint_num"))
        if (run_dir / "config.json").exists():
            known = set(cls.__dataclass_fields__) - set(PER_LAUNCH_FIELDS)
            saved = {k: v for k, v in load_saved(run_dir / "config.json").items() if k in known}
            # a setting added after the run was saved takes today's default, which may not be what it trained with
            newer = sorted(known - set(saved) - set(values))
            if newer:
                fields = cls.__dataclass_fields__
                defaults = ", ".join(f"{k}={fields[k].default}" for k in newer)
                print(f"note: {run_dir / 'config.json'} predates {newer}; using today's defaults ({defaults})")
            values = saved | values
    return build(cls, values)


def resolve_config(cls: type[C], argv: list[str]) -> C:
    """The config for a command line (`resolve` after parsing); raises on mistakes."""
    return resolve(cls, parse_overrides(cls, argv))


def load_learner(env: Env, cfg: RunConfig) -> tuple[LearnerState, Path]:
    """The learner from `cfg.pretrained` (and `checkpoint_num`), checked against the env's observations."""
    assert cfg.pretrained is not None
    _, path = checkpoint.resolve(cfg.pretrained, cfg.checkpoint_num)

    def check(header: dict[str, Any]) -> None:
        for key, layout in (("actor_observations", env.actor_layout), ("critic_observations", env.critic_layout)):
            difference = ObsLayout.from_json(header[key]).diff(layout) if key in header else "not recorded"
            if difference:
                raise checkpoint.CheckpointError(f"{path} was trained on other {key.replace('_', ' ')}: {difference}")
        if header.get("joints") != list(env.index.joint_names):
            raise checkpoint.CheckpointError(f"{path} was trained on the joints {header.get('joints')}, not these")

    like = init_learner(env, cfg, jax.random.PRNGKey(cfg.seed))
    # the file decides whether it holds an averaged policy; the config, whether the learner keeps one
    like = like.with_average(bool(checkpoint.read(path)[0].get("policy_average")))
    learner, _ = checkpoint.load(path, like, check)
    return learner.with_average(cfg.policy_average_iters > 0), path


def policy_for(env: Env, cfg: RunConfig) -> tuple[Policy, Any, str]:
    """(policy, its params, a description) for `action=env|eval`: the trained one, or zero actions."""
    if cfg.policy == "zero":
        return ZeroPolicy(env.model.nu), None, "zero actions (hold the stance)"
    if not cfg.pretrained:
        exit_on_error(f"action={cfg.action} needs pretrained=<run dir> (or policy=zero for the baseline)")
    learner, path = load_learner(env, cfg)
    return ActorPolicy.of(env, cfg.deterministic), learner.eval_params, str(path)


def run(cls: type[C], make_task: Callable[[C], Task], task_file: str, argv: list[str] | None = None) -> Any:
    """Parse the command line into `cls` and do `action`; returns the learner (train) or the metrics (eval)."""
    argv = sys.argv[1:] if argv is None else argv
    cfg = command_line(cls, argv, f"python -m {module_name(task_file)}", resolve)
    setup_compile_cache(cfg.compile_cache)
    if jit_profile_enabled():
        jax.config.update("jax_log_compiles", True)
    task = make_task(cfg)
    runs_root = Path(cfg.run_root) if cfg.run_root else Path(task_file).resolve().parent / "runs" / Path(task_file).stem
    distributed = cfg.action == "train" and (
        cfg.coordinator is not None or (cfg.num_processes or 1) > 1 or launched_together()
    )
    try:
        if distributed:
            connect(cfg.coordinator, cfg.num_processes, cfg.process_id)
        if cfg.action == "train":
            explicit = {a.lstrip("-").partition("=")[0].replace("-", "_") for a in argv}
            return _train(cfg, task, runs_root, explicit)
        if cfg.action == "distill":
            return _distill(cfg, task, runs_root, lambda c: make_task(cast(C, c)), type(cfg))
        if cfg.action in ("export", "sim2sim"):
            return _export(cfg, task, module_name(task_file))
        return _film(cfg, task, runs_root) if cfg.action == "env" else _eval(cfg, task)
    except (checkpoint.CheckpointError, FloatingPointError, ExportError, DistillError) as err:
        exit_on_error(str(err), code=1)
    except jax.errors.JaxRuntimeError as err:
        if not distributed:
            raise
        # e.g. a peer process died: its collectives fail here (or its silence ends this process)
        exit_on_error(f"process {jax.process_index()}: distributed training stopped: {str(err).splitlines()[0]}", 1)


def _cluster(cfg: RunConfig) -> Cluster | None:
    """The devices to train on, or None for the plain single-device run; exits on a mismatch."""
    if cfg.devices == 1 and jax.process_count() == 1:
        return None
    cluster = make_cluster(cfg.devices)
    native = resolve_backend_name(cfg.physics_backend) == "mujoco"
    if native and cluster.num_devices > cluster.num_processes:
        exit_on_error(
            f"devices={cfg.devices}: physics_backend=mujoco steps a process's envs on its own CPU threads, one "
            "device per process; use devices=1 and one process per machine (coordinator=...), or physics_backend=mjx"
        )
    if cfg.num_envs % cluster.num_devices:
        n = cluster.num_devices
        exit_on_error(
            f"num_envs={cfg.num_envs} must divide over the {n} devices ({cluster.num_processes} process(es)); "
            f"use a multiple of {n}, e.g. num_envs={max(n, cfg.num_envs // n * n)}"
        )
    return cluster


def _train(cfg: RunConfig, task: Task, runs_root: Path, explicit: set[str]) -> LearnerState:
    from ksim.runner.train import VideoWriter, train

    cluster = _cluster(cfg)
    main = cluster is None or cluster.is_main
    per_process = cluster is not None and resolve_backend_name(cfg.physics_backend) == "mujoco"
    # the native backend's batch holds only this process's envs
    local_envs = cfg.num_envs // (cluster.num_devices if per_process and cluster else 1)
    env = Env(task, local_envs, cfg.physics_backend, cfg.nthread, SHARDED_PRNG_IMPL if cluster else PRNG_IMPL)
    if cluster is not None and main:
        print(describe(cluster, cfg.num_envs))
    if cfg.pretrained:
        learner, path = load_learner(env, cfg)
        source = Path(cfg.pretrained).expanduser()
        source = source.parent.parent if source.is_file() else source
        # resume in place when it is one of our run directories; otherwise start a new run from its weights
        in_place = _RUN.match(source.name) and os.access(source, os.W_OK)
        run_dir = source if in_place or not main else new_run_dir(runs_root)
        print(f"resuming from {path} (iteration {int(learner.iteration)})")
        if in_place and main:
            for p in checkpoint.set_aside_newer(run_dir, int(learner.iteration)):
                print(f"set aside {p.name} (newer than the checkpoint resumed from) as {p.name}.abandoned")
        for key in sorted(explicit & set(RESTORED_ON_RESUME)):
            print(f"note: {key}={getattr(cfg, key)} has no effect on resume ({RESTORED_ON_RESUME[key]} is restored)")
        if "learning_rate" in explicit:
            restored = float(learner.opt_state.hyperparams["learning_rate"])
            learner = eqx.tree_at(
                lambda s: s.opt_state, learner, with_learning_rate(learner.opt_state, cfg.learning_rate)
            )
            print(f"note: learning_rate={cfg.learning_rate:g} replaces the restored rate {restored:.3g}")
    else:
        learner = init_learner(env, cfg, jax.random.PRNGKey(cfg.seed))
        # only process 0 writes: the others get a name they never create
        run_dir = new_run_dir(runs_root) if main else runs_root / f"process_{jax.process_index()}"
    if cluster is not None:
        learner = replicate(cluster, learner)
    if not main:
        print(f"process {jax.process_index()} of {cluster.num_processes if cluster else 1}: process 0 writes the run")
        return train(env, cfg, run_dir, learner, None, cluster, write=False)
    (run_dir / "config.json").write_text(cfg.to_json())
    video = VideoWriter(lambda: Env(task, 1, cfg.physics_backend, cfg.nthread), cfg) if cfg.video_every_iters else None
    return train(env, cfg, run_dir, learner, video, cluster)


def _distill(cfg: RunConfig, task: Task, runs_root: Path, make_task: Callable[[RunConfig], Task], cls: type) -> Any:
    """Distil `cfg.teacher` into a fresh actor of this task (its own observations and network), in a new run."""
    from ksim.rl.distill import Teacher, make_distill_step
    from ksim.runner.train import VideoWriter, train

    if not cfg.teacher:
        exit_on_error("action=distill needs teacher=<run dir> (a trained policy of this task, e.g. a privileged one)")
    teacher_cfg: RunConfig = resolve(cls, {"pretrained": cfg.teacher, "checkpoint_num": None})
    teacher_env = Env(make_task(teacher_cfg), 1, "mujoco", 1)
    teacher_learner, path = load_learner(teacher_env, teacher_cfg)
    if teacher_cfg.actor != "mlp":
        exit_on_error(f"teacher={cfg.teacher}: actor={teacher_cfg.actor}; a teacher must be feed-forward (actor=mlp)")
    print(f"teacher: {path} (observes {', '.join(teacher_env.actor_layout.names)})")
    env = Env(task, cfg.num_envs, cfg.physics_backend, cfg.nthread)
    step = make_distill_step(env, cfg, Teacher(teacher_learner.eval_params, teacher_env.actor_layout))
    run_dir = new_run_dir(runs_root)
    (run_dir / "config.json").write_text(cfg.to_json())
    video = VideoWriter(lambda: Env(task, 1, cfg.physics_backend, cfg.nthread), cfg) if cfg.video_every_iters else None
    return train(env, cfg, run_dir, init_learner(env, cfg, jax.random.PRNGKey(cfg.seed)), video, step=step)


def _film(cfg: RunConfig, task: Task, runs_root: Path) -> Path:
    from ksim.runner.video import VideoRecorder

    env = Env(task, 1, cfg.physics_backend, cfg.nthread)
    policy, params, name = policy_for(env, cfg)
    folder, stem = runs_root / "videos", "zero_policy"
    if cfg.policy == "trained":
        path = Path(name)
        stem = path.stem
        if os.access(path.parent.parent, os.W_OK):
            folder = path.parent.parent / "videos"
    recorder = VideoRecorder(env, policy, cfg.video_seconds, cfg.video_fps, cfg.video_size)
    out = recorder(params, jax.random.PRNGKey(cfg.seed), folder / f"{stem}.mp4")
    print(f"video: {out}")
    return out


def _eval(cfg: RunConfig, task: Task) -> dict[str, float]:
    from ksim.runner.evaluate import measure

    env = Env(task, cfg.eval_num_envs, cfg.physics_backend, cfg.nthread)
    policy, params, name = policy_for(env, cfg)
    print(f"policy: {name}")
    metrics = measure(env, policy, params, cfg.eval_seconds, jax.random.PRNGKey(cfg.seed + 1))
    for key, value in metrics.items():
        print(f"  {key:28s} {value:.4f}")
    print(f"policy={cfg.policy} backend={env.backend.name} {summary_line(metrics)}")
    return metrics


def _export(cfg: RunConfig, task: Task, task_name: str) -> Path:
    """Export the checkpoint (and, for `action=sim2sim`, compare it across mujoco, mjx and the ONNX runtime)."""
    from ksim.runner.export import export

    if not cfg.pretrained:
        exit_on_error(f"action={cfg.action} needs pretrained=<run dir>")
    env = Env(task, 1, cfg.physics_backend, cfg.nthread)
    learner, path = load_learner(env, cfg)
    header = checkpoint.read(path)[0] | {"file": path.name}
    folder = Path(cfg.export_dir).expanduser() if cfg.export_dir else path.parent.parent / "export" / path.stem
    error = export(env, learner.eval_params, header, task_name, folder)
    print(f"onnx matches the JAX actor to {error:.2g} (max |action difference|, 256 random observations)")
    print(f"exported: {folder}")
    if cfg.action == "sim2sim":
        from ksim.runner.sim2sim import sim2sim

        report = sim2sim(cfg, task, learner.eval_params, folder)
        print(report)
        (path.parent.parent / "sim2sim.md").write_text(report)
        print(f"written: {path.parent.parent / 'sim2sim.md'}")
    return folder
