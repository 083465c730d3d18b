"""The MJX backend: physics in JAX, one env written unbatched and vmapped by the engine."""

import jax
import jax.numpy as jnp
import mujoco
from jaxtyping import Array, Bool, Float
from mujoco import mjx

from ksim.physics.data import RANDOMIZABLE_FIELDS, ModelParams, PhysicsData


class MjxBackend:
    """Steps one environment with `mjx.step`; the engine vmaps and scans it."""

    name = "mjx"

    def __init__(self, model: mujoco.MjModel) -> None:
        """Put `model` on the default JAX device."""
        self.mj_model = model
        self.mjx_model = mjx.put_model(model)

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
        """`reset(...)` where `done`, else `data` unchanged."""
        fresh = self.reset(params, qpos, qvel)
        return jax.tree.map(lambda new, old: jnp.where(done, new, old), fresh, data)

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
