"""ksim: train robot control policies with reinforcement learning in MuJoCo, on JAX.

Importing ksim has no side effects: it sets no XLA flags and no `MUJOCO_GL`.
"""

from ksim.engine import Env, EnvState, Transition
from ksim.physics import ModelParams, PhysicsData, make_backend
from ksim.task import Task

__version__ = "0.1.0"

__all__ = ["Env", "EnvState", "ModelParams", "PhysicsData", "Task", "Transition", "make_backend"]
