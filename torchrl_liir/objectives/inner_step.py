"""The policy update θ' = θ − S⊙∇θ L_in − d that the LIIR meta-gradient differentiates (eq. 6, 9)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

# Options of each optimiser whose effect on the step is not modelled (each must be 0 / False).
_UNMODELLED = {
    torch.optim.SGD: ("momentum", "weight_decay", "maximize"),
    torch.optim.RMSprop: ("momentum", "weight_decay", "centered", "maximize"),
    torch.optim.Adam: ("weight_decay", "amsgrad", "maximize"),
}


class InnerStep:
    """Models the real policy optimiser step with its preconditioner held constant.

    The meta-gradient (eq. 7–9) differentiates through one policy step. For it to be exact, θ' must be the
    parameters the optimiser actually reaches, so the step is built from the policy optimiser itself:
    ``θ' = θ − S⊙g − d`` (the paper's θ' of eq. 6, whose η-derivative is eq. 9) with ``g`` the policy gradient, a
    per-entry step size ``S`` and a drift ``d`` that does not depend on ``g``, both treated as constants:

    - ``torch.optim.SGD``: ``S = lr·c``, ``d = 0`` (paper: α = lr);
    - ``torch.optim.RMSprop``: ``S = lr·c / (sqrt(ρ·v + (1−ρ)·(c·g)²) + ε)``, ``d = 0``, with ``v`` its
      running square average;
    - ``torch.optim.Adam``: with ``D = sqrt((β₂·v + (1−β₂)·(c·g)²) / b₂) + ε`` and the bias corrections
      ``b₁ = 1 − β₁ᵗ``, ``b₂ = 1 − β₂ᵗ`` of its next step ``t``: ``S = lr·(1−β₁)·c / (b₁·D)`` and the momentum
      ``d = lr·β₁·m / (b₁·D)``;

    where ``c = min(1, max_grad_norm / (‖g‖ + 1e-6))`` is the factor of ``torch.nn.utils.clip_grad_norm_``
    over the policy's parameters (``c = 1`` without clipping). The optimiser may hold other parameters too
    (one optimiser over ``loss.parameters()``): each entry's step is its own.

    At ``optimizer.step()`` the policy's gradient is checked against the one modelled by the loss's last call:
    the policy's clip is applied here when it has not been, and a different gradient (a clip over more than the
    policy's parameters, gradients accumulated over two loss calls, another loss term on the policy) is refused
    in one line, since the meta-gradient would then model a step that is not the one taken.

    Args:
        optimizer: the policy optimiser (SGD without momentum, RMSprop without momentum or centring, Adam
            without amsgrad; no weight decay).
        max_grad_norm: gradient-norm clip of the policy's parameters, or ``None``.

    Examples:
        >>> import torch
        >>> from torchrl_liir import InnerStep
        >>> policy = torch.nn.Linear(4, 2)
        >>> inner_step = InnerStep(torch.optim.RMSprop(policy.parameters(), lr=5e-4, alpha=0.99, eps=1e-5),
        ...                        max_grad_norm=10.0)
        >>> grads = [torch.ones_like(p) for p in policy.parameters()]
        >>> sizes, drifts = inner_step.model(list(policy.parameters()), grads)  # θ' = θ − S⊙g − d
        >>> [tuple(s.shape) for s in sizes], [d is None for d in drifts]  # RMSprop: a step size per entry, no drift
        ([(2, 4), (2,)], [True, True])
        >>> inner_step.learning_rate
        0.0005
        >>> adam = InnerStep(torch.optim.Adam(policy.parameters(), lr=1e-3))
        >>> [d is None for d in adam.model(list(policy.parameters()), grads)[1]]  # Adam: its momentum drifts
        [False, False]
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_grad_norm: float | None = None) -> None:
        kind = next((k for k in _UNMODELLED if type(optimizer) is k), None)
        if kind is None:
            raise ValueError(f"policy optimiser must be SGD, RMSprop or Adam for an exact meta-gradient, got "
                             f"{type(optimizer).__name__}: give the policy's parameters one of these")
        bad = {k: g[k] for g in optimizer.param_groups for k in _UNMODELLED[kind] if g.get(k)}
        if bad:
            raise ValueError(f"policy optimiser options {bad} are not modelled by the meta-gradient; use 0/False")
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive, got max_grad_norm={max_grad_norm}")
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
        self._group_of = {p: g for g in optimizer.param_groups for p in g["params"]}
        self._modelled: tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor] | None = None
        optimizer.register_step_pre_hook(self._check_step)

    def clip_factor(self, grads: Sequence[torch.Tensor]) -> torch.Tensor:
        """``clip_grad_norm_``'s scale factor for these gradients."""
        if self.max_grad_norm is None:
            return torch.ones((), dtype=grads[0].dtype, device=grads[0].device)
        return torch.clamp(self.max_grad_norm / (torch.nn.utils.get_total_norm(grads) + 1e-6), max=1.0)

    def check_params(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Refuses, in one line, policy parameters the optimiser does not step."""
        if any(p not in self._group_of for p in params):
            raise ValueError("a policy parameter is missing from the policy optimiser: build the optimiser over "
                             "the actor's parameters (or over loss.parameters())")

    @torch.no_grad()
    def model(
        self, params: Sequence[torch.nn.Parameter], grads: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Per-entry step sizes ``S`` and drifts ``d`` (``None``: none), constants, of the step from ``params``
        along ``grads``; the next ``optimizer.step()`` is checked against this gradient."""
        self.check_params(params)
        clip = self.clip_factor(grads)
        self._modelled = (list(params), [g.detach() for g in grads], clip)
        sizes, drifts = [], []
        for p, g in zip(params, grads):
            group, state = self._group_of[p], self.optimizer.state.get(p, {})
            lr = float(group["lr"])
            if isinstance(self.optimizer, torch.optim.SGD):
                sizes.append(lr * clip.expand_as(g))
                drifts.append(None)
            elif isinstance(self.optimizer, torch.optim.RMSprop):
                rho, eps = group["alpha"], group["eps"]
                square_avg = state.get("square_avg", torch.zeros_like(g))
                sizes.append(lr * clip / ((rho * square_avg + (1 - rho) * (clip * g) ** 2).sqrt() + eps))
                drifts.append(None)
            else:
                (beta1, beta2), eps = group["betas"], group["eps"]
                t = float(state.get("step", 0)) + 1
                exp_avg = state.get("exp_avg", torch.zeros_like(g))
                exp_avg_sq = state.get("exp_avg_sq", torch.zeros_like(g))
                denom = ((beta2 * exp_avg_sq + (1 - beta2) * (clip * g) ** 2).sqrt() / math.sqrt(1 - beta2**t)) + eps
                scale = lr / ((1 - beta1**t) * denom)
                sizes.append(scale * (1 - beta1) * clip)
                drifts.append(scale * beta1 * exp_avg)
        return sizes, drifts

    @torch.no_grad()
    def _check_step(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        """Step pre-hook: the policy's gradient must be the modelled one; applies the policy's clip if needed."""
        if self._modelled is None:
            return
        params, grads, clip = self._modelled
        self._modelled = None
        actual = [p.grad for p in params]
        if any(g is None for g in actual):
            raise RuntimeError("InnerStep: a policy parameter has no gradient at optimizer.step(); call backward() "
                               "on the sum of the loss's terms (loss_objective carries the policy's gradient)")
        norm = torch.nn.utils.get_total_norm
        raw = norm(grads)
        # One host read for all of them: the gradient's norm, its distances to the clipped and unclipped modelled
        # gradients, and the clip factor.
        actual_norm, to_clipped, to_raw, modelled_raw, factor = torch.stack([
            norm(actual), norm(torch._foreach_sub(actual, torch._foreach_mul(grads, clip))),
            norm(torch._foreach_sub(actual, grads)), raw, clip.to(raw.dtype)]).tolist()
        tolerance = 1e-5 * factor * modelled_raw + 1e-12
        if to_clipped <= tolerance:
            return
        if factor < 1 and to_raw <= tolerance / factor:
            torch._foreach_mul_(actual, clip)  # the policy's own clip, not applied yet
            return
        raise RuntimeError(
            f"InnerStep: the policy's gradient at optimizer.step() (norm {actual_norm:.4g}) is not the one the "
            f"meta-gradient modelled (norm {factor * modelled_raw:.4g}, clipped to "
            f"max_grad_norm={self.max_grad_norm}): "
            "leave the policy's clip to InnerStep and clip only other parameters (a clip over all of "
            "loss.parameters() changes the policy's step), zero the gradients before each backward, and step once "
            "per loss call"
        )

    @property
    def learning_rate(self) -> float:
        """The policy learning rate α (first parameter group)."""
        return float(self.optimizer.param_groups[0]["lr"])
