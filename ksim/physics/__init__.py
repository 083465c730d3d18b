"""Physics backends behind one interface: `mjx` (JAX) and `mujoco` (native threaded batch)."""

from collections.abc import Callable
from typing import Literal, Protocol

import jax
import mujoco
from jaxtyping import Array, Bool, Float

from ksim.physics.data import RANDOMIZABLE_FIELDS, ModelParams, PhysicsData

BackendName = Literal["auto", "mjx", "mujoco"]
BACKEND_NAMES: tuple[str, ...] = ("auto", "mjx", "mujoco")


class PhysicsBackend(Protocol):
    """What the engine needs from a backend. Every method sees one env; the engine vmaps."""

    name: str
    mj_model: mujoco.MjModel
    # whether the physics run as host callbacks, which JAX never writes to its persistent compile cache
    host_callbacks: bool

    def vmap(self, fn: Callable, num_envs: int) -> Callable:
        """`jax.vmap(fn)` over `num_envs` envs, batched the way this backend runs best."""
        ...

    def reset(self, params: ModelParams, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"]) -> PhysicsData:
        """A fresh state at (qpos, qvel) with every derived field computed."""
        ...

    def reset_where(
        self,
        done: Bool[Array, ""],
        data: PhysicsData,
        params: ModelParams,
        qpos: Float[Array, " nq"],
        qvel: Float[Array, " nv"],
    ) -> PhysicsData:
        """`reset(...)` where `done`, else `data` unchanged."""
        ...

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
        ...


def resolve_backend_name(name: str) -> str:
    """`auto` becomes `mjx` when JAX's default device is an accelerator, else `mujoco`."""
    if name not in BACKEND_NAMES:
        raise ValueError(f"physics_backend={name!r} is not one of {', '.join(BACKEND_NAMES)}")
    if name == "auto":
        return "mujoco" if jax.default_backend() == "cpu" else "mjx"
    return name


def make_backend(name: str, model: mujoco.MjModel, num_envs: int, nthread: int = 0) -> PhysicsBackend:
    """Build the named backend (`auto`, `mjx` or `mujoco`) for `num_envs` environments."""
    resolved = resolve_backend_name(name)
    if resolved == "mjx":
        from ksim.physics.mjx import MjxBackend

        return MjxBackend(model)
    from ksim.physics.mujoco import MujocoBackend

    return MujocoBackend(model, num_envs, nthread)


__all__ = [
    "BACKEND_NAMES",
    "RANDOMIZABLE_FIELDS",
    "BackendName",
    "ModelParams",
    "PhysicsBackend",
    "PhysicsData",
    "make_backend",
    "resolve_backend_name",
]
