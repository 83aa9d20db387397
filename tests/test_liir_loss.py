"""LIIRLoss: which parameters each term trains, its value estimates, masks and bad input."""
from __future__ import annotations

import pytest
import torch
from conftest import N_ACTIONS, N_AGENTS, OBS_DIM, agent_end_flags, alive_r_in, hand_td_lambda, random_batch
from test_meta_gradient import GAMMA, LMBDA, make_loss, make_nets
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ValueEstimators

from torchrl_liir.objectives import InnerStep, LIIRLoss


@pytest.fixture
def setup(float64):
    nets = make_nets("mlp")
    loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1), lambda_in=0.5)
    return nets, loss, random_batch(nets[0], seed=4)


def _grads(term, modules):
    params = [p for m in modules for p in m.parameters()]
    grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    return [g is not None and g.abs().sum() > 0 for g in grads]


def test_each_term_trains_only_its_parameter_set(setup):
    (actor, intrinsic, proxy, extrinsic), loss, batch = setup
    out = loss(batch)
    # loss_objective carries the gradient of both policy terms; loss_entropy is a value only.
    assert not out["loss_entropy"].requires_grad
    owners = {
        "loss_objective": actor, "loss_intrinsic": intrinsic,
        "loss_proxy_value": proxy, "loss_extrinsic_value": extrinsic,
    }
    modules = [actor, intrinsic, proxy, extrinsic]
    for term, owner in owners.items():
        for module in modules:
            flows = _grads(out[term], [module])
            assert any(flows) == (module is owner), f"{term} -> {type(module).__name__}"


@pytest.mark.parametrize("policy", ["mlp", "gru"])
def test_the_backward_does_not_run_through_the_policy_again(float64, policy):
    """loss_objective's graph is the linear surrogate Σ⟨θ, g⟩ on the parameters, not the policy network's."""
    nets = make_nets(policy)
    out = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1))(random_batch(nets[0], seed=4))
    nodes, stack, leaves = set(), [out["loss_objective"].grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in nodes:
            continue
        nodes.add(node)
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        stack.extend(fn for fn, _ in node.next_functions)
    assert {type(n).__name__ for n in nodes} <= {"AddBackward0", "SubBackward0", "MulBackward0", "SumBackward0",
                                                 "AccumulateGrad"}
    assert {id(p) for p in leaves} == {id(p) for p in nets[0].parameters()}


@pytest.mark.parametrize("policy", ["mlp", "gru"])
@pytest.mark.parametrize("normalize_advantage", [False, True])
@pytest.mark.parametrize("meta_gradient, variant", [("fast", "paper"), ("reference", "paper"),
                                                     ("fast", "released_code")])
def test_summed_terms_give_each_parameter_set_its_plain_gradient(float64, policy, normalize_advantage,
                                                                  meta_gradient, variant):
    """``sum(loss_*).backward()`` == gradients of the plain losses written by hand (η: the reference meta-loss)."""
    nets = make_nets(policy)
    actor, intrinsic, proxy, extrinsic = nets
    optimizer = torch.optim.RMSprop(actor.parameters(), lr=0.01)
    kwargs = {"lambda_in": 0.5, "normalize_advantage": normalize_advantage, "variant": variant}
    loss = make_loss(nets, optimizer, max_grad_norm=0.05, meta_gradient=meta_gradient, **kwargs)
    batch = random_batch(actor, seed=7)
    out = loss(batch)
    modules = [actor, intrinsic, proxy, extrinsic]
    got = [torch.autograd.grad(sum(v for k, v in out.items() if k.startswith("loss_")), list(m.parameters()),
                               retain_graph=True) for m in modules]

    nxt = batch["next"]
    unpadded = batch["collector", "mask"].unsqueeze(-1).double()
    w = unpadded * batch["agents", "alive"]
    with torch.no_grad():
        r_in = intrinsic(batch.copy())["agents", "intrinsic_reward"]
        nv_p, nv_x = proxy(nxt.copy())["agents", "proxy_value"], extrinsic(nxt.copy())["state_value"]
    v_p, v_x = proxy(batch.copy())["agents", "proxy_value"], extrinsic(batch.copy())["state_value"]
    done, term = agent_end_flags(batch)
    r_proxy = nxt["reward"].unsqueeze(-2) + 0.5 * alive_r_in(batch, r_in)
    ret_p, adv_p = hand_td_lambda(r_proxy, v_p.detach(), nv_p, done, term, GAMMA, LMBDA)
    ret_x, _ = hand_td_lambda(nxt["reward"], v_x.detach(), nv_x, nxt["done"], nxt["terminated"], GAMMA, LMBDA)
    a = adv_p[..., 0]
    if normalize_advantage:
        mean = (w * a).sum() / w.sum()
        a = (a - mean) / (((w * (a - mean) ** 2).sum() / w.sum()).sqrt() + 1e-8)
    data = batch.copy()
    data["agents", "action_mask"] = batch["agents", "action_mask"] | ~w.bool().unsqueeze(-1)
    with set_recurrent_mode(True):
        dist = actor.get_dist(data.copy())
    lp, entropy = dist.log_prob(batch["agents", "action"]), dist.entropy()
    policy_loss = -(w * lp * a).sum() / w.sum() - 0.05 * (w * entropy).sum() / w.sum()
    proxy_loss = (unpadded * (v_p - ret_p)[..., 0] ** 2).sum() / (unpadded.sum() * N_AGENTS)
    extrinsic_loss = (unpadded * (v_x - ret_x) ** 2).sum() / unpadded.sum()
    reference = make_loss(nets, optimizer, max_grad_norm=0.05, meta_gradient="reference", **kwargs)
    meta_loss = reference(batch)["loss_intrinsic"]
    expected = [torch.autograd.grad(term, list(m.parameters()))
                for term, m in zip((policy_loss, meta_loss, proxy_loss, extrinsic_loss), modules)]
    for module, got_m, expected_m in zip(modules, got, expected):
        for g, e in zip(got_m, expected_m):
            torch.testing.assert_close(g, e, msg=lambda m, name=type(module).__name__: f"{name}: {m}")


def test_value_estimates_match_hand_td_lambda(setup):
    (actor, intrinsic, proxy, extrinsic), loss, batch = setup
    est = loss.estimate_values(batch)
    nxt = batch["next"]
    with torch.no_grad():
        r_in = intrinsic(batch.copy())["agents", "intrinsic_reward"]
        v_p, nv_p = proxy(batch.copy())["agents", "proxy_value"], proxy(nxt.copy())["agents", "proxy_value"]
        v_x, nv_x = extrinsic(batch.copy())["state_value"], extrinsic(nxt.copy())["state_value"]
    done, term = agent_end_flags(batch)
    r_proxy = nxt["reward"].unsqueeze(-2) + 0.5 * alive_r_in(batch, r_in)
    ret_p, adv_p = hand_td_lambda(r_proxy, v_p, nv_p, done, term, GAMMA, LMBDA)
    ret_x, adv_x = hand_td_lambda(nxt["reward"], v_x, nv_x, nxt["done"], nxt["terminated"], GAMMA, LMBDA)
    torch.testing.assert_close(est["agents", "proxy_value_target"].detach(), ret_p)
    torch.testing.assert_close(est["agents", "proxy_advantage"].detach(), adv_p)
    torch.testing.assert_close(est["value_target"], ret_x)
    torch.testing.assert_close(est["advantage"], adv_x)
    assert est["agents", "proxy_advantage"].requires_grad


def test_td0_estimator_is_one_step(setup):
    (actor, intrinsic, proxy, extrinsic), loss, batch = setup
    loss.make_value_estimator(ValueEstimators.TD0, gamma=0.5)
    est = loss.estimate_values(batch)
    nxt = batch["next"]
    with torch.no_grad():
        v_x, nv_x = extrinsic(batch.copy())["state_value"], extrinsic(nxt.copy())["state_value"]
    expected = nxt["reward"] + 0.5 * (~nxt["terminated"]) * nv_x - v_x
    torch.testing.assert_close(est["advantage"], expected)


def test_padding_and_dead_agents_do_not_count(setup):
    nets, loss, batch = setup
    out = loss(batch)
    changed = batch.clone()
    dead = ~batch["agents", "alive"]
    padded = ~batch["collector", "mask"]
    changed["agents", "action"] = torch.where(dead, 0, batch["agents", "action"])
    changed["agents", "action_mask"][padded] = False
    changed["agents", "observation"][padded] = 1e3
    other = loss(changed)
    for key in ("loss_objective", "loss_entropy", "loss_proxy_value"):
        torch.testing.assert_close(out[key], other[key])
    assert all(torch.isfinite(v) for v in other.values())


def test_dead_agents_steps_train_the_proxy_critic_only(setup):
    nets, loss, batch = setup
    out = loss(batch)
    changed = batch.clone()
    dead = ~batch["agents", "alive"] & batch["collector", "mask"].unsqueeze(-1)
    assert dead.any()
    changed["agents", "observation"][dead] = 3.0
    other = loss(changed)
    assert not torch.allclose(out["loss_proxy_value"], other["loss_proxy_value"])
    torch.testing.assert_close(out["loss_entropy"], other["loss_entropy"])


def test_normalized_advantage_policy_loss_by_hand(setup):
    nets, _, batch = setup
    loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1), normalize_advantage=True)
    out = loss(batch)
    w = (batch["collector", "mask"].unsqueeze(-1) & batch["agents", "alive"]).double()
    a = loss.estimate_values(batch)["agents", "proxy_advantage"][..., 0].detach()
    mean = (w * a).sum() / w.sum()
    std = ((w * (a - mean) ** 2).sum() / w.sum()).sqrt()
    data = batch.copy()
    data["agents", "action_mask"] = batch["agents", "action_mask"] | ~w.bool().unsqueeze(-1)
    lp = nets[0].get_dist(data.copy()).log_prob(batch["agents", "action"])
    expected = -(w * lp * (a - mean) / std).sum() / w.sum()
    torch.testing.assert_close(out["loss_objective"], expected)


def test_missing_key_names_the_key(setup):
    nets, loss, batch = setup
    loss.set_keys(action=("agents", "act"))
    with pytest.raises(KeyError, match=r"\('agents', 'act'\).*set_keys\(action="):
        loss(batch)


def test_action_outside_mask_is_rejected(setup):
    nets, loss, batch = setup
    batch["agents", "action_mask"][1, 2, 0] = torch.tensor([False, True, True, True, True])
    batch["agents", "action"][1, 2, 0] = 0
    batch["agents", "alive"][1, 2, 0] = True
    with pytest.raises(ValueError, match=r"\('agents', 'action'\)=0 at index \(1, 2, 0\)"):
        loss(batch)


@pytest.mark.parametrize("kwargs, match", [
    ({"lambda_in": -0.1}, "lambda_in=-0.1"),
    ({"meta_gradient": "exact"}, "meta_gradient='exact'"),
    ({"variant": "code"}, "variant='code'"),
])
def test_bad_arguments(float64, kwargs, match):
    nets = make_nets("mlp")
    with pytest.raises(ValueError, match=match):
        LIIRLoss(*nets, inner_step=InnerStep(torch.optim.SGD(nets[0].parameters(), lr=0.1)), **kwargs)


def test_released_code_variant(setup):
    """η-gradient = ĝ·∇η mean G_p, ĝ = ⟨∇θ mean lp, ∇θ' J_joint(θ')⟩ (SGD: S/α = 1), by hand."""
    (actor, intrinsic, proxy, extrinsic), _, batch = setup
    lr = 0.1
    loss = make_loss((actor, intrinsic, proxy, extrinsic), torch.optim.SGD(actor.parameters(), lr=lr),
                     lambda_in=0.5, variant="released_code")
    out = loss(batch)
    eta = list(intrinsic.parameters())
    got = torch.autograd.grad(out["loss_intrinsic"], eta)

    w = (batch["collector", "mask"].unsqueeze(-1) & batch["agents", "alive"]).double()
    data = batch.copy()
    data["agents", "action_mask"] = batch["agents", "action_mask"] | ~w.bool().unsqueeze(-1)
    theta = list(actor.parameters())
    action = batch["agents", "action"]
    lp = actor.get_dist(data.copy()).log_prob(action)
    ent = actor.get_dist(data.copy()).entropy()
    est = loss.estimate_values(batch)
    a_p = est["agents", "proxy_advantage"][..., 0].detach()
    inner = -((w * lp * a_p).sum() + 0.05 * (w * ent).sum()) / w.sum()
    g = torch.autograd.grad(inner, theta, retain_graph=True)
    g_lp = torch.autograd.grad((w * lp).sum() / w.sum(), theta, retain_graph=True)
    with torch.no_grad():
        for p, gi in zip(theta, g):
            p.sub_(lr * gi)
    new_lp = actor.get_dist(data.copy()).log_prob(action)
    step_w = (w.sum(-1) > 0).double()
    j = (step_w * torch.exp((w * (new_lp - lp.detach())).sum(-1)) * est["advantage"][..., 0]).sum() / step_w.sum()
    g_new = torch.autograd.grad(j, theta)
    with torch.no_grad():
        for p, gi in zip(theta, g):
            p.add_(lr * gi)
    g_hat = sum((a * b).sum() for a, b in zip(g_lp, g_new))
    mean_return = (w * est["agents", "proxy_value_target"][..., 0]).sum() / w.sum()
    expected = torch.autograd.grad(g_hat * mean_return, eta)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("opt", ["sgd", "rmsprop"])
def test_the_trainers_policy_step_lands_on_the_modelled_theta_prime(float64, opt):
    """J_ex(θ') reported by the loss equals J_ex at the parameters the real clipped optimiser step reaches."""
    nets = make_nets("mlp")
    actor = nets[0]
    optimizer = (torch.optim.SGD(actor.parameters(), lr=0.3) if opt == "sgd"
                 else torch.optim.RMSprop(actor.parameters(), lr=0.01))
    loss = make_loss(nets, optimizer, max_grad_norm=0.05)
    batch = random_batch(actor, seed=6)
    for _ in range(2):
        out = loss(batch)
        optimizer.zero_grad()
        sum(v for k, v in out.items() if k.startswith("loss_")).backward()
        torch.nn.utils.clip_grad_norm_(actor.parameters(), 0.05)
        w = (batch["collector", "mask"].unsqueeze(-1) & batch["agents", "alive"]).double()
        data = batch.copy()
        data["agents", "action_mask"] = batch["agents", "action_mask"] | ~w.bool().unsqueeze(-1)
        with torch.no_grad():
            old = actor.get_dist(data.copy()).log_prob(batch["agents", "action"])
            optimizer.step()
            new = actor.get_dist(data.copy()).log_prob(batch["agents", "action"])
            advantage = loss.estimate_values(batch)["advantage"].expand_as(new)
        reached = (w * torch.exp(new - old) * advantage).sum() / w.sum()
        torch.testing.assert_close(out["meta_objective"], reached)


def _multi_agent_mlp_actor(share_params: bool, use_td_params: bool = True):
    from tensordict.nn import TensorDictModule
    from torchrl.modules import MaskedCategorical, MultiAgentMLP, ProbabilisticActor

    mlp = MultiAgentMLP(OBS_DIM, N_ACTIONS, N_AGENTS, centralized=False, share_params=share_params,
                        use_td_params=use_td_params, num_cells=[8])
    return ProbabilisticActor(
        TensorDictModule(mlp, [("agents", "observation")], [("agents", "logits")]),
        in_keys={"logits": ("agents", "logits"), "mask": ("agents", "action_mask")},
        out_keys=[("agents", "action")], distribution_class=MaskedCategorical,
    )


def test_multi_agent_mlp_whose_weights_cannot_be_swapped_is_rejected():
    nets = list(make_nets("mlp"))
    nets[0] = _multi_agent_mlp_actor(share_params=True, use_td_params=False)
    with pytest.raises(ValueError, match="use_td_params=True"):
        LIIRLoss(*nets, inner_step=InnerStep(torch.optim.SGD(nets[0].parameters(), lr=0.1)))


@pytest.mark.parametrize("share_params", [True, False])
def test_torchrl_multi_agent_mlp_policy_gets_the_exact_meta_gradient(float64, share_params):
    """TorchRL's MultiAgentMLP keeps its weights where torch.func.functional_call cannot swap them: the
    meta-gradient must still move with them (fast == reference == finite differences of a real step)."""
    from test_meta_gradient import assert_exact_meta_gradient, eta_grad, extrinsic_objective_after_real_step

    nets = list(make_nets("mlp", seed=2))
    nets[0] = _multi_agent_mlp_actor(share_params)
    lr, lambda_in = 0.5, 1.0
    batch = random_batch(nets[0], seed=3)
    fast = eta_grad(make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=lr), lambda_in=lambda_in), batch)
    reference = eta_grad(make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=lr), lambda_in=lambda_in,
                                   meta_gradient="reference"), batch)
    assert_exact_meta_gradient(fast, reference, list(nets[1].parameters()),
                               lambda: extrinsic_objective_after_real_step(nets, batch, lr, lambda_in))


@pytest.mark.parametrize("nothing_valid", ["all padding", "every agent dead"])
def test_a_batch_with_nothing_to_learn_from_gives_zero_gradients_not_nan(float64, nothing_valid):
    nets = make_nets("mlp")
    loss = make_loss(nets, torch.optim.SGD(nets[0].parameters(), lr=0.1), lambda_in=0.5, normalize_advantage=True)
    batch = random_batch(nets[0], seed=4)
    key = ("collector", "mask") if nothing_valid == "all padding" else ("agents", "alive")
    batch[key] = torch.zeros_like(batch[key])
    out = loss(batch)
    total = sum(v for k, v in out.items() if k.startswith("loss_"))
    for learns, net in zip((False, False, None, None), nets):  # the policy and r_in have nothing to learn from
        grads = torch.autograd.grad(total, list(net.parameters()), retain_graph=True, allow_unused=True)
        assert all(g is None or torch.isfinite(g).all() for g in grads)
        if learns is False:
            assert all(g is None or not g.any() for g in grads)


@pytest.mark.parametrize("key, index", [(("next", "reward"), (1, 3, 0)), (("agents", "observation"), (0, 2, 1, 0))])
def test_a_non_finite_reward_or_observation_is_refused_naming_it(setup, key, index):
    _, loss, batch = setup
    batch["collector", "mask"][:] = True
    batch[key][index] = float("inf") if key[-1] == "reward" else float("nan")
    with pytest.raises(ValueError) as refused:
        loss(batch)
    value = "inf" if key[-1] == "reward" else "nan"
    assert str(refused.value).startswith(f"LIIRLoss: {key!r}={value} at index {list(index)} of the batch")


def test_an_empty_batch_is_refused_in_one_line(setup):
    _, loss, batch = setup
    with pytest.raises(ValueError, match=r"^LIIRLoss: the batch is empty \(batch_size \[0, \d+\]\): there is nothing "
                                         r"to learn from$"):
        loss(batch[:0])


def test_int32_actions_give_the_int64_actions_losses(setup):
    _, loss, batch = setup
    out = loss(batch)
    as_int32 = batch.clone()
    as_int32["agents", "action"] = batch["agents", "action"].to(torch.int32)
    other = loss(as_int32)
    for name in ("loss_objective", "loss_proxy_value", "loss_intrinsic"):
        torch.testing.assert_close(out[name], other[name])


@pytest.mark.parametrize("value", [5, -1])
def test_an_action_out_of_range_is_refused_on_a_played_step_and_ignored_on_padding(setup, value):
    _, loss, batch = setup
    played = batch.clone()
    played["agents", "action"][1, 2, 0] = value
    played["agents", "alive"][1, 2, 0] = True
    played["collector", "mask"][1, 2] = True
    with pytest.raises(ValueError, match=rf"^LIIRLoss: \('agents', 'action'\)={value} at index \(1, 2, 0\) is not "
                                         rf"in \[0, {N_ACTIONS}\)$"):
        loss(played)
    padded = batch.clone()
    step = int((~batch["collector", "mask"][0]).nonzero()[0])
    padded["agents", "action"][0, step, 0] = value
    out, other = loss(batch), loss(padded)
    for name in ("loss_objective", "loss_proxy_value", "loss_intrinsic"):
        torch.testing.assert_close(out[name], other[name])
