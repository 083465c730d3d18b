"""A robot's runtime, written against the export folder alone: `metadata.json`, `policy.onnx`, `model.mjb`.

Everything the loop needs (which joints, which sensors, how each observation is computed,
how an action becomes joint targets, when a robot has fallen) is read from the metadata.
A field missing from it is a bug in the exporter, not something to patch in here.
No JAX: numpy, mujoco and onnxruntime only.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import onnxruntime as ort

GRAVITY_DIRECTION = np.array([0.0, 0.0, -1.0])


def load_metadata(folder: Path) -> dict[str, Any]:
    """The export's metadata; a one-line ValueError if the folder is not an export."""
    missing = [n for n in ("metadata.json", "policy.onnx", "model.mjb") if not (folder / n).is_file()]
    if missing:
        raise ValueError(f"{folder} is not an export folder: it lacks {', '.join(missing)}")
    try:
        return json.loads((folder / "metadata.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{folder / 'metadata.json'} is not readable JSON ({err})") from None


class OnnxPolicy:
    """`policy.onnx` on one CPU thread: `(obs, carry) -> (action, carry)`; the carry is empty when feed-forward."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        """Open the ONNX session; the carry's size and initial value come from the metadata."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3  # no warnings about unused constants left by the converter
        self.session = ort.InferenceSession(str(folder / "policy.onnx"), options, providers=["CPUExecutionProvider"])
        self.initial_carry = np.asarray(meta["policy"]["initial_carry"], np.float32)

    def __call__(self, obs: np.ndarray, carry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The deterministic action for one observation vector, and the next carry."""
        feeds = {"obs": obs.astype(np.float32)}
        if self.initial_carry.size:
            feeds["carry"] = carry
            action, carry = self.session.run(["action", "next_carry"], feeds)
            return action, carry
        return self.session.run(["action"], feeds)[0], carry


@dataclass
class Episode:
    """What the runtime keeps besides MuJoCo's state: commands, last action, policy carry, push timer."""

    commands: dict[str, np.ndarray]
    command_time_left: dict[str, float]
    previous_action: np.ndarray
    carry: np.ndarray
    push_time_left: float = np.inf
    steps: int = 0
    latency: int = 0  # control steps (simulated, as in training)
    action_history: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))
    reasons: dict[str, bool] = field(default_factory=dict)


class Robot:
    """One simulated robot, observed and driven exactly as the metadata describes.

    With `as_trained`, the simulation also adds what training simulated and a robot brings by
    itself: observation and action noise, action latency and randomised model parameters. Those
    lines are marked `(simulation)`; a robot's runtime leaves them out.
    """

    def __init__(
        self, model: mujoco.MjModel, meta: dict[str, Any], rng: np.random.Generator, as_trained: bool = True
    ) -> None:
        """Resolve joint, base and sensor addresses by name."""
        self.model, self.meta, self.rng, self.as_trained = model, meta, rng, as_trained
        self.model_defaults = {r["field"]: getattr(model, r["field"]).copy() for r in meta.get("randomizations", [])}
        self.data = mujoco.MjData(model)
        joints = [model.joint(name) for name in meta["joints"]]
        self.qpos_ids = np.array([j.qposadr[0] for j in joints])
        self.dof_ids = np.array([j.dofadr[0] for j in joints])
        base = model.joint(meta["base_joint"]) if meta.get("base_joint") else None
        self.base_qpos = None if base is None else int(base.qposadr[0])
        self.base_dof = None if base is None else int(base.dofadr[0])
        act = meta["actuators"]
        self.action_scale = np.asarray(act.get("action_scale", 1.0), np.float32)  # a scalar or one per joint
        self.default_joint_pos = np.asarray(act.get("default_joint_pos", np.zeros(model.nu)))
        self.torque_limit = np.asarray([np.inf if t is None else t for t in act["torque_limit"]])

    # --- state read through the free base -------------------------------------------------
    def _base(self) -> tuple[int, int]:
        if self.base_qpos is None or self.base_dof is None:
            raise ValueError("the metadata asks for base quantities, but names no free base joint (base_joint)")
        return self.base_qpos, self.base_dof

    def _base_rotation(self) -> np.ndarray:
        mat, qpos = np.zeros(9), self._base()[0]
        mujoco.mju_quat2Mat(mat, self.data.qpos[qpos + 3 : qpos + 7])
        return mat.reshape(3, 3)

    def base_velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """The base's linear and angular velocity, both in the base frame."""
        dof = self._base()[1]
        return self._base_rotation().T @ self.data.qvel[dof : dof + 3], self.data.qvel[dof + 3 : dof + 6].copy()

    def projected_gravity(self) -> np.ndarray:
        """Gravity's direction in the base frame."""
        return self._base_rotation().T @ GRAVITY_DIRECTION

    def _sensor(self, name: str) -> np.ndarray:
        return self.data.sensor(name).data

    # --- episodes -------------------------------------------------------------------------
    def reset(self, initial_carry: np.ndarray) -> Episode:
        """A new episode: the resets the metadata lists, fresh commands, zero previous action."""
        model, data = self.model, self.data
        mujoco.mj_resetData(model, data)
        for reset in self.meta.get("resets", []):
            if reset["reset"] == "stance":
                key = model.keyframe(reset["keyframe"])
                data.qpos[:], data.qvel[:] = key.qpos, key.qvel
                n = len(self.qpos_ids)
                data.qpos[self.qpos_ids] += self.rng.uniform(-1, 1, n) * reset["joint_pos_noise"]
                data.qvel[self.dof_ids] += self.rng.uniform(-1, 1, n) * reset["joint_vel_noise"]
            elif reset["reset"] == "base_pose" and self.base_qpos is not None:
                data.qpos[self.base_qpos : self.base_qpos + 2] += self.rng.uniform(-1, 1, 2) * reset["xy"]
                yaw = self.rng.uniform(-1, 1) * reset["yaw"]
                turn, quat = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]), np.zeros(4)
                mujoco.mju_mulQuat(quat, turn, data.qpos[self.base_qpos + 3 : self.base_qpos + 7].copy())
                data.qpos[self.base_qpos + 3 : self.base_qpos + 7] = quat
            elif reset["reset"] != "base_pose":
                raise ValueError(f"reset {reset['reset']!r} is unknown to this runtime")
        if self.as_trained:  # (simulation)
            self._randomize()
        mujoco.mj_forward(model, data)
        episode = Episode({}, {}, np.zeros(model.nu, np.float32), initial_carry.copy())
        max_latency = self.meta["actuators"]["max_latency_steps"] if self.as_trained else 0  # (simulation)
        episode.latency = int(self.rng.integers(0, max_latency + 1))
        episode.action_history = np.zeros((max_latency + 1, model.nu), np.float32)
        for name, spec in self.meta["commands"].items():
            episode.commands[name], episode.command_time_left[name] = self._draw_command(spec)
        if self.meta.get("push"):
            episode.push_time_left = self.rng.uniform(*self.meta["push"]["interval_seconds"])
        return episode

    def _randomize(self) -> None:
        """(simulation) Model arrays scaled from their defaults, as the training randomised them."""
        for spec in self.meta.get("randomizations", []):
            array = getattr(self.model, spec["field"])
            array[:] = self.model_defaults[spec["field"]]
            rows = slice(None) if spec["rows"] is None else np.asarray(spec["rows"])
            view = array[rows] if spec["column"] is None else array[rows, spec["column"]]
            low, high = spec["scale_range"]
            factors = self.rng.uniform(low, high, size=1 if spec["shared"] else view.shape)
            if spec["column"] is None:
                array[rows] = view * factors
            else:
                array[rows, spec["column"]] = view * factors

    def _noisy(self, x: np.ndarray, noise: dict[str, Any] | None) -> np.ndarray:
        """(simulation) `x` with the training's noise."""
        if noise is None or not self.as_trained:
            return x
        if noise["type"] == "GaussianNoise":
            n = self.rng.normal(size=np.shape(x)) * noise["std"]
        elif noise["type"] == "UniformNoise":
            n = self.rng.uniform(-1, 1, size=np.shape(x)) * noise["half_width"]
        else:
            raise ValueError(f"noise type {noise['type']!r} is unknown to this runtime")
        return x * (1 + n) if noise["multiplicative"] else x + n

    def _draw_command(self, spec: dict[str, Any]) -> tuple[np.ndarray, float]:
        if spec["kind"] == "velocity":
            low, high = np.array(list(spec["ranges"].values())).T
            value = np.zeros(3) if self.rng.uniform() < spec["still_probability"] else self.rng.uniform(low, high)
            return value, self.rng.uniform(*spec["resample_seconds"])
        if spec["kind"] == "gait_clock":
            return np.array([self.rng.uniform(0, 2 * np.pi), self.rng.uniform(*spec["frequency"])]), np.inf
        if spec["kind"] == "constant":
            return np.asarray(spec["value"], np.float64), np.inf
        raise ValueError(f"command kind {spec['kind']!r} is unknown to this runtime")

    def advance_commands(self, episode: Episode, dt: float) -> None:
        """Count down, resample what is due, and move gait clocks on."""
        for name, spec in self.meta["commands"].items():
            episode.command_time_left[name] -= dt
            if episode.command_time_left[name] <= 0:
                episode.commands[name], episode.command_time_left[name] = self._draw_command(spec)
            if spec["kind"] == "gait_clock":
                phase, frequency = episode.commands[name]
                episode.commands[name] = np.array([(phase + 2 * np.pi * frequency * dt) % (2 * np.pi), frequency])

    # --- the policy's view and its effect ---------------------------------------------------
    def observe(self, episode: Episode) -> np.ndarray:
        """The actor's observation vector, in the metadata's order."""
        parts = [
            self._noisy(np.atleast_1d(self._observation(o, episode)), o["noise"]) for o in self.meta["observations"]
        ]
        return np.concatenate(parts)

    def _observation(self, spec: dict[str, Any], episode: Episode) -> np.ndarray:
        data, source = self.data, spec["source"]
        if source == "joint_position":
            return data.qpos[self.qpos_ids] - np.asarray(spec["offset"])
        if source == "joint_velocity":
            return data.qvel[self.dof_ids]
        if source == "projected_gravity":
            return self.projected_gravity()
        if source == "base_linear_velocity":
            return self.base_velocity()[0]
        if source == "base_angular_velocity":
            return self.base_velocity()[1]
        if source == "sensor":
            return self._sensor(spec["sensor"]) * spec["scale"]
        if source == "touch":
            return np.array([self._sensor(s)[0] > spec["threshold"] for s in spec["sensors"]], np.float32)
        if source == "actuator_force":
            return data.actuator_force * spec["scale"]
        if source == "previous_action":
            return episode.previous_action
        if source == "gait_phase":
            phases = episode.commands[spec["command"]][0] + np.array([0.0, np.pi])
            return np.concatenate([np.sin(phases), np.cos(phases)])
        if source == "command":
            return episode.commands[spec["command"]]
        raise ValueError(f"observation source {source!r} is unknown to this runtime")

    def ctrl(self, action: np.ndarray) -> np.ndarray:
        """MuJoCo controls: PD targets around the default pose, or torques."""
        if self.meta["actuators"]["kind"] == "pd":
            return self.default_joint_pos + self.action_scale * action
        return np.clip(action, -1.0, 1.0) * self.torque_limit

    def step(self, episode: Episode, action: np.ndarray, push_velocity: float | None) -> None:
        """Apply one action for the control period (with a push when due), then judge the new state."""
        meta = self.meta
        # (simulation) action noise and latency: the action applied is `latency` steps old
        noisy = self._noisy(action, meta["actuators"]["action_noise"])
        episode.action_history = np.concatenate([noisy[None], episode.action_history[:-1]])
        self.data.ctrl[:] = self.ctrl(episode.action_history[episode.latency])
        push = meta.get("push")
        if push and self.base_dof is not None:
            episode.push_time_left -= meta["ctrl_dt"]
            if episode.push_time_left <= 0:
                limit = np.asarray(push["max_velocity"] if push_velocity is None else [push_velocity] * 2)
                dof = self._base()[1]
                self.data.qvel[dof : dof + 2] += self.rng.uniform(-limit, limit)
                episode.push_time_left = self.rng.uniform(*push["interval_seconds"])
        for _ in range(meta["num_substeps"]):
            mujoco.mj_step(self.model, self.data)
        episode.steps += 1
        episode.previous_action = action
        episode.reasons = {t["name"]: self._ended(t, episode) for t in meta["terminations"]}

    def _ended(self, spec: dict[str, Any], episode: Episode) -> bool:
        check = spec["check"]
        if check == "base_height":
            z = self.data.qpos[self._base()[0] + 2]
            return bool(z < spec["min"] or z > spec["max"])
        if check == "tilt":
            return bool(-self.projected_gravity()[2] < np.cos(spec["max_tilt"]))
        if check == "touch":
            return any(self._sensor(s)[0] > spec["threshold"] for s in spec["sensors"])
        if check == "episode_length":
            return episode.steps >= round(spec["max_seconds"] / self.meta["ctrl_dt"])
        raise ValueError(f"termination check {check!r} is unknown to this runtime")

    def velocity_error(self, command: np.ndarray) -> np.ndarray:
        """The command (vx, vy, wz) minus the base's planar velocity and yaw rate, in the base frame."""
        linear, angular = self.base_velocity()
        return command - np.array([linear[0], linear[1], angular[2]])
