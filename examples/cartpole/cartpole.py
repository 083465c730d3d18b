"""Cart-pole balancing: the smallest task that shows the whole loop (trains in about a minute on a CPU).

python -m examples.cartpole.cartpole max_steps=60
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import mujoco
from jaxtyping import Array, Float, PRNGKeyArray

import ksim
from ksim.components import EpisodeLength, Reset, Reward, SensorObservation, StayAlive, Termination, TorqueActuators
from ksim.components.base import StepContext, sensor_slice
from ksim.config import opt
from ksim.runner import run
from ksim.runner.config import RunConfig

MODEL = Path(__file__).parent / "cartpole.xml"
SENSORS = {"all": ("cart_pos", "pole_angle", "cart_vel", "pole_vel"), "positions": ("cart_pos", "pole_angle")}


@dataclass(kw_only=True)
class PoleUpright(Reward):
    """cos(pole angle): 1 balanced, below 1 as it leans."""

    def _bind(self, model: mujoco.MjModel) -> None:
        self._angle = sensor_slice(model, "pole_angle", self.name)

    def compute(self, ctx: StepContext) -> Float[Array, ""]:
        """Cosine of the pole's angle from vertical."""
        return jnp.cos(ctx.physics.sensordata[self._angle][0])


@dataclass(kw_only=True)
class PoleFell(Termination):
    """The pole leans past `max_angle` or the cart runs past `max_x`."""

    max_angle: float = 0.6
    max_x: float = 2.0

    def _bind(self, model: mujoco.MjModel) -> None:
        self._angle = sensor_slice(model, "pole_angle", self.name)
        self._x = sensor_slice(model, "cart_pos", self.name)

    def __call__(self, ctx: StepContext) -> jax.Array:
        """Whether it fell."""
        sensors = ctx.physics.sensordata
        return (jnp.abs(sensors[self._angle][0]) > self.max_angle) | (jnp.abs(sensors[self._x][0]) > self.max_x)


@dataclass(kw_only=True)
class RandomStart(Reset):
    """Every joint position and velocity uniform in ±`noise`."""

    noise: float = 0.2

    def __call__(
        self, qpos: Float[Array, " nq"], qvel: Float[Array, " nv"], rng: PRNGKeyArray
    ) -> tuple[Float[Array, " nq"], Float[Array, " nv"]]:
        """Perturbed start."""
        pos_rng, vel_rng = jax.random.split(rng)
        return (
            qpos + jax.random.uniform(pos_rng, qpos.shape, minval=-self.noise, maxval=self.noise),
            qvel + jax.random.uniform(vel_rng, qvel.shape, minval=-self.noise, maxval=self.noise),
        )


@dataclass(kw_only=True)
class CartPoleConfig(RunConfig):
    """Cart-pole balancing with PPO."""

    num_envs: int = opt(64)
    rollout_length: int = opt(32)
    actor_hidden: tuple[int, ...] = opt((32, 32))
    critic_hidden: tuple[int, ...] = opt((32, 32))
    learning_rate: float = opt(1e-3)
    init_action_std: float = opt(1.0)
    episode_seconds: float = opt(5.0, "episode length before truncation (s)", gt=0)
    observe: Literal["all", "positions"] = opt(
        "all", "all: positions and velocities; positions: velocities hidden, a task that needs memory (actor=gru)"
    )
    privileged_critic: bool = opt(False, "the critic also sees what observe= hides (a distillation teacher's inputs)")
    video_every_iters: int = opt(0)


def make_task(cfg: CartPoleConfig) -> ksim.Task:
    """Balance the pole from a perturbed start."""
    hidden = [s for s in SENSORS["all"] if s not in SENSORS[cfg.observe]] if cfg.privileged_critic else []
    return ksim.Task(
        model_path=MODEL,
        actuators=TorqueActuators(),
        observations=[SensorObservation(name=s, sensor=s) for s in SENSORS[cfg.observe]],
        # the critic (and through it a distillation teacher) may see what the actor does not
        critic_observations=[SensorObservation(name=s, sensor=s) for s in hidden],
        rewards=[StayAlive(scale=1.0), PoleUpright(scale=1.0)],
        terminations=[PoleFell(), EpisodeLength(max_seconds=cfg.episode_seconds)],
        resets=[RandomStart(noise=0.1)],
        ctrl_dt=0.02,
    )


if __name__ == "__main__":
    run(CartPoleConfig, make_task, __file__)
