"""The two critics of LIIR: proxy V_φ_i and extrinsic V_φ(s) (paper §4.2, Fig. 1)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torch.nn import functional as F
from torchrl.modules import MLP


class PerAgentValue(nn.Module):
    """One value per agent from a shared MLP over ``[o_i, (s), (one-hot i)]``.

    With the global state ``s`` the critic is centralised but still per agent (as
    the authors' code conditions its proxy critic); without it, it sees only o_i.
    The first layer is applied to the three parts separately (the same affine map as on
    their concatenation): the state's part once per state rather than once per agent, and
    the one-hot id's as a per-agent bias.
    """

    def __init__(self, obs_dim: int, n_agents: int, num_cells: Sequence[int], state_dim: int = 0,
                 agent_id: bool = False, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.n_agents, self.agent_id = n_agents, agent_id
        self.obs_dim, self.state_dim = obs_dim, state_dim
        in_features = obs_dim + state_dim + (n_agents if agent_id else 0)
        self.mlp = MLP(in_features=in_features, out_features=1, num_cells=list(num_cells),
                       activation_class=nn.ReLU, device=device)

    def forward(self, observation: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        if (state is None) != (self.state_dim == 0):
            raise ValueError(f"PerAgentValue(state_dim={self.state_dim}) got state={state is not None}")
        if state is None and not self.agent_id:
            return self.mlp(observation)
        first, *rest = self.mlp
        weight = first.weight
        x = F.linear(observation, weight[:, :self.obs_dim], first.bias)
        if state is not None:
            x = x + F.linear(state, weight[:, self.obs_dim:self.obs_dim + self.state_dim]).unsqueeze(-2)
        if self.agent_id:
            x = x + weight[:, self.obs_dim + self.state_dim:].T
        for layer in rest:
            x = layer(x)
        return x


def make_proxy_critic(
    obs_dim: int,
    n_agents: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    state_dim: int | None = None,
    observation_key: NestedKey = ("agents", "observation"),
    state_key: NestedKey = "state",
    out_key: NestedKey = ("agents", "proxy_value"),
    device: torch.device | str | None = None,
) -> TensorDictModule:
    """Per-agent proxy critic, parameters shared across agents (eq. 4).

    ``state_dim=None``: V_proxy(o_i), decentralised. ``state_dim=S``:
    V_proxy(s, o_i, i), which also reads the global state and the agent's id. Under
    partial observability a critic on o_i alone aliases states (e.g. "no enemy in
    sight" at the start and after running away), and TD bootstrapping then rewards
    the aliased moves; the global state removes that.
    """
    centralised = state_dim is not None
    net = PerAgentValue(obs_dim, n_agents, num_cells, state_dim=state_dim or 0, agent_id=centralised, device=device)
    in_keys = [observation_key, state_key] if centralised else [observation_key]
    return TensorDictModule(net, in_keys=in_keys, out_keys=[out_key])


def make_extrinsic_critic(
    input_dim: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    in_key: NestedKey = "state",
    per_agent_input: bool = False,
    out_key: NestedKey = "state_value",
    device: torch.device | str | None = None,
) -> TensorDictModule:
    """Centralised critic V_ex(s) over the team reward (eq. 8).

    ``in_key`` is the global state; for environments without one, pass the
    per-agent observation key with ``per_agent_input=True`` and
    ``input_dim = n_agents * obs_dim``: the agents' observations are
    concatenated.
    """
    mlp = MLP(in_features=input_dim, out_features=1, num_cells=list(num_cells),
              activation_class=nn.ReLU, device=device)
    net = nn.Sequential(nn.Flatten(-2), mlp) if per_agent_input else mlp
    return TensorDictModule(net, in_keys=[in_key], out_keys=[out_key])
