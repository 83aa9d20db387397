"""Batches of whole episodes, one per env, each played from its start (the paper's sampling)."""
from torchrl_liir.collectors.episode_collector import (
    PADDING_MASK,
    EpisodeCollector,
    env_episode_limit,
    first_episode_mask,
)
from torchrl_liir.collectors.episodes import first_episodes, one_episode_per_env

__all__ = [
    "PADDING_MASK",
    "EpisodeCollector",
    "env_episode_limit",
    "first_episode_mask",
    "first_episodes",
    "one_episode_per_env",
]
