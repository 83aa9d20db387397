"""InnerStep: the θ' the meta-gradient models is the θ the real optimiser step reaches."""
from __future__ import annotations

import pytest
import torch

from torchrl_liir.objectives import InnerStep


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


@pytest.mark.parametrize("opt", ["sgd", "rmsprop"])
@pytest.mark.parametrize("max_grad_norm", [None, 0.1])
def test_modelled_step_equals_real_step(float64, opt, max_grad_norm):
    net = _net()
    optimizer = (torch.optim.SGD(net.parameters(), lr=0.3) if opt == "sgd"
                 else torch.optim.RMSprop(net.parameters(), lr=0.01, alpha=0.9, eps=1e-5))
    x = torch.randn(16, 3)
    for _ in range(3):
        optimizer.zero_grad()
        net(x).pow(2).sum().backward()
        optimizer.step()
    params = list(net.parameters())
    optimizer.zero_grad()
    net(x).sin().sum().backward()
    grads = [p.grad.clone() for p in params]
    sizes = InnerStep(optimizer, max_grad_norm).step_sizes(params, grads)
    modelled = [p.detach() - s * g for p, s, g in zip(params, sizes, grads)]
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    for p, m in zip(params, modelled):
        torch.testing.assert_close(p.detach(), m, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, match", [
    (lambda p: torch.optim.Adam(p), "SGD or RMSprop"),
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), "momentum"),
    (lambda p: torch.optim.RMSprop(p, centered=True), "centered"),
])
def test_unmodelled_optimisers_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        InnerStep(make(_net().parameters()))


def test_bad_max_grad_norm():
    with pytest.raises(ValueError, match="max_grad_norm=0"):
        InnerStep(torch.optim.SGD(_net().parameters(), lr=0.1), max_grad_norm=0)
