"""InnerStep: the θ' the meta-gradient models is the θ the real optimiser step reaches, and a step that is not
the modelled one is refused."""
from __future__ import annotations

import pytest
import torch

from torchrl_liir.objectives import InnerStep


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _optimizer(opt, params):
    if opt == "sgd":
        return torch.optim.SGD(params, lr=0.3)
    if opt == "rmsprop":
        return torch.optim.RMSprop(params, lr=0.01, alpha=0.9, eps=1e-5)
    return torch.optim.Adam(params, lr=0.01, betas=(0.8, 0.95), eps=1e-6)


@pytest.mark.parametrize("opt", ["sgd", "rmsprop", "adam"])
@pytest.mark.parametrize("max_grad_norm", [None, 0.1])
@pytest.mark.parametrize("warm_steps", [0, 3])
def test_modelled_step_equals_real_step(float64, opt, max_grad_norm, warm_steps):
    net = _net()
    optimizer = _optimizer(opt, net.parameters())
    x = torch.randn(16, 3)
    for _ in range(warm_steps):  # running averages and Adam's momentum, as mid-training
        optimizer.zero_grad()
        net(x).pow(2).sum().backward()
        optimizer.step()
    params = list(net.parameters())
    optimizer.zero_grad()
    net(x).sin().sum().backward()
    grads = [p.grad.clone() for p in params]
    sizes, drifts = InnerStep(optimizer, max_grad_norm).model(params, grads)
    modelled = [p.detach() - s * g - (0 if d is None else d) for p, s, g, d in zip(params, sizes, grads, drifts)]
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    for p, m in zip(params, modelled):
        torch.testing.assert_close(p.detach(), m, rtol=1e-12, atol=1e-12)
    assert any(d is not None and d.abs().max() > 0 for d in drifts) == (opt == "adam" and warm_steps > 0)


def test_a_joint_optimiser_steps_the_policy_as_modelled(float64):
    """One optimiser over the policy and another network: the policy's entries take the modelled step."""
    net, other = _net(), torch.nn.Linear(2, 2)
    optimizer = torch.optim.RMSprop([*net.parameters(), *other.parameters()], lr=0.01)
    params = list(net.parameters())
    (net(torch.randn(4, 3)).sum() + other(torch.randn(4, 2)).pow(2).sum()).backward()
    grads = [p.grad.clone() for p in params]
    sizes, _ = InnerStep(optimizer, max_grad_norm=0.1).model(params, grads)
    modelled = [p.detach() - s * g for p, s, g in zip(params, sizes, grads)]
    optimizer.step()  # the policy's clip is applied at the step
    for p, m in zip(params, modelled):
        torch.testing.assert_close(p.detach(), m, rtol=1e-12, atol=1e-12)


def _modelled_step(clip_with):
    net, other = _net(), torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD([*net.parameters(), *other.parameters()], lr=0.1)
    params = list(net.parameters())
    (net(torch.randn(4, 3)).sum() * 10 + other(torch.randn(4, 2)).pow(2).sum() * 10).backward()
    inner_step = InnerStep(optimizer, max_grad_norm=0.5)
    inner_step.model(params, [p.grad.clone() for p in params])
    clip_with(net, other)
    return optimizer


def test_the_policy_clip_applied_by_hand_or_left_to_inner_step_is_the_same():
    by_hand = _modelled_step(lambda net, other: torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5))
    left = _modelled_step(lambda net, other: None)
    by_hand.step()
    left.step()
    for a, b in zip(by_hand.param_groups[0]["params"], left.param_groups[0]["params"]):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("change", ["joint clip", "accumulated", "no backward"])
def test_a_step_other_than_the_modelled_one_is_refused(change):
    def clip_with(net, other):
        if change == "joint clip":
            torch.nn.utils.clip_grad_norm_([*net.parameters(), *other.parameters()], 0.5)
        elif change == "accumulated":
            for p in net.parameters():
                p.grad.mul_(2)
        else:
            for p in net.parameters():
                p.grad = None

    optimizer = _modelled_step(clip_with)
    match = "has no gradient" if change == "no backward" else "is not the one the meta-gradient modelled"
    with pytest.raises(RuntimeError, match=match):
        optimizer.step()


@pytest.mark.parametrize("make, match", [
    (lambda p: torch.optim.AdamW(p), "SGD, RMSprop or Adam"),
    (lambda p: torch.optim.Adam(p, amsgrad=True), "amsgrad"),
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), "momentum"),
    (lambda p: torch.optim.RMSprop(p, centered=True), "centered"),
])
def test_unmodelled_optimisers_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        InnerStep(make(_net().parameters()))


def test_bad_max_grad_norm():
    with pytest.raises(ValueError, match="max_grad_norm=0"):
        InnerStep(torch.optim.SGD(_net().parameters(), lr=0.1), max_grad_norm=0)
