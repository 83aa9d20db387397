"""The experiment layer: TorchRL's Trainer running an algorithm's recipe on a task's env. Imported on first use
(:mod:`torchrl_liir._lazy`): the config checks (:mod:`torchrl_liir.trainers.config`) import no torch."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {
    "CheckpointFileError": "torchrl_liir.trainers.checkpoints",
    "ConfigError": "torchrl_liir.config_checks",
    "EpisodeTrainer": "torchrl_liir.trainers.trainer",
    "LoadedRun": "torchrl_liir.trainers.trainer",
    "NonFiniteError": "torchrl_liir.optimizer_steps",
    "RunDirectoryError": "torchrl_liir.trainers.run_directory",
    "RunInterrupted": "torchrl_liir.trainers.signals",
    "check_config": "torchrl_liir.trainers.config",
    "load_run": "torchrl_liir.trainers.trainer",
    "make_trainer": "torchrl_liir.trainers.trainer",
    "train": "torchrl_liir.trainers.population",
})

if TYPE_CHECKING:
    from torchrl_liir.config_checks import ConfigError
    from torchrl_liir.optimizer_steps import NonFiniteError
    from torchrl_liir.trainers.checkpoints import CheckpointFileError
    from torchrl_liir.trainers.config import check_config
    from torchrl_liir.trainers.population import train
    from torchrl_liir.trainers.run_directory import RunDirectoryError
    from torchrl_liir.trainers.signals import RunInterrupted
    from torchrl_liir.trainers.trainer import EpisodeTrainer, LoadedRun, load_run, make_trainer

__all__ = ["CheckpointFileError", "ConfigError", "EpisodeTrainer", "LoadedRun", "NonFiniteError", "RunDirectoryError",
           "RunInterrupted", "check_config", "load_run", "make_trainer", "train"]
