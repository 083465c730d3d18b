"""The MJX backend: physics in JAX, one env written unbatched and vmapped by the engine.

On a CPU the envs are vmapped in chunks of `MJX_CPU_CHUNK` (see there). A reset computes
every derived field with `mjx.forward`, which costs about one physics substep. Written per
env and vmapped, `jnp.where(done, reset, data)` would pay it for every env at every control
step although few envs are done; `reset_where` therefore has its own vmap rule that runs
the forward pass only on the done envs, gathered into small slots.
"""

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
from jaxtyping import Array, Bool, Float
from mujoco import mjx

from ksim.physics.data import RANDOMIZABLE_FIELDS, ModelParams, PhysicsData

# A batch of E envs resets its done envs `max(1, E // RESET_SLOT_DIVISOR)` at a time: a
# trained policy ends ~E/500 episodes per step and a random one ~E/80, so one round of slots
# usually covers a step; synchronised ends (an episode-length limit) take a few rounds.
RESET_SLOT_DIVISOR = 16

# jax's CPU LAPACK kernels split a large batched Cholesky (MJX factors the mass matrix and the
# Newton Hessian with one) into parts run on XLA's intra-op threads, and wait for the parts on a
# pool thread; on a 2-core CPU two such calls in flight fill the pool and hang (0% CPU). Batches
# of at most this many envs stay below the split, so on a CPU envs are stepped in such chunks.
MJX_CPU_CHUNK = 32


def chunked_vmap(fn: Callable, num: int, chunk: int) -> Callable:
    """`jax.vmap(fn)` over a leading axis of `num`, run as a scan over equal chunks of <= `chunk`.

    When `num` does not split evenly, the batch is padded with copies of its first element,
    whose results are dropped: a prime `num` costs one chunk's padding, not one env per chunk.
    """
    chunks = -(-num // chunk)
    size = -(-num // chunks)
    pad = chunks * size - num
    batched = jax.vmap(fn)

    def split(x: Array) -> Array:
        if pad:
            x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, *x.shape[1:]))])
        # explicit shapes: some mjx.Data leaves are zero-sized, which `-1` reshapes cannot infer
        return x.reshape((chunks, size, *x.shape[1:]))

    def run(*args: Any) -> Any:
        out = jax.lax.map(lambda a: batched(*a), jax.tree.map(split, args))
        return jax.tree.map(lambda x: x.reshape((chunks * size, *x.shape[2:]))[:num], out)

    return run


def vmap_envs(fn: Callable, num_envs: int) -> Callable:
    """`jax.vmap(fn)` over `num_envs` MJX envs: in chunks of `MJX_CPU_CHUNK` on a CPU, plain elsewhere."""
    if jax.default_backend() == "cpu" and num_envs > MJX_CPU_CHUNK:
        return chunked_vmap(fn, num_envs, MJX_CPU_CHUNK)
    return jax.vmap(fn)


def _broadcast(tree: Any, batched: Any, axis_size: int) -> Any:
    """`tree` with each unbatched leaf given a leading axis of `axis_size`."""
    return jax.tree.map(lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))), tree, batched)


class MjxBackend:
    """Steps one environment with `mjx.step`; the engine vmaps and scans it."""

    name = "mjx"
    host_callbacks = False

    def __init__(self, model: mujoco.MjModel) -> None:
        """Put `model` on the default JAX device."""
        self.mj_model = model
        self.mjx_model = mjx.put_model(model)

    def vmap(self, fn: Callable, num_envs: int) -> Callable:
        """`jax.vmap(fn)`, in chunks on a CPU (`vmap_envs`)."""
        return vmap_envs(fn, num_envs)

    def _model(self, params: ModelParams) -> mjx.Model:
        return self.mjx_model.replace(**{name: getattr(params, name) for name in RANDOMIZABLE_FIELDS})

    @staticmethod
    def _view(data: mjx.Data) -> PhysicsData:
        unstable = ~(jnp.all(jnp.isfinite(data.qpos)) & jnp.all(jnp.isfinite(data.qvel)))
        return PhysicsData(
            time=data.time,
            qpos=data.qpos,
            qvel=data.qvel,
            ctrl=data.ctrl,
            xpos=data.xpos,
            xquat=data.xquat,
            sensordata=data.sensordata,
            actuator_force=data.actuator_force,
            unstable=unstable,
            raw=data,
        )

    def reset(self, params: ModelParams, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"]) -> PhysicsData:
        """A fresh state at (qpos, qvel) with every derived field computed."""
        data = mjx.make_data(self.mjx_model).replace(qpos=qpos, qvel=qvel)
        return self._view(mjx.forward(self._model(params), data))

    def reset_where(
        self,
        done: Bool[Array, ""],
        data: PhysicsData,
        params: ModelParams,
        qpos: Float[Array, " nq"],
        qvel: Float[Array, " nv"],
    ) -> PhysicsData:
        """`reset(...)` where `done`, else `data` unchanged (under vmap: only done envs are computed)."""
        return self._reset_where(done, data, params, qpos, qvel)

    @functools.cached_property
    def _reset_where(self) -> Any:
        @jax.custom_batching.custom_vmap
        def reset_where(done: Array, data: PhysicsData, params: ModelParams, qpos: Array, qvel: Array) -> PhysicsData:
            fresh = self.reset(params, qpos, qvel)
            return jax.tree.map(lambda new, old: jnp.where(done, new, old), fresh, data)

        @reset_where.def_vmap
        def reset_done_envs(axis_size: int, in_batched: list, *args: Any) -> tuple[PhysicsData, Any]:
            done, data, params, qpos, qvel = (
                _broadcast(a, b, axis_size) for a, b in zip(args, in_batched, strict=True)
            )
            slots = max(1, axis_size // RESET_SLOT_DIVISOR)

            def reset_some(carry: tuple[PhysicsData, Array]) -> tuple[PhysicsData, Array]:
                data, pending = carry
                # the first `slots` pending envs; unused slots point past the end and are dropped
                (ids,) = jnp.nonzero(pending, size=slots, fill_value=axis_size)
                take = functools.partial(jnp.take, indices=ids, axis=0, mode="clip")
                fresh = jax.vmap(self.reset)(*jax.tree.map(take, (params, qpos, qvel)))
                data = jax.tree.map(lambda old, new: old.at[ids].set(new, mode="drop"), data, fresh)
                return data, pending.at[ids].set(False, mode="drop")

            data, _ = jax.lax.while_loop(lambda carry: jnp.any(carry[1]), reset_some, (data, done))
            return data, jax.tree.map(lambda _: True, data)

        return reset_where

    def step(
        self,
        data: PhysicsData,
        params: ModelParams,
        ctrl: Float[Array, " nu"],
        xfrc_applied: Float[Array, "nbody 6"],
        qvel_kick: Float[Array, " nv"],
        num_substeps: int,
    ) -> PhysicsData:
        """Apply the velocity kick, then `num_substeps` physics steps at fixed ctrl and forces."""
        model = self._model(params)
        raw: mjx.Data = data.raw
        raw = raw.replace(ctrl=ctrl, xfrc_applied=xfrc_applied, qvel=raw.qvel + qvel_kick)
        raw = jax.lax.fori_loop(0, num_substeps, lambda _, d: mjx.step(model, d), raw)
        return self._view(raw)
