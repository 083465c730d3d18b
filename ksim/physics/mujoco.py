"""The native backend: MuJoCo's threaded `mujoco.batch.Batch`, called from inside jit.

The engine is written for one environment and vmapped; here the vmapped physics
calls become one host callback each (`vmap_method="broadcast_all"`), so that a
single C call steps every environment on the batch's thread pool. No Python runs
per environment or per substep. On a CPU the callbacks are `buffer_callback`s: the
host reads XLA's input buffer and writes the output buffer in place, where
`jax.pure_callback` would copy both through `jax.device_put`. When JAX computes on
an accelerator (a GPU host that asked for `physics_backend=mujoco`), XLA's buffers
live in device memory, which numpy cannot read, so the copying `pure_callback` is used.

The full MuJoCo state (`mjSTATE_INTEGRATION`, float64) travels through JAX as its
raw bits (uint32 pairs), so that it survives JAX's float32 default losslessly and
the rollout stays a pure function of its inputs. Each callback takes and returns
one packed row per env (`ksim.physics.packing`): callback operands cost a fixed
overhead each, whatever their size.
"""

import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import mujoco
import mujoco.batch
import numpy as np
from jax.experimental.buffer_callback import Buffer, ExecutionContext, buffer_callback
from jaxtyping import Array, Bool, Float

from ksim.physics.data import RANDOMIZABLE_FIELDS, ModelParams, PhysicsData
from ksim.physics.packing import Layout

_DERIVED = ("xpos", "xquat", "sensordata", "actuator_force")
_BAD_WARNINGS = [
    int(w)
    for w in (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQACC)
]


def _buffers_on_host() -> bool:
    """Whether XLA computes on the CPU, so that a callback can read and write its buffers in place."""
    return jax.default_backend() == "cpu"


class MujocoBackend:
    """Steps all environments at once with `mujoco.batch.Batch` on CPU threads."""

    name = "mujoco"
    host_callbacks = True

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
        f32 = np.float32
        raw = ((2 * self.nstate,), np.uint32)
        self._out = Layout(
            {
                "raw": raw,
                "time": ((), f32),
                "qpos": ((model.nq,), f32),
                "qvel": ((model.nv,), f32),
                "ctrl": ((model.nu,), f32),
                **{name: (getattr(template, name).shape, f32) for name in _DERIVED},
                "unstable": ((), np.bool_),
            }
        )
        self._step_in = Layout(
            {"raw": raw, "ctrl": ((model.nu,), f32), "xfrc": ((model.nbody, 6), f32), "kick": ((model.nv,), f32)}
        )
        self._reset_in = Layout(
            {
                "done": ((), np.bool_),
                "qpos": ((model.nq,), f32),
                "qvel": ((model.nv,), f32),
                **{name: (getattr(model, name).shape, f32) for name in RANDOMIZABLE_FIELDS},
            }
        )

    def vmap(self, fn: Callable, num_envs: int) -> Callable:
        """A plain `jax.vmap`: each physics callback in `fn` becomes one C call over the whole batch."""
        return jax.vmap(fn)

    # ---- host side: these run inside the callbacks, on whole batches ----

    def _check(self, buf: np.ndarray) -> np.ndarray:
        buf = np.asarray(buf)
        if buf.shape[0] != self.num_envs:
            raise ValueError(
                f"the mujoco backend was built for num_envs={self.num_envs}, got a batch of {buf.shape[0]}"
            )
        return buf

    def _warnings(self) -> np.ndarray:
        return self.batch.warning[:, _BAD_WARNINGS, 1].sum(axis=1)

    def _outputs(self, out: np.ndarray, unstable: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Write the packed output rows of envs `ids` (default: all) into `out`; zero the others."""
        b, layout = self.batch, self._out
        sel: slice | np.ndarray
        if ids is None:
            rows, sel = out, slice(None)
        else:
            out[...] = 0
            rows, sel = layout.empty(len(ids)), ids
        layout.write(rows, "raw", b.state[sel].view(np.uint32))
        for name in ("time", "qpos", "qvel", "ctrl"):
            layout.write(rows, name, getattr(b, name)[sel])
        for name in _DERIVED:
            layout.write(rows, name, b.bind(name)[sel])
        layout.write(rows, "unstable", unstable[sel])
        if ids is not None:
            out[ids] = rows

    def _host_step(self, out: np.ndarray, packed: np.ndarray, *, num_substeps: int) -> None:
        packed, b, layout = self._check(packed), self.batch, self._step_in
        b.state[:] = np.ascontiguousarray(layout.read(packed, "raw")).view(np.float64)
        b.ctrl[:] = layout.read(packed, "ctrl")
        b.xfrc_applied[:] = layout.read(packed, "xfrc")
        b.qvel[:] += layout.read(packed, "kick")
        before = self._warnings()
        failed = np.zeros(self.num_envs, bool)
        start = time.perf_counter()
        try:
            b.step(nstep=num_substeps)
        except mujoco.batch.SimulationError as err:  # those envs kept their old state
            failed[err.ids] = True
        self.physics_seconds += time.perf_counter() - start
        self._outputs(out, failed | (self._warnings() > before))

    def _host_reset(self, out: np.ndarray, packed: np.ndarray) -> None:
        layout = self._reset_in
        if packed.ndim == 1:
            # no input varied across envs (a reset with no randomness), so vmap did not batch the
            # call: every env gets the same fresh state, and the one row is broadcast back
            every = np.broadcast_to(packed, (self.num_envs, layout.width))
            rows = self._out.empty(self.num_envs)
            self._reset_rows(rows, every, np.ones(self.num_envs, bool))
            out[...] = rows[0]
            return
        packed = self._check(packed)
        self._reset_rows(out, packed, layout.read(packed, "done"))

    def _reset_rows(self, out: np.ndarray, packed: np.ndarray, done: np.ndarray) -> None:
        # Only the done envs' rows matter (`reset_where` keeps the others), so the batch's
        # current state is not reloaded and nothing is computed when no env is done.
        b, layout = self.batch, self._reset_in
        ids = np.flatnonzero(done)
        if not ids.size:
            out[...] = 0
            return
        start = time.perf_counter()
        b.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        b.qpos[ids] = layout.read(packed, "qpos")[ids]
        b.qvel[ids] = layout.read(packed, "qvel")[ids]
        for name in RANDOMIZABLE_FIELDS:
            b.expand(name)[ids] = layout.read(packed, name)[ids]
        b.forward(ids)
        self.physics_seconds += time.perf_counter() - start
        self._outputs(out, np.zeros(self.num_envs, bool), ids)

    # ---- device side: called per env under the engine's vmap ----

    def _call(self, host: Callable[[np.ndarray, np.ndarray], None], packed: Array) -> PhysicsData:
        shape = jax.ShapeDtypeStruct((self._out.width,), jnp.uint32)
        if not _buffers_on_host():
            # device buffers: numpy cannot read them in place, so copy through the host
            def on_arrays(packed: np.ndarray) -> np.ndarray:
                out = np.empty((*packed.shape[:-1], self._out.width), np.uint32)
                host(out, np.asarray(packed))
                return out

            copied = jax.pure_callback(on_arrays, shape, packed, vmap_method="broadcast_all")
            return PhysicsData(**self._out.unpack(copied))

        def on_buffers(ctx: ExecutionContext, out: Buffer, packed: Buffer) -> None:
            host(np.asarray(out), np.asarray(packed))

        call = buffer_callback(on_buffers, shape, vmap_method="broadcast_all")
        return PhysicsData(**self._out.unpack(call(packed)))

    def reset(self, params: ModelParams, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"]) -> PhysicsData:
        """A fresh state at (qpos, qvel) with every derived field computed."""
        return self._reset_call(jnp.bool_(True), params, qpos, qvel)

    def reset_where(
        self,
        done: Bool[Array, ""],
        data: PhysicsData,
        params: ModelParams,
        qpos: Float[Array, " nq"],
        qvel: Float[Array, " nv"],
    ) -> PhysicsData:
        """`reset(...)` where `done`, else `data` unchanged; the C call touches only done envs."""
        fresh = self._reset_call(done, params, qpos, qvel)
        return jax.tree.map(lambda new, old: jnp.where(done, new, old), fresh, data)

    def _reset_call(self, done: Bool[Array, ""], params: ModelParams, qpos: Array, qvel: Array) -> PhysicsData:
        fields = {name: getattr(params, name) for name in RANDOMIZABLE_FIELDS}
        return self._call(self._host_reset, self._reset_in.pack(done=done, qpos=qpos, qvel=qvel, **fields))

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
        packed = self._step_in.pack(raw=data.raw, ctrl=ctrl, xfrc=xfrc_applied, kick=qvel_kick)
        return self._call(functools.partial(self._host_step, num_substeps=num_substeps), packed)
