"""
LIIR in TorchRL's multi-agent MAPPO example
===========================================

TorchRL's multi-agent examples train MAPPO on a VMAS scenario in about a hundred lines: a ``Collector``, a
decentralised ``MultiAgentMLP`` policy, a centralised ``MultiAgentMLP`` critic, ``ClipPPOLoss`` with the
agent-level done keys, a replay buffer of the batch's steps and minibatch epochs. This tutorial turns that
script into LIIR by changing one region of it: the loss, its optimiser and how a batch is fed to them.

The repository holds both scripts, ``examples/mappo_vmas.py`` and ``examples/liir_vmas.py``; outside the
marked regions they are identical, line for line. Below, the LIIR script runs on a tiny budget (8 batches of
10 scenarios × 50 steps, a few seconds on a CPU) with MAPPO's lines shown beside the ones that replace them.
It needs VMAS (``pip install -e ".[vmas]"``).
"""

# %%
# What stays: the environment, the policy, the critic and the collector
# ---------------------------------------------------------------------
#
# This part is TorchRL's example as it is. VMAS's ``navigation`` with 3 agents and continuous actions (forces):
# each agent has its own reward at ``("agents", "reward")``, there is no global state, and every episode
# ends after ``max_steps``. The policy is a ``TanhNormal`` within the action bounds whose parameters come from
# a ``MultiAgentMLP`` shared by the agents; the critic is a centralised ``MultiAgentMLP`` that reads every
# agent's observation. Only the budget is smaller than the example's, and the imports name LIIR's loss and
# networks instead of ``ClipPPOLoss`` and the replay buffer.

import torch
from tensordict.nn import TensorDictModule
from tensordict.nn.distributions import NormalParamExtractor
from torchrl.collectors import Collector
from torchrl.envs import RewardSum, TransformedEnv
from torchrl.envs.libs.vmas import VmasEnv
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal, ValueOperator
from torchrl.objectives import ValueEstimators

from torchrl_liir import InnerStep, LIIRLoss, make_intrinsic_reward, make_proxy_critic
from torchrl_liir.runtime import configure_runtime

configure_runtime(threads=1, jax_cache_dir=None)
seed, max_steps, frames_per_batch, total_frames = 0, 50, 500, 4000
lr, max_grad_norm, gamma, lmbda = 3e-4, 1.0, 0.99, 0.9
torch.manual_seed(seed)

env = VmasEnv("navigation", num_envs=frames_per_batch // max_steps, n_agents=3, continuous_actions=True,
              max_steps=max_steps, seed=seed)
env = TransformedEnv(env, RewardSum(in_keys=[env.reward_key], out_keys=[("agents", "episode_reward")]))
observation_size = env.observation_spec["agents", "observation"].shape[-1]
action_spec = env.full_action_spec_unbatched[env.action_key]

policy_net = torch.nn.Sequential(
    MultiAgentMLP(observation_size, 2 * action_spec.shape[-1], env.n_agents, centralized=False, share_params=True,
                  depth=2, num_cells=128, activation_class=torch.nn.Tanh),
    NormalParamExtractor(),
)
policy = ProbabilisticActor(
    TensorDictModule(policy_net, in_keys=[("agents", "observation")],
                     out_keys=[("agents", "loc"), ("agents", "scale")]),
    spec=env.full_action_spec_unbatched, in_keys=[("agents", "loc"), ("agents", "scale")], out_keys=[env.action_key],
    distribution_class=TanhNormal,
    distribution_kwargs={"low": action_spec.space.low, "high": action_spec.space.high}, return_log_prob=True,
)
critic = ValueOperator(
    MultiAgentMLP(observation_size, 1, env.n_agents, centralized=True, share_params=True, depth=2, num_cells=128,
                  activation_class=torch.nn.Tanh),
    in_keys=[("agents", "observation")],
)


def agent_done_flags(batch):
    """The env's done flags expanded to every agent, TorchRL's multi-agent key convention."""
    for flag in ("done", "terminated"):
        batch["next", "agents", flag] = batch["next", flag].unsqueeze(-1).expand(batch["next", env.reward_key].shape)
    return batch


collector = Collector(env, policy, frames_per_batch=frames_per_batch, total_frames=total_frames,
                      postproc=agent_done_flags, auto_register_policy_transforms=False)

# %%
# What changes: the loss and its optimiser
# ----------------------------------------
#
# MAPPO's script builds its loss, one Adam over every parameter of the loss, and a replay buffer of the batch's
# steps:
#
# .. code-block:: python
#
#     loss_module = ClipPPOLoss(actor_network=policy, critic_network=critic, clip_epsilon=0.2,
#                               entropy_coeff=1e-4, normalize_advantage=False)
#     loss_module.set_keys(reward=env.reward_key, action=env.action_key, done=("agents", "done"),
#                          terminated=("agents", "terminated"))
#     loss_module.make_value_estimator(ValueEstimators.GAE, gamma=gamma, lmbda=lmbda)
#     optimizer = torch.optim.Adam(loss_module.parameters(), lr)
#     replay_buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(frames_per_batch),
#                                            sampler=SamplerWithoutReplacement(), batch_size=minibatch_size)
#
# LIIR adds two networks: the intrinsic reward r_in_η(o_i, u_i), which takes the continuous action as an input,
# and the per-agent proxy critic. The example's centralised critic stays, as LIIR's extrinsic critic V_ex: its
# per-agent outputs are averaged into V_ex. ``set_keys`` and ``make_value_estimator`` are TorchRL's calls,
# unchanged. One Adam may still hold every network; the policy's step is wrapped in ``InnerStep``, because the
# meta-gradient of η differentiates through exactly that step (Adam's, with the policy's gradient clip).

intrinsic_reward = make_intrinsic_reward(observation_size, None, env.n_agents, action_dim=action_spec.shape[-1])
proxy_critic = make_proxy_critic(observation_size, env.n_agents)
networks = [policy, intrinsic_reward, proxy_critic, critic]
optimizer = torch.optim.Adam([p for network in networks for p in network.parameters()], lr)
loss_module = LIIRLoss(*networks, inner_step=InnerStep(optimizer, max_grad_norm=max_grad_norm),
                       lambda_in=0.01, entropy_coeff=1e-4)
loss_module.set_keys(reward=env.reward_key, action=env.action_key, done=("agents", "done"),
                     terminated=("agents", "terminated"))
loss_module.make_value_estimator(ValueEstimators.GAE, gamma=gamma, lmbda=lmbda)
critic_parameters = [p for network in networks[1:] for p in network.parameters()]

# %%
# What changes: one step per batch, on whole trajectories
# -------------------------------------------------------
#
# MAPPO flattens the batch into steps and takes several epochs of minibatch steps:
#
# .. code-block:: python
#
#     replay_buffer.extend(batch.reshape(-1))
#     for _ in range(epochs):
#         for _ in range(frames_per_batch // minibatch_size):
#             loss_terms = loss_module(replay_buffer.sample())
#             sum(value for key, value in loss_terms.items() if key.startswith("loss_")).backward()
#             torch.nn.utils.clip_grad_norm_(loss_module.parameters(), max_grad_norm)
#             optimizer.step()
#             optimizer.zero_grad()
#
# LIIR's TD(λ) estimates run along time, and its meta-gradient models one optimiser step on the whole batch, so
# the loss takes the collector's ``[envs, T]`` batch as it comes, and the optimiser steps once. The gradient
# clip covers the other networks only: the policy's clip is ``InnerStep``'s, applied at ``optimizer.step()``.
# A clip over all of ``loss_module.parameters()``, as in MAPPO's lines, would change the policy's step, and
# ``InnerStep`` refuses it with a one-line error.
#
# Everything else in the loop is the example's: the advantage estimate before the loss, the weight update, the
# logged episode reward. The example's progress bar is replaced by one printed line per batch.

for i, batch in enumerate(collector):
    with torch.no_grad():
        loss_module.value_estimator(batch, params=loss_module.critic_network_params,
                                    target_params=loss_module.target_critic_network_params)
    loss_terms = loss_module(batch)
    sum(value for key, value in loss_terms.items() if key.startswith("loss_")).backward()
    torch.nn.utils.clip_grad_norm_(critic_parameters, max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()
    collector.update_policy_weights_()
    episode_reward = batch["next", "agents", "episode_reward"][batch["next", "agents", "done"]].mean().item()
    print(f"batch {i}: {batch.batch_size}, mean episode reward {episode_reward:+.3f}, "
          f"mean r_in {loss_terms['intrinsic_reward'].item():+.3f}")
collector.shutdown()

# %%
# Eight batches are far too few to learn navigation (the example's default is 600,000 steps): the run shows that
# the pieces fit, not what LIIR achieves. The loss's other outputs sit where MAPPO's do:
#
# - ``loss_objective`` and ``loss_entropy`` are the policy's, as ``ClipPPOLoss``'s;
# - ``loss_proxy_value + loss_extrinsic_value`` is its ``loss_critic``;
# - ``loss_intrinsic`` is LIIR's own, the term that trains η.

print({key: round(value.item(), 5) for key, value in loss_terms.items()})
