"""Distillation (DAgger): a student that sees only the pole's positions learns from a teacher that sees everything."""

import jax
import numpy as np
import pytest

from examples.cartpole.cartpole import CartPoleConfig, make_task
from ksim.engine.env import Env
from ksim.rl.distill import DistillError, Teacher, make_distill_step
from ksim.rl.learner import init_learner, make_train_step, start_rollout
from ksim.rl.policy import ActorPolicy
from ksim.runner.evaluate import measure

THRESHOLD = 0.9  # survival over 5 s, as in test_learning
# A DAgger student's survival is not monotone in iterations: over four student seeds it balanced by
# iteration 60 on this VM, and one of them fell at 90 and balanced again at 120; CI's machine drew a
# 19% student at 60. So the student is checked every CHECK_EVERY iterations, as a run's checkpoints
# would be, and must balance at one of them within MAX_ITERATIONS.
CHECK_EVERY = 20
MAX_ITERATIONS = 120


def _survival(env: Env, params) -> float:
    policy = ActorPolicy.of(env, deterministic=True)
    return measure(env, policy, params, seconds=5.0, rng=jax.random.PRNGKey(2))["survival_rate"]


def test_a_gru_student_distilled_from_a_full_state_teacher_balances_from_positions_alone():
    common = {"num_envs": 32, "rollout_length": 32, "num_minibatches": 2, "physics_backend": "mujoco"}
    teacher_cfg = CartPoleConfig(**common)
    teacher_env = Env(make_task(teacher_cfg), 32, "mujoco")
    learner = init_learner(teacher_env, teacher_cfg, jax.random.PRNGKey(0))
    rollout = start_rollout(teacher_env, learner, jax.random.PRNGKey(1))
    ppo = make_train_step(teacher_env, teacher_cfg)
    for _ in range(40):
        learner, rollout, _ = ppo(learner, rollout)
    teacher = Teacher(learner.policy_params, teacher_env.actor_layout)
    assert _survival(teacher_env, teacher.params) >= THRESHOLD

    student_cfg = CartPoleConfig(**common, observe="positions", privileged_critic=True, actor="gru", actor_hidden=(32,))
    env = Env(make_task(student_cfg), 32, "mujoco")
    assert env.actor_layout.names == ("cart_pos", "pole_angle")  # the velocities are the teacher's alone
    student = init_learner(env, student_cfg, jax.random.PRNGKey(3))
    before = _survival(env, student.policy_params)
    rollout = start_rollout(env, student, jax.random.PRNGKey(4))
    distill = make_distill_step(env, student_cfg, teacher)
    fits, checks = [], []
    while len(fits) < MAX_ITERATIONS and (not checks or checks[-1] < THRESHOLD):
        for _ in range(CHECK_EVERY):
            student, rollout, metrics = distill(student, rollout)
            fits.append(float(metrics["distill/loss_last_epoch"]))
        checks.append(_survival(env, student.policy_params))
    assert checks[-1] >= THRESHOLD, (before, checks, fits)
    assert before < THRESHOLD - 0.3
    assert fits[-1] < 0.5 * max(fits), fits  # the fit improves on its worst (early DAgger states get harder)
    # it takes the teacher's action noise, so that a PPO fine-tune explores as the teacher did
    np.testing.assert_array_equal(student.actor.log_std, teacher.params.actor.log_std)


def test_a_teacher_that_sees_what_the_student_task_never_computes_is_a_one_line_error():
    teacher_cfg = CartPoleConfig(num_envs=2, num_minibatches=1)
    teacher_env = Env(make_task(teacher_cfg), 2, "mujoco")
    learner = init_learner(teacher_env, teacher_cfg, jax.random.PRNGKey(0))
    teacher = Teacher(learner.policy_params, teacher_env.actor_layout)
    blind = Env(make_task(CartPoleConfig(observe="positions")), 2, "mujoco")  # no privileged critic
    with pytest.raises(DistillError, match="the teacher observes 'cart_vel' \\(1\\), which the student's task"):
        make_distill_step(blind, CartPoleConfig(num_envs=2, num_minibatches=1), teacher)


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_obs_norm_keeps_the_observation_statistics_through_ppo(freeze):
    cfg = CartPoleConfig(num_envs=4, rollout_length=8, num_minibatches=1, freeze_obs_norm=freeze)
    env = Env(make_task(cfg), cfg.num_envs, "mujoco")
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    before = np.asarray(learner.actor_norm.mean).copy(), np.asarray(learner.critic_norm.var).copy()
    learner, _, _ = make_train_step(env, cfg)(learner, start_rollout(env, learner, jax.random.PRNGKey(1)))
    after = np.asarray(learner.actor_norm.mean), np.asarray(learner.critic_norm.var)
    assert all(np.array_equal(a, b) == freeze for a, b in zip(before, after, strict=True))
