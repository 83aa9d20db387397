"""The intrinsic-reward remedies of LIIRLoss (r_in centred under the policy, r_in scaled by its batch RMS, the
policy's entropy in the meta-objective) and η's RMSprop, against hand computations and a real policy step."""
from __future__ import annotations

import pytest
import torch
from conftest import OBS_DIM, random_batch
from tensordict.nn import TensorDictModule
from test_meta_gradient import (
    assert_exact_meta_gradient,
    eta_grad,
    extrinsic_objective_after_real_step,
    make_loss,
    make_nets,
)
from torchrl.modules import set_recurrent_mode

from torchrl_liir.objectives import LIIRLoss


def policy_probs(actor, batch):
    """π(·|o) of every action ``[B, T, n_agents, n_actions]`` at the batch's (valid) entries."""
    with torch.no_grad(), set_recurrent_mode(True):
        return actor.get_dist(batch.copy()).probs


def centred_by_hand(nets, batch):
    """r_in(o, u) − Σ_a π(a|o)·r_in(o, a), written out with every action's reward and the policy's softmax."""
    actor, intrinsic = nets[0], nets[1]

    def shape(r_in, w):
        every = intrinsic.module.all_actions(batch["agents", "observation"])
        probs = policy_probs(actor, batch)
        baseline = torch.zeros_like(r_in)
        for a in range(every.shape[-1]):
            baseline[..., 0] += probs[..., a] * every[..., a]
        return r_in - baseline

    return shape


def rms_by_hand(r_in, w):
    """r_in / sqrt(Σ_w r_in² / Σ_w 1) over the valid entries ``w``."""
    squares = [r_in[..., 0][tuple(index)].item() ** 2 for index in w.nonzero()]
    return r_in / (sum(squares) / len(squares)) ** 0.5


def unbounded_nets(policy):
    nets = make_nets(policy, seed=2)
    nets[1].module.bound = None  # the network's raw output, as algo.intrinsic_scale=batch_rms builds it
    return nets


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_centred_r_in_is_the_taken_actions_reward_less_its_mean_under_the_policy(float64, policy):
    nets = make_nets(policy, seed=1)
    batch = random_batch(nets[0], seed=5)
    loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1), intrinsic_centring="policy")
    checked, _ = loss.prepare(batch)
    with torch.no_grad():
        expected = centred_by_hand(nets, checked)(nets[1](checked.copy())["agents", "intrinsic_reward"], None)
        centred = loss.intrinsic_rewards(checked)
    torch.testing.assert_close(centred, expected, rtol=1e-12, atol=1e-12)
    # Its mean under the policy is 0 in every state: r_in can only move credit between an agent's actions.
    every = nets[1].module.all_actions(checked["agents", "observation"]).detach()
    probs = policy_probs(nets[0], checked)
    centred_every = every - (probs * every).sum(-1, keepdim=True)
    assert (probs * centred_every).sum(-1).abs().max() < 1e-12
    assert centred_every.abs().max() > 0.01


def test_batch_rms_r_in_has_unit_rms_and_ignores_the_networks_scale(float64):
    nets = unbounded_nets("mlp")
    batch = random_batch(nets[0], seed=6)
    loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1), intrinsic_scale="batch_rms")
    checked, valid = loss.prepare(batch)
    with torch.no_grad():
        raw = nets[1](checked.copy())["agents", "intrinsic_reward"]
        scaled = loss.intrinsic_rewards(checked, valid)
        torch.testing.assert_close(scaled, rms_by_hand(raw, valid), rtol=1e-12, atol=0)
        last = [m for m in nets[1].module.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.mul_(7.0)
        last.bias.mul_(7.0)
        torch.testing.assert_close(loss.intrinsic_rewards(checked, valid), scaled, rtol=1e-12, atol=0)
    assert "r_in_saturated" not in loss.out_keys  # an unbounded network cannot saturate


@pytest.mark.parametrize("policy", ["mlp", "gru"])
@pytest.mark.parametrize("remedy", ["centring", "batch_rms", "both"])
def test_each_remedys_meta_gradient_matches_a_real_policy_step(float64, policy, remedy):
    """∇η of loss_intrinsic (fast and reference) against finite differences of J_ex(θ') after a real SGD step
    whose proxy reward uses the hand-written centred or RMS-scaled r_in."""
    nets = unbounded_nets(policy) if remedy != "centring" else make_nets(policy, seed=2)
    lr, lambda_in = 0.5, 1.0
    batch = random_batch(nets[0], seed=3)
    kwargs = {"intrinsic_centring": "policy" if remedy in ("centring", "both") else "none",
              "intrinsic_scale": "batch_rms" if remedy in ("batch_rms", "both") else "none"}
    optimizer = torch.optim.SGD(nets[0].parameters(), lr=lr)
    fast = eta_grad(make_loss(nets, optimizer, lambda_in=lambda_in, **kwargs), batch)
    reference = eta_grad(make_loss(nets, optimizer, lambda_in=lambda_in, meta_gradient="reference", **kwargs), batch)
    checked, _ = make_loss(nets, optimizer).prepare(batch)  # padded steps' actions filled, as the loss sees them
    centre = centred_by_hand(nets, checked)

    def shape(r_in, w):
        if kwargs["intrinsic_centring"] == "policy":
            r_in = centre(r_in, w)
        return rms_by_hand(r_in, w) if kwargs["intrinsic_scale"] == "batch_rms" else r_in

    assert_exact_meta_gradient(
        fast, reference, list(nets[1].parameters()),
        lambda: extrinsic_objective_after_real_step(nets, batch, lr, lambda_in, shape_r_in=shape))


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_entropy_in_the_meta_objective_matches_a_real_policy_step(float64, policy):
    """∇η of loss_intrinsic with meta_entropy_coeff β (fast and reference) against finite differences of
    J_ex(θ') + β·H(π_θ') after a real SGD step; the entropy term changes η's gradient."""
    nets = make_nets(policy, seed=2)
    lr, lambda_in, beta = 0.5, 1.0, 0.3
    batch = random_batch(nets[0], seed=3)
    optimizer = torch.optim.SGD(nets[0].parameters(), lr=lr)
    fast = eta_grad(make_loss(nets, optimizer, lambda_in=lambda_in, meta_entropy_coeff=beta), batch)
    reference = eta_grad(make_loss(nets, optimizer, lambda_in=lambda_in, meta_entropy_coeff=beta,
                                   meta_gradient="reference"), batch)
    assert_exact_meta_gradient(
        fast, reference, list(nets[1].parameters()),
        lambda: extrinsic_objective_after_real_step(nets, batch, lr, lambda_in, outer_entropy_coeff=beta))
    plain = eta_grad(make_loss(nets, optimizer, lambda_in=lambda_in), batch)
    assert (fast - plain).norm() > 1e-3 * plain.norm()
    out = make_loss(nets, optimizer, lambda_in=lambda_in, meta_entropy_coeff=beta)(batch)
    no_entropy = make_loss(nets, optimizer, lambda_in=lambda_in)(batch)
    assert out["meta_objective"] > no_entropy["meta_objective"]  # J_ex(θ') plus β times a positive entropy


def test_entropy_in_the_meta_objective_refuses_what_it_cannot_model(float64):
    nets = make_nets("mlp", seed=2)
    optimizer = torch.optim.SGD(nets[0].parameters(), lr=0.5)
    with pytest.raises(ValueError, match="meta_entropy_coeff must be >= 0, got meta_entropy_coeff=-0.1"):
        make_loss(nets, optimizer, meta_entropy_coeff=-0.1)
    with pytest.raises(ValueError, match="meta_entropy_coeff applies to variant='paper' only"):
        make_loss(nets, optimizer, meta_entropy_coeff=0.1, variant="released_code")


def test_remedies_change_the_meta_gradient_and_bad_names_are_refused(float64):
    nets = make_nets("mlp", seed=2)
    batch = random_batch(nets[0], seed=3)
    optimizer = torch.optim.SGD(nets[0].parameters(), lr=0.5)
    plain = eta_grad(make_loss(nets, optimizer, lambda_in=1.0), batch)
    centred = eta_grad(make_loss(nets, optimizer, lambda_in=1.0, intrinsic_centring="policy"), batch)
    assert (plain - centred).norm() > 1e-3 * plain.norm()
    with pytest.raises(ValueError, match="intrinsic_centring must be 'none' or 'policy', got 'mean'"):
        make_loss(nets, optimizer, intrinsic_centring="mean")
    with pytest.raises(ValueError, match="intrinsic_scale must be 'none' or 'batch_rms', got 'std'"):
        make_loss(nets, optimizer, intrinsic_scale="std")
    with pytest.raises(ValueError, match="needs r_in of every action"):
        own = TensorDictModule(torch.nn.Linear(OBS_DIM, 1), in_keys=[("agents", "observation")],
                               out_keys=[("agents", "intrinsic_reward")])  # r_in of the taken action only
        LIIRLoss(nets[0], own, nets[2], nets[3], inner_step=make_loss(nets, optimizer).inner_step,
                 intrinsic_centring="policy")


@pytest.mark.parametrize("algo, centring, bounded, optimisers, lambda_in, meta_entropy", [
    ("liir", "none", True, ("RMSprop", "RMSprop", "Adam"), 0.01, 0.0),
    ("liir_paper", "none", True, ("RMSprop", "RMSprop", "RMSprop"), 0.01, 0.0),
    ("liir_centred", "policy", True, ("RMSprop", "RMSprop", "Adam"), 0.01, 0.0),
    ("liir_rms", "none", False, ("RMSprop", "RMSprop", "Adam"), 0.01, 0.0),
    ("liir_large_lambda", "none", True, ("RMSprop", "RMSprop", "Adam"), 0.1, 0.0),
    ("liir_meta_entropy", "none", True, ("RMSprop", "RMSprop", "Adam"), 0.01, 0.01),
])
def test_each_named_configuration_builds_what_it_says(tmp_path, algo, centring, bounded, optimisers, lambda_in,
                                                       meta_entropy):
    from test_trainer import SMAX, config

    from torchrl_liir.trainers import make_trainer

    trainer = make_trainer(config(*SMAX, f"algo={algo}"), tmp_path)
    try:
        recipe = trainer.recipe
        loss = recipe.loss
        assert (loss.intrinsic_centring, loss.lambda_in) == (centring, lambda_in)
        assert loss.intrinsic_scale == ("none" if bounded else "batch_rms")
        assert loss.meta_entropy_coeff == meta_entropy == (loss.entropy_coeff if meta_entropy else 0.0)
        assert (recipe.intrinsic_reward.module.bound is not None) == bounded
        groups = [recipe.optimizers[name].optimizer for name in ("policy", "intrinsic", "critic")]
        assert tuple(type(g).__name__ for g in groups) == optimisers
        # The StarCraft preset's learning rates apply to every named LIIR; η is at its own 5e-4 in each.
        assert [g.param_groups[0]["lr"] for g in groups] == [5e-4, 5e-4, 5e-4]
    finally:
        trainer.close()
