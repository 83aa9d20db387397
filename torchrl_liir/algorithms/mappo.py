"""MAPPO (Yu et al. 2022): clipped PPO with a centralised critic V(s), GAE over whole episodes."""
from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.algorithms.algorithm import Algorithm, actor_critic_checks
from torchrl_liir.config_checks import COUNT, POSITIVE, Check, fail

if TYPE_CHECKING:
    import torch

    from torchrl_liir.algorithms.recipe import EnvDims, Recipe


class MAPPO(Algorithm):
    """GAE on each padded batch, then ``ppo_epochs`` passes of ``minibatches`` shuffled minibatches."""

    name = "mappo"

    def config_checks(self) -> dict[str, Check]:
        return {**actor_critic_checks(), "clip_epsilon": POSITIVE, "ppo_epochs": COUNT, "minibatches": COUNT}

    def check_batch(self, algo: DictConfig, batch_steps: int) -> None:
        # Each pass shuffles the batch's valid steps into at most that many minibatches (MinibatchEpochs);
        # a batch holds at most task.num_envs x the episode limit valid steps.
        if algo.minibatches > batch_steps:
            fail("algo.minibatches", algo.minibatches,
                 f"must be <= {batch_steps}, the most valid steps one batch holds (task.num_envs × the episode "
                 "limit): each minibatch needs at least one")

    def build(self, algo: DictConfig, model: DictConfig, dims: EnvDims, episode_limit: int,
              device: torch.device) -> Recipe:
        from torchrl_liir.algorithms.base import make_policy, optimizer_group
        from torchrl_liir.algorithms.feeds import MinibatchEpochs
        from torchrl_liir.algorithms.recipe import Recipe
        from torchrl_liir.modules import make_agent_value_critic
        from torchrl_liir.objectives import EpisodeMAPPOLoss

        actor = make_policy(algo, model, dims, device)
        critic = make_agent_value_critic(dims.state_dim, dims.n_agents, num_cells=list(model.num_cells),
                                         state_key=dims.state_key, device=device)
        loss = EpisodeMAPPOLoss(actor, critic, clip_epsilon=algo.clip_epsilon, entropy_coeff=algo.entropy_coeff,
                                critic_coeff=algo.critic_coeff, gamma=algo.gamma, lmbda=algo.lmbda)
        optimizers = {
            "policy": optimizer_group(algo, actor.parameters(), algo.lr_policy),
            "critic": optimizer_group(algo, critic.parameters(), algo.lr_critic),
        }
        return Recipe(actor, loss, optimizers, feed=MinibatchEpochs(loss.add_advantage, algo.ppo_epochs,
                                                                    algo.minibatches))
