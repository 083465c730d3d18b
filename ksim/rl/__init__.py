"""Learning: networks, observation normalisation, the actor as a policy, and PPO."""

from ksim.rl.networks import Actor, MLPActor, MLPCritic, NetworkConfig
from ksim.rl.normalization import RunningNorm
from ksim.rl.policy import ActorPolicy, PolicyParams
from ksim.rl.ppo import PPOConfig

__all__ = ["Actor", "ActorPolicy", "MLPActor", "MLPCritic", "NetworkConfig", "PPOConfig", "PolicyParams", "RunningNorm"]
