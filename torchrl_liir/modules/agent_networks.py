"""The agent networks every method shares (paper §5.2.1, "fair comparison"): MLP or FC → GRU → FC over o_i."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torchrl.modules import MLP

from torchrl_liir.modules.multi_agent_gru import MultiAgentGRU


def mlp_agent_network(
    obs_dim: int, n_outputs: int, num_cells: Sequence[int], observation_key: NestedKey, out_key: NestedKey,
    device: torch.device | str | None = None,
) -> TensorDictModule:
    """One MLP over the last dim: shared across the agent dim by construction."""
    mlp = MLP(in_features=obs_dim, out_features=n_outputs, num_cells=list(num_cells),
              activation_class=nn.ReLU, device=device)
    return TensorDictModule(mlp, [observation_key], [out_key])


def gru_agent_network(
    n_agents: int, obs_dim: int, n_outputs: int, hidden_size: int, observation_key: NestedKey, out_key: NestedKey,
    device: torch.device | str | None = None,
) -> tuple[TensorDictModule, MultiAgentGRU, TensorDictModule]:
    """pymarl's agent network as its three parts: embedding FC + ReLU, :class:`MultiAgentGRU`, output FC."""
    embed = TensorDictModule(
        nn.Sequential(nn.Linear(obs_dim, hidden_size, device=device), nn.ReLU()),
        [observation_key], [("agents", "embedding")],
    )
    gru = MultiAgentGRU(hidden_size, hidden_size, n_agents, device=device)
    head = TensorDictModule(nn.Linear(hidden_size, n_outputs, device=device), [("agents", "features")], [out_key])
    return embed, gru, head
