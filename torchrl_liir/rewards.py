"""The rewards LIIR combines: the team reward r_ex and each agent's proxy reward r_ex + λ·r_in (eq. 2)."""
from __future__ import annotations

import torch


def team_reward(reward: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """The team reward r_ex ``[*B, 1]`` of a reward whose batch has ``batch_dims`` dims.

    A team reward ``[*B, 1]`` is returned as is. Per-agent rewards ``[*B, n_agents, 1]`` (VMAS,
    PettingZoo) are averaged over agents: LIIR's extrinsic reward is the team's (§3), and in a
    shared-reward task, where every agent gets the team reward, the mean is that reward. Every loss of
    this package, and :class:`~torchrl_liir.transforms.TeamReward`, reduce per-agent rewards this way.

    Examples:
        >>> import torch
        >>> from torchrl_liir import team_reward
        >>> per_agent = torch.tensor([[[1.0], [3.0]]])  # [B=1, n_agents=2, 1]
        >>> team_reward(per_agent, batch_dims=1)
        tensor([[2.]])
        >>> team_reward(torch.tensor([[5.0]]), batch_dims=1)  # a team reward [B, 1], as is
        tensor([[5.]])
    """
    if reward.ndim == batch_dims + 1:
        return reward
    if reward.ndim == batch_dims + 2:
        return reward.mean(-2)
    raise ValueError(
        f"reward of shape {tuple(reward.shape)} for a batch of {batch_dims} dims: expected a team reward "
        f"[*B, 1] or per-agent rewards [*B, n_agents, 1]"
    )


def proxy_reward(
    extrinsic_reward: torch.Tensor, intrinsic_reward: torch.Tensor, lambda_in: float
) -> torch.Tensor:
    """Eq. 2: r_proxy_i = r_ex + λ·r_in_i, the team reward broadcast over the agent dim.

    ``extrinsic_reward`` is the team's ``[*B, 1]``; ``intrinsic_reward`` is ``[*B, n_agents, 1]``; the proxy
    rewards are ``[*B, n_agents, 1]``.

    Examples:
        >>> import torch
        >>> from torchrl_liir import proxy_reward
        >>> r_ex = torch.tensor([[1.0]])  # [B=1, 1]
        >>> r_in = torch.tensor([[[2.0], [-4.0]]])  # [B=1, n_agents=2, 1]
        >>> proxy_reward(r_ex, r_in, lambda_in=0.25)
        tensor([[[1.5000],
                 [0.0000]]])
    """
    return extrinsic_reward.unsqueeze(-2) + lambda_in * intrinsic_reward
