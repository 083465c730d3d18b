"""Task components, composed by name.

Observations, commands, rewards, terminations, resets, events, randomizations,
actuators, action priors, noise and curriculum; `symmetry` mirrors them left to right.
"""

from ksim.components.actuators import Actuators, PDActuators, TorqueActuators
from ksim.components.base import Component, ModelIndex, StepContext
from ksim.components.commands import Command, CommandState, ConstantCommand, GaitClock, VelocityCommand
from ksim.components.curriculum import Curriculum
from ksim.components.events import Event, EventEffect, ForcePush, VelocityPush
from ksim.components.noise import GaussianNoise, Noise, UniformNoise
from ksim.components.observations import (
    ActuatorForce,
    BaseAngularVelocity,
    BaseLinearVelocity,
    CommandObservation,
    FootContact,
    GaitPhase,
    JointPosition,
    JointVelocity,
    Observation,
    PreviousAction,
    ProjectedGravity,
    SensorObservation,
)
from ksim.components.priors import ActionPrior, GaitPrior
from ksim.components.randomization import (
    ActuatorGains,
    Armature,
    BodyMass,
    FloorFriction,
    GeomFriction,
    JointDamping,
    Randomization,
)
from ksim.components.resets import BasePoseReset, Reset, StanceReset
from ksim.components.rewards import (
    ActionRate,
    AngularVelocityTracking,
    BaseAngularVelocityPenalty,
    BaseHeight,
    Energy,
    FeetAirTime,
    FeetContactMatch,
    FeetPhase,
    FeetSlip,
    GaitReference,
    JointDeviation,
    JointVelocityPenalty,
    LinearVelocityTracking,
    Reward,
    StandStill,
    StayAlive,
    Torque,
    Upright,
)
from ksim.components.terminations import (
    BaseHeightOutOfRange,
    EpisodeLength,
    IllegalContact,
    NotUpright,
    Termination,
)

__all__ = [name for name in dir() if not name.startswith("_")]
