"""
The meta-gradient, checked against a real policy step
=====================================================

LIIR's intrinsic reward r_in_η never enters the team's return directly. It enters the proxy reward
r_ex + λ·r_in that the policy is trained on, so it changes what the policy learns, and only through that does it
change how well the team does. η is trained to make that change a good one, by a meta-gradient (paper, eq. 7–9).
This tutorial says what that gradient is, and then checks ``LIIRLoss``'s η-gradient numerically against a real
policy step taken with ``torch.optim.SGD``.
"""

# %%
# The inner step and the chain through θ′
# ---------------------------------------
#
# On one batch of M valid (time, agent) entries, with lp = log π_θ(u|τ):
#
# 1. **The inner step** (eq. 6). The policy ascends its proxy objective
#    J_proxy(θ) = (1/M) Σ lp·A_p(η) + β·H(π_θ), where A_p(η) is the proxy advantage, computed by TD(λ) from
#    r_ex + λ·r_in_η. With SGD of learning rate α it lands on
#
#    θ′ = θ + α·∇θ J_proxy(θ).
#
#    θ′ is a function of η: A_p(η) weighs each taken action's score ∇θ lp, so an action that r_in rewards
#    becomes more likely after the step.
#
# 2. **The outer objective** (Algorithm 1, step 5). How good θ′ is for the team, measured on the same batch by
#    importance weighting with the extrinsic advantage A_ex (which does not depend on η):
#
#    J_ex(θ′) = (1/M) Σ π_θ′(u)/π_θ(u) · A_ex.
#
# 3. **The chain rule** (eq. 7, 9). J_ex depends on η only through θ′, so
#
#    ∇η J_ex(θ′) = (∂θ′/∂η)ᵀ · ∇θ′ J_ex(θ′),   with ∂θ′/∂η = (α/M) Σ ∇θ lp · ∇η A_pᵀ.
#
#    Put together: ∇η J_ex = (1/M) Σ c·∇η A_p(η), with c = α·⟨∇θ lp, ∇θ′ J_ex(θ′)⟩ per entry. An entry whose
#    score direction ∇θ lp points where the team's objective grows gets its proxy advantage pushed up, through
#    r_in at that step and the steps after it.
#
# Without the chain through θ′ there is no gradient at all: J_ex evaluated at the current θ does not depend on
# η. ``LIIRLoss`` returns the η-term as ``loss_intrinsic``, whose η-gradient is -∇η J_ex(θ′). By default
# (``meta_gradient="fast"``) it computes ∇θ′ J_ex by one backward and every c by one forward-mode
# Jacobian-vector product; ``meta_gradient="reference"`` builds θ′ with a differentiable graph and
# backpropagates through it. With RMSprop or Adam, α becomes the optimiser's per-entry step (``InnerStep``),
# its running averages held constant.
#
# A numerical check
# -----------------
#
# If that gradient is right, it must equal a finite difference of the real thing: perturb η by ±ε·d, take a
# real SGD step of the policy on its proxy objective, measure J_ex after the step, and divide the difference by
# 2ε. Everything runs in float64 so that the finite difference is accurate. The batch is one batch of 1D
# Pursuit, collected with a random policy.

import copy

import matplotlib.pyplot as plt
import torch

from torchrl_liir import (
    EpisodeCollector,
    InnerStep,
    LIIRLoss,
    PursuitEnv,
    make_extrinsic_critic,
    make_intrinsic_reward,
    make_mlp_policy,
    make_proxy_critic,
)
from torchrl_liir.runtime import configure_runtime

configure_runtime(threads=1, jax_cache_dir=None)
torch.manual_seed(0)

env = PursuitEnv(num_envs=16, seed=0)
n_agents, n_actions, obs_dim, state_dim = env.n_agents, env.n_actions, 2, 2
actor = make_mlp_policy(n_agents, obs_dim, n_actions, num_cells=[16], action_mask_key=("agents", "action_mask"))
intrinsic = make_intrinsic_reward(obs_dim, n_actions, n_agents, num_cells=[16])
proxy_critic = make_proxy_critic(obs_dim, n_agents, num_cells=[16], state_dim=state_dim)
extrinsic_critic = make_extrinsic_critic(state_dim, num_cells=[16])

collector = EpisodeCollector(env, actor)
batch = next(iter(collector))
collector.shutdown()

# float64 networks and batch, for an accurate finite difference.
for network in (actor, intrinsic, proxy_critic, extrinsic_critic):
    network.double()
batch = batch.apply(lambda x: x.double() if x.is_floating_point() else x)
print("batch:", batch.batch_size, "valid steps:", int(batch["collector", "mask"].sum()))

# %%
# ``LIIRLoss``'s gradient
# -----------------------
#
# The loss's inner step is SGD with α = 0.5, and λ = 1, so that r_in (within ±1) dominates the proxy reward
# (Pursuit's reward is ±0.01 per step) and its effect on the step is large enough to see. ``grad_eta`` is
# ∇η J_ex(θ′), from the loss; ``fast`` and ``reference`` agree to rounding.

alpha, lambda_in, beta = 0.5, 1.0, 0.01
eta = list(intrinsic.parameters())


def make_loss(policy, optimizer, meta_gradient="fast"):
    return LIIRLoss(policy, intrinsic, proxy_critic, extrinsic_critic, inner_step=InnerStep(optimizer),
                    lambda_in=lambda_in, entropy_coeff=beta, meta_gradient=meta_gradient)


def loss_eta_gradient(meta_gradient):
    loss = make_loss(actor, torch.optim.SGD(actor.parameters(), lr=alpha), meta_gradient)
    terms = loss(batch)
    grads = torch.autograd.grad(terms["loss_intrinsic"], eta)
    return -torch.cat([g.flatten() for g in grads]), terms["meta_objective"].item()


grad_eta, meta_objective = loss_eta_gradient("fast")
grad_reference, _ = loss_eta_gradient("reference")
print(f"‖∇η J_ex‖ = {grad_eta.norm():.4e}, fast vs reference: relative difference "
      f"{(grad_eta - grad_reference).norm() / grad_reference.norm():.1e}")

# %%
# The real step, written out
# --------------------------
#
# ``objective_after_real_step`` does what a trainer does, independently of the loss's meta-gradient code: it
# writes the proxy objective by hand from the proxy advantages (``loss.value_estimator`` fills them in, from
# the current η), backpropagates it through a copy of the policy, takes one ``torch.optim.SGD`` step, and
# evaluates J_ex at the parameters the optimiser reached.

valid = batch["collector", "mask"].unsqueeze(-1).expand(*batch.batch_size, n_agents).double()
action = batch["agents", "action"]


def masked_mean(x):
    return (valid * x).sum() / valid.sum()


def objective_after_real_step():
    """J_ex(θ′) after one real SGD step of a copy of the policy on its proxy objective at the current η."""
    with torch.no_grad():
        estimates = make_loss(actor, torch.optim.SGD(actor.parameters(), lr=alpha)).value_estimator(batch.clone())
    proxy_advantage = estimates["agents", "proxy_advantage"][..., 0]
    extrinsic_advantage = estimates["advantage"].expand_as(proxy_advantage)

    student = copy.deepcopy(actor)
    dist = student.get_dist(batch.clone())
    old_log_prob = dist.log_prob(action).detach()
    proxy_objective = masked_mean(dist.log_prob(action) * proxy_advantage) + beta * masked_mean(dist.entropy())
    optimizer = torch.optim.SGD(student.parameters(), lr=alpha)
    (-proxy_objective).backward()
    optimizer.step()  # θ′ = θ + α·∇θ J_proxy(θ)
    with torch.no_grad():
        ratio = torch.exp(student.get_dist(batch.clone()).log_prob(action) - old_log_prob)
        return masked_mean(ratio * extrinsic_advantage).item()


@torch.no_grad()
def shift_eta(direction, size):
    for p, d in zip(eta, direction):
        p.add_(size * d)


print(f"J_ex after the real step: {objective_after_real_step():+.10f}")
print(f"J_ex the loss models:     {meta_objective:+.10f}")

# %%
# With SGD the step the loss models is the step the optimiser takes, so the two values above agree. Now the
# derivative along a random unit direction d in η's parameter space: the central difference
# [J_ex(θ′(η + ε·d)) - J_ex(θ′(η - ε·d))] / 2ε over a range of ε, against ⟨∇η J_ex, d⟩ from the loss.

generator = torch.Generator().manual_seed(1)
direction = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in eta]
norm = torch.sqrt(sum((d**2).sum() for d in direction))
direction = [d / norm for d in direction]
exact = torch.dot(grad_eta, torch.cat([d.flatten() for d in direction])).item()

epsilons = [10.0**-k for k in range(1, 9)]
finite_differences = []
for eps in epsilons:
    shift_eta(direction, eps)
    plus = objective_after_real_step()
    shift_eta(direction, -2 * eps)
    minus = objective_after_real_step()
    shift_eta(direction, eps)
    finite_differences.append((plus - minus) / (2 * eps))
    print(f"ε = {eps:.0e}: finite difference {finite_differences[-1]:+.10e}, loss {exact:+.10e}, "
          f"relative error {abs(finite_differences[-1] - exact) / abs(exact):.1e}")

# %%
# The objective after the step, as η moves
# ----------------------------------------
#
# The left panel moves η along its meta-gradient, η + t·u with u = ∇η J_ex / ‖∇η J_ex‖, and plots J_ex after a
# real SGD step from each: the line through t = 0 with the slope the loss predicts, ‖∇η J_ex‖, is its tangent,
# and moving η up the meta-gradient makes the policy's next step better for the team. (Further out the curve
# flattens: the gradient is a local, first-order statement.) The right panel plots the relative error of the
# finite differences above against ε. For large ε the curvature of J_ex and the kinks of the ReLU networks
# dominate it; for tiny ε the rounding of the two J_ex values does (it grows as 1/ε). In between, the two
# gradients agree to about eight digits.

ascent = grad_eta / grad_eta.norm()
ascent = [a.view_as(p) for a, p in zip(ascent.split([p.numel() for p in eta]), eta)]
slope = grad_eta.norm().item()
sizes = torch.linspace(-3.0, 3.0, 25).tolist()
curve = []
for size in sizes:
    shift_eta(ascent, size)
    curve.append(objective_after_real_step())
    shift_eta(ascent, -size)
at_eta = objective_after_real_step()
errors = [abs(fd - exact) / abs(exact) for fd in finite_differences]

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.plot(sizes, curve, "o-", label="J_ex(θ′) after a real SGD step")
left.plot(sizes, [at_eta + slope * s for s in sizes], "--", label="tangent: slope ‖∇η J_ex‖ from LIIRLoss")
left.axvline(0.0, color="grey", lw=0.5)
left.set_xlabel("t: η moved to η + t·u, u along ∇η J_ex")
left.set_ylabel("J_ex(θ′)")
left.set_title("the team's objective after the step, as η moves")
left.legend()
right.loglog(epsilons, errors, "o-")
right.set_xlabel("ε")
right.set_ylabel("|finite difference - exact| / |exact|")
right.set_title("finite difference vs LIIRLoss, along a random d")
right.grid(True, which="both", alpha=0.3)
fig.tight_layout()
plt.show()

best = min(errors)
assert best < 1e-6, f"the meta-gradient disagrees with the finite difference (best relative error {best:.1e})"
print(f"best agreement: relative error {best:.1e}")

# %%
# The same check, for MLP and GRU policies, SGD and RMSprop, clipped or not, with masks, padding and dead
# agents, is part of the package's tests. What it does not cover, on purpose: optimisers whose step is not a
# fixed scaling of the gradient (momentum, weight decay, AdamW), for which ``InnerStep`` refuses to build, and a
# policy gradient clipped over more than the policy's parameters, which it refuses at ``optimizer.step()``.
