"""What the K-Bot tasks share: config defaults, the model, its actuators, what the robot senses and how it fails."""

from dataclasses import dataclass
from pathlib import Path

from ksim.components import (
    BaseAngularVelocity,
    BaseHeightOutOfRange,
    BaseLinearVelocity,
    FootContact,
    GaussianNoise,
    IllegalContact,
    JointPosition,
    JointVelocity,
    Observation,
    PDActuators,
    PreviousAction,
    ProjectedGravity,
    SensorObservation,
    Termination,
)
from ksim.config import opt
from ksim.runner.config import RunConfig

SCENE = Path(__file__).parent / "scene.xml"
FEET = ("left_foot_touch", "right_foot_touch")


@dataclass(kw_only=True)
class KBotConfig(RunConfig):
    """Defaults every K-Bot task trains with."""

    num_envs: int = opt(512)
    rollout_length: int = opt(24)
    # one minibatch of all 512 × 24 steps per gradient step: with four, the adaptive learning rate
    # fell to ~2e-5 (noisy gradients spend the KL budget) and standing learned 1.8× slower per
    # env-step (bench/RESULTS.md, session 9)
    num_minibatches: int = opt(1)
    init_action_std: float = opt(1.0)
    action_scale: float = opt(0.25, "joint-target offset (rad) per unit of action", gt=0)
    privileged_actor: bool = opt(False, "the actor also sees the privileged observations (a distillation teacher)")
    legs_only: bool = opt(False, "the policy drives the 10 leg joints; the arms hold the stance")


LEGS = tuple(f"{side}_{j}" for side in ("left", "right") for j in ("hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle"))
# the top of a step: hip flexed, knee bent twice as far and the ankle back, which lifts the foot
# ~8 cm with its sole level (the right leg's pitch axes point the other way, SPEC §6)
SWING = (
    {"left_hip_pitch": 0.25, "left_knee": 0.5, "left_ankle": -0.25},
    {"right_hip_pitch": -0.25, "right_knee": -0.5, "right_ankle": 0.25},
)


# each leg's sweep per unit of (vx, vy, wz), rad per m/s or per rad/s: over a stance half-cycle at
# ~1.4 Hz a planted foot travels ±v/(4f) ≈ ±0.18·v against the hip; the hip pitch moves the foot
# 0.54 m/rad fore-aft, the hip roll 0.49 m/rad sideways, and the hip yaw turns it 0.94 rad/rad. The
# right pitch axis points the other way (SPEC §6); roll and yaw turn both feet the same way.
# Walking doubles the yaw gains by default (`gait_turn`): at 1× runs turned only after 20-30 M env-steps.
STRIDE = (
    {"left_hip_pitch": (0.33, 0.0, 0.0), "left_hip_roll": (0.0, 0.36, 0.0), "left_hip_yaw": (0.0, 0.0, 0.19)},
    {"right_hip_pitch": (-0.33, 0.0, 0.0), "right_hip_roll": (0.0, 0.36, 0.0), "right_hip_yaw": (0.0, 0.0, 0.19)},
)


def stride(amplitude: float = 1.0, turn: float = 1.0) -> tuple[dict[str, tuple[float, float, float]], ...]:
    """`STRIDE` with every gain times `amplitude`, and the turning (wz) gains times `turn` as well."""
    return tuple(
        {joint: (amplitude * x, amplitude * y, amplitude * turn * w) for joint, (x, y, w) in leg.items()}
        for leg in STRIDE
    )


def swing(amplitude: float = 1.0) -> tuple[dict[str, float], ...]:
    """`SWING` with every offset times `amplitude`."""
    return tuple({joint: amplitude * offset for joint, offset in leg.items()} for leg in SWING)


def actuators(action_scale: float, max_latency_steps: int = 1, legs_only: bool = False) -> PDActuators:
    """PD around the stance with the robot's kp/kd and soft torque limits (as written in the MJCF).

    `legs_only`: the arms are held at the stance and only the 10 leg joints follow the policy.
    """
    scale = {joint: action_scale for joint in LEGS} if legs_only else action_scale
    return PDActuators(action_scale=scale, keyframe="stance", max_latency_steps=max_latency_steps)


def actor_observations(privileged: bool = False) -> list[Observation]:
    """What the real robot senses (encoders, IMU), with sensor-like noise; a teacher also gets the privileged ones."""
    sensed: list[Observation] = [
        JointPosition(relative_to_keyframe="stance", noise=GaussianNoise(std=0.01)),
        JointVelocity(noise=GaussianNoise(std=0.2)),
        ProjectedGravity(noise=GaussianNoise(std=0.02)),
        SensorObservation(name="imu_gyro", sensor="imu_gyro", mirror_as="axial", noise=GaussianNoise(std=0.05)),
        PreviousAction(),
    ]
    return sensed + (privileged_observations() if privileged else [])


def critic_observations(privileged_actor: bool = False) -> list[Observation]:
    """The critic's extras: the privileged observations, unless the actor has them already."""
    return [] if privileged_actor else privileged_observations()


def privileged_observations() -> list[Observation]:
    """What only the simulator knows: true base velocities and foot contacts."""
    return [BaseLinearVelocity(), BaseAngularVelocity(), FootContact(sensors=FEET)]


def failures() -> list[Termination]:
    """Fallen: base too low, or the torso touching anything."""
    return [BaseHeightOutOfRange(min_height=0.45, max_height=1.2), IllegalContact(sensors=("torso_touch",))]
