"""The pieces the algorithms build their :class:`~torchrl_liir.algorithms.recipe.Recipe` from: the shared policy and
the optimiser groups of the ``algo`` config section."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from omegaconf import DictConfig
from tensordict.nn import TensorDictModuleBase

from torchrl_liir.algorithms.recipe import EnvDims
from torchrl_liir.modules import make_gaussian_policy, make_gru_policy, make_mlp_policy
from torchrl_liir.modules.exploration_floor import ExplorationFloor
from torchrl_liir.optimizer_steps import OptimizerGroup


def make_policy(algo: DictConfig, model: DictConfig, dims: EnvDims, device: torch.device,
                exploration_floor: ExplorationFloor | None = None) -> TensorDictModuleBase:
    """The shared stochastic policy π_θ(u_i | o_i): ``model.policy`` mlp or gru; categorical (masked when the env
    has an action mask, mixed with a uniform one under ``exploration_floor``) or, for continuous actions,
    TanhNormal within the action bounds."""
    hidden = model.rnn_hidden if model.policy == "gru" else None
    if dims.continuous:
        return make_gaussian_policy(dims.n_agents, dims.obs_dim, dims.action_dim, action_low=dims.action_low.to(device),
                                    action_high=dims.action_high.to(device), num_cells=list(model.num_cells),
                                    hidden_size=hidden, device=device)
    if hidden is not None:
        return make_gru_policy(dims.n_agents, dims.obs_dim, dims.n_actions, hidden_size=hidden,
                               action_mask_key=dims.action_mask_key, exploration_floor=exploration_floor,
                               device=device)
    return make_mlp_policy(dims.n_agents, dims.obs_dim, dims.n_actions, num_cells=list(model.num_cells),
                           action_mask_key=dims.action_mask_key, exploration_floor=exploration_floor, device=device)


def make_optimizer(algo: DictConfig, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """``algo.policy_optimizer`` (sgd | rmsprop | adam); RMSprop as the authors' and pymarl's code (alpha 0.99,
    eps 1e-5)."""
    if algo.policy_optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if algo.policy_optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-5)


def clip(algo: DictConfig) -> float | None:
    """``algo.max_grad_norm`` as a clip (0: none)."""
    return float(algo.max_grad_norm) or None


def optimizer_group(algo: DictConfig, params: Iterable[torch.nn.Parameter], lr: float) -> OptimizerGroup:
    """An ``algo.policy_optimizer`` over ``params`` with the ``algo.max_grad_norm`` clip."""
    return OptimizerGroup(make_optimizer(algo, params, lr), clip(algo))
