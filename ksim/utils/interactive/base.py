"""What every interactive visualizer shares: settings, key handling and a one-env simulation session.

The window-free parts live here so that they can be tested without a display:
`Controls` turns key presses into requests, and `SimSession` applies them to a 1-env
`Env` and steps it with a policy or with zero actions.
"""

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ksim.components.base import ModelIndex
from ksim.engine.env import Env
from ksim.engine.state import EnvState, Transition


@dataclass(kw_only=True)
class InteractiveVisualizerConfig:
    """Settings of an interactive visualizer."""

    physics_backend: str = "mjx"  # mjx | mujoco
    plot_path: str = "/tmp/rewards_plots/rewards.png"  # the live reward plot, rewritten atomically
    plot_window_seconds: float = 10.0  # rolling window of the plot (simulated seconds)
    plot_every_seconds: float = 0.25  # how often the plot file is rewritten (wall clock)
    move_step: float = 0.05  # metres per arrow/P/L press
    realtime: bool = True  # pace the simulation to the wall clock
    status_path: str | None = None  # if set, a JSON snapshot (time, base, paused) written every frame
    max_seconds: float | None = None  # close after this many wall-clock seconds (scripts, tests)
    seed: int = 0


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
    """One env stepped by a policy (or zeros), with the key requests applied between steps."""

    def __init__(self, env: Env, act: Callable[[dict[str, Array], jax.Array], Array] | None, seed: int = 0) -> None:
        """`act(obs_E, rng) -> action_E` for the 1-env batch, or None for zero actions."""
        if env.num_envs != 1:
            raise ValueError("an interactive session runs exactly one env")
        self.env = env
        self.act = act
        self.rng = jax.random.PRNGKey(seed)
        self.controls = Controls()
        self.root_qpos, self.root_dof, _ = ModelIndex.of(env.model).require_root("the interactive visualizer")
        self.state: EnvState = env.reset(self._next_rng())
        self.held_root: np.ndarray | None = None
        self.steps = 0
        self._set = jax.jit(self._set_qpos_qvel)

    def _next_rng(self) -> jax.Array:
        self.rng, out = jax.random.split(self.rng)
        return out

    def _set_qpos_qvel(self, state: EnvState, qpos_E: Array, qvel_E: Array) -> EnvState:
        reset = jax.vmap(lambda d, p, q, v: self.env.backend.reset_where(jnp.bool_(True), d, p, q, v))
        return eqx.tree_at(lambda s: s.physics, state, reset(state.physics, state.params, qpos_E, qvel_E))

    @property
    def qpos(self) -> Float[np.ndarray, " nq"]:
        """The env's joint positions (base first)."""
        return np.asarray(self.state.physics.qpos[0])

    @property
    def qvel(self) -> Float[np.ndarray, " nv"]:
        """The env's joint velocities."""
        return np.asarray(self.state.physics.qvel[0])

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
            self.state = self.env.reset(self._next_rng())
            self.held_root = None if not c.suspended else self.qpos[self.root_qpos : self.root_qpos + 7].copy()
        if c.suspended and self.held_root is None:
            self.held_root = self.qpos[self.root_qpos : self.root_qpos + 7].copy()
        if not c.suspended:
            self.held_root = None
        if np.any(c.base_shift):
            qpos = self.qpos.copy()
            qpos[self.root_qpos : self.root_qpos + 3] += c.base_shift
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
        obs = self.state.obs
        action = self.act(obs, self._next_rng()) if self.act is not None else self.env.zero_action()
        xfrc = None if external_xfrc is None else jnp.asarray(external_xfrc, jnp.float32)[None]
        self.state, transition = self.env.step(self.state, action, xfrc)
        self.steps += 1
        if self.held_root is not None:  # suspended: the base stays put, the joints keep moving
            qpos, qvel = self.qpos.copy(), self.qvel.copy()
            qpos[self.root_qpos : self.root_qpos + 7] = self.held_root
            qvel[self.root_dof : self.root_dof + 6] = 0.0
            self._write(qpos, qvel)
        return transition

    def write_status(self, path: str) -> None:
        """A JSON snapshot of the session, replaced atomically (for tools and tests)."""
        status = {
            "time": self.time,
            "steps": self.steps,
            "base": self.qpos[self.root_qpos : self.root_qpos + 3].tolist(),
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
