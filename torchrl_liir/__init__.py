"""torchrl_liir: LIIR (Learning Individual Intrinsic Rewards, Du et al., NeurIPS 2019) for TorchRL."""
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
