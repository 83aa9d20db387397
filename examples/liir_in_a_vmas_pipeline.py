"""LIIR in your own TorchRL pipeline: a VMAS scenario, TorchRL's Collector and MultiAgentMLP, LIIR's loss.

    pip install -e ".[vmas]"
    python examples/liir_in_a_vmas_pipeline.py                            # balance, 4 agents, discrete actions
    python examples/liir_in_a_vmas_pipeline.py --continuous --scenario navigation

Copy it and swap in your env: nothing below is specific to this package's trainer. VMAS has no action mask,
no global state and one reward per agent; LIIR takes them as they are (the team reward is the agents' mean).
"""
from __future__ import annotations

import argparse

import torch
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.collectors import Collector
from torchrl.envs.libs.vmas import VmasEnv
from torchrl.modules import MultiAgentMLP, ProbabilisticActor, TanhNormal
from torchrl.modules.distributions import NormalParamExtractor
from tqdm import tqdm

from torchrl_liir import InnerStep, LIIRLoss, make_extrinsic_critic, make_intrinsic_reward, make_proxy_critic

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--scenario", default="balance")
parser.add_argument("--n-agents", type=int, default=4)
parser.add_argument("--continuous", action="store_true", help="VMAS's continuous actions (forces)")
parser.add_argument("--envs", type=int, default=32)
parser.add_argument("--max-steps", type=int, default=100)
parser.add_argument("--frames", type=int, default=200_000, help="total environment steps")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.manual_seed(args.seed)

env = VmasEnv(args.scenario, num_envs=args.envs, n_agents=args.n_agents, continuous_actions=args.continuous,
              categorical_actions=True, max_steps=args.max_steps, seed=args.seed)
n_agents = env.n_agents
obs_dim = env.observation_spec["agents", "observation"].shape[-1]
action_spec = env.full_action_spec["agents", "action"]


def shared_mlp(n_inputs: int, n_outputs: int) -> MultiAgentMLP:
    return MultiAgentMLP(n_inputs, n_outputs, n_agents, centralized=False, share_params=True, num_cells=[64, 64])


# The policy: TorchRL's MultiAgentMLP, as in TorchRL's multi-agent tutorials (no mask: a plain categorical).
if args.continuous:
    action_dim, n_actions = action_spec.shape[-1], None
    net = nn.Sequential(shared_mlp(obs_dim, 2 * action_dim), NormalParamExtractor())
    actor = ProbabilisticActor(
        TensorDictModule(net, [("agents", "observation")], [("agents", "loc"), ("agents", "scale")]),
        in_keys=[("agents", "loc"), ("agents", "scale")], out_keys=[("agents", "action")],
        distribution_class=TanhNormal,
        distribution_kwargs={"low": action_spec.space.low[0], "high": action_spec.space.high[0]},
    )
else:
    action_dim, n_actions = None, action_spec.space.n
    actor = ProbabilisticActor(
        TensorDictModule(shared_mlp(obs_dim, n_actions), [("agents", "observation")], [("agents", "logits")]),
        in_keys=[("agents", "logits")], out_keys=[("agents", "action")],
        distribution_class=torch.distributions.Categorical,
    )

# LIIR's networks: r_in(o_i, u_i) (the action is an input for continuous actions), the per-agent proxy critic
# and the extrinsic critic, which reads the agents' concatenated observations since VMAS has no state.
intrinsic = make_intrinsic_reward(obs_dim, n_actions, n_agents, action_dim=action_dim)
proxy_critic = make_proxy_critic(obs_dim, n_agents)
extrinsic_critic = make_extrinsic_critic(n_agents * obs_dim, state_key=None)

policy_optimizer = torch.optim.RMSprop(actor.parameters(), lr=5e-4, alpha=0.99, eps=1e-5)
loss = LIIRLoss(actor, intrinsic, proxy_critic, extrinsic_critic, lambda_in=0.01, normalize_advantage=True,
                inner_step=InnerStep(policy_optimizer, max_grad_norm=10.0))  # models the policy step below
loss.set_keys(reward=("agents", "reward"))  # VMAS's per-agent rewards; their mean is the team reward
optimizers = [policy_optimizer, torch.optim.RMSprop(intrinsic.parameters(), lr=5e-4, alpha=0.99, eps=1e-5),
              torch.optim.Adam([*proxy_critic.parameters(), *extrinsic_critic.parameters()], lr=5e-4)]

# TorchRL's Collector: [envs, steps] batches in which VMAS restarts finished episodes (done flags mark them).
collector = Collector(env, actor, frames_per_batch=args.envs * args.max_steps, total_frames=args.frames,
                      auto_register_policy_transforms=False)  # an MLP policy needs no InitTracker
progress = tqdm(total=args.frames, unit="frames")
for batch in collector:
    terms = loss(batch)
    for optimizer in optimizers:
        optimizer.zero_grad()
    sum(value for key, value in terms.items() if key.startswith("loss_")).backward()
    torch.nn.utils.clip_grad_norm_(actor.parameters(), 10.0)  # the clip InnerStep models
    for optimizer in optimizers:
        optimizer.step()
    collector.update_policy_weights_()
    team_reward = batch["next", "agents", "reward"].mean().item()
    progress.update(batch.numel())
    progress.set_postfix(team_reward=f"{team_reward:.3f}", r_in=f"{terms['intrinsic_reward'].item():.3f}")
collector.shutdown()
print(f"last batch: mean team reward per step {team_reward:.4f}")
