"""The environment engine: state pytrees, the batched step with automatic reset, and the one rollout."""

from ksim.engine.env import Env
from ksim.engine.rollout import Policy, PolicyOutput, RolloutState, ZeroPolicy, init_rollout, rollout, rollout_step
from ksim.engine.state import EnvState, ObsLayout, Transition

__all__ = [
    "Env",
    "EnvState",
    "ObsLayout",
    "Policy",
    "PolicyOutput",
    "RolloutState",
    "Transition",
    "ZeroPolicy",
    "init_rollout",
    "rollout",
    "rollout_step",
]
