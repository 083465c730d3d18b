"""The environment engine: one env's reset and step, batched over envs by vmap.

A control step is: action noise and latency → actuator controls → events (pushes)
→ `ctrl_dt / dt` physics substeps (MuJoCo's actuators recompute torques at each) →
commands → rewards and terminations → reset of done envs → observations.
"""

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ksim.components.base import ModelIndex, StepContext
from ksim.components.events import EventEffect
from ksim.components.symmetry import MirrorContext, SignedPermutation, joint_mirror
from ksim.engine.state import EnvState, ObsLayout, Transition
from ksim.physics import PhysicsBackend, make_backend
from ksim.physics.data import ModelParams, PhysicsData
from ksim.task import Task

# Joint or base speeds above this (rad/s or m/s) mean the physics has blown up.
MAX_SPEED = 1e3

# The engine's own randomness (resets, noise, pushes, latency) draws from Philox keys,
# whatever key the caller passes: XLA's CPU backend runs threefry as a rolled loop per
# draw, which cost ~0.3 ms of the engine's ~0.8 ms per control step at 128 envs.
PRNG_IMPL = "philox4x32"
# jax 0.10 cannot lower Philox's `mulhi` inside a sharded program ("failed to legalize
# operation 'mhlo.unknown'"), so envs split over devices draw threefry keys instead.
SHARDED_PRNG_IMPL = "threefry2x32"


def engine_key(rng: PRNGKeyArray, impl: str = PRNG_IMPL) -> PRNGKeyArray:
    """An `impl` key drawn from `rng` (a typed key of any implementation, or a legacy uint32 key)."""
    return jax.random.wrap_key_data(jax.random.bits(rng, (2,), jnp.uint32), impl=impl)


def _unique_names(kind: str, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"two {kind} share the names {dupes}; give each a distinct `name=`")


def _settings(component: Any) -> dict[str, Any]:
    """A component's type and public settings, as JSON-ready values."""
    fields = {f.name: getattr(component, f.name) for f in dataclasses.fields(component) if not f.name.startswith("_")}
    return {"type": type(component).__name__, **json.loads(json.dumps(fields, default=_json_value))}


def _json_value(value: Any) -> Any:
    return _settings(value) if dataclasses.is_dataclass(value) else str(value)


class Mirrors(NamedTuple):
    """The left/right mirrors of an env's action and of its flat actor and critic observations."""

    action: SignedPermutation
    actor_obs: SignedPermutation
    critic_obs: SignedPermutation


class Env:
    """A batch of `num_envs` environments of `task` on one physics backend.

    `reset(rng)` and `step(state, action)` are jitted and work on the whole batch (the
    state is donated to `step`); `ksim.engine.rollout` scans `step_batch` with a policy.
    """

    def __init__(
        self, task: Task, num_envs: int, physics_backend: str = "auto", nthread: int = 0, prng_impl: str = PRNG_IMPL
    ) -> None:
        """Compile the task's model, bind its components by name and build the backend.

        `prng_impl`: the engine's key implementation (`SHARDED_PRNG_IMPL` for envs split over devices).
        """
        model = task.load_model()
        self.task = task
        self.model = model
        self.num_envs = num_envs
        self.prng_impl = prng_impl
        self.ctrl_dt = task.ctrl_dt
        self.num_substeps = task.num_substeps(model)
        self.actuators = task.actuators.bind(model)
        self.observations = [o.bind(model) for o in task.observations]
        self.critic_observations = [o.bind(model) for o in task.critic_observations]
        self.rewards = [r.bind(model) for r in task.rewards]
        self.terminations = [t.bind(model) for t in task.terminations]
        self.resets = [r.bind(model) for r in task.resets]
        self.commands = [c.bind(model) for c in task.commands]
        self.events = [e.bind(model) for e in task.events]
        self.randomizations = [r.bind(model) for r in task.randomizations]
        _unique_names("observations", [o.name for o in self.observations + self.critic_observations])
        _unique_names("rewards", [r.name for r in self.rewards])
        _unique_names("terminations", [t.name for t in self.terminations] + ["unstable"])
        _unique_names("commands", [c.name for c in self.commands])
        _unique_names("events", [e.name for e in self.events])
        unknown = set(task.curriculum.commands if task.curriculum else ()) - {c.name for c in self.commands}
        if unknown:
            raise ValueError(f"the curriculum scales commands {sorted(unknown)} that the task does not have")
        self.backend: PhysicsBackend = make_backend(physics_backend, model, num_envs, nthread)
        self.index = ModelIndex.of(model)
        self.default_params = ModelParams.from_model(model)
        self.reset = jax.jit(self._reset_batch)
        # the batched step, un-jitted, for rollouts that compose it into their own programs
        self.step_batch = self.backend.vmap(self._step_one, num_envs)
        self.step = jax.jit(self.step_batch, donate_argnums=0)
        self.action_prior = None if task.action_prior is None else task.action_prior.bind(model)
        if self.action_prior is not None:
            missing = sorted(set(self.action_prior.needs()) - set(self.actor_layout.names))
            if missing:
                raise ValueError(
                    f"action prior {self.action_prior.name!r} reads observations {missing} that the actor does not "
                    f"have; the actor observes {list(self.actor_layout.names)}"
                )
            self.actuators.action_of_offsets(jnp.zeros(self.model.nu))  # raises if they have no joint targets

    @functools.cached_property
    def _obs_shapes(self) -> tuple[dict, dict]:
        state = self._state_shapes
        return state.obs, state.critic_obs

    @functools.cached_property
    def _state_shapes(self) -> EnvState:
        return jax.eval_shape(self._reset_one, jax.random.key(0))

    @property
    def command_sizes(self) -> dict[str, int]:
        """Each command's length, in the task's order."""
        commands = self._state_shapes.commands
        return {c.name: commands[c.name].value.shape[-1] for c in self.commands}

    @property
    def actor_layout(self) -> ObsLayout:
        """The actor's observations in the task's order, with their sizes."""
        shapes = self._obs_shapes[0]
        return ObsLayout(
            tuple(o.name for o in self.observations), tuple(shapes[o.name].shape[-1] for o in self.observations)
        )

    @property
    def critic_layout(self) -> ObsLayout:
        """The critic's inputs: every actor observation (clean), then the privileged ones."""
        shapes, obs = self._obs_shapes[1], self.observations + self.critic_observations
        return ObsLayout(tuple(o.name for o in obs), tuple(shapes[o.name].shape[-1] for o in obs))

    @property
    def prior(self) -> Callable[[Array], Array] | None:
        """The task's action prior as actions from flat actor observations (any leading axes); None without one."""
        return None if self.action_prior is None else self._prior_action

    def _prior_action(self, actor_obs: Float[Array, "... obs"]) -> Float[Array, "... nu"]:
        assert self.action_prior is not None
        return self.actuators.action_of_offsets(self.action_prior.joint_offsets(self.actor_layout.unflatten(actor_obs)))

    def mirrors(self) -> Mirrors:
        """Mirrors derived from the joint names and axes (and the task's overrides); raises if a part has no rule."""
        joints = joint_mirror(self.model, self.task.mirror_pairs, self.task.mirror_signs)
        ctx = MirrorContext(joints, {c.name: c for c in self.commands})
        by_name = {o.name: o for o in self.observations + self.critic_observations}

        def flat(layout: ObsLayout) -> SignedPermutation:
            return SignedPermutation.concat([by_name[name].mirror(ctx) for name in layout.names])

        return Mirrors(joints, flat(self.actor_layout), flat(self.critic_layout))

    def spec(self) -> dict[str, Any]:
        """What the env is, as JSON-ready data: sizes, joint order, observation layouts and every component."""
        kinds = ("observations", "critic_observations", "commands", "rewards", "terminations", "resets", "events")
        return {
            "model": str(self.task.model_path),
            "physics_backend": self.backend.name,
            "ctrl_dt": self.ctrl_dt,
            "num_substeps": self.num_substeps,
            "joints": list(self.index.joint_names),
            "actor_observations": self.actor_layout.to_json(),
            "critic_observations": self.critic_layout.to_json(),
            "components": {
                "actuators": _settings(self.task.actuators),
                "action_prior": self.task.action_prior and _settings(self.task.action_prior),
                **{kind: [_settings(c) for c in getattr(self.task, kind)] for kind in (*kinds, "randomizations")},
            },
        }

    # ---- one env ----

    def _new_episode(self, rng: PRNGKeyArray) -> tuple[ModelParams, Array, Array, dict, dict, dict, Array]:
        """Randomised parameters, initial (qpos, qvel), commands, carries and latency."""
        rngs = iter(jax.random.split(rng, 4 + len(self.randomizations) + len(self.resets) + len(self.commands)))
        params = self.default_params
        for randomization in self.randomizations:
            params = randomization(params, next(rngs))
        qpos = jnp.asarray(self.model.qpos0, jnp.float32)
        qvel = jnp.zeros(self.model.nv, jnp.float32)
        for reset in self.resets:
            qpos, qvel = reset(qpos, qvel, next(rngs))
        commands = {c.name: c.init(next(rngs)) for c in self.commands}
        event_rngs = jax.random.split(next(rngs), max(len(self.events), 1))
        event_carry = {e.name: e.init_carry(r) for e, r in zip(self.events, event_rngs, strict=False)}
        reward_carry = {r.name: r.init_carry() for r in self.rewards}
        latency = self.actuators.sample_latency(next(rngs))
        return params, qpos, qvel, commands, event_carry, reward_carry, latency

    def _clean_obs(self, ctx: StepContext) -> dict[str, Array]:
        """Clean values of every observation, actor and privileged, by name (what the critic sees)."""
        return {o.name: o.observe(ctx) for o in self.observations + self.critic_observations}

    def _observe(self, ctx: StepContext, rng: PRNGKeyArray) -> tuple[dict[str, Array], dict[str, Array]]:
        """(actor obs, critic obs): each observation computed once, noise added for the actor only."""
        clean = self._clean_obs(ctx)
        rngs = jax.random.split(rng, max(len(self.observations), 1))
        actor = {
            o.name: clean[o.name] if o.noise is None else o.noise.apply(clean[o.name], rngs[i])
            for i, o in enumerate(self.observations)
        }
        return actor, clean

    def _context(
        self, physics: PhysicsData, action_t: Array, action_t_minus_1: Array, commands: dict, step: Array, level: Array
    ) -> StepContext:
        command = {k: v.value for k, v in commands.items()}
        if self.task.curriculum is not None:  # the curriculum's commands, as observed and judged, scale with it
            command |= {k: command[k] * self.task.curriculum.scale(level) for k in self.task.curriculum.commands}
        return StepContext(physics, action_t, action_t_minus_1, command, step, self.ctrl_dt)

    def _reset_one(self, rng: PRNGKeyArray) -> EnvState:
        episode_rng, obs_rng, rng = jax.random.split(engine_key(rng, self.prng_impl), 3)
        params, qpos, qvel, commands, event_carry, reward_carry, latency = self._new_episode(episode_rng)
        physics = self.backend.reset(params, qpos, qvel)
        zeros = jnp.zeros(self.model.nu)
        level = jnp.float32(1.0 if self.task.curriculum is None else self.task.curriculum.initial_level)
        obs, critic_obs = self._observe(self._context(physics, zeros, zeros, commands, jnp.int32(0), level), obs_rng)
        return EnvState(
            physics=physics,
            params=params,
            obs=obs,
            critic_obs=critic_obs,
            commands=commands,
            reward_carry=reward_carry,
            event_carry=event_carry,
            action_history=jnp.zeros((self.actuators.max_latency_steps + 1, self.model.nu)),
            latency=latency,
            action_t_minus_1=zeros,
            episode_step=jnp.int32(0),
            level=level,
            rng=rng,
        )

    def _step_one(
        self, state_t: EnvState, action_t: Float[Array, " nu"], external_xfrc: Float[Array, "nbody 6"] | None = None
    ) -> tuple[EnvState, Transition]:
        """One control step. `external_xfrc` adds world-frame body forces (the viewer's mouse drag)."""
        rng, noise_rng, event_rng, command_rng, episode_rng, obs_rng = jax.random.split(state_t.rng, 6)

        # action → controls, through noise and latency
        noisy = self.actuators.perturb(action_t, noise_rng)
        history = jnp.concatenate([noisy[None], state_t.action_history[:-1]])
        ctrl = self.actuators.ctrl(history[state_t.latency])

        # events, then physics
        xfrc = jnp.zeros((self.model.nbody, 6)) if external_xfrc is None else external_xfrc
        effect = EventEffect(xfrc, jnp.zeros(self.model.nv))
        event_carry = {}
        for event, r in zip(self.events, jax.random.split(event_rng, max(len(self.events), 1)), strict=False):
            event_carry[event.name], effect = event(state_t.event_carry[event.name], effect, r, self.ctrl_dt)
        if self.task.curriculum is not None and self.task.curriculum.pushes:
            effect = EventEffect(effect.xfrc_applied, effect.qvel_kick * self.task.curriculum.scale(state_t.level))
        physics = self.backend.step(
            state_t.physics, state_t.params, ctrl, effect.xfrc_applied, effect.qvel_kick, self.num_substeps
        )

        # NaN guard: a blown-up env is reset and counted, and its numbers never leave this step
        unstable = (
            physics.unstable
            | ~jnp.all(jnp.isfinite(physics.qpos))
            | ~jnp.all(jnp.isfinite(physics.qvel))
            | jnp.any(jnp.abs(physics.qvel) > MAX_SPEED)
        )
        physics_t_plus_1 = jax.tree.map(lambda x: jnp.where(unstable, jnp.nan_to_num(x), x), physics)

        # rewards, terminations and the transition judge the command the policy acted on (the one
        # in its observation); a command resampled now first shows in the next observation
        episode_step = state_t.episode_step + 1
        ctx = self._context(
            physics_t_plus_1, action_t, state_t.action_t_minus_1, state_t.commands, episode_step, state_t.level
        )
        reward_terms, reward_carry = {}, {}
        for reward in self.rewards:
            value, reward_carry[reward.name] = reward.step(ctx, state_t.reward_carry[reward.name])
            reward_terms[reward.name] = jnp.where(unstable, 0.0, value * reward.scale * self.ctrl_dt)
        reasons = {t.name: t(ctx) for t in self.terminations}
        reasons["unstable"] = unstable
        failure_names = [t.name for t in self.terminations if t.kind == "failure"] + ["unstable"]
        terminated = jnp.any(jnp.stack([reasons[n] for n in failure_names]))
        truncation_names = [t.name for t in self.terminations if t.kind == "truncation"]
        truncated = jnp.any(jnp.stack([reasons[n] for n in truncation_names] + [jnp.bool_(False)])) & ~terminated
        done = terminated | truncated
        level = (
            state_t.level
            if self.task.curriculum is None
            else self.task.curriculum.update(state_t.level, truncated, terminated)
        )
        critic_obs_t_plus_1 = self._clean_obs(ctx)
        command_rngs = jax.random.split(command_rng, max(len(self.commands), 1))
        commands = {
            c.name: c.step(state_t.commands[c.name], r, self.ctrl_dt)
            for c, r in zip(self.commands, command_rngs, strict=False)
        }

        # reset the env if done; everything per-episode is re-drawn
        params, qpos, qvel, new_commands, new_events, new_rewards, latency = self._new_episode(episode_rng)

        def pick(new: Any, old: Any) -> Any:
            return jax.tree.map(lambda a, b: jnp.where(done, a, b), new, old)

        params = pick(params, state_t.params)
        physics = self.backend.reset_where(done, physics_t_plus_1, params, qpos, qvel)
        commands = pick(new_commands, commands)
        action = jnp.where(done, 0.0, action_t)
        episode_step = jnp.where(done, 0, episode_step)
        obs, critic_obs = self._observe(self._context(physics, action, action, commands, episode_step, level), obs_rng)
        state_t_plus_1 = EnvState(
            physics=physics,
            params=params,
            obs=obs,
            critic_obs=critic_obs,
            commands=commands,
            reward_carry=pick(new_rewards, reward_carry),
            event_carry=pick(new_events, event_carry),
            action_history=jnp.where(done, 0.0, history),
            latency=jnp.where(done, latency, state_t.latency),
            action_t_minus_1=action,
            episode_step=episode_step,
            level=level,
            rng=rng,
        )
        transition = Transition(
            obs=state_t.obs,
            critic_obs=state_t.critic_obs,
            command=ctx.command,
            action=action_t,
            reward=sum(reward_terms.values(), jnp.float32(0.0)),
            reward_terms=reward_terms,
            done=done,
            terminated=terminated,
            truncated=truncated,
            termination_reasons=reasons,
            critic_obs_t_plus_1=critic_obs_t_plus_1,
            episode_step=ctx.episode_step,
        )
        return state_t_plus_1, transition

    # ---- the batch ----

    def _reset_batch(self, rng: PRNGKeyArray) -> EnvState:
        return self.backend.vmap(self._reset_one, self.num_envs)(jax.random.split(rng, self.num_envs))

    def zero_action(self) -> Float[Array, "E nu"]:
        """A batch of zero actions (hold the stance, for PD actuators)."""
        return jnp.zeros((self.num_envs, self.model.nu))

    def describe(self) -> str:
        """A one-paragraph summary of the env's components and sizes."""
        return (
            f"{self.num_envs} envs on {self.backend.name}, ctrl_dt={self.ctrl_dt}, "
            f"{self.num_substeps} substeps, nu={self.model.nu}; actor observations "
            f"{', '.join(f'{n} ({s})' for n, s in zip(self.actor_layout.names, self.actor_layout.sizes, strict=True))}"
        )
