"""COMA (Foerster et al. 2018): counterfactual advantage from a centralised Q(s, u) critic with a target copy."""
from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.algorithms.algorithm import Algorithm, actor_critic_checks, exploration_floor_checks
from torchrl_liir.config_checks import COUNT, Added, Check, Choice

if TYPE_CHECKING:
    import torch

    from torchrl_liir.algorithms.recipe import EnvDims, Recipe


class COMA(Algorithm):
    """On-policy over whole batches; the target critic is copied every ``target_update_interval`` batches.
    ``algo.epsilon_floor_*`` give the policy pymarl's COMA exploration (its ``coma.yaml``: π mixed with uniform,
    ε 0.5 → 0.01 over 100k steps, no entropy term); ``algo.critic_updates=time_step`` its critic training, one
    critic step per time step of the batch (:class:`~torchrl_liir.algorithms.feeds.CriticTimeSteps`)."""

    name = "coma"
    supports_continuous_actions = False

    def config_checks(self) -> dict[str, Check]:
        return {**actor_critic_checks(), **exploration_floor_checks(), "target_update_interval": COUNT,
                "critic_updates": Added(Choice(("batch", "time_step")), "batch")}

    def build(self, algo: DictConfig, model: DictConfig, dims: EnvDims, episode_limit: int,
              device: torch.device) -> Recipe:
        from torchrl_liir.algorithms.base import optimizer_group
        from torchrl_liir.algorithms.feeds import CriticTimeSteps, TargetCopies, policy_with_exploration_floor
        from torchrl_liir.algorithms.recipe import Recipe
        from torchrl_liir.modules import make_coma_critic
        from torchrl_liir.objectives import COMALoss

        actor, hooks = policy_with_exploration_floor(algo, model, dims, device)
        critic = make_coma_critic(dims.state_dim, dims.n_agents, dims.n_actions, num_cells=list(model.num_cells),
                                  state_key=dims.state_key, device=device)
        loss = COMALoss(actor, critic, dims.n_agents, entropy_coeff=algo.entropy_coeff,
                        critic_coeff=algo.critic_coeff, gamma=algo.gamma, lmbda=algo.lmbda,
                        critic_updates=algo.critic_updates)
        loss.set_keys(agent_mask=("agents", "alive"))  # an absent key (pursuit) counts every agent as alive
        optimizers = {"policy": optimizer_group(algo, actor.parameters(), algo.lr_policy)}
        critic_group = optimizer_group(algo, critic.parameters(), algo.lr_critic)
        if algo.critic_updates == "time_step":
            hooks["critic_time_steps"] = CriticTimeSteps(loss, critic_group)
        else:
            optimizers["critic"] = critic_group
        hooks["target_copies"] = TargetCopies(loss, algo.target_update_interval, per="batch")
        return Recipe(actor, loss, optimizers, hooks=hooks)
