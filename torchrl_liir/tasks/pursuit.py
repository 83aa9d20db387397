"""The paper's 1D Pursuit (§5.1) as a trainer task."""
from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.config_checks import COUNT, Check, Text
from torchrl_liir.tasks.base import Task

if TYPE_CHECKING:
    import torch
    from torchrl.envs import EnvBase


class PursuitTask(Task):
    name = "pursuit"

    def config_checks(self) -> dict[str, Check]:
        return {"name": Text(), "run_name": Text(), "num_envs": COUNT, "episode_limit": COUNT, "max_value": COUNT}

    def episode_limit(self, cfg: DictConfig) -> int:
        return int(cfg.task.episode_limit)

    def make_env(self, cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
        from torchrl_liir.envs.pursuit import PursuitEnv

        return PursuitEnv(num_envs=num_envs, max_steps=cfg.task.episode_limit, max_value=cfg.task.max_value,
                          device=device, seed=seed)
