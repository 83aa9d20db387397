"""The intrinsic reward function r_in_η(o_i, u_i) of LIIR (paper §4.1, eq. 2)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torchrl.modules import MultiAgentMLP


class IntrinsicReward(nn.Module):
    """Parameter-shared intrinsic reward r_in_η(o_i, u_i) (eq. 2), for discrete or continuous actions.

    One MLP, shared by all agents, reads an agent's observation (optionally with
    its one-hot id). Discrete actions (``n_actions``): it outputs one reward per
    action and the taken action's is gathered. Continuous actions (``action_dim``):
    the action is an input and it outputs one reward. The output is bounded to
    ``[-bound, bound]`` by ``bound·tanh(x / bound)``, the identity near 0 whatever the bound (the authors'
    code: 10·tanh(x/10); ``bound=None`` leaves it unbounded).

    Args:
        obs_dim: size of one agent's observation.
        n_actions: number of discrete actions (``None`` for continuous actions).
        n_agents: number of agents.
        num_cells: hidden layer sizes.
        bound: output bound, or ``None``.
        agent_id: whether the agent's one-hot id is appended to its observation.
        action_dim: size of one agent's continuous action (with ``n_actions=None``).
        device: where the parameters live.

    Calling it with ``(observation [*B, n_agents, obs_dim], action)`` (action indices ``[*B, n_agents]``, or
    ``[*B, n_agents, action_dim]`` floats) returns the taken actions' rewards ``[*B, n_agents, 1]``.

    Examples:
        >>> import torch
        >>> from torchrl_liir import IntrinsicReward
        >>> r_in = IntrinsicReward(obs_dim=4, n_actions=5, n_agents=3)
        >>> observation, action = torch.randn(8, 3, 4), torch.randint(5, (8, 3))
        >>> reward = r_in(observation, action)
        >>> reward.shape, bool((reward.abs() <= 1).all())  # bound=1: r_in in [-1, 1]
        (torch.Size([8, 3, 1]), True)
        >>> r_in.all_actions(observation).shape  # one reward per action
        torch.Size([8, 3, 5])
        >>> continuous = IntrinsicReward(obs_dim=4, n_actions=None, n_agents=3, action_dim=2, bound=None)
        >>> continuous(observation, torch.randn(8, 3, 2)).shape
        torch.Size([8, 3, 1])
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int | None,
        n_agents: int,
        *,
        num_cells: Sequence[int] = (64, 64),
        bound: float | None = 1.0,
        agent_id: bool = False,
        action_dim: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if (n_actions is None) == (action_dim is None):
            raise ValueError(f"give n_actions (discrete actions) or action_dim (continuous actions), not both or "
                             f"neither: n_actions={n_actions}, action_dim={action_dim}")
        if bound is not None and bound <= 0:
            raise ValueError(f"bound must be positive or None, got {bound}")
        self.n_agents = n_agents
        self.bound = bound
        self.agent_id = agent_id
        self.continuous = action_dim is not None
        self.mlp = MultiAgentMLP(
            n_agent_inputs=obs_dim + (n_agents if agent_id else 0) + (action_dim or 0),
            n_agent_outputs=1 if self.continuous else n_actions,
            n_agents=n_agents,
            centralized=False,
            share_params=True,
            num_cells=list(num_cells),
            activation_class=nn.ReLU,
            device=device,
        )

    def _rewards(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.agent_id:
            ids = torch.eye(self.n_agents, dtype=inputs.dtype, device=inputs.device)
            inputs = torch.cat([inputs, ids.expand(*inputs.shape[:-1], self.n_agents)], dim=-1)
        out = self.mlp(inputs)
        return out if self.bound is None else self.bound * torch.tanh(out / self.bound)

    def all_actions(self, observation: torch.Tensor) -> torch.Tensor:
        """Intrinsic reward of every discrete action, ``[*B, n_agents, n_actions]``."""
        if self.continuous:
            raise ValueError("all_actions is for discrete actions; call the module with (observation, action)")
        return self._rewards(observation)

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Intrinsic reward of the taken actions, ``[*B, n_agents, 1]``."""
        if self.continuous:
            return self._rewards(torch.cat([observation, action.to(observation.dtype)], dim=-1))
        return self._rewards(observation).gather(-1, action.long().unsqueeze(-1))


def make_intrinsic_reward(
    obs_dim: int,
    n_actions: int | None,
    n_agents: int,
    *,
    observation_key: NestedKey = ("agents", "observation"),
    action_key: NestedKey = ("agents", "action"),
    out_key: NestedKey = ("agents", "intrinsic_reward"),
    **kwargs,
) -> TensorDictModule:
    """Wraps :class:`IntrinsicReward` as a TensorDictModule reading ``(o_t, u_t)``.

    ``n_actions=None, action_dim=d`` gives the continuous-action reward r_in_η(o_i, u_i) with u_i ∈ R^d.
    ``kwargs`` go to :class:`IntrinsicReward`. The module reads ``observation_key`` and ``action_key`` and writes
    r_in ``[*B, n_agents, 1]`` to ``out_key``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_liir import make_intrinsic_reward
        >>> r_in = make_intrinsic_reward(obs_dim=4, n_actions=5, n_agents=3)
        >>> agents = TensorDict({"observation": torch.randn(8, 3, 4), "action": torch.randint(5, (8, 3))}, [8, 3])
        >>> r_in(TensorDict({"agents": agents}, [8])).get(("agents", "intrinsic_reward")).shape
        torch.Size([8, 3, 1])
    """
    return TensorDictModule(
        IntrinsicReward(obs_dim, n_actions, n_agents, **kwargs),
        in_keys=[observation_key, action_key],
        out_keys=[out_key],
    )
