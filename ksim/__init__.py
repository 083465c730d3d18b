"""ksim: train robot control policies with reinforcement learning in MuJoCo, on JAX.

Importing ksim has no side effects: it sets no XLA flags and no `MUJOCO_GL`, and it
imports JAX only when one of the names below is first used, so that `ksim.deploy`
(the JAX-free policy runner) can live in the same package.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ksim.engine import Env, EnvState, Transition
    from ksim.physics import ModelParams, PhysicsData, make_backend
    from ksim.task import Task

__version__ = "0.1.0"

_WHERE = {
    "Env": "ksim.engine",
    "EnvState": "ksim.engine",
    "Transition": "ksim.engine",
    "ModelParams": "ksim.physics",
    "PhysicsData": "ksim.physics",
    "make_backend": "ksim.physics",
    "Task": "ksim.task",
}

__all__ = ["Env", "EnvState", "ModelParams", "PhysicsData", "Task", "Transition", "make_backend"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'ksim' has no attribute {name!r}")
