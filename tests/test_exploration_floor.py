"""The authors' code's exploration floor π' = (1 − ε)·π + ε·uniform(available) and its ε schedule."""
from __future__ import annotations

import math

import pytest
import torch
from conftest import N_ACTIONS, N_AGENTS, OBS_DIM, random_batch
from tensordict import TensorDict
from test_meta_gradient import (
    assert_exact_meta_gradient,
    eta_grad,
    extrinsic_objective_after_real_step,
    make_loss,
    make_nets,
)
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_liir.modules import make_mlp_policy
from torchrl_liir.modules.exploration_floor import ExplorationFloor, linear_epsilon

MASK_KEY = ("agents", "action_mask")


def test_mixture_by_hand():
    # softmax over the two available actions: [1/3, 2/3]; uniform over them: [1/2, 1/2]; ε = 0.5.
    logits = torch.tensor([[0.0, math.log(2.0), 5.0]])
    mask = torch.tensor([[True, True, False]])
    probs = ExplorationFloor(0.5)(logits, mask).exp()
    torch.testing.assert_close(probs, torch.tensor([[5 / 12, 7 / 12, 0.0]]))
    # no mask: uniform over all three actions
    softmax = torch.softmax(logits, -1)
    torch.testing.assert_close(ExplorationFloor(0.2)(logits).exp(), 0.8 * softmax + 0.2 / 3)
    torch.testing.assert_close(ExplorationFloor(0.0)(logits, mask).exp()[:, :2], torch.tensor([[1 / 3, 2 / 3]]))


def test_gradient_is_finite_through_unavailable_actions():
    logits = torch.randn(4, 5, requires_grad=True)
    mask = torch.rand(4, 5) > 0.4
    mask[:, 0] = True
    log_probs = ExplorationFloor(0.3)(logits, mask)
    (log_probs.masked_fill(~mask, 0.0) * torch.randn(4, 5)).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def _obs_batch(seed=0):
    torch.manual_seed(seed)
    mask = torch.rand(32, N_AGENTS, N_ACTIONS) > 0.5
    mask[..., 0] = True
    return TensorDict({"agents": TensorDict({"observation": torch.randn(32, N_AGENTS, OBS_DIM), "action_mask": mask},
                                            [32, N_AGENTS])}, [32])


def test_greedy_actions_unchanged_and_sampled_ones_available():
    torch.manual_seed(0)
    plain = make_mlp_policy(N_AGENTS, OBS_DIM, N_ACTIONS, num_cells=(16,), action_mask_key=MASK_KEY)
    floored = make_mlp_policy(N_AGENTS, OBS_DIM, N_ACTIONS, num_cells=(16,), action_mask_key=MASK_KEY,
                              exploration_floor=ExplorationFloor(0.9))
    with torch.no_grad():
        for mine, theirs in zip(floored.parameters(), plain.parameters(), strict=True):
            mine.copy_(theirs)
    td = _obs_batch()
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        assert torch.equal(plain(td.clone())["agents", "action"], floored(td.clone())["agents", "action"])
    sampled = floored(td.clone())["agents", "action"]
    assert td["agents", "action_mask"].gather(-1, sampled.unsqueeze(-1)).all()


def test_linear_schedule_as_pymarl():
    assert linear_epsilon(0, 0.5, 0.01, 50_000) == 0.5
    assert linear_epsilon(25_000, 0.5, 0.01, 50_000) == pytest.approx(0.255)
    assert linear_epsilon(50_000, 0.5, 0.01, 50_000) == pytest.approx(0.01)
    assert linear_epsilon(10**7, 0.5, 0.01, 50_000) == pytest.approx(0.01)
    assert linear_epsilon(5, 0.5, 0.01, 0) == 0.01


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_meta_gradient_exact_through_the_floor(float64, policy):
    """fast == reference == finite differences of a real SGD step, with the floored policy in the inner loss,
    the importance ratio and the hand-written reference alike."""
    nets = make_nets(policy, seed=2, exploration_floor=ExplorationFloor(0.3))
    lr, lambda_in = 0.5, 1.0
    batch = random_batch(nets[0], seed=3)
    optimizer = torch.optim.SGD(nets[0].parameters(), lr=lr)
    fast = eta_grad(make_loss(nets, optimizer, lambda_in=lambda_in, meta_gradient="fast"), batch)
    reference = eta_grad(make_loss(nets, optimizer, lambda_in=lambda_in, meta_gradient="reference"), batch)
    assert_exact_meta_gradient(fast, reference, list(nets[1].parameters()),
                               lambda: extrinsic_objective_after_real_step(nets, batch, lr, lambda_in))
