"""Validation of the trainer configuration: a bad value fails at once, in one line."""
from __future__ import annotations

from typing import Any, NoReturn

import torch
from omegaconf import DictConfig

ENVS = ("pursuit",)
ALGOS = ("liir", "iac", "central_v")
POLICIES = ("mlp", "gru")
POLICY_OPTIMIZERS = ("sgd", "rmsprop")
LOGGERS = ("csv", "tensorboard")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the value."""


def _fail(key: str, value: Any, reason: str) -> NoReturn:
    raise ConfigError(f"{key}={value!r}: {reason}")


def _choice(cfg: DictConfig, key: str, choices: tuple[str, ...]) -> None:
    value = _get(cfg, key)
    if value not in choices:
        _fail(key, value, f"must be one of {', '.join(choices)}")


def _get(cfg: DictConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            _fail(key, None, "missing from the configuration")
        node = node[part]
    return node


def _positive(cfg: DictConfig, key: str, strict: bool = True) -> None:
    value = _get(cfg, key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (strict and value == 0):
        _fail(key, value, "must be a positive number" if strict else "must be >= 0")


def validate_config(cfg: DictConfig) -> None:
    """Checks every value the trainer reads; raises :class:`ConfigError` on the first bad one."""
    _choice(cfg, "env.name", ENVS)
    _choice(cfg, "algo.name", ALGOS)
    _choice(cfg, "algo.policy", POLICIES)
    _choice(cfg, "algo.policy_optimizer", POLICY_OPTIMIZERS)
    _choice(cfg, "logger.backend", LOGGERS)
    for key in ("algo.lr_policy", "algo.lr_critic", "collector.total_frames",
                "collector.episodes_per_batch", "env.num_envs", "env.max_steps", "env.max_value"):
        _positive(cfg, key)
    for key in ("algo.entropy_coeff", "algo.critic_coeff", "algo.max_grad_norm"):
        _positive(cfg, key, strict=False)
    for key in ("algo.gamma", "algo.lmbda"):
        value = _get(cfg, key)
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            _fail(key, value, "must be in [0, 1]")
    if cfg.algo.name == "liir":
        _positive(cfg, "algo.lambda_in", strict=False)
        _positive(cfg, "algo.lr_intrinsic")
        _choice(cfg, "algo.meta_gradient", ("fast", "reference"))
        _choice(cfg, "algo.variant", ("paper", "released_code"))
    device = str(_get(cfg, "device"))
    try:
        torch.device(device)
    except RuntimeError:
        _fail("device", device, "not a torch device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        _fail("device", device, "CUDA is not available on this machine")
