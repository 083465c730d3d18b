"""Curriculum: a difficulty level per env that rises as the policy copes, scaling commands and pushes."""

from dataclasses import dataclass

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ksim.components.base import Component


@dataclass(kw_only=True)
class Curriculum(Component):
    """A difficulty level in [0, 1], kept per env across episodes.

    It rises by `step` after an episode that lasted to its time limit and falls by `step` after
    a failure. The named commands (as the policy observes them and the rewards judge them) and every push
    are scaled by `low + (1 - low) * level`. Evaluation runs at level 1.
    """

    commands: tuple[str, ...] = ("velocity",)
    pushes: bool = True
    initial_level: float = 0.0
    step: float = 0.1
    low: float = 0.2  # the scale at level 0

    def scale(self, level: Float[Array, ""]) -> Float[Array, ""]:
        """The factor on commands and pushes at `level`."""
        return self.low + (1.0 - self.low) * level

    def update(self, level: Float[Array, ""], truncated: Bool[Array, ""], terminated: Bool[Array, ""]) -> Array:
        """The level after a step that ended the episode by the time limit, by a failure, or not at all."""
        return jnp.clip(level + self.step * truncated.astype(jnp.float32) - self.step * terminated, 0.0, 1.0)
