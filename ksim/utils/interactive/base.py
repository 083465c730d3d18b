"""What every interactive visualizer shares: settings, key handling and a one-env simulation session.

The window-free parts live here so that they can be tested without a display:
`Controls` turns key presses into requests, and `SimSession` applies them to a 1-env
`Env` and steps it with a policy or with zero actions.
"""

import functools
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ksim.config import check_fields, opt
from ksim.engine.env import Env
from ksim.engine.rollout import Policy, RolloutState, init_rollout, rollout_step
from ksim.engine.state import Transition


@dataclass(kw_only=True)
class InteractiveVisualizerConfig:
    """An interactive viewer of one env of a task (keys: Space S arrows P L N R; see the README)."""

    physics_backend: Literal["mjx", "mujoco"] = opt("mjx", "physics backend of the viewed env")
    pretrained: str | None = opt(None, "a run directory (or checkpoint file) whose policy acts")
    checkpoint_num: int | None = opt(None, "which checkpoint of `pretrained`; latest if unset", ge=0)
    policy: Literal["trained", "zero"] = opt("trained", "zero: hold the stance (all-zero actions)")
    plot_path: str = opt("/tmp/rewards_plots/rewards.png", "the live reward plot, rewritten atomically")
    plot_window_seconds: float = opt(10.0, "rolling window of the plot (simulated seconds)", gt=0)
    plot_every_seconds: float = opt(0.25, "how often the plot file is rewritten (wall clock)", gt=0)
    move_step: float = opt(0.05, "metres per arrow/P/L press", gt=0)
    realtime: bool = opt(True, "pace the simulation to the wall clock")
    status_path: str | None = opt(None, "write a JSON snapshot (time, base, paused) here every frame")
    max_seconds: float | None = opt(None, "close after this many wall-clock seconds (scripts, tests)", gt=0)
    seed: int = opt(0, "random seed")

    def validate(self) -> None:
        """Raise a one-line error for an out-of-range number."""
        check_fields(self)


class Key(IntEnum):
    """GLFW key codes of SPEC §2's keys."""

    SPACE = 32
    L = 76
    N = 78
    P = 80
    R = 82
    S = 83
    RIGHT = 262
    LEFT = 263
    DOWN = 264
    UP = 265


@dataclass
class Controls:
    """Requests made by keys; the session consumes them at the next tick."""

    move_step: float = 0.05
    paused: bool = False
    suspended: bool = False
    step_requests: int = 0
    reset_requested: bool = False
    base_shift: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def press(self, keycode: int) -> str | None:
        """Handle one key press; returns what it did (None for keys that are not ours)."""
        moves = {
            Key.UP: (0, 1.0),
            Key.DOWN: (0, -1.0),
            Key.RIGHT: (1, 1.0),
            Key.LEFT: (1, -1.0),
            Key.P: (2, 1.0),
            Key.L: (2, -1.0),
        }
        if keycode in moves:
            axis, sign = moves[Key(keycode)]
            self.base_shift[axis] += sign * self.move_step
            return f"move base {'xyz'[axis]} {sign * self.move_step:+.2f} m"
        if keycode == Key.SPACE:
            self.paused = not self.paused
            return "paused" if self.paused else "running"
        if keycode == Key.S:
            self.suspended = not self.suspended
            return "suspended" if self.suspended else "released"
        if keycode == Key.N:
            self.step_requests += 1
            return "step"
        if keycode == Key.R:
            self.reset_requested = True
            return "reset"
        return None


class SimSession:
    """One env stepped by a policy through `rollout_step`, with the key requests applied between steps."""

    def __init__(self, env: Env, policy: Policy, params: Any, seed: int = 0) -> None:
        """`policy` acts with `params` (e.g. `ZeroPolicy(nu)` with None) in a 1-env `env`."""
        if env.num_envs != 1:
            raise ValueError("an interactive session runs exactly one env")
        self.env = env
        self.policy, self.params = policy, params
        self.rng = jax.random.PRNGKey(seed)
        self.controls = Controls()
        self.base = env.index.require_base("the interactive visualizer")
        self.state: RolloutState = init_rollout(env, policy, params, self._next_rng())
        self.held_root: np.ndarray | None = None
        self.steps = 0
        self._set = jax.jit(self._set_qpos_qvel)
        self._step = jax.jit(functools.partial(rollout_step, env, policy))

    def _next_rng(self) -> jax.Array:
        self.rng, out = jax.random.split(self.rng)
        return out

    def _set_qpos_qvel(self, state: RolloutState, qpos_E: Array, qvel_E: Array) -> RolloutState:
        reset = jax.vmap(lambda d, p, q, v: self.env.backend.reset_where(jnp.bool_(True), d, p, q, v))
        physics = reset(state.env.physics, state.env.params, qpos_E, qvel_E)
        return eqx.tree_at(lambda s: s.env.physics, state, physics)

    @property
    def qpos(self) -> Float[np.ndarray, " nq"]:
        """The env's joint positions (base first)."""
        return np.asarray(self.state.env.physics.qpos[0])

    @property
    def qvel(self) -> Float[np.ndarray, " nv"]:
        """The env's joint velocities."""
        return np.asarray(self.state.env.physics.qvel[0])

    @property
    def time(self) -> float:
        """Simulated time since the session started (s); episodes restarting do not rewind it."""
        return self.steps * self.env.ctrl_dt

    def _write(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self.state = self._set(self.state, jnp.asarray(qpos)[None], jnp.asarray(qvel)[None])

    def apply_controls(self) -> None:
        """Reset, move and hold the base as the keys asked."""
        c = self.controls
        if c.reset_requested:
            c.reset_requested = False
            self.state = init_rollout(self.env, self.policy, self.params, self._next_rng())
            self.held_root = None if not c.suspended else self.qpos[self.base.qpos].copy()
        if c.suspended and self.held_root is None:
            self.held_root = self.qpos[self.base.qpos].copy()
        if not c.suspended:
            self.held_root = None
        if np.any(c.base_shift):
            qpos = self.qpos.copy()
            qpos[self.base.qpos][:3] += c.base_shift
            if self.held_root is not None:
                self.held_root[:3] += c.base_shift
            c.base_shift[:] = 0.0
            self._write(qpos, self.qvel)

    def tick(self, external_xfrc: Float[np.ndarray, "nbody 6"] | None = None) -> Transition | None:
        """Apply the key requests, then step once unless paused (N steps once while paused)."""
        self.apply_controls()
        c = self.controls
        if c.paused and c.step_requests == 0:
            return None
        c.step_requests = max(0, c.step_requests - 1)
        xfrc = np.zeros((self.env.model.nbody, 6)) if external_xfrc is None else external_xfrc
        rng_E = jax.random.split(self._next_rng(), 1)
        self.state, step = self._step(self.params, self.state, rng_E, jnp.asarray(xfrc, jnp.float32)[None])
        self.steps += 1
        if self.held_root is not None:  # suspended: the base stays put, the joints keep moving
            qpos, qvel = self.qpos.copy(), self.qvel.copy()
            qpos[self.base.qpos] = self.held_root
            qvel[self.base.qvel] = 0.0
            self._write(qpos, qvel)
        return step.transition

    def write_status(self, path: str) -> None:
        """A JSON snapshot of the session, replaced atomically (for tools and tests)."""
        status = {
            "time": self.time,
            "steps": self.steps,
            "base": self.qpos[self.base.qpos][:3].tolist(),
            "paused": self.controls.paused,
            "suspended": self.controls.suspended,
        }
        tmp = f"{path}.tmp"
        Path(tmp).write_text(json.dumps(status))
        os.replace(tmp, path)


class InteractiveVisualizer(ABC):
    """A window on a task: `setup_environment()` builds the env, `run()` is the loop."""

    def __init__(self, config: InteractiveVisualizerConfig) -> None:
        """Keep the settings; nothing opens until `run()`."""
        self.config = config

    @abstractmethod
    def setup_environment(self) -> Env:
        """The 1-env environment to visualise."""

    @abstractmethod
    def run(self) -> None:
        """Open the window and loop until it is closed."""
