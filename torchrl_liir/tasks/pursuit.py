"""The paper's 1D Pursuit (§5.1) as a trainer task."""
from __future__ import annotations

import torch
from omegaconf import DictConfig
from torchrl.envs import EnvBase

from torchrl_liir.config_checks import COUNT, Check, Text
from torchrl_liir.envs import PursuitEnv
from torchrl_liir.tasks.base import Task


class PursuitTask(Task):
    name = "pursuit"

    def config_checks(self) -> dict[str, Check]:
        return {"name": Text(), "run_name": Text(), "num_envs": COUNT, "max_steps": COUNT, "max_value": COUNT}

    def episode_limit(self, cfg: DictConfig) -> int:
        return int(cfg.env.max_steps)

    def make_env(self, cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
        return PursuitEnv(num_envs=num_envs, max_steps=cfg.env.max_steps, max_value=cfg.env.max_value,
                          device=device, seed=seed)
