"""Noise models for observations and actions: Gaussian or uniform, additive or multiplicative."""

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
from jaxtyping import Array, Float, PRNGKeyArray


@dataclass(frozen=True)
class Noise:
    """Base: `apply(x, rng)` returns a noisy copy of `x`."""

    multiplicative: bool = False

    def sample(self, rng: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """A zero-centred noise sample of `shape`."""
        raise NotImplementedError

    def apply(self, x: Float[Array, "..."], rng: PRNGKeyArray) -> Float[Array, "..."]:
        """`x + n` (additive) or `x * (1 + n)` (multiplicative)."""
        n = self.sample(rng, x.shape)
        return x * (1.0 + n) if self.multiplicative else x + n

    def deploy_spec(self) -> dict[str, Any]:
        """Its type and settings, for a simulation outside JAX (`ksim.deploy`)."""
        return {"type": type(self).__name__, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class GaussianNoise(Noise):
    """Zero-mean Gaussian noise with standard deviation `std`."""

    std: float = 0.0

    def sample(self, rng: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Draw N(0, std²)."""
        return self.std * jax.random.normal(rng, shape)


@dataclass(frozen=True)
class UniformNoise(Noise):
    """Noise drawn uniformly from [-half_width, half_width]."""

    half_width: float = 0.0

    def sample(self, rng: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """Draw U(-half_width, half_width)."""
        return jax.random.uniform(rng, shape, minval=-self.half_width, maxval=self.half_width)
