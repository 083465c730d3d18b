"""The policy average: an EMA of the actor's weights that eval, videos and export act with."""

import dataclasses

import equinox as eqx
import jax
import numpy as np
import pytest

from examples.cartpole.cartpole import CartPoleConfig, make_task
from ksim.engine.env import Env
from ksim.rl.learner import init_learner, make_train_step, start_rollout
from ksim.runner import checkpoint, resolve_config, run
from ksim.runner.main import load_learner, policy_for
from ksim.runner.train import save

FAST = [
    "num_envs=16",
    "rollout_length=8",
    "num_minibatches=2",
    "num_epochs=1",
    "adaptive_lr=false",
    "compile_cache=",
    "video_every_iters=0",
]


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]


def test_the_average_moves_a_quarter_of_the_way_to_each_update_with_a_horizon_of_four():
    cfg = CartPoleConfig(
        num_envs=16, rollout_length=8, num_minibatches=2, num_epochs=1, adaptive_lr=False, policy_average_iters=4
    )
    env = Env(make_task(cfg), cfg.num_envs, "mujoco")
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    assert learner.averaged is not None
    before = _leaves(learner.averaged)
    step = make_train_step(env, cfg)
    learner, _, _ = step(learner, start_rollout(env, learner, jax.random.PRNGKey(1)))
    live, averaged = _leaves(learner.policy_params), _leaves(learner.eval_params)
    assert any(not np.allclose(a, b) for a, b in zip(live, before, strict=True))  # the update moved the actor
    for b, lv, av in zip(before, live, averaged, strict=True):
        np.testing.assert_allclose(av, b + (lv - b) / 4, rtol=1e-5, atol=1e-6)

    off = init_learner(env, CartPoleConfig(), jax.random.PRNGKey(0))
    assert off.averaged is None and off.eval_params is not None
    for a, b in zip(_leaves(off.eval_params), _leaves(off.policy_params), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def averaged_run(tmp_path_factory):
    """A cart-pole run of 3 iterations that keeps a policy average over ~2; (its learner, its directory)."""
    root = tmp_path_factory.mktemp("runs")
    learner = run(
        CartPoleConfig, make_task, "cartpole.py", [*FAST, f"run_root={root}", "max_steps=3", "policy_average_iters=2"]
    )
    return learner, root / "run_0"


def test_checkpoints_keep_the_average_and_eval_acts_with_it_unless_turned_off(averaged_run):
    trained, run_dir = averaged_run
    header, _ = checkpoint.read(checkpoint.resolve(run_dir, None)[1])
    assert header["policy_average"] is True

    cfg = resolve_config(CartPoleConfig, [f"pretrained={run_dir}", "action=eval"])
    assert cfg.policy_average_iters == 2
    env = Env(make_task(cfg), 4, "mujoco")
    _, params, _ = policy_for(env, cfg)
    for a, b in zip(_leaves(params), _leaves(trained.averaged), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(_leaves(params), _leaves(trained.policy_params), strict=True))

    # policy_average_iters=0 on the command line: the live policy, from the same file
    live_cfg = resolve_config(CartPoleConfig, [f"pretrained={run_dir}", "action=eval", "policy_average_iters=0"])
    live, _ = load_learner(env, live_cfg)
    assert live.averaged is None
    for a, b in zip(_leaves(live.eval_params), _leaves(trained.policy_params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_without_an_average_starts_one_from_its_live_policy(tmp_path):
    cfg = CartPoleConfig(num_envs=4)
    env = Env(make_task(cfg), cfg.num_envs, "mujoco")
    save(tmp_path, init_learner(env, cfg, jax.random.PRNGKey(0)), cfg, env, started=0.0)  # as saved before averaging
    assert checkpoint.read(checkpoint.resolve(tmp_path, None)[1])[0]["policy_average"] is False
    learner, _ = load_learner(env, dataclasses.replace(cfg, pretrained=str(tmp_path), policy_average_iters=3))
    assert learner.averaged is not None
    for a, b in zip(_leaves(learner.eval_params), _leaves(learner.policy_params), strict=True):
        np.testing.assert_array_equal(a, b)
