"""Left/right symmetry: the maps, a mirrored K-Bot on both backends, the gait phase and reference, and PPO's use."""

import equinox as eqx
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

import ksim
from examples.kbot import walking
from examples.kbot.common import SCENE, SWING
from ksim import components as c
from ksim.components.base import ModelIndex
from ksim.components.symmetry import joint_mirror, state_mirrors
from ksim.engine.env import Env
from ksim.rl.learner import _with_mirror, init_learner, make_train_step, start_rollout
from ksim.rl.networks import TiedMirrorActor
from ksim.rl.ppo import make_optimizer, update
from tests.conftest import context, synthetic_batch

KBOT = mujoco.MjModel.from_xml_path(str(SCENE))


def test_joint_mirror_pairs_by_name_takes_signs_from_axes_and_is_an_involution():
    joints = joint_mirror(KBOT)
    names = list(ModelIndex.of(KBOT).joint_names)
    for left in ("left_hip_pitch", "left_hip_roll", "left_hip_yaw", "left_knee", "left_shoulder_roll", "left_wrist"):
        i = names.index(left)
        # the mirrored build: opposite angles are mirror images (SPEC §6's opposite ranges and stances)
        assert names[joints.perm[i]] == left.replace("left_", "right_") and joints.sign[i] == -1.0
    x = np.random.default_rng(0).normal(size=KBOT.nu)
    np.testing.assert_allclose(joints(joints(x)), x)
    stance = KBOT.key("stance").qpos[ModelIndex.of(KBOT).joint_qpos_ids]
    np.testing.assert_allclose(joints(stance), stance, atol=1e-6)  # the stance is its own mirror image
    with pytest.raises(ValueError, match="'right_knee' pairs with 'left_knee', which pairs with 'left_ankle'"):
        joint_mirror(KBOT, pairs={"left_knee": "left_ankle"})
    with pytest.raises(ValueError, match="no partner 'right_elbow_x'"):
        joint_mirror(KBOT, pairs={"left_elbow": "right_elbow_x"})


@pytest.mark.parametrize("backend", ["mujoco", "mjx"])
def test_a_mirrored_kbot_stepped_with_mirrored_actions_stays_the_mirror_image(backend):
    task = ksim.Task(
        model_path=SCENE,
        actuators=c.PDActuators(action_scale=0.25),
        observations=[c.JointPosition()],
        rewards=[c.StayAlive()],
        terminations=[],
        resets=[c.StanceReset(joint_pos_noise=0.1, joint_vel_noise=0.3)],
    )
    env = Env(task, 2, backend)
    joints = env.mirrors().action
    qpos_m, qvel_m = state_mirrors(env.model, joints)
    state = env.reset(jax.random.key(0))
    # env 1 becomes the mirror image of env 0
    qpos, qvel = np.array(state.physics.qpos), np.array(state.physics.qvel)
    qpos[1], qvel[1] = qpos_m(qpos[0]), qvel_m(qvel[0])
    # jitted: run op by op, MJX's reset is a large share of this test's time on a CPU
    reset = jax.jit(jax.vmap(lambda d, p, q, v: env.backend.reset_where(jnp.bool_(True), d, p, q, v)))
    state = eqx.tree_at(lambda s: s.physics, state, reset(state.physics, state.params, qpos, qvel))
    actions = 0.5 * jax.random.normal(jax.random.key(1), (60, KBOT.nu))
    moved = 0.0
    for a in actions:
        state, _ = env.step(state, jnp.stack([a, joints(a)]))
        q = np.asarray(state.physics.qpos)
        np.testing.assert_allclose(q[1], qpos_m(q[0]), atol=2e-3)
        moved = max(moved, np.abs(q[0] - qpos[0]).max())
    assert moved > 0.2  # the robot really moved (and fell) in those 1.2 s


def test_gait_phase_channels_mirror_as_the_feet_swapping_half_a_cycle():
    phase = c.GaitPhase(command="gait").bind(KBOT)
    env = Env(walking.make_task(walking.WalkingConfig()), 1, "mujoco")
    mirror = phase.mirror(None)
    for phi in (0.3, 1.9, 4.0):
        obs = phase.observe(context(KBOT, command={"gait": jnp.array([phi, 1.5])}))
        half_cycle_on = phase.observe(context(KBOT, command={"gait": jnp.array([phi + np.pi, 1.5])}))
        np.testing.assert_allclose(mirror(obs), half_cycle_on, atol=1e-6)
        assert not np.allclose(obs, half_cycle_on)  # an unchanged phase would be the wrong mirror
    m = env.mirrors()  # every walking observation has a rule; each map is an involution
    for perm in m:
        x = np.random.default_rng(1).normal(size=len(perm.perm))
        np.testing.assert_allclose(perm(perm(x)), x)


def test_ppo_with_symmetry_sees_both_halves_and_reports_the_mirror_loss():
    cfg = walking.WalkingConfig(
        num_envs=8,
        rollout_length=8,
        num_minibatches=2,
        num_epochs=1,
        adaptive_lr=False,
        symmetry_augmentation=True,
        symmetry_loss_coef=0.5,
        actor_mirrored=False,  # a mirrored actor would make the mirror loss zero
        actor_hidden=(32, 32),
        critic_hidden=(32, 32),
    )
    env = Env(walking.make_task(cfg), cfg.num_envs, "mujoco")
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    learner, _, metrics = make_train_step(env, cfg)(learner, start_rollout(env, learner, jax.random.PRNGKey(1)))
    assert int(learner.iteration) == 1 and float(metrics["loss/symmetry"]) > 0
    # the normaliser saw every observation and its mirror image, so its statistics are symmetric
    m = env.mirrors().actor_obs
    np.testing.assert_allclose(m(np.asarray(learner.actor_norm.mean)), learner.actor_norm.mean, atol=1e-5)
    np.testing.assert_allclose(np.asarray(learner.actor_norm.var)[m.perm], learner.actor_norm.var, rtol=1e-4)


@pytest.mark.parametrize("how", ["average", "tied"])
def test_a_mirrored_actor_is_its_own_mirror_image_before_and_after_an_update(how):
    cfg = walking.WalkingConfig(
        num_envs=8,
        rollout_length=8,
        num_minibatches=2,
        num_epochs=1,
        adaptive_lr=False,
        learning_rate=1e-2,
        actor_mirrored=True,
        actor_mirror=how,
        actor_hidden=(32, 32),
        critic_hidden=(32, 32),
    )
    env = Env(walking.make_task(cfg), cfg.num_envs, "mujoco")
    m = env.mirrors()
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    # O(1) outputs and asymmetric noise, so that only the averaging or the tying can make the actor symmetric
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    owner = (lambda s: s.actor.inner) if how == "average" else (lambda s: s.actor)  # holds the log std
    head = (lambda s: s.actor.inner.net.layers[-1]) if how == "average" else (lambda s: s.actor.head)
    learner = eqx.tree_at(lambda s: head(s).weight, learner, head(learner).weight * 100.0)
    noise = jax.random.normal(keys[0], (env.model.nu,))
    learner = eqx.tree_at(lambda s: owner(s).log_std_param, learner, noise)
    # the train step donates the learner's buffers: keep a copy
    before = jax.tree.map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, learner.policy_params)
    learner, _, metrics = make_train_step(env, cfg)(learner, start_rollout(env, learner, jax.random.PRNGKey(1)))
    assert int(learner.iteration) == 1 and bool(metrics["health/params_finite"])
    raw = 3.0 * jax.random.normal(keys[1], (16, env.actor_layout.size))
    for params in (before, learner.policy_params):
        actor, carry = params.actor, params.actor.initial_carry()

        def mean(net, o, actor=actor, carry=carry):
            return jax.vmap(lambda x: net(x, carry)[0])(o)

        obs = params.obs_norm(raw)
        np.testing.assert_allclose(mean(actor, m.actor_obs(obs)), m.action(mean(actor, obs)), atol=1e-5)
        np.testing.assert_allclose(np.asarray(actor.log_std)[m.action.perm], actor.log_std, atol=1e-6)
        if how == "average":
            inner = mean(actor.inner, m.actor_obs(obs)) - m.action(mean(actor.inner, obs))
            assert float(jnp.abs(inner).max()) > 1e-2  # the network inside is not symmetric by itself
        else:
            # one pass of two 16-wide halves, and its O(1) means vary with the observation: no constant symmetry
            assert isinstance(actor, TiedMirrorActor) and actor.first.out_features == 16
            assert float(jnp.std(mean(actor, obs), axis=0).max()) > 1e-2
    assert float(jnp.abs(mean(learner.actor, obs) - mean(before.actor, obs)).max()) > 1e-4  # it learned
    # the whole policy, raw observations through the learned normaliser to the action mean (and prior)
    policy = ksim.rl.ActorPolicy(env.actor_layout, deterministic=True, prior=env.prior)

    def act(flat):
        out = jax.vmap(lambda o: policy(learner.policy_params, env.actor_layout.unflatten(o), carry, keys[2]))(flat)
        return out.action

    np.testing.assert_allclose(act(m.actor_obs(raw)), m.action(act(raw)), atol=1e-4)


def test_gait_reference_lifts_each_leg_in_its_swing_and_is_mirror_symmetric():
    reward = c.GaitReference(swing=SWING).bind(KBOT)
    index = ModelIndex.of(KBOT)
    stance = KBOT.key("stance").qpos.copy()
    walk = {"velocity": jnp.array([0.5, 0.0, 0.0])}
    top_of_left_swing = walk | {"gait": jnp.array([np.pi / 2, 1.5])}

    def value(qpos, command):
        return float(reward.compute(context(KBOT, qpos=qpos, command=command)))

    assert value(stance, {"velocity": jnp.zeros(3), "gait": jnp.array([np.pi / 2, 1.5])}) == pytest.approx(1.0)
    assert value(stance, top_of_left_swing) < 0.3  # both feet down while the left should be up
    lifted = stance.copy()
    for joint, offset in SWING[0].items():
        lifted[KBOT.joint(joint).qposadr[0]] += offset
    assert value(lifted, top_of_left_swing) == pytest.approx(1.0)
    # the mirror image of a pose, half a cycle on, earns the same: the two legs' profiles are mirror images
    qpos_m, _ = state_mirrors(KBOT, joint_mirror(KBOT))
    rng = np.random.default_rng(0)
    for phi in (0.4, 2.0, 4.5):
        pose = stance.copy()
        pose[index.joint_qpos_ids] += rng.normal(0, 0.2, KBOT.nu)
        mirrored = walk | {"gait": jnp.array([phi + np.pi, 1.5])}
        assert value(qpos_m(pose), mirrored) == pytest.approx(value(pose, walk | {"gait": jnp.array([phi, 1.5])}))
    with pytest.raises(ValueError, match="swing has 1 legs, and there are 2 feet"):
        c.GaitReference(swing=SWING[:1]).bind(KBOT)


def test_mirrored_steps_keep_the_rollout_log_probs_so_an_asymmetric_policy_stays_finite():
    cfg = walking.WalkingConfig(
        num_envs=4, symmetry_augmentation=True, actor_mirrored=False, actor_hidden=(32, 32), critic_hidden=(32, 32)
    )
    env = Env(walking.make_task(cfg), cfg.num_envs, "mujoco")
    mirror = env.mirrors()
    learner = init_learner(env, cfg, jax.random.PRNGKey(0))
    # a strongly asymmetric actor: its mirrored actions are many standard deviations from its means
    last = learner.actor.net.layers[-1]
    learner = eqx.tree_at(lambda s: s.actor.net.layers[-1].weight, learner, last.weight * 500.0)
    T, E = 6, cfg.num_envs
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    obs = jax.random.normal(keys[0], (T, E, env.actor_layout.size))
    critic_obs = jax.random.normal(keys[1], (T, E, env.critic_layout.size))
    batch = synthetic_batch(learner.actor, obs, critic_obs, keys[2])
    carry = (jnp.zeros((E, 0)), jnp.zeros((E, 0)))
    both, carry2 = _with_mirror(learner, batch, carry, obs, critic_obs, mirror, cfg)
    assert both.action.shape[1] == 2 * E and carry2[0].shape[0] == carry2[1].shape[0] == 2 * E
    np.testing.assert_array_equal(both.log_prob[:, E:], batch.log_prob)  # the rollout's, not re-evaluated
    np.testing.assert_allclose(both.mean[:, E:], mirror.action(batch.mean))
    np.testing.assert_allclose(both.action[:, E:], mirror.action(batch.action))
    *_, metrics = update(
        learner.actor,
        learner.critic,
        learner.opt_state,
        both,
        carry2,
        learner.actor.log_std,
        jax.random.PRNGKey(2),
        cfg,
        make_optimizer(cfg),
    )
    assert np.isfinite(float(metrics["loss/total"])), metrics
