# <<< differs from the twin: what the script is
"""MAPPO on a VMAS scenario, written as TorchRL's multi-agent examples are: its Collector, MultiAgentMLP
networks, ClipPPOLoss with TorchRL's multi-agent keys, a replay buffer of the batch's steps and minibatch epochs.

    pip install -e ".[vmas]"
    python examples/mappo_vmas.py --frames 600000

Its twin examples/liir_vmas.py trains LIIR instead; the two differ only between the marked lines (the loss, the
optimiser and the batch handling LIIR needs), as a test checks.
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
from torchrl.data import LazyTensorStorage, SamplerWithoutReplacement, TensorDictReplayBuffer
from torchrl.objectives import ClipPPOLoss, ValueEstimators

# >>>

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--scenario", default="navigation")
parser.add_argument("--n-agents", type=int, default=3)
parser.add_argument("--max-steps", type=int, default=100)
parser.add_argument("--frames-per-batch", type=int, default=6000)
parser.add_argument("--frames", type=int, default=600_000, help="total environment steps")
# <<< differs from the twin: the minibatch epochs' settings
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--minibatch-size", type=int, default=400)
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
loss_module = ClipPPOLoss(actor_network=policy, critic_network=critic, clip_epsilon=0.2, entropy_coeff=1e-4,
                          normalize_advantage=False)
loss_module.set_keys(reward=env.reward_key, action=env.action_key, done=("agents", "done"),
                     terminated=("agents", "terminated"))
loss_module.make_value_estimator(ValueEstimators.GAE, gamma=args.gamma, lmbda=args.lmbda)
optimizer = torch.optim.Adam(loss_module.parameters(), args.lr)
replay_buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(args.frames_per_batch),
                                       sampler=SamplerWithoutReplacement(), batch_size=args.minibatch_size)
# >>>

progress = tqdm(total=args.frames, unit="frames")
for batch in collector:
    with torch.no_grad():
        loss_module.value_estimator(batch, params=loss_module.critic_network_params,
                                    target_params=loss_module.target_critic_network_params)
    # <<< differs from the twin: the optimiser steps, on minibatches of steps (MAPPO) or whole trajectories (LIIR)
    replay_buffer.extend(batch.reshape(-1))
    for _ in range(args.epochs):
        for _ in range(args.frames_per_batch // args.minibatch_size):
            loss_terms = loss_module(replay_buffer.sample())
            sum(value for key, value in loss_terms.items() if key.startswith("loss_")).backward()
            torch.nn.utils.clip_grad_norm_(loss_module.parameters(), args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
    # >>>
    collector.update_policy_weights_()
    episode_reward = batch["next", "agents", "episode_reward"][batch["next", "agents", "done"]].mean().item()
    progress.update(batch.numel())
    progress.set_postfix(episode_reward=f"{episode_reward:.3f}")
collector.shutdown()
print(f"last batch: mean episode reward {episode_reward:.4f}")
