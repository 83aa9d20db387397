"""The experiment layer: TorchRL's Trainer running an algorithm's recipe on a task's env."""
from torchrl_liir.algorithms.base import NonFiniteError
from torchrl_liir.config_checks import ConfigError
from torchrl_liir.trainers.checkpoints import CheckpointFileError
from torchrl_liir.trainers.config import check_config
from torchrl_liir.trainers.run_directory import RunDirectoryError
from torchrl_liir.trainers.signals import RunInterrupted
from torchrl_liir.trainers.trainer import EpisodeTrainer, load_run, make_trainer, train

__all__ = ["CheckpointFileError", "ConfigError", "EpisodeTrainer", "NonFiniteError", "RunDirectoryError",
           "RunInterrupted", "check_config", "load_run", "make_trainer", "train"]
