"""An algorithm as the trainer's registry knows it: the checks of its ``algo`` config section, which import no
torch (the command line runs them before anything is built), and the :class:`~torchrl_liir.algorithms.recipe.Recipe`
it builds."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import DictConfig

from torchrl_liir.config_checks import (
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    Added,
    Check,
    Choice,
    Integer,
    Text,
    check_section,
)

if TYPE_CHECKING:
    import torch

    from torchrl_liir.algorithms.recipe import EnvDims, Recipe


def network_checks() -> dict[str, Check]:
    """The checks of the keys every algorithm reads, by key: its name, policy optimiser, learning rate, gradient
    clip and γ (its networks' sizes are the ``model`` section's). A new dict: add your own keys to it."""
    return {"name": Text(), "policy_optimizer": Choice(("sgd", "rmsprop", "adam")), "lr_policy": POSITIVE,
            "max_grad_norm": NON_NEGATIVE, "gamma": UNIT}


def actor_critic_checks() -> dict[str, Check]:
    """The checks, by key, of :func:`network_checks` and of the keys of a policy-gradient algorithm with a critic
    (``lr_critic``, ``entropy_coeff``, ``critic_coeff``, ``lmbda``). A new dict: add your own keys to it.

    Examples:
        >>> from torchrl_liir.algorithms import actor_critic_checks
        >>> sorted(actor_critic_checks())  # doctest: +NORMALIZE_WHITESPACE
        ['critic_coeff', 'entropy_coeff', 'gamma', 'lmbda', 'lr_critic', 'lr_policy', 'max_grad_norm', 'name',
         'policy_optimizer']
        >>> actor_critic_checks()["lmbda"].allowed
        'a number >= 0 and <= 1'
    """
    return {**network_checks(), "lr_critic": POSITIVE, "entropy_coeff": NON_NEGATIVE, "critic_coeff": NON_NEGATIVE,
            "lmbda": UNIT}


def exploration_floor_checks() -> dict[str, Check]:
    """The keys of the policy's exploration floor (:class:`~torchrl_liir.modules.ExplorationFloor`), added after
    runs were saved: a run without them had no floor."""
    return {"epsilon_floor_start": Added(UNIT, 0.0), "epsilon_floor_end": Added(UNIT, 0.0),
            "epsilon_floor_anneal_frames": Added(Integer(0), 50000)}


def has_exploration_floor(algo: DictConfig) -> bool:
    """Whether the ``algo`` section (with its added keys filled in) mixes the policy with uniform."""
    return algo.epsilon_floor_start > 0 or algo.epsilon_floor_end > 0


class Algorithm(ABC):
    """One algorithm: the checks of its ``algo`` config section, its capabilities and the :class:`Recipe` it
    builds.

    Capabilities (BenchMARL's ``supports_*`` flags) are checked against the task's before anything is built.

    Examples:
        >>> import torch
        >>> from torchrl_liir.algorithms import Algorithm, EnvDims, get_algorithm
        >>> from torchrl_liir.cli import compose_config
        >>> from torchrl_liir.tasks import get_task
        >>> cfg = compose_config(["task=pursuit", "algo=liir"])
        >>> algorithm = get_algorithm(cfg.algo.name)
        >>> isinstance(algorithm, Algorithm), algorithm.supports_continuous_actions
        (True, True)
        >>> algorithm.check(cfg.algo)  # raises ConfigError on a bad value
        >>> task = get_task(cfg.task.name)
        >>> dims = EnvDims.from_env(task.make_env(cfg, torch.device("cpu"), num_envs=1, seed=0))
        >>> dims.n_agents, dims.obs_dim, dims.n_actions, dims.state_dim
        (2, 2, 3, 2)
        >>> recipe = algorithm.build(cfg.algo, cfg.model, dims, task.episode_limit(cfg), torch.device("cpu"))
        >>> type(recipe.loss).__name__, sorted(recipe.optimizers)
        ('LIIRLoss', ['critic', 'intrinsic', 'policy'])
    """

    #: The name ``algo=`` selects it by (its key in :data:`~torchrl_liir.algorithms.ALGORITHMS`).
    name: ClassVar[str]
    #: The ``algo`` section's default keys and values, which :func:`~torchrl_liir.algorithms.register_algorithm`
    #: gives hydra (``None``: the package's YAML file ``algo/<name>.yaml``, or one on hydra's search path).
    defaults: ClassVar[dict[str, Any] | None] = None
    #: Whether it trains a policy over continuous actions (False: a value or a probability per action).
    supports_continuous_actions: ClassVar[bool] = True

    def takes_continuous_actions(self, algo: DictConfig) -> str | None:
        """``None`` when the configured algorithm trains on continuous actions, else why not (one clause)."""
        if not self.supports_continuous_actions:
            return f"algo={self.name} needs discrete actions"
        if {"epsilon_floor_start", "epsilon_floor_end"} <= set(algo) and has_exploration_floor(algo):
            return (f"algo={self.name}: the exploration floor mixes categorical policies (set "
                    "algo.epsilon_floor_start=0 algo.epsilon_floor_end=0)")
        return None

    @abstractmethod
    def config_checks(self) -> dict[str, Check]:
        """The rule of every key of the ``algo`` section."""

    def check(self, algo: DictConfig) -> None:
        """Checks every key of ``algo`` (unknown and missing keys included) without building anything."""
        check_section(algo, "algo.", self.config_checks())

    def check_batch(self, algo: DictConfig, batch_steps: int) -> None:
        """Checks ``algo`` (already :meth:`check`-ed) against batches of at most ``batch_steps`` valid steps
        (``task.num_envs`` × the episode limit)."""

    @abstractmethod
    def build(self, algo: DictConfig, model: DictConfig, dims: EnvDims, episode_limit: int,
              device: torch.device) -> Recipe:
        """Networks (sized by the ``model`` section), loss, optimiser groups, batch feed and hooks for an env of
        ``dims``."""
