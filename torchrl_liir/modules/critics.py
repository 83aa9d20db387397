"""The two critics of LIIR: proxy V_φ_i(o_i) and extrinsic V_φ(s) (paper §4.2, Fig. 1)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn
from torchrl.modules import MLP, MultiAgentMLP


def make_proxy_critic(
    obs_dim: int,
    n_agents: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    observation_key: NestedKey = ("agents", "observation"),
    out_key: NestedKey = ("agents", "proxy_value"),
    device: torch.device | str | None = None,
) -> TensorDictModule:
    """Decentralised per-agent critic V_proxy(o_i), parameters shared across agents (eq. 4)."""
    return TensorDictModule(
        MultiAgentMLP(
            n_agent_inputs=obs_dim,
            n_agent_outputs=1,
            n_agents=n_agents,
            centralized=False,
            share_params=True,
            num_cells=list(num_cells),
            activation_class=nn.ReLU,
            device=device,
        ),
        in_keys=[observation_key],
        out_keys=[out_key],
    )


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
