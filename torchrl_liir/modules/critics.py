"""The two critics of LIIR: proxy V_φ_i and extrinsic V_φ(s) (paper §4.2, Fig. 1)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torch.nn import functional as F
from torchrl.modules import MLP


class ConcatenatedObservations(nn.Module):
    """Runs ``module`` with the agents' observations ``[*B, n_agents, obs_dim]`` concatenated in place of a
    global state ``[*B, n_agents·obs_dim]``: a centralised critic for envs without a state."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, observation: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return self.module(observation.flatten(-2), *rest)


class PerAgentValue(nn.Module):
    """One value per agent from a shared MLP over ``[o_i, (s), (one-hot i)]``.

    With the global state ``s`` the critic is centralised but still per agent (as
    the authors' code conditions its proxy critic); without it, it sees only o_i.
    ``state_from_observations``: the agents' observations, concatenated, stand in for ``s``
    (for envs without a global state; ``state_dim = n_agents·obs_dim``).
    The first layer is applied to the three parts separately (the same affine map as on
    their concatenation): the state's part once per state rather than once per agent, and
    the one-hot id's as a per-agent bias.
    """

    def __init__(self, obs_dim: int, n_agents: int, num_cells: Sequence[int], state_dim: int = 0,
                 agent_id: bool = False, state_from_observations: bool = False,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if state_from_observations:
            state_dim = n_agents * obs_dim
        self.n_agents, self.agent_id = n_agents, agent_id
        self.obs_dim, self.state_dim = obs_dim, state_dim
        self.state_from_observations = state_from_observations
        in_features = obs_dim + state_dim + (n_agents if agent_id else 0)
        self.mlp = MLP(in_features=in_features, out_features=1, num_cells=list(num_cells),
                       activation_class=nn.ReLU, device=device)

    def forward(self, observation: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        if self.state_from_observations:
            state = observation.flatten(-2)
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
    state_key: NestedKey | None = "state",
    out_key: NestedKey = ("agents", "proxy_value"),
    device: torch.device | str | None = None,
) -> TensorDictModule:
    """Per-agent proxy critic, parameters shared across agents (eq. 4).

    ``state_dim=None``: V_proxy(o_i), decentralised. ``state_dim=S``:
    V_proxy(s, o_i, i), which also reads the global state and the agent's id. Under
    partial observability a critic on o_i alone aliases states (e.g. "no enemy in
    sight" at the start and after running away), and TD bootstrapping then rewards
    the aliased moves; the global state removes that. ``state_key=None`` (an env
    without a global state): the agents' concatenated observations stand in for ``s``,
    and ``state_dim`` must be ``n_agents·obs_dim``. The module writes ``[*B, n_agents, 1]`` to ``out_key``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_liir import make_proxy_critic
        >>> batch = TensorDict({"agents": TensorDict({"observation": torch.randn(8, 3, 4)}, [8, 3]),
        ...                     "state": torch.randn(8, 6)}, [8])
        >>> decentralised = make_proxy_critic(obs_dim=4, n_agents=3)  # V_proxy(o_i)
        >>> decentralised.in_keys, decentralised(batch).get(("agents", "proxy_value")).shape
        ([('agents', 'observation')], torch.Size([8, 3, 1]))
        >>> with_state = make_proxy_critic(obs_dim=4, n_agents=3, state_dim=6)  # V_proxy(s, o_i, i)
        >>> with_state.in_keys, with_state(batch).get(("agents", "proxy_value")).shape
        ([('agents', 'observation'), 'state'], torch.Size([8, 3, 1]))
    """
    centralised = state_dim is not None
    from_observations = centralised and state_key is None
    if from_observations and state_dim != n_agents * obs_dim:
        raise ValueError(f"state_key=None reads the {n_agents} agents' concatenated observations: state_dim must be "
                         f"{n_agents * obs_dim} (n_agents·obs_dim), got {state_dim}")
    net = PerAgentValue(obs_dim, n_agents, num_cells, state_dim=state_dim or 0, agent_id=centralised,
                        state_from_observations=from_observations, device=device)
    in_keys = [observation_key, state_key] if centralised and not from_observations else [observation_key]
    return TensorDictModule(net, in_keys=in_keys, out_keys=[out_key])


def make_extrinsic_critic(
    input_dim: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    state_key: NestedKey | None = "state",
    observation_key: NestedKey = ("agents", "observation"),
    out_key: NestedKey = "state_value",
    device: torch.device | str | None = None,
) -> TensorDictModule:
    """Centralised critic V_ex(s) over the team reward (eq. 8).

    Reads the global state ``state_key`` (``input_dim`` its size). For an env without
    one, ``state_key=None`` reads the agents' observations, concatenated
    (``input_dim = n_agents·obs_dim``). The module writes ``[*B, 1]`` to ``out_key``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_liir import make_extrinsic_critic
        >>> batch = TensorDict({"agents": TensorDict({"observation": torch.randn(8, 3, 4)}, [8, 3]),
        ...                     "state": torch.randn(8, 6)}, [8])
        >>> make_extrinsic_critic(6)(batch).get("state_value").shape  # V_ex(s)
        torch.Size([8, 1])
        >>> no_state = make_extrinsic_critic(3 * 4, state_key=None)  # V_ex of the concatenated observations
        >>> no_state.in_keys, no_state(batch).get("state_value").shape
        ([('agents', 'observation')], torch.Size([8, 1]))
    """
    mlp = MLP(in_features=input_dim, out_features=1, num_cells=list(num_cells),
              activation_class=nn.ReLU, device=device)
    if state_key is None:
        return TensorDictModule(ConcatenatedObservations(mlp), in_keys=[observation_key], out_keys=[out_key])
    return TensorDictModule(mlp, in_keys=[state_key], out_keys=[out_key])
