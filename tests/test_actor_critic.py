"""IAC and Central-V baselines: advantages against hand TD(λ), and which parameters each term trains."""
from __future__ import annotations

import pytest
import torch
from conftest import N_ACTIONS, N_AGENTS, OBS_DIM, STATE_DIM, hand_td_lambda, random_batch

from torchrl_liir import MultiAgentActorCriticLoss, make_extrinsic_critic, make_mlp_policy, make_proxy_critic


@pytest.mark.parametrize("critic_kind", ["iac", "central_v"])
def test_policy_gradient_uses_the_critics_td_lambda_advantage(float64, critic_kind):
    torch.manual_seed(0)
    actor = make_mlp_policy(N_AGENTS, OBS_DIM, N_ACTIONS, num_cells=(16,), action_mask_key=("agents", "action_mask"))
    if critic_kind == "iac":
        critic = make_proxy_critic(OBS_DIM, N_AGENTS, num_cells=(16,), out_key=("agents", "state_value"))
    else:
        critic = make_extrinsic_critic(STATE_DIM, num_cells=(16,))
    loss = MultiAgentActorCriticLoss(actor, critic, N_AGENTS, gamma=0.9, lmbda=0.6)
    batch = random_batch(actor, seed=5, dead_agents=False)
    out = loss(batch)

    nxt = batch["next"]
    key = critic.out_keys[0]
    with torch.no_grad():
        value, next_value = critic(batch.copy())[key], critic(nxt.copy())[key]
    done, term = nxt["done"], nxt["terminated"]
    if critic_kind == "iac":
        done, term = done.unsqueeze(-2).expand_as(value), term.unsqueeze(-2).expand_as(value)
        reward = nxt["reward"].unsqueeze(-2).expand_as(value)
    else:
        reward = nxt["reward"]
    _, advantage = hand_td_lambda(reward, value, next_value, done, term, 0.9, 0.6)
    advantage = advantage[..., 0] if critic_kind == "iac" else advantage.expand(*advantage.shape[:2], N_AGENTS)
    w = batch["collector", "mask"].unsqueeze(-1).expand(-1, -1, N_AGENTS).double()
    data = batch.copy()
    data["agents", "action_mask"] = batch["agents", "action_mask"] | ~w.bool().unsqueeze(-1)
    log_prob = actor.get_dist(data).log_prob(batch["agents", "action"])
    expected = -(w * log_prob * advantage).sum() / w.sum()
    torch.testing.assert_close(out["loss_objective"], expected)

    critic_params = list(critic.parameters())
    assert all(g is None for g in torch.autograd.grad(out["loss_objective"], critic_params, allow_unused=True,
                                                      retain_graph=True))
    assert all(g is None for g in torch.autograd.grad(out["loss_critic"], list(actor.parameters()),
                                                      allow_unused=True))
