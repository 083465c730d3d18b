"""`action=export`: a folder that is everything a robot's runtime needs, and nothing of JAX (SPEC §8).

- `policy.onnx`: observation vector in, deterministic action out, with the observation
  normalisation folded in; a recurrent actor's carry is an explicit input and output.
  Converted by jax2onnx from the same JAX function the rollouts run.
- `model.mjb`: the compiled MuJoCo model, actuators configured, meshes inside.
- `metadata.json`, also in the ONNX `metadata_props` (one entry per top-level key, as JSON).
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from jaxtyping import Array, Float

import ksim
from ksim.engine.env import Env
from ksim.rl.policy import PolicyParams

FORMAT = "ksim-export/1"


class ExportError(ValueError):
    """The task cannot be exported (a part has no deploy description); the message is one line."""


def deterministic_actor(
    params: PolicyParams, prior: Callable[[Array], Array] | None = None
) -> Callable[[Array, Array], tuple[Array, Array]]:
    """`(obs, carry) -> (action, next carry)`: normalise, then the actor's mean, plus the task's action prior."""

    def act(obs: Float[Array, " obs"], carry: Float[Array, " carry"]) -> tuple[Array, Array]:
        mean, carry = params.actor(params.obs_norm(obs), carry)
        return (mean if prior is None else mean + prior(obs)), carry

    return act


def _described(component: Any, what: str) -> dict[str, Any]:
    spec = component.deploy_spec()
    if spec is None:
        raise ExportError(
            f"{what} {component.name!r} ({type(component).__name__}) has no deploy description, "
            "so a robot runtime could not compute it; give it a deploy_spec() to export this task"
        )
    return spec


def metadata(env: Env, params: PolicyParams, checkpoint: dict[str, Any], task: str) -> dict[str, Any]:
    """The deploy contract for `env`'s task and one checkpoint (see `ksim.deploy.runtime` for its reader)."""
    model = env.model
    free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    sizes = dict(zip(env.actor_layout.names, env.actor_layout.sizes, strict=True))
    observations = [
        {
            "name": o.name,
            "size": sizes[o.name],
            **_described(o, "observation"),
            "noise": o.noise and o.noise.deploy_spec(),
        }
        for o in env.observations
    ]
    commands = {c.name: {"size": env.command_sizes[c.name], **_described(c, "command")} for c in env.commands}
    described = {kind: [(c.name, c.deploy_spec()) for c in getattr(env, kind)] for kind in ("terminations", "resets")}
    events = [(e.name, e.deploy_spec()) for e in env.events]
    pushes = [(n, spec) for n, spec in events if spec and spec.get("event") == "velocity_push"]
    randomized = [(r.name, r.deploy_spec()) for r in env.randomizations]
    left_out = [n for items in [*described.values(), events, randomized] for n, spec in items if spec is None]
    left_out += [n for n, _ in pushes[1:]]  # the runtime simulates one push event
    carry = np.asarray(params.actor.initial_carry(), np.float32)
    return {
        "format": FORMAT,
        "ksim_version": ksim.__version__,
        "task": task,
        "checkpoint": {k: checkpoint.get(k) for k in ("file", "iteration", "sha256")},
        "ctrl_dt": env.ctrl_dt,
        "physics_dt": float(model.opt.timestep),
        "num_substeps": env.num_substeps,
        "joints": list(env.index.joint_names),  # action order = actuator order
        "base_joint": (model.joint(free[0]).name or free[0]) if free else None,
        "actuators": _described(env.actuators, "actuators"),
        "observations": observations,
        "observation_size": env.actor_layout.size,
        "commands": commands,
        "terminations": [{"name": n, **spec} for n, spec in described["terminations"] if spec is not None],
        "resets": [spec for _, spec in described["resets"] if spec is not None],
        "push": pushes[0][1] if pushes else None,
        "randomizations": [spec for _, spec in randomized if spec is not None],  # simulation only
        "not_in_runtime": left_out,  # parts of the training simulation that ksim.deploy does not reproduce
        "policy": {
            "inputs": ["obs", "carry"] if carry.size else ["obs"],
            "outputs": ["action", "next_carry"] if carry.size else ["action"],
            "action_size": int(model.nu),
            "carry_size": int(carry.size),
            "initial_carry": carry.tolist(),
            "deterministic": True,
            "normalization": "folded in (standardised with the checkpoint's running statistics, clipped to ±10)",
        },
    }


def to_onnx(
    params: PolicyParams, obs_size: int, meta: dict[str, Any], prior: Callable[[Array], Array] | None = None
) -> Any:
    """The deterministic actor (with its action prior) as an ONNX model, one observation per call, `meta` inside."""
    import onnx
    from jax2onnx import to_onnx as convert

    act = deterministic_actor(params, prior)
    carry_size = meta["policy"]["carry_size"]
    obs_spec = jax.ShapeDtypeStruct((obs_size,), jnp.float32)
    if carry_size:
        proto = convert(
            act,
            [obs_spec, jax.ShapeDtypeStruct((carry_size,), jnp.float32)],
            input_names=["obs", "carry"],
            output_names=["action", "next_carry"],
            model_name="ksim_policy",
        )
    else:
        empty = params.actor.initial_carry()
        proto = convert(
            lambda obs: act(obs, empty)[0],
            [obs_spec],
            input_names=["obs"],
            output_names=["action"],
            model_name="ksim_policy",
        )
    onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in meta.items()})
    return proto


def export(env: Env, params: PolicyParams, checkpoint: dict[str, Any], task: str, folder: Path) -> float:
    """Write the export folder; returns the largest |ONNX − JAX| action difference on 256 random observations."""
    import onnxruntime as ort

    meta = metadata(env, params, checkpoint, task)
    folder.mkdir(parents=True, exist_ok=True)
    prior = env.prior
    proto = to_onnx(params, env.actor_layout.size, meta, prior)
    (folder / "policy.onnx").write_bytes(proto.SerializeToString())
    mujoco.mj_saveModel(env.model, str(folder / "model.mjb"), None)
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2))

    session = ort.InferenceSession(str(folder / "policy.onnx"), providers=["CPUExecutionProvider"])
    obs_N = np.random.default_rng(0).normal(size=(256, env.actor_layout.size)).astype(np.float32)
    act = jax.jit(jax.vmap(deterministic_actor(params, prior), in_axes=(0, None)))
    expected = np.asarray(act(jnp.asarray(obs_N), params.actor.initial_carry())[0])
    carry = np.asarray(meta["policy"]["initial_carry"], np.float32)
    feeds = [{"obs": o} | ({"carry": carry} if carry.size else {}) for o in obs_N]
    got = np.stack([session.run(["action"], f)[0] for f in feeds])
    return float(np.abs(got - expected).max())
