"""The environment engine: state pytrees, the batched step, automatic reset and rollouts."""

from ksim.engine.env import Env, Policy
from ksim.engine.state import EnvState, Transition

__all__ = ["Env", "EnvState", "Policy", "Transition"]
