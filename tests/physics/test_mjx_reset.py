"""MJX's batched `reset_where` computes only the done envs, and equals the per-env rule."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from ksim.physics.data import ModelParams
from ksim.physics.mjx import RESET_SLOT_DIVISOR, MjxBackend
from tests.conftest import HOPPER

E = 32  # 2 slots per round: 7 done envs take 4 rounds (32: see MJX_CPU_CHUNK)


def test_batched_reset_where_equals_the_per_env_rule():
    model = mujoco.MjModel.from_xml_path(str(HOPPER))
    backend = MjxBackend(model)
    assert E // RESET_SLOT_DIVISOR < 7
    params = jax.tree.map(lambda x: jnp.broadcast_to(x, (E, *x.shape)), ModelParams.from_model(model))
    bend = jax.random.uniform(jax.random.key(0), (E, model.nq - 7), maxval=0.5)
    qpos = jnp.tile(jnp.asarray(model.qpos0, jnp.float32), (E, 1)).at[:, 7:].add(bend)
    old = jax.jit(jax.vmap(backend.reset))(params, qpos, jnp.zeros((E, model.nv)))
    new_qpos, new_qvel = jnp.flip(qpos, 0), jnp.full((E, model.nv), 0.1)

    batched = jax.jit(jax.vmap(backend.reset_where))
    # lax.map runs the unbatched rule (reset every env, then select) one env at a time
    per_env = jax.jit(lambda *a: jax.lax.map(lambda x: backend.reset_where(*x), a))
    for num_done in (0, 7, E):
        done = jnp.zeros(E, bool).at[jax.random.permutation(jax.random.key(num_done), E)[:num_done]].set(True)
        got = batched(done, old, params, new_qpos, new_qvel)
        want = per_env(done, old, params, new_qpos, new_qvel)
        keep = ~np.asarray(done)
        for g, w, o in zip(jax.tree.leaves(got), jax.tree.leaves(want), jax.tree.leaves(old), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(np.asarray(g)[keep], np.asarray(o)[keep])  # untouched, bit for bit
        np.testing.assert_allclose(np.asarray(got.qvel)[~keep], 0.1)
        np.testing.assert_allclose(np.asarray(got.qpos)[~keep], np.asarray(new_qpos)[~keep], atol=1e-6)
