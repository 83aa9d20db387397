"""LIIR's networks (policies, the intrinsic reward, the two critics) and the baselines' networks. Imported on
first use (:mod:`torchrl_liir._lazy`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {
    **dict.fromkeys(("COMACritic", "make_agent_value_critic", "make_coma_critic"),
                    "torchrl_liir.modules.centralised_critics"),
    **dict.fromkeys(("make_extrinsic_critic", "make_proxy_critic"), "torchrl_liir.modules.critics"),
    "ExplorationFloor": "torchrl_liir.modules.exploration_floor",
    **dict.fromkeys(("IntrinsicReward", "make_intrinsic_reward"), "torchrl_liir.modules.intrinsic_reward"),
    "MultiAgentGRU": "torchrl_liir.modules.multi_agent_gru",
    **dict.fromkeys(("make_gaussian_policy", "make_gru_policy", "make_mlp_policy", "policy_primer"),
                    "torchrl_liir.modules.policies"),
    **dict.fromkeys(("make_egreedy_actor", "make_gru_q_network", "make_mlp_q_network"),
                    "torchrl_liir.modules.q_networks"),
})

if TYPE_CHECKING:
    from torchrl_liir.modules.centralised_critics import COMACritic, make_agent_value_critic, make_coma_critic
    from torchrl_liir.modules.critics import make_extrinsic_critic, make_proxy_critic
    from torchrl_liir.modules.exploration_floor import ExplorationFloor
    from torchrl_liir.modules.intrinsic_reward import IntrinsicReward, make_intrinsic_reward
    from torchrl_liir.modules.multi_agent_gru import MultiAgentGRU
    from torchrl_liir.modules.policies import make_gaussian_policy, make_gru_policy, make_mlp_policy, policy_primer
    from torchrl_liir.modules.q_networks import make_egreedy_actor, make_gru_q_network, make_mlp_q_network

__all__ = [
    "COMACritic",
    "ExplorationFloor",
    "IntrinsicReward",
    "MultiAgentGRU",
    "make_agent_value_critic",
    "make_coma_critic",
    "make_egreedy_actor",
    "make_extrinsic_critic",
    "make_gaussian_policy",
    "make_gru_policy",
    "make_gru_q_network",
    "make_intrinsic_reward",
    "make_mlp_policy",
    "make_mlp_q_network",
    "make_proxy_critic",
    "policy_primer",
]
