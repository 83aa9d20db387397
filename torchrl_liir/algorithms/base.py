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
    """The shared stochastic policy π_θ(u_i | o_i) for an env of ``dims``, on ``device``: a TensorDict module that
    reads ``("agents", "observation")`` and samples ``("agents", "action")``. ``model.policy`` mlp (of
    ``model.num_cells``) or gru (of ``model.rnn_hidden``); categorical (masked when the env has an action mask,
    mixed with a uniform one under ``exploration_floor``) or, for continuous actions, TanhNormal within the action
    bounds. The ``algo`` section is taken for a uniform signature: the policy's shape is the ``model`` section's."""
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


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The optimiser ``name`` (sgd | rmsprop | adam) over ``params``; RMSprop as the authors' and pymarl's code
    (alpha 0.99, eps 1e-5)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-5)


def clip(algo: DictConfig) -> float | None:
    """The gradient-norm clip of the ``algo`` section: ``algo.max_grad_norm`` as a float, ``None`` for 0 (no clip).

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from torchrl_liir.algorithms import clip
        >>> clip(OmegaConf.create({"max_grad_norm": 10})), clip(OmegaConf.create({"max_grad_norm": 0.0}))
        (10.0, None)
    """
    return float(algo.max_grad_norm) or None


def optimizer_group(algo: DictConfig, params: Iterable[torch.nn.Parameter], lr: float) -> OptimizerGroup:
    """An :class:`~torchrl_liir.optimizer_steps.OptimizerGroup`: the ``algo`` section's ``policy_optimizer`` (sgd,
    rmsprop or adam) over ``params`` with learning rate ``lr``, and its ``max_grad_norm`` clip (:func:`clip`).

    Examples:
        >>> import torch
        >>> from omegaconf import OmegaConf
        >>> from torchrl_liir.algorithms import optimizer_group
        >>> algo = OmegaConf.create({"policy_optimizer": "adam", "max_grad_norm": 10.0})
        >>> group = optimizer_group(algo, torch.nn.Linear(2, 1).parameters(), lr=0.01)
        >>> type(group.optimizer).__name__, group.max_grad_norm
        ('Adam', 10.0)
    """
    return OptimizerGroup(make_optimizer(algo.policy_optimizer, params, lr), clip(algo))
