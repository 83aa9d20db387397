"""The per-agent proxy critic: decentralised V(o_i) or centralised V(s, o_i, i)."""
from __future__ import annotations

import torch
from tensordict import TensorDict

from torchrl_liir.modules.critics import make_proxy_critic


def batch(obs: torch.Tensor, state: torch.Tensor) -> TensorDict:
    return TensorDict({"agents": {"observation": obs}, "state": state}, obs.shape[:-2])


def test_state_critic_reads_state_and_agent_id_by_hand():
    torch.manual_seed(0)
    critic = make_proxy_critic(4, 3, num_cells=(8,), state_dim=5)
    obs, state = torch.randn(2, 3, 4), torch.randn(2, 5)
    got = critic(batch(obs, state))["agents", "proxy_value"]
    features = torch.cat([obs, state.unsqueeze(1).expand(2, 3, 5), torch.eye(3).expand(2, 3, 3)], dim=-1)
    torch.testing.assert_close(got, critic.module.mlp(features))
    same_obs = obs[:, :1].expand(2, 3, 4)
    values = critic(batch(same_obs, state))["agents", "proxy_value"]
    assert not torch.allclose(values[:, 0], values[:, 1])  # the id tells agents apart


def test_observation_critic_ignores_the_state():
    torch.manual_seed(0)
    critic = make_proxy_critic(4, 3, num_cells=(8,))
    obs = torch.randn(2, 3, 4)
    a = critic(batch(obs, torch.zeros(2, 5)))["agents", "proxy_value"]
    b = critic(batch(obs, torch.ones(2, 5)))["agents", "proxy_value"]
    assert a.shape == (2, 3, 1)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, critic.module.mlp(obs))
