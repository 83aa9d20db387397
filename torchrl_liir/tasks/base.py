"""A task: how the trainer builds one environment family from its config section (BenchMARL's task)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from omegaconf import DictConfig

from torchrl_liir.config_checks import Check, check_section

if TYPE_CHECKING:
    import torch
    from torchrl.envs import EnvBase


class Task(ABC):
    """An environment family: its config keys and checks, its episode limit and its batched env.

    The checks and the episode limit import no torch (the command line runs them before anything is built); the
    env's code is imported by :meth:`make_env`. Each method takes the trainer's whole config (``cfg.task`` is the
    task's section).

    Examples:
        >>> import torch
        >>> from torchrl_liir.cli import compose_config
        >>> from torchrl_liir.tasks import Task, get_task
        >>> cfg = compose_config(["task=pursuit"])
        >>> task = get_task(cfg.task.name)
        >>> isinstance(task, Task), task.episode_limit(cfg), task.continuous_actions(cfg)
        (True, 20, False)
        >>> task.check(cfg)  # raises ConfigError on a bad value
        >>> env = task.make_env(cfg, torch.device("cpu"), num_envs=2, seed=0)
        >>> type(env).__name__, env.batch_size
        ('PursuitEnv', torch.Size([2]))
    """

    #: The name ``task=`` selects it by (its key in :data:`~torchrl_liir.tasks.TASKS`).
    name: str
    #: The ``task`` section's default keys and values, which :func:`~torchrl_liir.tasks.register_task` gives hydra
    #: (``None``: the package's YAML file ``task/<name>.yaml``, or one on hydra's search path).
    defaults: ClassVar[dict[str, Any] | None] = None

    @abstractmethod
    def config_checks(self) -> dict[str, Check]:
        """The rule of every key of the ``task`` config section."""

    def check(self, cfg: DictConfig) -> None:
        """Checks ``cfg.task`` (and the keys outside it that the task reads) without building anything."""
        check_section(cfg.task, "task.", self.config_checks())

    @abstractmethod
    def episode_limit(self, cfg: DictConfig) -> int:
        """The longest episode of the configured env."""

    @abstractmethod
    def make_env(self, cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
        """``num_envs`` envs (games, battles) batched in one env."""

    def continuous_actions(self, cfg: DictConfig) -> bool:
        """Whether the configured env's actions are continuous (checked against the algorithm's capabilities
        before anything is built)."""
        return False

    def test_envs(self, cfg: DictConfig) -> int:
        """Envs of the test env: as many as training ones, so compiled kernels serve both."""
        return int(cfg.task.num_envs)

    def shared_random_state(self) -> dict | None:
        """The random state all of the task's envs in a process share, beyond torch's, NumPy's and Python's global
        streams (``None``: none). Checkpoints hold it, and a population swaps it in for each member's turn."""
        return None

    def set_shared_random_state(self, state: dict) -> None:
        """Restores a state :meth:`shared_random_state` returned."""
