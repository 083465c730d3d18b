"""The native backend: MuJoCo's threaded `mujoco.batch.Batch`, called from inside jit.

The engine is written for one environment and vmapped; here the vmapped physics
calls become one `jax.pure_callback` each (`vmap_method="broadcast_all"`), so that
a single C call steps every environment on the batch's thread pool. No Python
runs per environment or per substep.

The full MuJoCo state (`mjSTATE_INTEGRATION`, float64) travels through JAX as its
raw bits (uint32 pairs), so that it survives JAX's float32 default losslessly and
the rollout stays a pure function of its inputs.
"""

import functools
import time

import jax
import jax.numpy as jnp
import mujoco
import mujoco.batch
import numpy as np
from jaxtyping import Array, Bool, Float

from ksim.physics.data import RANDOMIZABLE_FIELDS, ModelParams, PhysicsData

_DERIVED = ("xpos", "xquat", "sensordata", "actuator_force")
_BAD_WARNINGS = [
    int(w)
    for w in (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQACC)
]


class MujocoBackend:
    """Steps all environments at once with `mujoco.batch.Batch` on CPU threads."""

    name = "mujoco"

    def __init__(self, model: mujoco.MjModel, num_envs: int, nthread: int = 0) -> None:
        """A batch of `num_envs` simulations of `model` on `nthread` threads (0: one per core)."""
        self.mj_model = model
        self.num_envs = num_envs
        self.batch = mujoco.batch.Batch(model, num_envs, nthread)
        for name in _DERIVED:  # registered once; the batch refreshes them after each call
            self.batch.bind(name)
        self.nstate = self.batch.nstate
        template = mujoco.MjData(model)
        # wall time inside MuJoCo's C calls (step, reset, forward), for benchmarks; reset it freely
        self.physics_seconds = 0.0
        self._shapes = {
            "raw": ((2 * self.nstate,), np.uint32),
            "time": ((), np.float32),
            "qpos": ((model.nq,), np.float32),
            "qvel": ((model.nv,), np.float32),
            "ctrl": ((model.nu,), np.float32),
            **{name: (getattr(template, name).shape, np.float32) for name in _DERIVED},
            "unstable": ((), np.bool_),
        }

    # ---- host side: these run inside the callbacks, on whole batches ----

    def _load(self, raw: np.ndarray) -> None:
        if raw.shape[0] != self.num_envs:
            raise ValueError(
                f"the mujoco backend was built for num_envs={self.num_envs}, got a batch of {raw.shape[0]}"
            )
        self.batch.state[:] = np.ascontiguousarray(np.asarray(raw)).view(np.float64)

    def _warnings(self) -> np.ndarray:
        return self.batch.warning[:, _BAD_WARNINGS, 1].sum(axis=1)

    def _outputs(self, unstable: np.ndarray) -> tuple[np.ndarray, ...]:
        b = self.batch
        out = {
            "raw": b.state.copy().view(np.uint32),
            "time": b.time.astype(np.float32),
            "qpos": b.qpos.astype(np.float32),
            "qvel": b.qvel.astype(np.float32),
            "ctrl": b.ctrl.astype(np.float32),
            **{name: b.bind(name).astype(np.float32) for name in _DERIVED},
            "unstable": unstable,
        }
        return tuple(out[k] for k in self._shapes)

    def _host_step(
        self, raw: np.ndarray, ctrl: np.ndarray, xfrc: np.ndarray, kick: np.ndarray, *, num_substeps: int
    ) -> tuple[np.ndarray, ...]:
        self._load(raw)
        b = self.batch
        b.ctrl[:] = np.asarray(ctrl)
        b.xfrc_applied[:] = np.asarray(xfrc)
        b.qvel[:] += np.asarray(kick)
        before = self._warnings()
        failed = np.zeros(self.num_envs, bool)
        start = time.perf_counter()
        try:
            b.step(nstep=num_substeps)
        except mujoco.batch.SimulationError as err:  # those envs kept their old state
            failed[err.ids] = True
        self.physics_seconds += time.perf_counter() - start
        return self._outputs(failed | (self._warnings() > before))

    def _host_reset(self, done: np.ndarray, raw: np.ndarray, qpos: np.ndarray, qvel: np.ndarray, *params: np.ndarray):
        # callbacks may receive jax Arrays: index them as numpy, not through jax dispatch
        qpos, qvel = np.asarray(qpos), np.asarray(qvel)
        self._load(raw)
        ids = np.flatnonzero(np.asarray(done))
        b = self.batch
        if ids.size:
            start = time.perf_counter()
            b.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
            b.qpos[ids] = qpos[ids]
            b.qvel[ids] = qvel[ids]
            for name, value in zip(RANDOMIZABLE_FIELDS, params, strict=True):
                b.expand(name)[ids] = np.asarray(value)[ids]
            b.forward(ids)
            self.physics_seconds += time.perf_counter() - start
        return self._outputs(np.zeros(self.num_envs, bool))

    # ---- device side: called per env under the engine's vmap ----

    def _result_shapes(self) -> tuple[jax.ShapeDtypeStruct, ...]:
        return tuple(jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in self._shapes.values())

    def _view(self, out: tuple[Array, ...]) -> PhysicsData:
        return PhysicsData(**dict(zip(self._shapes, out, strict=True)))

    def reset(self, params: ModelParams, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"]) -> PhysicsData:
        """A fresh state at (qpos, qvel) with every derived field computed."""
        blank = jnp.zeros(self._shapes["raw"][0], jnp.uint32)
        return self._reset_call(jnp.bool_(True), blank, params, qpos, qvel)

    def reset_where(
        self,
        done: Bool[Array, ""],
        data: PhysicsData,
        params: ModelParams,
        qpos: Float[Array, " nq"],
        qvel: Float[Array, " nv"],
    ) -> PhysicsData:
        """`reset(...)` where `done`, else `data` unchanged; the C call touches only done envs."""
        fresh = self._reset_call(done, data.raw, params, qpos, qvel)
        return jax.tree.map(lambda new, old: jnp.where(done, new, old), fresh, data)

    def _reset_call(
        self, done: Bool[Array, ""], raw: Array, params: ModelParams, qpos: Array, qvel: Array
    ) -> PhysicsData:
        fields = [getattr(params, name) for name in RANDOMIZABLE_FIELDS]
        out = jax.pure_callback(
            self._host_reset, self._result_shapes(), done, raw, qpos, qvel, *fields, vmap_method="broadcast_all"
        )
        return self._view(out)

    def step(
        self,
        data: PhysicsData,
        params: ModelParams,
        ctrl: Float[Array, " nu"],
        xfrc_applied: Float[Array, "nbody 6"],
        qvel_kick: Float[Array, " nv"],
        num_substeps: int,
    ) -> PhysicsData:
        """Apply the velocity kick, then `num_substeps` physics steps at fixed ctrl and forces.

        `params` were written into the batch when the env was last reset.
        """
        del params
        out = jax.pure_callback(
            functools.partial(self._host_step, num_substeps=num_substeps),
            self._result_shapes(),
            data.raw,
            ctrl,
            xfrc_applied,
            qvel_kick,
            vmap_method="broadcast_all",
        )
        return self._view(out)
