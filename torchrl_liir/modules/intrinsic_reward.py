"""The intrinsic reward function r_in_η(o_i, u_i) of LIIR (paper §4.1, eq. 2)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torchrl.modules import MultiAgentMLP


class IntrinsicReward(nn.Module):
    """Parameter-shared intrinsic reward r_in_η(o_i, u_i) for discrete actions.

    One MLP, shared by all agents, maps an agent's observation (optionally with
    its one-hot id) to one reward per action; the taken action's value is
    gathered. The output is bounded to ``[-bound, bound]`` by ``bound·tanh(x)``
    (``bound=None`` leaves it unbounded).

    Args:
        obs_dim: size of one agent's observation.
        n_actions: number of discrete actions.
        n_agents: number of agents.
        num_cells: hidden layer sizes.
        bound: output bound, or ``None``.
        agent_id: whether the agent's one-hot id is appended to its observation.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        n_agents: int,
        *,
        num_cells: Sequence[int] = (64, 64),
        bound: float | None = 1.0,
        agent_id: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if bound is not None and bound <= 0:
            raise ValueError(f"bound must be positive or None, got {bound}")
        self.n_agents = n_agents
        self.bound = bound
        self.agent_id = agent_id
        self.mlp = MultiAgentMLP(
            n_agent_inputs=obs_dim + (n_agents if agent_id else 0),
            n_agent_outputs=n_actions,
            n_agents=n_agents,
            centralized=False,
            share_params=True,
            num_cells=list(num_cells),
            activation_class=nn.ReLU,
            device=device,
        )

    def all_actions(self, observation: torch.Tensor) -> torch.Tensor:
        """Intrinsic reward of every action, ``[*B, n_agents, n_actions]``."""
        if self.agent_id:
            ids = torch.eye(self.n_agents, dtype=observation.dtype, device=observation.device)
            ids = ids.expand(*observation.shape[:-1], self.n_agents)
            observation = torch.cat([observation, ids], dim=-1)
        out = self.mlp(observation)
        if self.bound is not None:
            out = self.bound * torch.tanh(out)
        return out

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Intrinsic reward of the taken actions, ``[*B, n_agents, 1]``."""
        return self.all_actions(observation).gather(-1, action.long().unsqueeze(-1))


def make_intrinsic_reward(
    obs_dim: int,
    n_actions: int,
    n_agents: int,
    *,
    observation_key: NestedKey = ("agents", "observation"),
    action_key: NestedKey = ("agents", "action"),
    out_key: NestedKey = ("agents", "intrinsic_reward"),
    **kwargs,
) -> TensorDictModule:
    """Wraps :class:`IntrinsicReward` as a TensorDictModule reading ``(o_t, u_t)``."""
    return TensorDictModule(
        IntrinsicReward(obs_dim, n_actions, n_agents, **kwargs),
        in_keys=[observation_key, action_key],
        out_keys=[out_key],
    )


def proxy_reward(
    extrinsic_reward: torch.Tensor, intrinsic_reward: torch.Tensor, lambda_in: float
) -> torch.Tensor:
    """Eq. 2: r_proxy_i = r_ex + λ·r_in_i, the team reward broadcast over the agent dim.

    ``extrinsic_reward`` is ``[*B, 1]`` (team) or already ``[*B, n_agents, 1]``;
    ``intrinsic_reward`` is ``[*B, n_agents, 1]``.
    """
    if extrinsic_reward.ndim == intrinsic_reward.ndim - 1:
        extrinsic_reward = extrinsic_reward.unsqueeze(-2)
    return extrinsic_reward + lambda_in * intrinsic_reward
