"""The intrinsic reward r_in_η(o_i, u_i) and IntrinsicRewardTransform (eq. 2)."""
from __future__ import annotations

import pytest
import torch
from torchrl.envs import TransformedEnv
from torchrl.envs.utils import check_env_specs

from torchrl_liir import IntrinsicRewardTransform, PursuitEnv, make_intrinsic_reward


def test_gathers_the_taken_action_and_is_bounded():
    module = make_intrinsic_reward(2, 3, 2, num_cells=(8,), bound=0.5).module
    obs = torch.randn(7, 2, 2) * 100
    every = module.all_actions(obs)
    assert every.shape == (7, 2, 3) and every.abs().max() <= 0.5
    action = torch.randint(0, 3, (7, 2))
    expected = torch.stack([every[i, j, action[i, j]] for i in range(7) for j in range(2)]).reshape(7, 2, 1)
    torch.testing.assert_close(module(obs, action), expected)


def test_bound_is_the_authors_soft_clip():
    """bound·tanh(x / bound): 10·tanh(x/10) in the authors' code, the identity near 0 for any bound."""
    module = make_intrinsic_reward(2, 3, 2, num_cells=(8,), bound=10.0).module
    unbounded = make_intrinsic_reward(2, 3, 2, num_cells=(8,), bound=None).module
    unbounded.load_state_dict(module.state_dict())
    obs = torch.randn(6, 2, 2) * 50
    raw = unbounded.all_actions(obs)
    assert raw.abs().max() > 10
    torch.testing.assert_close(module.all_actions(obs), 10.0 * torch.tanh(raw / 10.0))


def test_parameters_are_shared_and_agent_id_separates_agents():
    shared = make_intrinsic_reward(2, 3, 2, num_cells=(8,)).module
    obs = torch.randn(5, 1, 2).expand(5, 2, 2)
    out = shared.all_actions(obs)
    torch.testing.assert_close(out[:, 0], out[:, 1])
    with_id = make_intrinsic_reward(2, 3, 2, num_cells=(8,), agent_id=True).module
    out = with_id.all_actions(obs)
    assert not torch.allclose(out[:, 0], out[:, 1])


def test_bad_bound():
    with pytest.raises(ValueError, match="bound"):
        make_intrinsic_reward(2, 3, 2, bound=0.0)


def _env(num_envs=4, lambda_in=0.1):
    intrinsic = make_intrinsic_reward(2, 3, 2, num_cells=(8,))
    env = TransformedEnv(PursuitEnv(num_envs=num_envs, seed=0), IntrinsicRewardTransform(intrinsic, lambda_in))
    return env, intrinsic


def test_env_transform_specs_and_values():
    env, intrinsic = _env()
    check_env_specs(env)
    rollout = env.rollout(6)
    r_in = rollout["next", "agents", "intrinsic_reward"]
    with torch.no_grad():
        expected = intrinsic.module(rollout["agents", "observation"], rollout["agents", "action"])
    torch.testing.assert_close(r_in, expected)
    proxy = rollout["next", "agents", "proxy_reward"]
    torch.testing.assert_close(proxy, rollout["next", "reward"].unsqueeze(-2) + 0.1 * expected)
    assert not r_in.requires_grad


def test_batch_mode_equals_env_mode():
    env, intrinsic = _env()
    rollout = env.rollout(6)
    batch = rollout.exclude(("next", "agents", "intrinsic_reward"), ("next", "agents", "proxy_reward"))
    IntrinsicRewardTransform(intrinsic, 0.1)(batch)
    torch.testing.assert_close(batch["next", "agents", "proxy_reward"], rollout["next", "agents", "proxy_reward"])


def test_negative_lambda_is_rejected():
    with pytest.raises(ValueError, match="lambda_in=-1"):
        IntrinsicRewardTransform(make_intrinsic_reward(2, 3, 2), lambda_in=-1)
