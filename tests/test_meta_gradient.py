"""The meta-gradient ∇η J_ex(θ') (eq. 7–9): fast == reference, and both == finite differences of a real step."""
from __future__ import annotations

import copy

import pytest
import torch
from conftest import N_ACTIONS, N_AGENTS, OBS_DIM, STATE_DIM, agent_end_flags, alive_r_in, hand_td_lambda, random_batch
from torchrl.modules import set_recurrent_mode

from torchrl_liir.modules import make_gru_policy, make_mlp_policy
from torchrl_liir.modules.critics import make_extrinsic_critic, make_proxy_critic
from torchrl_liir.modules.intrinsic_reward import make_intrinsic_reward
from torchrl_liir.objectives import InnerStep, LIIRLoss

GAMMA, LMBDA = 0.9, 0.7


def make_nets(policy: str, seed: int = 0, exploration_floor=None):
    torch.manual_seed(seed)
    mask = ("agents", "action_mask")
    if policy == "gru":
        actor = make_gru_policy(N_AGENTS, OBS_DIM, N_ACTIONS, hidden_size=8, action_mask_key=mask,
                                exploration_floor=exploration_floor)
    else:
        actor = make_mlp_policy(N_AGENTS, OBS_DIM, N_ACTIONS, num_cells=(16,), action_mask_key=mask,
                                exploration_floor=exploration_floor)
    intrinsic = make_intrinsic_reward(OBS_DIM, N_ACTIONS, N_AGENTS, num_cells=(16,), agent_id=True)
    proxy = make_proxy_critic(OBS_DIM, N_AGENTS, num_cells=(16,))
    extrinsic = make_extrinsic_critic(STATE_DIM, num_cells=(16,))
    return actor, intrinsic, proxy, extrinsic


def make_loss(nets, optimizer, max_grad_norm=None, **kwargs):
    loss = LIIRLoss(*nets, inner_step=InnerStep(optimizer, max_grad_norm), gamma=GAMMA, lmbda=LMBDA,
                    entropy_coeff=0.05, **kwargs)
    loss.set_keys(agent_mask=("agents", "alive"))
    return loss


def eta_grad(loss, batch):
    out = loss(batch)
    grads = torch.autograd.grad(out["loss_intrinsic"], list(loss.intrinsic_reward_network.parameters()))
    return torch.cat([g.flatten() for g in grads])


def warm_up(optimizer, params, steps=3):
    """Gives RMSprop and Adam non-trivial running averages, as mid-training."""
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer.step()


@pytest.mark.parametrize("policy", ["mlp", "gru"])
@pytest.mark.parametrize("opt", ["sgd", "rmsprop", "adam"])
@pytest.mark.parametrize("max_grad_norm", [None, 0.05])
@pytest.mark.parametrize("normalize_advantage", [False, True])
def test_fast_equals_reference(float64, policy, opt, max_grad_norm, normalize_advantage):
    nets = make_nets(policy)
    actor = nets[0]
    optimizer = {"sgd": lambda p: torch.optim.SGD(p, lr=0.3), "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01),
                 "adam": lambda p: torch.optim.Adam(p, lr=0.01)}[opt](actor.parameters())
    if opt != "sgd":  # Adam's momentum then drifts the step
        warm_up(optimizer, list(actor.parameters()))
    batch = random_batch(actor, seed=1)
    kwargs = {"normalize_advantage": normalize_advantage}
    fast = eta_grad(make_loss(nets, optimizer, max_grad_norm, meta_gradient="fast", **kwargs), batch)
    reference = eta_grad(make_loss(nets, optimizer, max_grad_norm, meta_gradient="reference", **kwargs), batch)
    assert reference.norm() > 0
    assert (fast - reference).norm() / reference.norm() <= 1e-5


def central_difference(params, objective, eps=1e-5):
    """``(objective(p + εd) − objective(p − εd)) / 2ε`` along a random direction ``d``; returns it and ``d``."""
    direction = [torch.randn_like(p) for p in params]

    def at(sign):
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(sign * eps * d)
        value = objective()
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.sub_(sign * eps * d)
        return value

    return (at(1) - at(-1)) / (2 * eps), torch.cat([d.flatten() for d in direction])


def assert_exact_meta_gradient(fast, reference, eta, objective_after_step):
    """``fast`` == ``reference`` (both ∇η of ``loss_intrinsic``), and ``−fast`` along a random direction == the
    finite difference of J_ex after a real policy step (``objective_after_step``) as η moves."""
    assert reference.norm() > 0
    assert (fast - reference).norm() / reference.norm() <= 1e-8
    finite_difference, direction = central_difference(eta, objective_after_step)
    analytic = -torch.dot(fast, direction)
    assert analytic.abs() > 1e-8
    assert torch.isclose(analytic, finite_difference, rtol=1e-5, atol=0)


def _masked_mean(x, w):
    return (w * x).sum() / w.sum()


def extrinsic_objective_after_real_step(nets, batch, lr, lambda_in, shape_r_in=None, outer_entropy_coeff=0.0):
    """J_ex(θ') with θ' from a real torch.optim.SGD step on a hand-written inner loss.

    Independent of LIIRLoss: the proxy/extrinsic TD(λ) advantages come from
    :func:`hand_td_lambda`, the policy step from the optimiser. ``shape_r_in(r_in, w)`` replaces the
    network's r_in of the taken actions before it enters the proxy reward (``w``: the valid entries);
    ``outer_entropy_coeff`` β adds β·(mean entropy of π_θ' over the valid entries).
    """
    actor, intrinsic, proxy, extrinsic = nets
    actor = copy.deepcopy(actor)
    nxt = batch["next"]
    w = (batch["collector", "mask"].unsqueeze(-1) & batch["agents", "alive"]).double()
    done, term = nxt["done"], nxt["terminated"]
    with torch.no_grad():
        v_p, nv_p = proxy(batch.copy())["agents", "proxy_value"], proxy(nxt.copy())["agents", "proxy_value"]
        v_x, nv_x = extrinsic(batch.copy())["state_value"], extrinsic(nxt.copy())["state_value"]
        r_in = intrinsic(batch.copy())["agents", "intrinsic_reward"]
        if shape_r_in is not None:
            r_in = shape_r_in(r_in, w)
    agents_done, agents_term = agent_end_flags(batch)
    r_proxy = nxt["reward"].unsqueeze(-2) + lambda_in * alive_r_in(batch, r_in)
    _, a_proxy = hand_td_lambda(r_proxy, v_p, nv_p, agents_done, agents_term, GAMMA, LMBDA)
    _, a_ex = hand_td_lambda(nxt["reward"], v_x, nv_x, done, term, GAMMA, LMBDA)

    data = batch.copy()
    padded = ~w.bool()
    data["agents", "action_mask"] = batch["agents", "action_mask"] | padded.unsqueeze(-1)
    action = batch["agents", "action"]

    def dist():
        with set_recurrent_mode(True):
            return actor.get_dist(data.copy())

    d = dist()
    lp_old = d.log_prob(action).detach()
    inner = -_masked_mean(d.log_prob(action) * a_proxy[..., 0], w) - 0.05 * _masked_mean(d.entropy(), w)
    optimizer = torch.optim.SGD(actor.parameters(), lr=lr)
    optimizer.zero_grad()
    inner.backward()
    optimizer.step()
    with torch.no_grad():
        d = dist()
        ratio = torch.exp(d.log_prob(action) - lp_old)
        return _masked_mean(ratio * a_ex.expand_as(ratio), w) + outer_entropy_coeff * _masked_mean(d.entropy(), w)


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_meta_gradient_matches_finite_differences_of_a_real_step(float64, policy):
    nets = make_nets(policy, seed=2)
    lr, lambda_in = 0.5, 1.0
    batch = random_batch(nets[0], seed=3)
    loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=lr), lambda_in=lambda_in)
    grad = -eta_grad(loss, batch)

    finite_difference, direction = central_difference(
        list(nets[1].parameters()), lambda: extrinsic_objective_after_real_step(nets, batch, lr, lambda_in))
    analytic = torch.dot(grad, direction)
    assert analytic.abs() > 1e-8
    assert torch.isclose(analytic, finite_difference, rtol=1e-5, atol=0)
