"""What an algorithm hands the trainer: a :class:`Recipe` (networks, loss, optimiser groups, batch feed, hooks) for an
env of :class:`EnvDims`."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.envs import EnvBase
from torchrl.objectives import LossModule
from torchrl.trainers import TrainerHookBase

from torchrl_liir.hook_bases import BatchFeed
from torchrl_liir.optimizer_steps import OptimizerGroup


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
        """The sizes of ``env``'s specs (a batched env or one env; keys in the ``"agents"`` group)."""
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
class Recipe:
    """Everything one algorithm trains, for one env.

    ``actor`` acts in the collector (exploration included) and greedily under
    ``ExplorationType.DETERMINISTIC``. ``hooks`` (target copies, exploration
    schedules, the feed's replay buffer) are registered with the trainer and
    saved in its checkpoints.

    Attributes:
        actor: the acting policy.
        loss: the algorithm's loss module (its ``loss_*`` entries are summed).
        optimizers: the optimiser groups by name (each with its own gradient clip).
        feed: what each optimiser step trains on (the batch, minibatches or replayed samples).
        hooks: trainer hooks by name.
        intrinsic_reward: LIIR's r_in network (``None`` for the other algorithms).
    """

    actor: TensorDictModuleBase
    loss: LossModule
    optimizers: dict[str, OptimizerGroup]
    feed: BatchFeed = field(default_factory=BatchFeed)
    hooks: dict[str, TrainerHookBase] = field(default_factory=dict)
    intrinsic_reward: TensorDictModule | None = None
