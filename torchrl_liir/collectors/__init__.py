"""Batches of whole episodes, one per env, each played from its start (the paper's sampling). Imported on
first use (:mod:`torchrl_liir._lazy`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {
    **dict.fromkeys(("PADDING_MASK", "EpisodeCollector", "env_episode_limit", "first_episode_mask"),
                    "torchrl_liir.collectors.episode_collector"),
    **dict.fromkeys(("first_episodes", "one_episode_per_env"), "torchrl_liir.collectors.episodes"),
})

if TYPE_CHECKING:
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
