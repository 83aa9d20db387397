"""LIIR (paper §4): the proxy policy gradient on r_ex + λ·r_in (eq. 2–4) and the meta-gradient of η (eq. 7–9)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.algorithms.algorithm import Algorithm, actor_critic_checks, exploration_floor_checks
from torchrl_liir.config_checks import NON_NEGATIVE, POSITIVE, Added, Boolean, Check, Choice

if TYPE_CHECKING:
    import torch

    from torchrl_liir.algorithms.recipe import EnvDims, Recipe


class LIIR(Algorithm):
    """Three optimiser groups: the policy θ (clipped: the step :class:`InnerStep` models), the intrinsic
    reward η (not clipped) and both critics (clipped); η on RMSprop as the authors' code (or Adam), the critics on
    the library's Adam (or RMSprop as the authors' code)."""

    name = "liir"

    def config_checks(self) -> dict[str, Check]:
        return {**actor_critic_checks(),  # every policy optimiser of network_checks is one InnerStep models
                "lambda_in": NON_NEGATIVE, "intrinsic_bound": POSITIVE, "agent_id": Boolean(),
                "proxy_critic": Choice(("state", "obs")), "lr_intrinsic": POSITIVE,
                "normalize_advantage": Boolean(), "meta_gradient": Choice(("fast", "reference")),
                "variant": Choice(("paper", "released_code")),
                "intrinsic_optimizer": Added(Choice(("adam", "rmsprop")), "adam"),
                "critic_optimizer": Added(Choice(("adam", "rmsprop")), "adam"),
                "intrinsic_centring": Added(Choice(("none", "policy")), "none"),
                "intrinsic_scale": Added(Choice(("none", "batch_rms")), "none"),
                "meta_entropy_coeff": Added(NON_NEGATIVE, 0.0),
                **exploration_floor_checks()}

    def build(self, algo: DictConfig, model: DictConfig, dims: EnvDims, episode_limit: int,
              device: torch.device) -> Recipe:
        from torchrl_liir.algorithms.base import clip, make_optimizer, optimizer_group
        from torchrl_liir.algorithms.feeds import policy_with_exploration_floor
        from torchrl_liir.algorithms.recipe import Recipe
        from torchrl_liir.modules.critics import make_extrinsic_critic, make_proxy_critic
        from torchrl_liir.modules.intrinsic_reward import make_intrinsic_reward
        from torchrl_liir.objectives import InnerStep, LIIRLoss
        from torchrl_liir.optimizer_steps import OptimizerGroup

        hidden = list(model.num_cells)
        actor, hooks = policy_with_exploration_floor(algo, model, dims, device)
        bound = None if algo.intrinsic_scale == "batch_rms" else algo.intrinsic_bound  # batch_rms: unbounded
        intrinsic = make_intrinsic_reward(dims.obs_dim, dims.n_actions, dims.n_agents, num_cells=hidden,
                                          bound=bound, agent_id=algo.agent_id,
                                          action_dim=dims.action_dim, device=device)
        proxy_critic = make_proxy_critic(dims.obs_dim, dims.n_agents, num_cells=hidden, device=device,
                                         state_dim=dims.state_dim if algo.proxy_critic == "state" else None,
                                         state_key=dims.state_key)
        extrinsic_critic = make_extrinsic_critic(dims.state_dim, num_cells=hidden, state_key=dims.state_key,
                                                 device=device)
        policy = optimizer_group(algo, actor.parameters(), algo.lr_policy)
        loss = LIIRLoss(
            actor, intrinsic, proxy_critic, extrinsic_critic,
            inner_step=InnerStep(policy.optimizer, policy.max_grad_norm),
            lambda_in=algo.lambda_in, entropy_coeff=algo.entropy_coeff, critic_coeff=algo.critic_coeff,
            normalize_advantage=algo.normalize_advantage, meta_gradient=algo.meta_gradient, variant=algo.variant,
            intrinsic_centring=algo.intrinsic_centring, intrinsic_scale=algo.intrinsic_scale,
            meta_entropy_coeff=algo.meta_entropy_coeff,
            gamma=algo.gamma, lmbda=algo.lmbda,
        )
        if dims.has_agent_mask:
            loss.set_keys(agent_mask=("agents", "alive"))
        critics = [*proxy_critic.parameters(), *extrinsic_critic.parameters()]
        optimizers = {
            "policy": policy,
            "intrinsic": OptimizerGroup(make_optimizer(algo.intrinsic_optimizer, intrinsic.parameters(),
                                                       algo.lr_intrinsic), None),
            "critic": OptimizerGroup(make_optimizer(algo.critic_optimizer, critics, algo.lr_critic), clip(algo)),
        }
        return Recipe(actor, loss, optimizers, hooks=hooks, intrinsic_reward=intrinsic)
