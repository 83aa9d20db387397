# <<< differs from the twin: what the script is
"""LIIR on a VMAS scenario, in TorchRL's multi-agent example pipeline: the twin of examples/mappo_vmas.py with
LIIRLoss in place of ClipPPOLoss. The centralised MultiAgentMLP critic is LIIR's extrinsic critic V_ex; LIIR adds
the intrinsic reward r_in(o_i, u_i) and the per-agent proxy critic, and trains on whole [envs, T] trajectories
(one optimiser step per batch, the step its meta-gradient models) instead of minibatches of shuffled steps.

    pip install -e ".[vmas]"
    python examples/liir_vmas.py --frames 600000

The two scripts differ only between the marked lines (the loss, the optimiser and the batch handling), as a
test checks.
"""
# >>>
from __future__ import annotations

import argparse

import torch
from tensordict.nn import TensorDictModule
from tensordict.nn.distributions import NormalParamExtractor
from torchrl.collectors import Collector
from torchrl.envs import RewardSum, TransformedEnv
from torchrl.envs.libs.vmas import VmasEnv
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal, ValueOperator
from tqdm import tqdm

# isort: split
# <<< differs from the twin: the loss and the batch handling's imports
from torchrl.objectives import ValueEstimators

from torchrl_liir import InnerStep, LIIRLoss, make_intrinsic_reward, make_proxy_critic

# >>>

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--scenario", default="navigation")
parser.add_argument("--n-agents", type=int, default=3)
parser.add_argument("--max-steps", type=int, default=100)
parser.add_argument("--frames-per-batch", type=int, default=6000)
parser.add_argument("--frames", type=int, default=600_000, help="total environment steps")
# <<< differs from the twin: the minibatch epochs' settings
# >>>
parser.add_argument("--lr", type=float, default=3e-4)
parser.add_argument("--max-grad-norm", type=float, default=1.0)
parser.add_argument("--gamma", type=float, default=0.99)
parser.add_argument("--lmbda", type=float, default=0.9)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.manual_seed(args.seed)

env = VmasEnv(args.scenario, num_envs=args.frames_per_batch // args.max_steps, n_agents=args.n_agents,
              continuous_actions=True, max_steps=args.max_steps, seed=args.seed)
env = TransformedEnv(env, RewardSum(in_keys=[env.reward_key], out_keys=[("agents", "episode_reward")]))
observation_size = env.observation_spec["agents", "observation"].shape[-1]
action_spec = env.full_action_spec_unbatched[env.action_key]

# The policy: a decentralised MultiAgentMLP with shared parameters, a TanhNormal within the action bounds.
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
# The critic: a centralised MultiAgentMLP, one value per agent from every agent's observation.
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


collector = Collector(env, policy, frames_per_batch=args.frames_per_batch, total_frames=args.frames,
                      postproc=agent_done_flags, auto_register_policy_transforms=False)  # an MLP needs no InitTracker

# <<< differs from the twin: the loss and its optimiser (MAPPO: with a replay buffer of the batch's steps)
# LIIR's meta-gradient models the policy's step: Adam's, with the policy's clip, which InnerStep applies.
intrinsic_reward = make_intrinsic_reward(observation_size, None, env.n_agents, action_dim=action_spec.shape[-1])
proxy_critic = make_proxy_critic(observation_size, env.n_agents)
networks = [policy, intrinsic_reward, proxy_critic, critic]
optimizer = torch.optim.Adam([p for network in networks for p in network.parameters()], args.lr)
loss_module = LIIRLoss(*networks, inner_step=InnerStep(optimizer, max_grad_norm=args.max_grad_norm),
                       lambda_in=0.01, entropy_coeff=1e-4)
loss_module.set_keys(reward=env.reward_key, action=env.action_key, done=("agents", "done"),
                     terminated=("agents", "terminated"))
loss_module.make_value_estimator(ValueEstimators.GAE, gamma=args.gamma, lmbda=args.lmbda)
critic_parameters = [p for network in networks[1:] for p in network.parameters()]
# >>>

progress = tqdm(total=args.frames, unit="frames")
for batch in collector:
    with torch.no_grad():
        loss_module.value_estimator(batch, params=loss_module.critic_network_params,
                                    target_params=loss_module.target_critic_network_params)
    # <<< differs from the twin: the optimiser steps, on minibatches of steps (MAPPO) or whole trajectories (LIIR)
    loss_terms = loss_module(batch)  # [envs, T]: the TD(λ) estimates and the meta-gradient need whole trajectories
    sum(value for key, value in loss_terms.items() if key.startswith("loss_")).backward()
    torch.nn.utils.clip_grad_norm_(critic_parameters, args.max_grad_norm)  # the policy's clip is InnerStep's
    optimizer.step()
    optimizer.zero_grad()
    # >>>
    collector.update_policy_weights_()
    episode_reward = batch["next", "agents", "episode_reward"][batch["next", "agents", "done"]].mean().item()
    progress.update(batch.numel())
    progress.set_postfix(episode_reward=f"{episode_reward:.3f}")
collector.shutdown()
print(f"last batch: mean episode reward {episode_reward:.4f}")
