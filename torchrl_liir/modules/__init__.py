"""LIIR's networks: policies, the intrinsic reward and the two critics."""
from torchrl_liir.modules.critics import make_extrinsic_critic, make_proxy_critic
from torchrl_liir.modules.intrinsic_reward import IntrinsicReward, make_intrinsic_reward, proxy_reward
from torchrl_liir.modules.multi_agent_gru import MultiAgentGRU
from torchrl_liir.modules.policies import make_gru_policy, make_mlp_policy, policy_primer

__all__ = [
    "IntrinsicReward",
    "MultiAgentGRU",
    "make_extrinsic_critic",
    "make_gru_policy",
    "make_intrinsic_reward",
    "make_mlp_policy",
    "make_proxy_critic",
    "policy_primer",
    "proxy_reward",
]
