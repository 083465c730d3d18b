"""K-Bot standing: stay up from a perturbed stance under random pushes (SPEC §7).

python -m examples.kbot.standing                       # train
python -m examples.kbot.standing action=eval pretrained=<run dir>
python -m examples.kbot.standing action=eval policy=zero   # the hold-stance baseline
"""

from dataclasses import dataclass

import ksim
from examples.kbot import common
from ksim.components import (
    ActionRate,
    BaseAngularVelocityPenalty,
    BaseHeight,
    BasePoseReset,
    BodyMass,
    EpisodeLength,
    FloorFriction,
    JointDeviation,
    JointVelocityPenalty,
    NotUpright,
    StanceReset,
    StayAlive,
    Torque,
    Upright,
    VelocityPush,
)
from ksim.rl.ppo import opt
from ksim.runner import run
from ksim.runner.config import RunConfig


@dataclass(kw_only=True)
class StandingConfig(RunConfig):
    """K-Bot standing under pushes, trained with PPO."""

    num_envs: int = opt(512, "environments simulated in parallel")
    rollout_length: int = opt(24, "control steps per env per rollout (T)")
    num_minibatches: int = opt(4, "minibatches per epoch; must divide num_envs")
    init_action_std: float = opt(1.0, "initial standard deviation of the Gaussian policy")
    action_scale: float = opt(0.25, "joint-target offset (rad) per unit of action")
    push_velocity: float = opt(0.3, "largest base velocity kick of a push (m/s, each of x and y)")
    push_interval: tuple[float, float] = opt((2.0, 4.0), "seconds between pushes, drawn uniformly in this range")
    episode_seconds: float = opt(10.0, "episode length before truncation (s)")
    joint_noise: float = opt(0.05, "reset noise on joint angles (rad, half-width)")


def make_task(cfg: StandingConfig) -> ksim.Task:
    """Stand: upright, at height, near the stance, smoothly, whatever the pushes do."""
    return ksim.Task(
        model_path=common.SCENE,
        actuators=common.actuators(cfg.action_scale),
        observations=common.actor_observations(),
        critic_observations=common.critic_observations(),
        rewards=[
            StayAlive(scale=1.0),
            Upright(scale=1.0),
            BaseHeight(target=0.7, sigma=0.1, scale=1.0),
            BaseAngularVelocityPenalty(scale=-0.1),
            JointDeviation(scale=-0.2),
            JointVelocityPenalty(scale=-1e-3),
            ActionRate(scale=-0.02),
            Torque(scale=-2e-5),
        ],
        terminations=[*common.failures(), NotUpright(max_tilt=0.8), EpisodeLength(max_seconds=cfg.episode_seconds)],
        resets=[StanceReset(joint_pos_noise=cfg.joint_noise, joint_vel_noise=0.1), BasePoseReset(yaw=3.14)],
        events=[VelocityPush(interval_seconds=cfg.push_interval, max_velocity=(cfg.push_velocity,) * 2)],
        randomizations=[FloorFriction(scale_range=(0.6, 1.2)), BodyMass(scale_range=(0.95, 1.05))],
    )


if __name__ == "__main__":
    run(StandingConfig, make_task, __file__)
