"""The interactive visualizer on MuJoCo's viewer (`mujoco.viewer.launch_passive`).

Physics runs in ksim's env (either backend); the viewer only shows env 0's state and
hands back the mouse-drag forces, which the env applies at its next step.
"""

import queue
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ksim.engine.env import Env
from ksim.engine.rollout import Policy, ZeroPolicy
from ksim.task import Task
from ksim.utils.interactive.base import InteractiveVisualizer, InteractiveVisualizerConfig, SimSession
from ksim.utils.interactive.plot import RewardPlot


class MujocoInteractiveVisualizer(InteractiveVisualizer):
    """A MuJoCo viewer window on one env of `task`, driven by a policy or zero actions."""

    def __init__(
        self,
        config: InteractiveVisualizerConfig,
        task: Task,
        make_policy: Callable[[Env], tuple[Policy, Any]] | None = None,
    ) -> None:
        """`make_policy(env)` returns (policy, params); None means zero actions."""
        super().__init__(config)
        self.task = task
        self.make_policy = make_policy or (lambda env: (ZeroPolicy(env.model.nu), None))

    def setup_environment(self) -> Env:
        """One env of the task on the configured backend."""
        return Env(self.task, 1, self.config.physics_backend)

    def run(self) -> None:
        """Open the window and simulate until it closes (or `max_seconds` pass)."""
        import mujoco.viewer

        cfg = self.config
        env = self.setup_environment()
        policy, params = self.make_policy(env)
        session = SimSession(env, policy, params, cfg.seed)
        print(f"compiling the {env.backend.name} step (MJX on a CPU takes a while) ...", flush=True)
        session.tick()  # compile before the window opens
        plot = RewardPlot(cfg.plot_path, int(cfg.plot_window_seconds / env.ctrl_dt), cfg.plot_every_seconds)
        keys: queue.SimpleQueue[int] = queue.SimpleQueue()
        model = env.model
        data = mujoco.MjData(model)
        print(
            f"viewer: {env.describe()}\nkeys: Space pause · S suspend · arrows move x/y · P/L z · N step · R reset\n"
            f"reward plot: {cfg.plot_path}",
            flush=True,
        )
        started = time.perf_counter()
        with mujoco.viewer.launch_passive(model, data, key_callback=keys.put) as viewer:
            while viewer.is_running():
                if cfg.max_seconds is not None and time.perf_counter() - started > cfg.max_seconds:
                    break
                tick_start = time.perf_counter()
                while not keys.empty():
                    said = session.controls.press(keys.get())
                    if said:
                        print(f"[key] {said}", flush=True)
                with viewer.lock():
                    xfrc = np.array(data.xfrc_applied)  # the mouse drag, from the last sync
                transition = session.tick(xfrc if np.any(xfrc) else None)
                if transition is not None:
                    terms = {k: float(v[0]) for k, v in jax.device_get(transition.reward_terms).items()}
                    plot.add(session.time, terms)
                with viewer.lock():
                    data.qpos[:] = session.qpos
                    data.qvel[:] = session.qvel
                    data.time = session.time
                    mujoco.mj_forward(model, data)
                viewer.sync()
                if cfg.status_path:
                    session.write_status(cfg.status_path)
                if cfg.realtime:
                    time.sleep(max(0.0, env.ctrl_dt - (time.perf_counter() - tick_start)))
        plot.close()
