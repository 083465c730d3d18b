"""Export (SPEC §8): ONNX equals the JAX actor, the metadata is complete, ksim.deploy runs without JAX."""

import json
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from examples.cartpole import cartpole
from examples.kbot import standing, walking
from ksim.engine.env import Env
from ksim.engine.rollout import init_rollout, rollout
from ksim.rl.learner import init_learner
from ksim.rl.networks import MirroredActor, MLPActor, RecurrentActor, TiedMirrorActor
from ksim.rl.normalization import RunningNorm
from ksim.rl.policy import PolicyParams
from ksim.runner.export import deterministic_actor, export
from tests.conftest import UniformPolicy

ROOT = Path(__file__).parents[2]
CHECKPOINT = {"file": "ckpt_0.eqx", "iteration": 0, "sha256": "0" * 64}


@pytest.fixture(scope="module")
def kbot() -> tuple[Env, np.ndarray]:
    """The standing task with 8 envs, and 1,024 observations recorded under random actions."""
    env = Env(standing.make_task(standing.StandingConfig()), 8, "mujoco", nthread=1)
    policy = UniformPolicy(env.model.nu, 0.5)
    state = init_rollout(env, policy, None, jax.random.key(0))
    _, obs_TEO = rollout(
        env, policy, None, state, jax.random.key(1), 128, lambda s, step: env.actor_layout.flatten(step.transition.obs)
    )
    return env, np.asarray(obs_TEO).reshape(-1, env.actor_layout.size)


def _params(actor: eqx.Module, obs_NO: np.ndarray) -> PolicyParams:
    """`actor` with normalisation statistics from the recording (so the folded-in normaliser matters)."""
    return PolicyParams(actor, RunningNorm.init(obs_NO.shape[1]).update(jnp.asarray(obs_NO)))


def _session(folder: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(folder / "policy.onnx"), providers=["CPUExecutionProvider"])


def test_onnx_equals_the_jax_actor_on_1024_recorded_observations(kbot, tmp_path):
    env, obs_NO = kbot
    actor = MLPActor(env.actor_layout.size, env.model.nu, (64, 64), 0.5, jax.random.key(2))
    # a trained actor's last layer is not near zero: scale it up so the actions are O(1)
    actor = eqx.tree_at(lambda a: a.net.layers[-1].weight, actor, actor.net.layers[-1].weight * 100)
    params = _params(actor, obs_NO)
    export(env, params, CHECKPOINT, "examples.kbot.standing", tmp_path)

    expected_NA = np.asarray(jax.vmap(lambda o: deterministic_actor(params)(o, jnp.zeros(0))[0])(obs_NO))
    session = _session(tmp_path)
    got_NA = np.stack([session.run(["action"], {"obs": o})[0] for o in obs_NO.astype(np.float32)])
    assert obs_NO.shape[0] >= 1000
    assert np.abs(expected_NA).max() > 0.1  # the comparison is not between near-zeros
    assert np.abs(got_NA - expected_NA).max() <= 1e-5


def test_recurrent_actor_exports_its_carry_and_matches_over_a_sequence(kbot, tmp_path):
    env, obs_NO = kbot
    actor = RecurrentActor(env.actor_layout.size, env.model.nu, (16,), 0.5, jax.random.key(3))
    params = _params(actor, obs_NO)
    export(env, params, CHECKPOINT, "examples.kbot.standing", tmp_path)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["policy"]["inputs"] == ["obs", "carry"] and meta["policy"]["outputs"] == ["action", "next_carry"]
    assert meta["policy"]["initial_carry"] == [0.0] * 16

    def step(carry, obs):
        action, carry = deterministic_actor(params)(obs, carry)
        return carry, action

    _, expected_NA = jax.lax.scan(step, actor.initial_carry(), jnp.asarray(obs_NO))
    session = _session(tmp_path)
    carry = np.asarray(meta["policy"]["initial_carry"], np.float32)
    got = []
    for obs in obs_NO.astype(np.float32):
        action, carry = session.run(["action", "next_carry"], {"obs": obs, "carry": carry})
        got.append(action)
    assert np.abs(np.stack(got) - np.asarray(expected_NA)).max() <= 1e-5
    assert np.abs(carry).max() > 1e-3  # the carry really was carried


@pytest.mark.parametrize(
    ("module", "config"),
    [(standing, standing.StandingConfig), (walking, walking.WalkingConfig), (cartpole, cartpole.CartPoleConfig)],
)
def test_every_example_task_exports_a_complete_contract(module, config, tmp_path):
    env = Env(module.make_task(config()), 1, "mujoco", nthread=1)
    actor = MLPActor(env.actor_layout.size, env.model.nu, (8,), 0.5, jax.random.key(0))
    error = export(env, PolicyParams(actor, RunningNorm.init(env.actor_layout.size)), CHECKPOINT, "t", tmp_path)
    assert error <= 1e-5
    meta = json.loads((tmp_path / "metadata.json").read_text())
    props = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "policy.onnx")).metadata_props}
    assert props == meta  # the same contract, inside the ONNX file
    assert meta["joints"] == list(env.index.joint_names)
    assert [o["name"] for o in meta["observations"]] == list(env.actor_layout.names)
    assert sum(o["size"] for o in meta["observations"]) == meta["observation_size"] == env.actor_layout.size
    for key in ("kp", "kd", "torque_limit") if meta["actuators"]["kind"] == "pd" else ("torque_limit",):
        assert len(meta["actuators"][key]) == env.model.nu
    assert meta["ctrl_dt"] == pytest.approx(meta["physics_dt"] * meta["num_substeps"])
    assert set(meta["commands"]) == {c.name for c in env.commands}


@pytest.mark.parametrize("how", ["average", "tied"])
def test_a_mirrored_actor_exports_with_its_mirrors_inside(tmp_path, how):
    cfg = walking.WalkingConfig(actor_mirrored=True, actor_mirror=how, actor_hidden=(8, 8), critic_hidden=(8,))
    env = Env(walking.make_task(cfg), 1, "mujoco", nthread=1)
    params = init_learner(env, cfg, jax.random.key(0)).policy_params
    assert isinstance(params.actor, MirroredActor if how == "average" else TiedMirrorActor)
    # O(1) residuals, so that a mirror left out of the ONNX graph would show
    head = (lambda p: p.actor.inner.net.layers[-1]) if how == "average" else (lambda p: p.actor.head)
    params = eqx.tree_at(lambda p: head(p).weight, params, head(params).weight * 100)
    assert export(env, params, CHECKPOINT, "examples.kbot.walking", tmp_path) <= 1e-5


def _deploy(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m ksim.deploy` in a process where importing JAX fails."""
    code = "import runpy, sys; sys.modules['jax'] = None; runpy.run_module('ksim.deploy', run_name='__main__')"
    argv = [sys.executable, "-c", code, str(folder), *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_reference_runner_needs_no_jax_and_prints_the_eval_summary(kbot, tmp_path):
    env, obs_NO = kbot
    actor = MLPActor(env.actor_layout.size, env.model.nu, (8,), 0.5, jax.random.key(0))
    export(env, _params(actor, obs_NO), CHECKPOINT, "examples.kbot.standing", tmp_path)
    done = _deploy(tmp_path, "--episodes", "2", "--seconds", "1")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    metrics = dict(kv.split("=") for kv in line.split())
    assert {"survival_rate", "mean_episode_length_s", "ended_by_base_height_out_of_range"} <= set(metrics)
    assert 0.0 < float(metrics["mean_episode_length_s"]) <= 1.0


def test_the_reference_runner_tracks_walking_commands(tmp_path):
    env = Env(walking.make_task(walking.WalkingConfig()), 1, "mujoco", nthread=1)
    actor = MLPActor(env.actor_layout.size, env.model.nu, (8,), 0.5, jax.random.key(0))
    export(env, PolicyParams(actor, RunningNorm.init(env.actor_layout.size)), CHECKPOINT, "t", tmp_path)
    done = _deploy(tmp_path, "--episodes", "2", "--seconds", "1", "--ideal")
    assert done.returncode == 0, done.stderr
    metrics = dict(kv.split("=") for kv in done.stdout.split())
    # a still robot's error is the commanded speed: a real number in both columns
    assert float(metrics["lin_vel_still_error"]) >= 0 and "lin_vel_error_forward" in metrics


def test_the_reference_runner_refuses_a_folder_that_is_not_an_export(tmp_path):
    done = _deploy(tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path} is not an export folder: it lacks metadata.json, policy.onnx, model.mjb"
    ]


def test_sim2sim_reports_each_column_and_the_divergence(kbot, tmp_path):
    from ksim.runner.sim2sim import sim2sim

    env, obs_NO = kbot
    actor = MLPActor(env.actor_layout.size, env.model.nu, (8,), 0.5, jax.random.key(0))
    params = _params(actor, obs_NO)
    export(env, params, CHECKPOINT, "examples.kbot.standing", tmp_path)
    cfg = standing.StandingConfig(eval_num_envs=2, eval_seconds=0.5, nthread=1)
    report = sim2sim(cfg, env.task, params, tmp_path, backends=("mujoco",))
    rows = {line.split(" | ")[0].strip("| "): line for line in report.splitlines() if line.startswith("| ")}
    assert rows["metric"].split(" | ")[1:] == ["mujoco", "onnx (ksim.deploy) |"]
    assert {"survival_rate", "mean_episode_length_s"} <= set(rows)
    divergence = float(report.split("max ")[-1].split(".\n")[0])
    assert divergence <= 1e-5


def test_export_command_on_the_shipped_standing_policy(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "examples.kbot.standing", "action=export"]
        + [f"pretrained={ROOT / 'examples/kbot/pretrained/standing'}", f"export_dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"exported: {tmp_path / 'out'}"
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["checkpoint"]["iteration"] == 1208 and len(meta["checkpoint"]["sha256"]) == 64
    assert meta["task"] == "examples.kbot.standing"


def test_the_runtime_builds_the_envs_observations_from_the_metadata_alone(tmp_path):
    """Walking has every kind of actor observation K-Bot uses, a gait phase and a velocity command among them."""
    from ksim.deploy.runtime import Robot, load_metadata

    env = Env(walking.make_task(walking.WalkingConfig()), 4, "mujoco", nthread=1)
    actor = MLPActor(env.actor_layout.size, env.model.nu, (8,), 0.5, jax.random.key(0))
    export(env, PolicyParams(actor, RunningNorm.init(env.actor_layout.size)), CHECKPOINT, "t", tmp_path)
    meta = load_metadata(tmp_path)
    state = env.reset(jax.random.key(5))
    robot = Robot(env.model, meta, np.random.default_rng(0), as_trained=False)
    for e in range(env.num_envs):
        episode = robot.reset(np.zeros(0, np.float32))
        robot.data.qpos[:], robot.data.qvel[:] = np.asarray(state.physics.qpos[e]), np.asarray(state.physics.qvel[e])
        mujoco.mj_forward(robot.model, robot.data)
        episode.commands = {k: np.asarray(v.value[e]) for k, v in state.commands.items()}
        level = float(state.level[e])  # the curriculum scales the velocity command the policy sees
        episode.commands["velocity"] = episode.commands["velocity"] * env.task.curriculum.scale(level)
        # the env's clean (noise-free) copy of each actor observation sits in its critic observations
        expected = np.concatenate([np.asarray(state.critic_obs[name][e]) for name in env.actor_layout.names])
        np.testing.assert_allclose(robot.observe(episode), expected, atol=1e-4)
