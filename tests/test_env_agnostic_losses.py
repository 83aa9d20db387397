"""Losses outside SMAC-like envs: continuous actions, no mask, no state, per-agent rewards, TorchRL conventions."""
from __future__ import annotations

import copy

import pytest
import torch
from conftest import N_ACTIONS, N_AGENTS, OBS_DIM, agent_end_flags, hand_td_lambda, random_batch
from tensordict.nn import TensorDictModule
from test_meta_gradient import assert_exact_meta_gradient, eta_grad
from torch import distributions as D
from torchrl.modules import NormalParamExtractor, ProbabilisticActor, set_recurrent_mode

from torchrl_liir import IntrinsicReward, LIIRLoss, MultiAgentActorCriticLoss, make_gaussian_policy
from torchrl_liir.modules import make_extrinsic_critic, make_intrinsic_reward, make_mlp_policy, make_proxy_critic
from torchrl_liir.objectives import InnerStep

GAMMA, LMBDA, ACTION_DIM = 0.9, 0.7, 2


def plain_normal_policy():
    """A factorised ``torch.distributions.Normal`` (one log-prob per action dim), as a researcher may write."""
    net = torch.nn.Sequential(torch.nn.Linear(OBS_DIM, 2 * ACTION_DIM), NormalParamExtractor())
    module = TensorDictModule(net, [("agents", "observation")], [("agents", "loc"), ("agents", "scale")])
    return ProbabilisticActor(module, in_keys=[("agents", "loc"), ("agents", "scale")],
                              out_keys=[("agents", "action")], distribution_class=D.Normal)


def continuous_nets(distribution: str, seed: int = 0):
    torch.manual_seed(seed)
    if distribution == "normal":
        actor = plain_normal_policy()
    else:
        actor = make_gaussian_policy(N_AGENTS, OBS_DIM, ACTION_DIM, tanh=distribution == "tanh_normal",
                                     num_cells=(16,))
    intrinsic = make_intrinsic_reward(OBS_DIM, None, N_AGENTS, action_dim=ACTION_DIM, num_cells=(16,))
    proxy = make_proxy_critic(OBS_DIM, N_AGENTS, num_cells=(16,))
    extrinsic = make_extrinsic_critic(N_AGENTS * OBS_DIM, state_key=None, num_cells=(16,))
    return actor, intrinsic, proxy, extrinsic


def continuous_batch(actor, seed: int):
    """A padded batch without action mask or state, its actions sampled from the Gaussian ``actor``."""
    batch = random_batch(actor, seed=seed, dead_agents=False)
    return batch.exclude(("agents", "action_mask"), "state", ("next", "state"))


def log_prob(actor, batch):
    with set_recurrent_mode(True):
        lp = actor.get_dist(batch.copy()).log_prob(batch["agents", "action"])
    return lp.sum(-1) if lp.shape == batch["agents", "action"].shape else lp


def objective_after_real_step(nets, batch, lr, lambda_in):
    """J_ex(θ') with θ' from a real SGD step on a hand-written inner loss (entropy_coeff = 0)."""
    actor, intrinsic, proxy, extrinsic = nets
    actor = copy.deepcopy(actor)
    nxt = batch["next"]
    w = batch["collector", "mask"].unsqueeze(-1).expand(*batch.batch_size, N_AGENTS).double()
    observations = batch["agents", "observation"].flatten(-2)
    next_observations = nxt["agents", "observation"].flatten(-2)
    with torch.no_grad():
        v_p, nv_p = proxy(batch.copy())["agents", "proxy_value"], proxy(nxt.copy())["agents", "proxy_value"]
        v_x, nv_x = extrinsic.module.module(observations), extrinsic.module.module(next_observations)
        r_in = intrinsic(batch.copy())["agents", "intrinsic_reward"]
    agents_done, agents_term = agent_end_flags(batch)
    r_proxy = nxt["reward"].unsqueeze(-2) + lambda_in * r_in
    _, a_proxy = hand_td_lambda(r_proxy, v_p, nv_p, agents_done, agents_term, GAMMA, LMBDA)
    _, a_ex = hand_td_lambda(nxt["reward"], v_x, nv_x, nxt["done"], nxt["terminated"], GAMMA, LMBDA)
    lp_old = log_prob(actor, batch).detach()
    optimizer = torch.optim.SGD(actor.parameters(), lr=lr)
    (-(w * log_prob(actor, batch) * a_proxy[..., 0]).sum() / w.sum()).backward()
    optimizer.step()
    with torch.no_grad():
        ratio = torch.exp(log_prob(actor, batch) - lp_old)
        return (w * ratio * a_ex.expand_as(ratio)).sum() / w.sum()


def make_liir(nets, lr, meta_gradient="fast", **kwargs):
    optimizer = torch.optim.SGD(nets[0].parameters(), lr=lr)
    return LIIRLoss(*nets, inner_step=InnerStep(optimizer), gamma=GAMMA, lmbda=LMBDA, meta_gradient=meta_gradient,
                    **kwargs)


@pytest.mark.parametrize("distribution", ["normal", "independent_normal", "tanh_normal"])
def test_continuous_meta_gradient_matches_reference_and_finite_differences(float64, distribution):
    nets = continuous_nets(distribution, seed=2)
    lr, lambda_in = 0.3, 1.0
    batch = continuous_batch(nets[0], seed=3)
    assert batch["agents", "action"].shape == (4, 6, N_AGENTS, ACTION_DIM)
    fast = eta_grad(make_liir(nets, lr, lambda_in=lambda_in), batch)
    reference = eta_grad(make_liir(nets, lr, "reference", lambda_in=lambda_in), batch)
    assert_exact_meta_gradient(fast, reference, list(nets[1].parameters()),
                               lambda: objective_after_real_step(nets, batch, lr, lambda_in))


def test_an_entropy_without_closed_form_is_the_on_policy_sample_estimate(float64):
    """TanhNormal: entropy value −mean log π(u) over the taken actions, gradient −mean log π(u)·∇log π(u)."""
    nets = continuous_nets("tanh_normal")
    batch = continuous_batch(nets[0], seed=1)
    w = batch["collector", "mask"].unsqueeze(-1).expand(*batch.batch_size, N_AGENTS).double()
    params = list(nets[0].parameters())

    def policy_gradient(entropy_coeff):
        out = make_liir(nets, 0.1, entropy_coeff=entropy_coeff)(batch)
        return out, torch.autograd.grad(out["loss_objective"], params)

    with_entropy, grads = policy_gradient(0.5)
    _, grads_without = policy_gradient(0.0)
    lp = log_prob(nets[0], batch)
    assert torch.allclose(with_entropy["entropy"], -(w * lp).sum() / w.sum())
    assert torch.allclose(with_entropy["loss_entropy"], -0.5 * with_entropy["entropy"])
    expected = torch.autograd.grad(0.5 * (w * lp.detach() * lp).sum() / w.sum(), params)
    for got, without, hand in zip(grads, grads_without, expected):
        assert torch.allclose(got - without, hand, atol=1e-10)


def test_entropy_in_the_meta_objective_needs_a_closed_form_entropy(float64):
    """β·H(π_θ') needs H at θ', where the batch's actions are not the policy's samples: Normal runs, TanhNormal is
    refused in one line."""
    for distribution in ("normal", "tanh_normal"):
        nets = continuous_nets(distribution, seed=2)
        batch = continuous_batch(nets[0], seed=3)
        loss = make_liir(nets, 0.3, lambda_in=1.0, meta_entropy_coeff=0.1)
        if distribution == "normal":
            assert torch.isfinite(eta_grad(loss, batch)).all()
        else:
            with pytest.raises(ValueError, match="TanhNormal has no closed-form entropy"):
                loss(batch)


def test_continuous_intrinsic_reward_reads_the_action():
    torch.manual_seed(0)
    module = IntrinsicReward(OBS_DIM, None, N_AGENTS, action_dim=ACTION_DIM, num_cells=(8,), bound=2.0)
    obs, action = torch.randn(5, N_AGENTS, OBS_DIM), torch.randn(5, N_AGENTS, ACTION_DIM)
    with module.mlp.params.to_module(module.mlp._empty_net):
        expected = 2.0 * torch.tanh(module.mlp._empty_net(torch.cat([obs, action], -1)) / 2.0)
    assert torch.allclose(module(obs, action), expected)
    assert not torch.allclose(module(obs, action), module(obs, action + 1))
    with pytest.raises(ValueError, match="n_actions .* or action_dim"):
        IntrinsicReward(OBS_DIM, N_ACTIONS, N_AGENTS, action_dim=ACTION_DIM)


def discrete_nets(state_key=None):
    torch.manual_seed(0)
    actor = make_mlp_policy(N_AGENTS, OBS_DIM, N_ACTIONS, num_cells=(16,))  # no mask
    intrinsic = TensorDictModule(_PlainIntrinsic(), [("agents", "observation"), ("agents", "action")],
                                 [("agents", "intrinsic_reward")])
    proxy = make_proxy_critic(OBS_DIM, N_AGENTS, num_cells=(16,))
    extrinsic = make_extrinsic_critic(N_AGENTS * OBS_DIM, state_key=state_key, num_cells=(16,))
    return actor, intrinsic, proxy, extrinsic


class _PlainIntrinsic(torch.nn.Module):
    """A researcher's own r_in module: no ``n_agents`` attribute."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(OBS_DIM, N_ACTIONS)

    def forward(self, observation, action):
        return torch.tanh(self.linear(observation)).gather(-1, action.unsqueeze(-1))


def vmas_like_batch(actor, seed=0):
    """No mask, no state, per-agent rewards ``("agents", "reward")`` that differ between agents."""
    batch = random_batch(actor, seed=seed, dead_agents=False).exclude(("agents", "action_mask"), "state",
                                                                     ("next", "state"))
    g = torch.Generator().manual_seed(seed + 100)
    batch["next", "agents", "reward"] = torch.randn(*batch.batch_size, N_AGENTS, 1, generator=g)
    del batch["next", "reward"]
    return batch


def test_per_agent_rewards_mean_into_the_team_reward_in_every_loss():
    nets = discrete_nets()
    batch = vmas_like_batch(nets[0])
    team = batch.clone()
    team["next", "reward"] = batch["next", "agents", "reward"].sum(-2) / N_AGENTS  # the mean, by hand
    loss = make_liir(nets, 0.1, lambda_in=0.5)
    loss.set_keys(reward=("agents", "reward"))
    team_loss = make_liir(nets, 0.1, lambda_in=0.5)
    for name, value in team_loss(team.exclude(("next", "agents", "reward"))).items():
        assert torch.allclose(value, loss(batch)[name]), name
    critic = make_proxy_critic(OBS_DIM, N_AGENTS, num_cells=(16,), out_key=("agents", "state_value"))
    ac = MultiAgentActorCriticLoss(nets[0], critic)
    ac.set_keys(reward=("agents", "reward"))
    ac_team = MultiAgentActorCriticLoss(nets[0], critic)
    assert all(torch.allclose(v, ac(batch)[k]) for k, v in ac_team(team).items())


def test_critics_on_concatenated_observations_equal_the_critic_on_that_state():
    torch.manual_seed(0)
    batch = vmas_like_batch(make_mlp_policy(N_AGENTS, OBS_DIM, N_ACTIONS))
    with_state = batch.clone()
    with_state["state"] = batch["agents", "observation"].reshape(*batch.batch_size, N_AGENTS * OBS_DIM)
    extrinsic = make_extrinsic_critic(N_AGENTS * OBS_DIM, state_key=None, num_cells=(8,))
    on_state = make_extrinsic_critic(N_AGENTS * OBS_DIM, num_cells=(8,))
    on_state.module.load_state_dict(extrinsic.module.module.state_dict())
    assert torch.allclose(extrinsic(batch.copy())["state_value"], on_state(with_state.copy())["state_value"])
    proxy = make_proxy_critic(OBS_DIM, N_AGENTS, state_dim=N_AGENTS * OBS_DIM, state_key=None, num_cells=(8,))
    proxy_on_state = make_proxy_critic(OBS_DIM, N_AGENTS, state_dim=N_AGENTS * OBS_DIM, num_cells=(8,))
    proxy_on_state.module.mlp.load_state_dict(proxy.module.mlp.state_dict())
    assert torch.allclose(proxy(batch.copy())["agents", "proxy_value"],
                          proxy_on_state(with_state.copy())["agents", "proxy_value"])
    with pytest.raises(ValueError, match="state_dim must be 12"):
        make_proxy_critic(OBS_DIM, N_AGENTS, state_dim=7, state_key=None)


def test_a_critic_reading_a_missing_state_says_how_to_read_observations():
    nets = discrete_nets(state_key="state")
    batch = vmas_like_batch(nets[0])
    loss = make_liir(nets, 0.1)
    loss.set_keys(reward=("agents", "reward"))
    with pytest.raises(KeyError, match="reads 'state', which is not in the batch.*state_key=None"):
        loss(batch)


def test_value_estimator_writes_hand_computed_td_lambda_estimates():
    nets = discrete_nets()
    batch = vmas_like_batch(nets[0])
    loss = make_liir(nets, 0.1, lambda_in=0.5)
    loss.set_keys(reward=("agents", "reward"))
    out = loss.value_estimator(batch)
    assert out is batch
    nxt = batch["next"]
    team = nxt["agents", "reward"].mean(-2)
    with torch.no_grad():
        v, nv = nets[3](batch.copy())["state_value"], nets[3](nxt.copy())["state_value"]
        r_in = nets[1](batch.copy())["agents", "intrinsic_reward"]
        vp, nvp = nets[2](batch.copy())["agents", "proxy_value"], nets[2](nxt.copy())["agents", "proxy_value"]
    target, advantage = hand_td_lambda(team, v, nv, nxt["done"], nxt["terminated"], GAMMA, LMBDA)
    done, term = agent_end_flags(batch)
    proxy_target, proxy_advantage = hand_td_lambda(team.unsqueeze(-2) + 0.5 * r_in, vp, nvp, done, term, GAMMA,
                                                   LMBDA)
    assert torch.allclose(batch["advantage"], advantage, atol=1e-6)
    assert torch.allclose(batch["value_target"], target, atol=1e-6)
    assert torch.allclose(batch["agents", "proxy_advantage"], proxy_advantage, atol=1e-6)
    assert torch.allclose(batch["agents", "proxy_value_target"], proxy_target, atol=1e-6)


def test_in_keys_are_enough_and_out_keys_are_what_forward_returns():
    nets = discrete_nets()
    batch = vmas_like_batch(nets[0])
    loss = make_liir(nets, 0.1)
    loss.set_keys(reward=("agents", "reward"))
    present = set(batch.keys(True, True))
    needed = [k for k in loss.in_keys if k in present]
    assert ("next", "agents", "reward") in needed and ("agents", "action") in needed
    assert set(loss(batch.select(*needed)).keys()) == set(loss.out_keys)


@pytest.mark.parametrize("case, error", [
    ("flattened", r"batch_size \[24\]: expected \[\*B, T\] episodes"),
    ("float_actions", "a categorical policy takes integer actions"),
    ("agents", "the batch has 3 agents .* built for n_agents=4"),
    ("typo", "unknown key 'rewrad'; did you mean 'reward'"),
    ("missing_reward", r"set_keys\(reward=<key>\)"),
])
def test_bad_batches_and_keys_fail_in_one_line(case, error):
    nets = discrete_nets()
    batch = vmas_like_batch(nets[0])
    loss = make_liir(nets, 0.1, n_agents=4 if case == "agents" else None)
    if case != "missing_reward":
        loss.set_keys(reward=("agents", "reward"))
    if case == "flattened":
        batch = batch.reshape(-1)
    if case == "float_actions":
        batch["agents", "action"] = batch["agents", "action"].float()
    with pytest.raises((ValueError, KeyError), match=error) as info:
        if case == "typo":
            loss.set_keys(rewrad=("agents", "reward"))
        loss(batch)
    assert "\n" not in str(info.value)


def test_intrinsic_reward_transform_on_a_vmas_env_with_default_arguments():
    pytest.importorskip("vmas")
    from torchrl.envs import TransformedEnv
    from torchrl.envs.libs.vmas import VmasEnv
    from torchrl.envs.utils import check_env_specs

    from torchrl_liir import IntrinsicRewardTransform

    base = VmasEnv("balance", num_envs=3, n_agents=4, continuous_actions=False, categorical_actions=True,
                   max_steps=5, seed=0)
    obs_dim = base.observation_spec["agents", "observation"].shape[-1]
    n_actions = base.full_action_spec["agents", "action"].space.n
    intrinsic = make_intrinsic_reward(obs_dim, n_actions, 4)
    env = TransformedEnv(base, IntrinsicRewardTransform(intrinsic, lambda_in=0.5))
    check_env_specs(env)
    rollout = env.rollout(4)
    team = rollout["next", "agents", "reward"].mean(-2, keepdim=True)
    with torch.no_grad():
        r_in = intrinsic(rollout.copy())["agents", "intrinsic_reward"]
    assert torch.allclose(rollout["next", "agents", "intrinsic_reward"], r_in)
    assert torch.allclose(rollout["next", "agents", "proxy_reward"], team + 0.5 * r_in)


def test_meta_gradient_with_a_sample_estimated_entropy_equals_the_reference(float64):
    nets = continuous_nets("tanh_normal", seed=4)
    batch = continuous_batch(nets[0], seed=5)
    fast = eta_grad(make_liir(nets, 0.3, lambda_in=1.0, entropy_coeff=0.2), batch)
    reference = eta_grad(make_liir(nets, 0.3, "reference", lambda_in=1.0, entropy_coeff=0.2), batch)
    without_entropy = eta_grad(make_liir(nets, 0.3, lambda_in=1.0), batch)
    assert (fast - reference).norm() / reference.norm() <= 1e-8
    assert (fast - without_entropy).norm() > 1e-6 * reference.norm()  # the entropy step moves θ'


def test_actor_critic_value_estimator_writes_hand_computed_estimates():
    nets = discrete_nets()
    batch = vmas_like_batch(nets[0])
    loss = MultiAgentActorCriticLoss(nets[0], nets[3], gamma=GAMMA, lmbda=LMBDA)
    loss.set_keys(reward=("agents", "reward"))
    loss.value_estimator(batch)
    nxt = batch["next"]
    with torch.no_grad():
        v, nv = nets[3](batch.copy())["state_value"], nets[3](nxt.copy())["state_value"]
    target, advantage = hand_td_lambda(nxt["agents", "reward"].mean(-2), v, nv, nxt["done"], nxt["terminated"],
                                       GAMMA, LMBDA)
    assert torch.allclose(batch["advantage"], advantage, atol=1e-6)
    assert torch.allclose(batch["value_target"], target, atol=1e-6)
