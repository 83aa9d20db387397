"""Centralised critics of the baselines: COMA's counterfactual Q and MAPPO's per-agent V(s)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torch.nn import functional as F
from torchrl.modules import MLP

from torchrl_liir.modules.critics import ConcatenatedObservations


class COMACritic(nn.Module):
    """Q_i(s, (u_{-i}, ·)) for every agent i: one value per action of agent i (Foerster et al. 2018, §4).

    Agent i's input is the state, the one-hot joint action with agent i's own
    slot zeroed (u_{-i}) and agent i's one-hot id; one MLP is shared by all
    agents. ``forward(state [*B, S], action [*B, n_agents]) -> [*B, n_agents, n_actions]``.

    Args:
        state_dim: size ``S`` of the state.
        n_agents, n_actions: agent and action counts.
        num_cells: hidden layer sizes.
        device: where the parameters live.
    """

    def __init__(
        self,
        state_dim: int,
        n_agents: int,
        n_actions: int,
        *,
        num_cells: Sequence[int] = (64, 64),
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.n_agents, self.n_actions = n_agents, n_actions
        self.mlp = MLP(in_features=state_dim + n_agents * n_actions + n_agents, out_features=n_actions,
                       num_cells=list(num_cells), activation_class=nn.ReLU, device=device)
        eye = torch.eye(n_agents, device=device)
        self.register_buffer("others", (1 - eye).repeat_interleave(n_actions, dim=1), persistent=False)
        self.register_buffer("agent_id", eye, persistent=False)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        batch, n = state.shape[:-1], self.n_agents
        joint = F.one_hot(action.long(), self.n_actions).to(state.dtype).flatten(-2)
        inputs = torch.cat([
            state.unsqueeze(-2).expand(*batch, n, state.shape[-1]),
            joint.unsqueeze(-2) * self.others.to(state.dtype),
            self.agent_id.to(state.dtype).expand(*batch, n, n),
        ], dim=-1)
        return self.mlp(inputs)


def make_coma_critic(
    state_dim: int,
    n_agents: int,
    n_actions: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    state_key: NestedKey | None = "state",
    observation_key: NestedKey = ("agents", "observation"),
    action_key: NestedKey = ("agents", "action"),
    out_key: NestedKey = ("agents", "action_value"),
    device: torch.device | str | None = None,
) -> TensorDictModule:
    """COMA's centralised critic (:class:`COMACritic`) reading the state and the joint action.

    ``state_key=None``: the agents' concatenated observations stand in for the state (``state_dim =
    n_agents·obs_dim``). Returns a ``TensorDictModule`` reading ``state_key`` and ``action_key`` and writing
    ``[*B, n_agents, n_actions]`` to ``out_key``.
    """
    critic = COMACritic(state_dim, n_agents, n_actions, num_cells=num_cells, device=device)
    if state_key is None:
        return TensorDictModule(ConcatenatedObservations(critic), in_keys=[observation_key, action_key],
                                out_keys=[out_key])
    return TensorDictModule(critic, in_keys=[state_key, action_key], out_keys=[out_key])


def make_agent_value_critic(
    state_dim: int,
    n_agents: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    state_key: NestedKey | None = "state",
    observation_key: NestedKey = ("agents", "observation"),
    out_key: NestedKey = ("agents", "state_value"),
    device: torch.device | str | None = None,
) -> TensorDictModule:
    """Centralised V(s) with one head per agent, ``[*B, n_agents, 1]``, as MAPPO expects (Yu et al. 2022).

    ``state_key=None``: reads the agents' concatenated observations (``state_dim = n_agents·obs_dim``).
    Returns a ``TensorDictModule`` reading ``state_key`` and writing ``[*B, n_agents, 1]`` to ``out_key``.
    """
    mlp = MLP(in_features=state_dim, out_features=n_agents, num_cells=list(num_cells),
              activation_class=nn.ReLU, device=device)
    net = nn.Sequential(mlp, nn.Unflatten(-1, (n_agents, 1)))
    if state_key is None:
        return TensorDictModule(ConcatenatedObservations(net), in_keys=[observation_key], out_keys=[out_key])
    return TensorDictModule(net, in_keys=[state_key], out_keys=[out_key])
