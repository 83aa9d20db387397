"""The losses keep TorchRL's contract: its value_estimator property and call, its multi-agent done keys, its
centralised MultiAgentMLP critic, batches with autograd history, networks checked at construction."""
from __future__ import annotations

import pytest
import torch
from conftest import N_AGENTS, OBS_DIM, hand_td_lambda
from tensordict.nn import TensorDictModule
from test_env_agnostic_losses import (
    GAMMA,
    LMBDA,
    continuous_batch,
    continuous_nets,
    discrete_nets,
    make_liir,
    vmas_like_batch,
)
from torchrl.modules import MultiAgentMLP, ValueOperator
from torchrl.objectives import LossModule, ValueEstimators
from torchrl.objectives.value import GAE

from torchrl_liir import COMALoss, LIIRLoss, MultiAgentActorCriticLoss
from torchrl_liir.modules import make_intrinsic_reward
from torchrl_liir.objectives import InnerStep


def liir(nets=None):
    loss = make_liir(nets or discrete_nets(), 0.1)
    loss.set_keys(reward=("agents", "reward"))
    return loss


def with_agent_flags(batch):
    """The batch with TorchRL's multi-agent done keys ``("agents", "done" | "terminated")`` ``[B, T, n, 1]``."""
    out = batch.clone()
    for flag in ("done", "terminated"):
        out["next", "agents", flag] = out["next", flag].unsqueeze(-2).expand(*out.batch_size, N_AGENTS, 1).clone()
        del out["next", flag]
    return out


@pytest.mark.parametrize("loss_class", [LIIRLoss, MultiAgentActorCriticLoss, COMALoss])
def test_value_estimator_is_torchrl_property(loss_class):
    assert all("value_estimator" not in vars(cls) for cls in loss_class.__mro__ if cls is not LossModule)


def test_value_estimator_takes_torchrl_params_and_uses_them():
    """``params`` of a critic whose weights are zero give V = 0: the targets are the hand TD(λ) returns of the
    reward alone."""
    loss = liir()
    batch = vmas_like_batch(loss.actor_network)
    plain = loss.value_estimator(batch.clone())
    same = loss.value_estimator(batch.clone(), params=loss.critic_network_params,
                                target_params=loss.target_critic_network_params)
    assert torch.equal(plain["advantage"], same["advantage"])
    zero = loss.critic_network_params.clone().zero_()
    out = loss.value_estimator(batch.clone(), params=zero, target_params=zero)
    nxt = batch["next"]
    team = nxt["agents", "reward"].mean(-2)
    zeros = torch.zeros_like(team)
    target, advantage = hand_td_lambda(team, zeros, zeros, nxt["done"], nxt["terminated"], GAMMA, LMBDA)
    torch.testing.assert_close(out["value_target"], target)
    torch.testing.assert_close(out["advantage"], advantage)
    with pytest.raises(ValueError, match="target_params differ from the critic's parameters"):
        loss.value_estimator(batch.clone(), params=loss.critic_network_params, target_params=zero)


def test_make_value_estimator_as_in_torchrl():
    loss = liir()
    assert loss.make_value_estimator(ValueEstimators.TD0, gamma=0.5) is loss
    assert (loss.value_estimator.gamma, loss.value_estimator.lmbda) == (0.5, 0.0)
    loss.make_value_estimator(ValueEstimators.TDLambda, lmbda=0.3)
    assert (loss.gamma, loss.lmbda) == (0.5, 0.3)
    with pytest.raises(ValueError, match="estimates over padded episodes itself"):
        loss.make_value_estimator(GAE(gamma=0.9, lmbda=0.9, value_network=None))
    with pytest.raises(ValueError, match=r"unknown hyper-parameters \['lambda'\]"):
        loss.make_value_estimator(ValueEstimators.GAE, **{"lambda": 0.9})
    with pytest.raises(ValueError, match=r"lmbda=1.5: must be a number in \[0, 1\]"):
        loss.make_value_estimator(lmbda=1.5)


@pytest.mark.parametrize("loss_name", ["liir", "actor_critic"])
def test_agent_level_done_keys_give_the_team_flags_terms(loss_name):
    nets = discrete_nets()
    batch = vmas_like_batch(nets[0])

    def terms(data, agent_flags):
        torch.manual_seed(0)
        if loss_name == "liir":
            loss = liir(nets)
        else:
            loss = MultiAgentActorCriticLoss(nets[0], nets[3], gamma=GAMMA, lmbda=LMBDA)
            loss.set_keys(reward=("agents", "reward"))
        if agent_flags:
            loss.set_keys(done=("agents", "done"), terminated=("agents", "terminated"))
        return loss(data)

    team, agents = terms(batch, False), terms(with_agent_flags(batch), True)
    for key in team.keys():
        torch.testing.assert_close(team[key], agents[key], msg=key)


def test_agent_flags_end_the_team_episode_when_every_agent_is_done():
    loss = liir()
    loss.set_keys(done=("agents", "done"), terminated=("agents", "terminated"))
    batch = vmas_like_batch(loss.actor_network)
    flags = with_agent_flags(batch)
    assert loss.end_flags(flags["next"])[0].any()
    flags["next", "agents", "done"][..., 0, :] = False  # one agent not done: the team's episode goes on
    done, _ = loss.end_flags(flags["next"])
    assert not done.any()


def test_a_centralised_multiagent_mlp_critic_is_the_extrinsic_critic():
    """TorchRL's centralised ``MultiAgentMLP`` (one shared output per agent, all equal) gives the terms of the
    same network read once as the team's V(s)."""
    actor, intrinsic, proxy, _ = discrete_nets()
    torch.manual_seed(1)
    mlp = MultiAgentMLP(OBS_DIM, 1, N_AGENTS, centralized=True, share_params=True, num_cells=[16])
    per_agent = ValueOperator(mlp, in_keys=[("agents", "observation")])
    team = TensorDictModule(lambda obs: mlp(obs)[..., 0, :], [("agents", "observation")], ["state_value"])
    batch = vmas_like_batch(actor)
    out = {}
    for name, critic in (("per_agent", per_agent), ("team", team)):
        loss = liir((actor, intrinsic, proxy, critic))
        loss.set_keys(value=critic.out_keys[0])
        out[name] = loss(batch)
    for key in out["team"].keys():
        torch.testing.assert_close(out["per_agent"][key], out["team"][key], msg=key)


@pytest.mark.parametrize("distribution", ["normal", "tanh_normal"])
def test_a_batch_with_autograd_history_trains(distribution):
    """``env.rollout(...)`` without ``torch.no_grad()`` hands over actions carrying the actor's graph."""
    nets = continuous_nets(distribution)
    batch = continuous_batch(nets[0], seed=0)
    with torch.enable_grad():
        dist = nets[0].get_dist(batch.copy())
        batch["agents", "action"] = dist.rsample()
    assert batch["agents", "action"].requires_grad
    loss = make_liir(nets, 0.1)
    terms = loss(batch)
    sum(value for key, value in terms.items() if key.startswith("loss_")).backward()
    assert all(p.grad is not None for p in nets[1].parameters())


def test_networks_are_checked_at_construction():
    actor, intrinsic, proxy, extrinsic = continuous_nets("normal")
    inner = InnerStep(torch.optim.SGD(actor.parameters(), lr=0.1))
    discrete_r_in = make_intrinsic_reward(OBS_DIM, 5, N_AGENTS)
    with pytest.raises(ValueError, match="built for discrete actions and the policy's are continuous"):
        LIIRLoss(actor, discrete_r_in, proxy, extrinsic, inner_step=inner)
    with pytest.raises(TypeError, match="intrinsic_reward_network is a Linear; wrap it as"):
        LIIRLoss(actor, torch.nn.Linear(OBS_DIM, 1), proxy, extrinsic, inner_step=inner)
    with pytest.raises(TypeError, match="critic_network is a Linear"):
        MultiAgentActorCriticLoss(actor, torch.nn.Linear(OBS_DIM, 1))


def test_in_keys_name_only_what_a_batch_holds():
    loss = liir()
    batch = vmas_like_batch(loss.actor_network)
    present = set(batch.keys(True, True))
    assert set(loss.in_keys) - {("collector", "mask")} <= present
    assert ("next", "agents", "action") not in loss.in_keys


def test_a_checkpoint_of_the_earlier_estimator_layout_loads():
    loss = liir()
    state = loss.state_dict()
    legacy = {k.replace("proxy_value_estimator.", "_value_estimator."): v for k, v in state.items()}
    assert "_value_estimator.gamma" in legacy
    loss.load_state_dict(legacy)
    actor_critic = MultiAgentActorCriticLoss(*discrete_nets()[::3])
    state = {k.replace("gae.", "_value_estimator."): v for k, v in actor_critic.state_dict().items()}
    actor_critic.load_state_dict(state)


def test_a_joint_optimiser_with_a_joint_clip_is_refused_in_one_line():
    """TorchRL's examples clip ``loss.parameters()`` together; the policy's step would then not be the modelled
    one."""
    nets = continuous_nets("normal")
    optimizer = torch.optim.RMSprop([p for net in nets for p in net.parameters()], lr=1e-3)
    loss = LIIRLoss(*nets, inner_step=InnerStep(optimizer, max_grad_norm=1e-3))
    batch = continuous_batch(nets[0], seed=0)
    terms = loss(batch)
    sum(value for key, value in terms.items() if key.startswith("loss_")).backward()
    torch.nn.utils.clip_grad_norm_(loss.parameters(), 1e-3)
    with pytest.raises(RuntimeError, match="is not the one the meta-gradient modelled"):
        optimizer.step()


def test_proxy_critic_is_checked_too():
    actor, intrinsic, _, extrinsic = continuous_nets("normal")
    with pytest.raises(TypeError, match="proxy_value_network is a dict"):
        LIIRLoss(actor, intrinsic, {}, extrinsic, inner_step=InnerStep(torch.optim.SGD(actor.parameters(), lr=0.1)))


def test_the_docstring_examples_run():
    import doctest

    from torchrl_liir.objectives import inner_step, liir

    for module in (inner_step, liir):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
