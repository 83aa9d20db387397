"""
LIIR in your own TorchRL loop
=============================

LIIR gives each agent of a team that shares one reward its own learned intrinsic reward r_in_η(o_i, u_i).
Each agent's policy is trained on its proxy reward r_ex + λ·r_in with its own proxy critic, and the
intrinsic-reward parameters η are trained by a meta-gradient: how one policy step driven by r_in changes the
real team return.

This tutorial builds those pieces by hand and trains them in a plain loop, with no trainer and no config
files: an environment, a policy, the intrinsic reward network, the critics, ``LIIRLoss``, a collector and a
few updates. The environment is the paper's 1D Pursuit (``PursuitEnv``), which ships with the package and
needs nothing else installed.
"""

# %%
# The environment
# ---------------
#
# ``PursuitEnv`` runs a batch of independent games in one TorchRL env: here 32 games, the paper's batch of 32
# episodes per update. Two agents each hold an integer in {-10..10} and move it by -1, 0 or +1; the team
# earns +0.01 when both move towards the hidden target 0 and -0.01 when both move away. Its keys follow
# TorchRL's multi-agent layout: the agents' entries sit in the ``"agents"`` group, the team reward and the
# global ``"state"`` at the root.
#
# Everything is seeded, and torch runs on one thread (``configure_runtime``), so the numbers below are the
# same at every run.

import torch

from torchrl_liir import (
    EpisodeCollector,
    InnerStep,
    IntrinsicRewardTransform,
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

env = PursuitEnv(num_envs=32, seed=0)
n_agents, n_actions = env.n_agents, env.n_actions
obs_dim = env.observation_spec["agents", "observation"].shape[-1]
state_dim = env.observation_spec["state"].shape[-1]
print(f"{n_agents} agents, {n_actions} actions, observation {obs_dim}, state {state_dim}")
print(env.reset())

# %%
# The networks
# ------------
#
# Four networks, each a ``TensorDictModule`` that reads and writes the keys above:
#
# - the policy π_θ(u_i | o_i), one MLP shared by the agents, sampling only the moves the action mask allows;
# - the intrinsic reward r_in_η(o_i, u_i), one number per agent and step;
# - the proxy critic V_proxy(s, o_i, i), a per-agent value of the proxy reward r_ex + λ·r_in;
# - the extrinsic critic V_ex(s), the team's value of the real reward.
#
# Small hidden layers keep this tutorial fast.

cells = [32, 32]
actor = make_mlp_policy(n_agents, obs_dim, n_actions, num_cells=cells, action_mask_key=("agents", "action_mask"))
intrinsic = make_intrinsic_reward(obs_dim, n_actions, n_agents, num_cells=cells)
proxy_critic = make_proxy_critic(obs_dim, n_agents, num_cells=cells, state_dim=state_dim)
extrinsic_critic = make_extrinsic_critic(state_dim, num_cells=cells)

# %%
# The loss and the optimisers
# ---------------------------
#
# ``LIIRLoss`` takes the four networks and an ``InnerStep``: the policy's optimiser and gradient clip. The
# meta-gradient of η differentiates through one policy step, and ``InnerStep`` tells it which step the policy
# really takes (SGD, RMSprop or Adam, with the clip). Each parameter set gets its own optimiser: θ the one
# ``InnerStep`` models, η RMSprop at 5e-4 (the trainer's default, the authors' code's) and the critics Adam.
#
# The loss returns one ``loss_*`` term per parameter set. Each set gets gradient only from its own terms, so
# their sum is the loss to backpropagate.

policy_optimizer = torch.optim.RMSprop(actor.parameters(), lr=5e-3, alpha=0.99, eps=1e-5)
loss = LIIRLoss(actor, intrinsic, proxy_critic, extrinsic_critic,
                inner_step=InnerStep(policy_optimizer, max_grad_norm=10.0),
                lambda_in=0.01, entropy_coeff=0.01, gamma=0.99, lmbda=0.8)
optimizers = [
    policy_optimizer,
    torch.optim.RMSprop(intrinsic.parameters(), lr=5e-4, alpha=0.99, eps=1e-5),
    torch.optim.Adam([*proxy_critic.parameters(), *extrinsic_critic.parameters()], lr=5e-3),
]
print("a batch must hold:", loss.in_keys)
print("the loss returns:", loss.out_keys)

# %%
# The collector
# -------------
#
# ``EpisodeCollector`` plays one whole episode in each of the 32 games, every one from its start with the
# current policy, and hands over a ``[32, T]`` batch trimmed to the longest episode. ``("collector",
# "mask")`` marks each episode's steps; the rest is padding, which the loss leaves out. Whole trajectories
# matter: the TD(λ) estimates run along time, and the meta-gradient models one optimiser step on the whole
# batch.
#
# The ``postproc`` here writes r_in and the proxy reward of every step into the batch with
# ``IntrinsicRewardTransform``. The loss does not need them (it recomputes r_in with gradients); they are
# there to be looked at. The same transform also works as an env transform.

collector = EpisodeCollector(env, actor, postproc=IntrinsicRewardTransform(intrinsic, lambda_in=0.01))
batch = next(iter(collector))
print("batch:", batch.batch_size, "steps played:", int(batch["collector", "mask"].sum()))
print("r_in per agent:", batch["next", "agents", "intrinsic_reward"].shape)
print("r_in of the first game's first 3 steps:", batch["next", "agents", "intrinsic_reward"][0, :3, :, 0])

# %%
# Training
# --------
#
# One update per batch: the loss, one backward through the sum of its ``loss_*`` terms, the policy's gradient
# clip (the one ``InnerStep`` models) and one step of each optimiser. ``meta_objective`` is J_ex(θ′), the
# team's objective after the modelled policy step, which η ascends.


def episode_returns(batch):
    """The team return of each episode: its rewards summed over its own steps."""
    mask = batch["collector", "mask"].float()
    return (batch["next", "reward"][..., 0] * mask).sum(-1)


for update, batch in enumerate(collector):
    terms = loss(batch)
    for optimizer in optimizers:
        optimizer.zero_grad()
    sum(value for key, value in terms.items() if key.startswith("loss_")).backward()
    torch.nn.utils.clip_grad_norm_(actor.parameters(), 10.0)
    for optimizer in optimizers:
        optimizer.step()
    collector.update_policy_weights_()
    if update % 8 == 0 or update == 39:
        print(f"update {update:2d}: return {episode_returns(batch).mean().item():+.4f}, "
              f"mean r_in {terms['intrinsic_reward'].item():.3f}, entropy {terms['entropy'].item():.3f}, "
              f"J_ex(θ′) {terms['meta_objective'].item():+.4f}")
    if update == 39:
        break
collector.shutdown()

# %%
# Forty updates of 32 episodes are few for Pursuit (the trainer's default runs 120,000 steps, about 190
# updates), so the numbers above show the loop working, not LIIR's result. What stays the same at any budget
# is the loop itself: swap ``PursuitEnv`` for another multi-agent env (``SMAXEnv``, TorchRL's ``VmasEnv``, your
# own) and the networks' sizes for its, and the rest is unchanged.
#
# Where to go next:
#
# - the trainer runs this loop with test episodes, checkpoints and CSV tables:
#   ``python scripts/train.py`` (see *Populations* for many seeds at once);
# - the next tutorial puts ``LIIRLoss`` into TorchRL's own multi-agent example;
# - *The meta-gradient* explains ``loss_intrinsic`` and checks it numerically.
