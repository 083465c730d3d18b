"""Per-step inference time of an exported policy on one CPU core: onnxruntime beside the jitted JAX actor.

Both compute the same deterministic action for one observation vector (normalisation included),
called once per control step as a robot's runtime would. The observations are ones the policy
saw in `ksim.deploy` on the export's model, so the timings include nothing but inference.

Usage: python -m bench.latency [pretrained=examples/kbot/pretrained/standing] [steps=5000]
Run it with one core (`taskset -c 0`); the ONNX session is pinned to one thread either way.
"""

import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from examples.kbot.standing import StandingConfig, make_task
from ksim.config import opt
from ksim.deploy.__main__ import evaluate
from ksim.deploy.runtime import OnnxPolicy, load_metadata
from ksim.engine.env import Env
from ksim.runner.checkpoint import read
from ksim.runner.cli import command_line
from ksim.runner.export import deterministic_actor, export
from ksim.runner.main import load_learner


@dataclass(kw_only=True)
class LatencyBenchConfig:
    """Which checkpoint, and how many timed steps."""

    pretrained: str = opt("examples/kbot/pretrained/standing", "a K-Bot standing run directory or checkpoint")
    steps: int = opt(5000, "timed inference calls per policy", ge=100)


def _percentiles(seconds: list[float]) -> str:
    us = np.asarray(seconds) * 1e6
    return f"p50 {np.percentile(us, 50):7.1f} us   p99 {np.percentile(us, 99):7.1f} us   mean {us.mean():7.1f} us"


def main() -> None:
    """Export the checkpoint to a temporary folder, record observations, time both policies."""
    cfg = command_line(LatencyBenchConfig, sys.argv[1:], "python -m bench.latency")
    task_cfg = StandingConfig(pretrained=cfg.pretrained)
    env = Env(make_task(task_cfg), 1, "mujoco", nthread=1)
    learner, path = load_learner(env, task_cfg)
    params = learner.policy_params
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export(env, params, read(path)[0] | {"file": path.name}, "examples.kbot.standing", folder)
        log: list = []
        evaluate(folder, episodes=4, seconds=cfg.steps * 0.02 / 4, log=log)
        obs_N = np.stack([obs for obs, _, _ in log]).astype(np.float32)
        obs_N = np.resize(obs_N, (cfg.steps, obs_N.shape[1]))  # repeated if episodes ended early
        onnx = OnnxPolicy(folder, load_metadata(folder))
        carry = onnx.initial_carry
        for obs in obs_N[:200]:  # warm-up
            onnx(obs, carry)
        onnx_s = []
        for obs in obs_N:
            t0 = time.perf_counter()
            onnx(obs, carry)
            onnx_s.append(time.perf_counter() - t0)

    act = jax.jit(deterministic_actor(params))
    empty = params.actor.initial_carry()
    jax.block_until_ready(act(jnp.asarray(obs_N[0]), empty))
    jax_s = []
    for obs in obs_N:
        t0 = time.perf_counter()
        action, _ = act(obs, empty)  # numpy in, as a runtime would pass it
        np.asarray(action)  # the action back on the host
        jax_s.append(time.perf_counter() - t0)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# {platform.processor() or platform.machine()}, {cores} core(s) visible, {len(obs_N)} steps, {path}")
    print(f"onnxruntime (1 thread)  {_percentiles(onnx_s)}")
    print(f"jax jit ({jax.devices()[0].platform})          {_percentiles(jax_s)}")


if __name__ == "__main__":
    main()
