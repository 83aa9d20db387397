"""Batches of whole episodes, one per env, each played from its start (the paper's sampling). Imported on
first use (:mod:`torchrl_liir._lazy`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {
    **dict.fromkeys(("PADDING_MASK", "EpisodeCollector", "env_episode_limit", "first_episode_mask"),
                    "torchrl_liir.collectors.episode_collector"),
    **dict.fromkeys(("first_episodes", "one_episode_per_env"), "torchrl_liir.collectors.episodes"),
    **dict.fromkeys(("FusedSMAXCollector", "fused_rollout_applies"), "torchrl_liir.collectors.fused_smax"),
    "FusedSMAXPopulation": "torchrl_liir.collectors.fused_population",
    "make_episode_collector": "torchrl_liir.collectors.choose",
})

if TYPE_CHECKING:
    from torchrl_liir.collectors.choose import make_episode_collector
    from torchrl_liir.collectors.episode_collector import (
        PADDING_MASK,
        EpisodeCollector,
        env_episode_limit,
        first_episode_mask,
    )
    from torchrl_liir.collectors.episodes import first_episodes, one_episode_per_env
    from torchrl_liir.collectors.fused_population import FusedSMAXPopulation
    from torchrl_liir.collectors.fused_smax import FusedSMAXCollector, fused_rollout_applies

__all__ = [
    "PADDING_MASK",
    "EpisodeCollector",
    "FusedSMAXCollector",
    "FusedSMAXPopulation",
    "env_episode_limit",
    "first_episode_mask",
    "first_episodes",
    "fused_rollout_applies",
    "make_episode_collector",
    "one_episode_per_env",
]
