"""Training loop, configuration checks and the paper's pursuit study."""
from torchrl_liir.trainers.config import ConfigError, validate_config
from torchrl_liir.trainers.trainer import NonFiniteLossError, train

__all__ = ["ConfigError", "NonFiniteLossError", "train", "validate_config"]
