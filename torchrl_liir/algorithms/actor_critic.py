"""The actor-critic baselines without intrinsic reward: IAC (per-agent critics V(o_i)) and Central-V (one
centralised critic V(s)), both on the team reward."""
from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.algorithms.algorithm import Algorithm, actor_critic_checks
from torchrl_liir.config_checks import Boolean, Check

if TYPE_CHECKING:
    import torch

    from torchrl_liir.algorithms.recipe import EnvDims, Recipe


class ActorCritic(Algorithm):
    """A shared policy and a critic trained by TD(λ); the critic is Adam-optimised."""

    def config_checks(self) -> dict[str, Check]:
        return {**actor_critic_checks(), "normalize_advantage": Boolean()}

    def make_critic(self, model: DictConfig, dims: EnvDims, device: torch.device) -> torch.nn.Module:
        raise NotImplementedError

    def build(self, algo: DictConfig, model: DictConfig, dims: EnvDims, episode_limit: int,
              device: torch.device) -> Recipe:
        import torch

        from torchrl_liir.algorithms.base import clip, make_policy, optimizer_group
        from torchrl_liir.algorithms.recipe import Recipe
        from torchrl_liir.objectives import MultiAgentActorCriticLoss
        from torchrl_liir.optimizer_steps import OptimizerGroup

        actor = make_policy(algo, model, dims, device)
        critic = self.make_critic(model, dims, device)
        loss = MultiAgentActorCriticLoss(actor, critic, dims.n_agents, entropy_coeff=algo.entropy_coeff,
                                         critic_coeff=algo.critic_coeff, normalize_advantage=algo.normalize_advantage,
                                         gamma=algo.gamma, lmbda=algo.lmbda)
        if dims.has_agent_mask:
            loss.set_keys(agent_mask=("agents", "alive"))
        optimizers = {"policy": optimizer_group(algo, actor.parameters(), algo.lr_policy),
                      "critic": OptimizerGroup(torch.optim.Adam(critic.parameters(), lr=algo.lr_critic), clip(algo))}
        return Recipe(actor, loss, optimizers)


class IAC(ActorCritic):
    """Independent actor-critic: per-agent critics V(o_i)."""

    name = "iac"

    def make_critic(self, model: DictConfig, dims: EnvDims, device: torch.device) -> torch.nn.Module:
        from torchrl_liir.modules.critics import make_proxy_critic

        return make_proxy_critic(dims.obs_dim, dims.n_agents, num_cells=list(model.num_cells),
                                 out_key=("agents", "state_value"), device=device)


class CentralV(ActorCritic):
    """Central-V: one centralised critic V(s)."""

    name = "central_v"

    def make_critic(self, model: DictConfig, dims: EnvDims, device: torch.device) -> torch.nn.Module:
        from torchrl_liir.modules.critics import make_extrinsic_critic

        return make_extrinsic_critic(dims.state_dim, num_cells=list(model.num_cells), state_key=dims.state_key,
                                     device=device)
