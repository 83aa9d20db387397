"""The LIIR meta-gradient ∇η J_ex(θ'(η)) (paper eq. 7–9, Algorithm 1 steps 4–6).

Notation: a batch of M valid (time, agent) entries with weights ``w``;
``lp(θ)`` the log-probabilities of the taken actions; ``A_p(η)`` the proxy
advantage (linear in r_in, so differentiable in η); ``A_ex`` the extrinsic
advantage (a constant); ``S`` and ``d`` the constant step sizes and drift (Adam's momentum) of
:class:`InnerStep`.

- inner step (eq. 6): ``θ' = θ − S⊙∇θ L_in − d``, ``L_in = −(1/M) Σ w·lp(θ)·A_p(η) + L_ent(θ)``;
- outer objective reusing the batch (Algorithm 1, step 5):
  ``J_ex(θ') = (1/M) Σ w·[π_θ'(u)/π_θ(u)]·A_ex``, the denominator held constant (any differentiable function
  of θ' may stand in its place, e.g. ``J_ex(θ') + β·H(π_θ')``);
- chain rule (eq. 7, 9): ``∇η J_ex = (1/M) Σ w·c·∇η A_p`` with
  ``c = ⟨∇θ lp(θ), S⊙∇θ' J_ex(θ')⟩``.

:func:`meta_loss_reference` backpropagates through the inner step
(second-order graph); :func:`meta_loss_fast` gets every ``c`` from one
forward-mode JVP (dual tensors, :func:`jvp`) and builds no second-order graph.
Their η-gradients agree.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch.autograd import forward_ad

from torchrl_liir.objectives.common import masked_mean

Params = dict[str, torch.Tensor]
LogProbFn = Callable[[Params], torch.Tensor]
ObjectiveFn = Callable[[Params], torch.Tensor]


def _step(params: Params, step_sizes: Params, grads: Params, drifts: Params) -> Params:
    """``θ − S⊙g − d`` (``drifts`` holds the entries with a drift)."""
    stepped = {k: params[k] - step_sizes[k] * grads[k] for k in params}
    return {k: stepped[k] - drifts[k] if k in drifts else stepped[k] for k in params}


def importance_sampled_objective(
    new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantage: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``J_ex(θ') = Σ w·exp(lp' − lp)·A_ex / Σ w`` per (time, agent) entry (Algorithm 1, step 5)."""
    return masked_mean(torch.exp(new_log_prob - old_log_prob.detach()) * advantage, weights)


def joint_importance_sampled_objective(
    new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantage: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Released-code variant: one ratio per time step, the product over valid agents."""
    log_ratio = (weights * (new_log_prob - old_log_prob.detach())).sum(-1)
    step_weights = (weights.sum(-1) > 0).to(weights.dtype)
    return masked_mean(torch.exp(log_ratio) * advantage[..., 0], step_weights)


def outer_gradient(objective: ObjectiveFn, new_params: Params) -> tuple[torch.Tensor, Params]:
    """``J(θ')`` and ``g' = ∇θ' J(θ')`` of the outer objective by one ordinary backward at θ'."""
    new_params = {k: p.detach().requires_grad_() for k, p in new_params.items()}
    with torch.enable_grad():
        value = objective(new_params)
        grads = torch.autograd.grad(value, list(new_params.values()), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(new_params.values(), grads)]
    return value.detach(), dict(zip(new_params, grads))


def jvp(fn: LogProbFn, params: Params, tangents: Params) -> torch.Tensor:
    """``⟨∇θ fn(θ), t⟩`` for every output entry of ``fn`` at ``params``: one forward pass with dual tensors.

    Builds no autograd graph (``fn`` runs under ``torch.no_grad``).
    """
    with torch.no_grad(), forward_ad.dual_level():
        primal, tangent = forward_ad.unpack_dual(
            fn({k: forward_ad.make_dual(p.detach(), tangents[k]) for k, p in params.items()})
        )
    return torch.zeros_like(primal) if tangent is None else tangent


def meta_loss_fast(
    log_prob_fn: LogProbFn,
    params: Params,
    inner_grads: Params,
    step_sizes: Params,
    drifts: Params,
    outer_objective: ObjectiveFn,
    proxy_advantage: torch.Tensor,
    weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Surrogate ``−(1/M) Σ w·c·A_p(η)`` whose η-gradient is ``−∇η J(θ')``; also returns ``J(θ')``.

    ``J`` is ``outer_objective`` (``J_ex`` of eq. 8: :func:`importance_sampled_objective` of ``log_prob_fn``);
    ``c`` comes from one JVP of ``lp(θ)`` along ``S⊙g'``.
    """
    params = {k: p.detach() for k, p in params.items()}
    objective, outer_grads = outer_gradient(outer_objective, _step(params, step_sizes, inner_grads, drifts))
    c = jvp(log_prob_fn, params, {k: step_sizes[k] * outer_grads[k] for k in params})
    return -masked_mean(c * proxy_advantage, weights), objective


def meta_loss_reference(
    params: Params,
    inner_loss_fn: Callable[[Params], torch.Tensor],
    step_sizes: Params,
    drifts: Params,
    outer_objective: ObjectiveFn,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``−J(θ'(η))`` with θ' built differentiably (``create_graph=True``); also returns ``J(θ')``.

    ``inner_loss_fn(θ)`` is ``L_in(θ, η)``, differentiable in both; ``J`` is ``outer_objective``.
    """
    params = {k: p.detach().requires_grad_() for k, p in params.items()}
    grads = torch.autograd.grad(inner_loss_fn(params), list(params.values()), create_graph=True)
    objective = outer_objective(_step(params, step_sizes, dict(zip(params, grads)), drifts))
    return -objective, objective.detach()


def meta_loss_released_code(
    log_prob_fn: LogProbFn,
    params: Params,
    inner_grads: Params,
    step_sizes: Params,
    drifts: Params,
    learning_rate: float,
    old_log_prob: torch.Tensor,
    extrinsic_advantage: torch.Tensor,
    proxy_return: torch.Tensor,
    weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' released code: ``+ĝ·mean(G_p(η))`` with one scalar ``ĝ``; also returns ``J_ex(θ')``.

    ``ĝ = ⟨∇θ mean lp(θ), (S/α)⊙∇θ' J_joint(θ')⟩``: no advantage in the first
    factor, α dropped, the importance ratio joint over agents, and ``G_p`` the
    proxy λ-return. Kept for comparison (docs/guide/meta_gradient.md); it is
    not a gradient of ``J_ex``.
    """
    params = {k: p.detach() for k, p in params.items()}
    objective, outer_grads = outer_gradient(
        lambda theta: joint_importance_sampled_objective(log_prob_fn(theta), old_log_prob, extrinsic_advantage,
                                                         weights),
        _step(params, step_sizes, inner_grads, drifts),
    )
    direction = {k: step_sizes[k] * outer_grads[k] / learning_rate for k in params}
    g_hat = masked_mean(jvp(log_prob_fn, params, direction), weights)
    return g_hat * masked_mean(proxy_return, weights), objective
