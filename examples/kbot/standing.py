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
from ksim.config import opt
from ksim.runner import run


@dataclass(kw_only=True)
class StandingConfig(common.KBotConfig):
    """K-Bot standing under pushes, trained with PPO."""

    push_velocity: float = opt(0.3, "largest base velocity kick of a push (m/s, each of x and y)", ge=0)
    push_interval: tuple[float, float] = opt((2.0, 4.0), "seconds between pushes, drawn uniformly in this range", gt=0)
    episode_seconds: float = opt(10.0, "episode length before truncation (s)", gt=0)
    joint_noise: float = opt(0.05, "reset noise on joint angles (rad, half-width)", ge=0)


def make_task(cfg: StandingConfig) -> ksim.Task:
    """Stand: upright, at height, near the stance, smoothly, whatever the pushes do."""
    return ksim.Task(
        model_path=common.SCENE,
        actuators=common.actuators(cfg.action_scale, legs_only=cfg.legs_only),
        observations=common.actor_observations(cfg.privileged_actor),
        critic_observations=common.critic_observations(cfg.privileged_actor),
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
