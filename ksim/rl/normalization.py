"""Running observation statistics (mean and variance), merged batch by batch."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class RunningNorm(eqx.Module):
    """Running mean/variance of a feature vector; saved in checkpoints with the model."""

    mean: Float[Array, " dim"]
    var: Float[Array, " dim"]
    count: Float[Array, ""]

    @staticmethod
    def init(dim: int) -> "RunningNorm":
        """Empty statistics: normalising is the identity until the first update."""
        return RunningNorm(jnp.zeros(dim), jnp.ones(dim), jnp.float32(0.0))

    def update(self, x_N: Float[Array, "N dim"]) -> "RunningNorm":
        """Merge a batch into the statistics (parallel-variance formula, exact in any order)."""
        n = jnp.float32(x_N.shape[0])
        batch_mean = x_N.mean(0)
        batch_var = x_N.var(0)
        total = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        return RunningNorm(mean, m2 / total, total)

    def __call__(self, x: Float[Array, "... dim"], clip: float = 10.0) -> Float[Array, "... dim"]:
        """Standardise `x`, clipped to ±`clip` standard deviations."""
        return jnp.clip((x - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)
