"""torchrl_liir: LIIR (Learning Individual Intrinsic Rewards, Du et al., NeurIPS 2019) for TorchRL.

The components below are imported on first use (``from torchrl_liir import LIIRLoss``), so that importing the
package, and the trainer's command-line checks, stay cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes

_EXPORTS = {
    **dict.fromkeys(("EpisodeCollector", "one_episode_per_env"), "torchrl_liir.collectors"),
    **dict.fromkeys(("PursuitEnv", "SMACEnv", "SMAXEnv", "SMAXSmacAPI"), "torchrl_liir.envs"),
    **dict.fromkeys(("IntrinsicReward", "MultiAgentGRU", "make_extrinsic_critic", "make_gaussian_policy",
                     "make_gru_policy", "make_intrinsic_reward", "make_mlp_policy", "make_proxy_critic",
                     "policy_primer"), "torchrl_liir.modules"),
    **dict.fromkeys(("COMALoss", "EpisodeMAPPOLoss", "InnerStep", "IQLLoss", "LIIRLoss", "MultiAgentActorCriticLoss",
                     "QMIXLoss"), "torchrl_liir.objectives"),
    **dict.fromkeys(("proxy_reward", "team_reward"), "torchrl_liir.rewards"),
    **dict.fromkeys(("IntrinsicRewardTransform", "TeamReward"), "torchrl_liir.transforms"),
}
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)

if TYPE_CHECKING:
    from torchrl_liir.collectors import EpisodeCollector, one_episode_per_env
    from torchrl_liir.envs import PursuitEnv, SMACEnv, SMAXEnv, SMAXSmacAPI
    from torchrl_liir.modules import (
        IntrinsicReward,
        MultiAgentGRU,
        make_extrinsic_critic,
        make_gaussian_policy,
        make_gru_policy,
        make_intrinsic_reward,
        make_mlp_policy,
        make_proxy_critic,
        policy_primer,
    )
    from torchrl_liir.objectives import (
        COMALoss,
        EpisodeMAPPOLoss,
        InnerStep,
        IQLLoss,
        LIIRLoss,
        MultiAgentActorCriticLoss,
        QMIXLoss,
    )
    from torchrl_liir.rewards import proxy_reward, team_reward
    from torchrl_liir.transforms import IntrinsicRewardTransform, TeamReward

__all__ = [
    "COMALoss",
    "EpisodeCollector",
    "EpisodeMAPPOLoss",
    "InnerStep",
    "IQLLoss",
    "IntrinsicReward",
    "IntrinsicRewardTransform",
    "LIIRLoss",
    "MultiAgentActorCriticLoss",
    "MultiAgentGRU",
    "PursuitEnv",
    "QMIXLoss",
    "SMACEnv",
    "SMAXEnv",
    "SMAXSmacAPI",
    "TeamReward",
    "make_extrinsic_critic",
    "make_gaussian_policy",
    "make_gru_policy",
    "make_intrinsic_reward",
    "make_mlp_policy",
    "make_proxy_critic",
    "one_episode_per_env",
    "policy_primer",
    "proxy_reward",
    "team_reward",
]
