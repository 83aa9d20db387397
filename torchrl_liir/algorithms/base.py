"""What an algorithm hands the trainer: a :class:`Recipe` (networks, loss, optimiser groups, batch feed), and the
pieces the algorithms build it from. How it is asked for one: :class:`~torchrl_liir.algorithms.algorithm.Algorithm`."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.envs import EnvBase
from torchrl.objectives import LossModule
from torchrl.trainers import TrainerHookBase

from torchrl_liir.algorithms.algorithm import (  # noqa: F401  (re-exported)
    Algorithm,
    actor_critic_checks,
    exploration_floor_checks,
    has_exploration_floor,
    network_checks,
)
from torchrl_liir.modules import make_gaussian_policy, make_gru_policy, make_mlp_policy
from torchrl_liir.modules.exploration_floor import ExplorationFloor


@dataclass(frozen=True)
class EnvDims:
    """Sizes and layout read from an environment's specs.

    Discrete actions have ``n_actions``, continuous ones ``action_dim`` and bounds. Without a global
    ``"state"``, ``state_key`` is ``None`` and the critics read the agents' concatenated observations
    (``state_dim = n_agents·obs_dim``).
    """

    n_agents: int
    obs_dim: int
    state_dim: int
    has_agent_mask: bool
    n_actions: int | None = None
    action_dim: int | None = None
    action_low: torch.Tensor | None = None
    action_high: torch.Tensor | None = None
    state_key: str | None = "state"
    action_mask_key: NestedKey | None = None

    @property
    def continuous(self) -> bool:
        return self.action_dim is not None

    @classmethod
    def from_env(cls, env: EnvBase) -> EnvDims:
        action = env.full_action_spec["agents", "action"]
        observation = env.observation_spec
        keys = observation.keys(True)
        n_agents, obs_dim = observation["agents", "observation"].shape[-2:]
        has_state = "state" in keys
        sizes = {"n_agents": n_agents, "obs_dim": obs_dim,
                 "state_dim": observation["state"].shape[-1] if has_state else n_agents * obs_dim,
                 "has_agent_mask": ("agents", "alive") in keys, "state_key": "state" if has_state else None,
                 "action_mask_key": ("agents", "action_mask") if ("agents", "action_mask") in keys else None}
        if action.domain == "discrete":
            return cls(**sizes, n_actions=action.space.n)
        batch = (0,) * (action.ndim - 2)  # the env's batch dims: bounds per agent and action dim
        return cls(**sizes, action_dim=action.shape[-1], action_low=action.space.low[batch].clone(),
                   action_high=action.space.high[batch].clone())


@dataclass
class OptimizerGroup:
    """An optimiser and the clip of its parameters' gradient norm (``None``: not clipped)."""

    optimizer: torch.optim.Optimizer
    max_grad_norm: float | None

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]


class NonFiniteError(RuntimeError):
    """A loss term, gradient norm or parameter became NaN or infinite."""


def _check_finite(values: dict[str, torch.Tensor], message: str, update: int) -> None:
    if not torch.stack([v.detach().float() for v in values.values()]).isfinite().all():
        name, value = next((n, v) for n, v in values.items() if not torch.isfinite(v))
        raise NonFiniteError(message.format(name=name, value=value.item(), update=update))


def guarded_step(groups: dict[str, OptimizerGroup], terms: dict[str, torch.Tensor], update: int
                 ) -> dict[str, torch.Tensor]:
    """One optimiser step of every group on the summed loss ``terms``: backward, each group's own clip, step;
    returns the ``grad_norm_<group>`` before clipping. Raises :class:`NonFiniteError` (naming ``update``) as soon
    as a term, a gradient norm or, after the step, a parameter is NaN or infinite."""
    _check_finite(terms, "{name}={value} at update {update}", update)
    for group in groups.values():
        group.optimizer.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    norms = {f"grad_norm_{name}": torch.nn.utils.clip_grad_norm_(group.params, group.max_grad_norm or math.inf)
             for name, group in groups.items()}
    _check_finite(norms, "{name}={value} at update {update}", update)
    for group in groups.values():
        group.optimizer.step()
    # The largest |parameter| of each group (foreach max-norm): NaN or inf exactly when one of them is.
    largest = {name: torch.nn.utils.get_total_norm(group.params, norm_type=math.inf) for name, group in groups.items()}
    _check_finite(largest, "{name} parameters became {value} in the step of update {update}", update)
    return {name: norm.detach() for name, norm in norms.items()}


class StatelessHook(TrainerHookBase):
    """A trainer hook with nothing to checkpoint."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        return None


class BatchFeed(StatelessHook):
    """How one collected batch of padded ``[episodes, T]`` episodes becomes the inputs of optimiser steps.

    The trainer runs ``epochs`` epochs of ``steps_per_epoch`` optimiser steps per batch; a feed that
    registers nothing hands each step the whole batch (on-policy losses, one step per batch).
    """

    epochs: int = 1
    steps_per_epoch: int = 1

    def register(self, trainer, name: str = "batch_feed") -> None:
        return None


@dataclass
class Recipe:
    """Everything one algorithm trains, for one env.

    ``actor`` acts in the collector (exploration included) and greedily under
    ``ExplorationType.DETERMINISTIC``. ``hooks`` (target copies, exploration
    schedules, the feed's replay buffer) are registered with the trainer and
    saved in its checkpoints.
    """

    actor: TensorDictModuleBase
    loss: LossModule
    optimizers: dict[str, OptimizerGroup]
    feed: BatchFeed = field(default_factory=BatchFeed)
    hooks: dict[str, TrainerHookBase] = field(default_factory=dict)
    intrinsic_reward: TensorDictModule | None = None


def make_policy(algo: DictConfig, dims: EnvDims, device: torch.device,
                exploration_floor: ExplorationFloor | None = None) -> TensorDictModuleBase:
    """The shared stochastic policy π_θ(u_i | o_i): ``algo.policy`` mlp or gru; categorical (masked when the env
    has an action mask, mixed with a uniform one under ``exploration_floor``) or, for continuous actions,
    TanhNormal within the action bounds."""
    hidden = algo.rnn_hidden if algo.policy == "gru" else None
    if dims.continuous:
        return make_gaussian_policy(dims.n_agents, dims.obs_dim, dims.action_dim, action_low=dims.action_low.to(device),
                                    action_high=dims.action_high.to(device), num_cells=list(algo.num_cells),
                                    hidden_size=hidden, device=device)
    if hidden is not None:
        return make_gru_policy(dims.n_agents, dims.obs_dim, dims.n_actions, hidden_size=hidden,
                               action_mask_key=dims.action_mask_key, exploration_floor=exploration_floor,
                               device=device)
    return make_mlp_policy(dims.n_agents, dims.obs_dim, dims.n_actions, num_cells=list(algo.num_cells),
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
