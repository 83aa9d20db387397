"""torchrl_liir: LIIR (Learning Individual Intrinsic Rewards, Du et al., NeurIPS 2019) for TorchRL."""
from torchrl_liir.envs import PursuitEnv
from torchrl_liir.modules import (
    IntrinsicReward,
    MultiAgentGRU,
    make_extrinsic_critic,
    make_gru_policy,
    make_intrinsic_reward,
    make_mlp_policy,
    make_proxy_critic,
    policy_primer,
    proxy_reward,
)
from torchrl_liir.objectives import InnerStep, LIIRLoss, MultiAgentActorCriticLoss
from torchrl_liir.transforms import IntrinsicRewardTransform

__all__ = [
    "InnerStep",
    "IntrinsicReward",
    "IntrinsicRewardTransform",
    "LIIRLoss",
    "MultiAgentActorCriticLoss",
    "MultiAgentGRU",
    "PursuitEnv",
    "make_extrinsic_critic",
    "make_gru_policy",
    "make_intrinsic_reward",
    "make_mlp_policy",
    "make_proxy_critic",
    "policy_primer",
    "proxy_reward",
]
