"""The policy update θ' = θ − S⊙∇θ L_in that the LIIR meta-gradient differentiates (eq. 6, 9)."""
from __future__ import annotations

from collections.abc import Sequence

import torch


class InnerStep:
    """Models the real policy optimiser step with its preconditioner held constant.

    The meta-gradient (eq. 7–9) differentiates through one policy step. For it
    to be exact, θ' must be the parameters the trainer actually reaches, so the
    step is built from the policy optimiser itself: ``θ' = θ − S⊙g`` with ``g``
    the policy gradient and a per-entry step size ``S`` treated as a constant:

    - ``torch.optim.SGD``: ``S = lr·c`` (paper: α = lr);
    - ``torch.optim.RMSprop``: ``S = lr·c / (sqrt(ρ·v + (1−ρ)·(c·g)²) + ε)``, the
      step it takes next with ``v`` its running square average;

    where ``c = min(1, max_grad_norm / (‖g‖ + 1e-6))`` is the factor of
    ``torch.nn.utils.clip_grad_norm_`` (``c = 1`` without clipping). The
    trainer must clip the policy gradient with the same ``max_grad_norm``.

    Args:
        optimizer: the policy optimiser (SGD without momentum/weight decay, or
            plain RMSprop).
        max_grad_norm: gradient-norm clip applied to the policy, or ``None``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_grad_norm: float | None = None) -> None:
        if isinstance(optimizer, torch.optim.SGD):
            bad = {k: g[k] for g in optimizer.param_groups for k in ("momentum", "weight_decay", "maximize") if g[k]}
        elif isinstance(optimizer, torch.optim.RMSprop):
            bad = {k: g[k] for g in optimizer.param_groups
                   for k in ("momentum", "weight_decay", "centered", "maximize") if g[k]}
        else:
            raise ValueError(
                f"policy optimiser must be SGD or RMSprop for an exact meta-gradient, got {type(optimizer).__name__}"
            )
        if bad:
            raise ValueError(f"policy optimiser options {bad} are not modelled by the meta-gradient; use 0/False")
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive, got max_grad_norm={max_grad_norm}")
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
        self._group_of = {p: g for g in optimizer.param_groups for p in g["params"]}

    def clip_factor(self, grads: Sequence[torch.Tensor]) -> torch.Tensor:
        """``clip_grad_norm_``'s scale factor for these gradients."""
        one = torch.ones((), dtype=grads[0].dtype, device=grads[0].device)
        if self.max_grad_norm is None:
            return one
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        return torch.clamp(self.max_grad_norm / (norm + 1e-6), max=1.0)

    @torch.no_grad()
    def step_sizes(self, params: Sequence[torch.nn.Parameter], grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-entry step sizes ``S`` (constants) for ``params`` with gradients ``grads``."""
        clip = self.clip_factor(grads)
        sizes = []
        for p, g in zip(params, grads):
            group = self._group_of.get(p)
            if group is None:
                raise ValueError("a policy parameter is missing from the policy optimiser")
            if isinstance(self.optimizer, torch.optim.SGD):
                sizes.append(group["lr"] * clip.expand_as(g))
                continue
            rho, eps = group["alpha"], group["eps"]
            square_avg = self.optimizer.state.get(p, {}).get("square_avg", torch.zeros_like(g))
            denom = (rho * square_avg + (1 - rho) * (clip * g) ** 2).sqrt() + eps
            sizes.append(group["lr"] * clip / denom)
        return sizes

    @property
    def learning_rate(self) -> float:
        """The policy learning rate α (first parameter group)."""
        return self.optimizer.param_groups[0]["lr"]
