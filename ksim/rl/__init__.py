"""Learning: networks, observation normalisation and PPO."""

from ksim.rl.networks import MLPActor, MLPCritic, Policy
from ksim.rl.normalization import RunningNorm
from ksim.rl.ppo import PPOConfig

__all__ = ["MLPActor", "MLPCritic", "Policy", "PPOConfig", "RunningNorm"]
