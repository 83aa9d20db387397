"""Validation of the trainer configuration: a bad value fails at once, in one line."""
from __future__ import annotations

from typing import Any, NoReturn

import torch
from omegaconf import DictConfig

ENVS = ("pursuit", "smax", "smac", "smacv2")
SMAC_BACKENDS = ("sc2", "smax")
BASELINES = ("coma", "iql", "qmix", "mappo")
Q_ALGOS = ("iql", "qmix")  # no critic, entropy or λ
ALGOS = ("liir", "iac", "central_v", *BASELINES)
POLICIES = ("mlp", "gru")
POLICY_OPTIMIZERS = ("sgd", "rmsprop")
BASELINE_OPTIMIZERS = (*POLICY_OPTIMIZERS, "adam")  # LIIR's meta step models sgd and rmsprop only
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


def _unit(cfg: DictConfig, key: str) -> None:
    value = _get(cfg, key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        _fail(key, value, "must be in [0, 1]")


def _count(cfg: DictConfig, key: str) -> None:
    value = _get(cfg, key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        _fail(key, value, "must be an integer >= 1")


def _validate_baseline(cfg: DictConfig) -> None:
    """The keys only COMA, IQL, QMIX or MAPPO read."""
    name = cfg.algo.name
    if name == "mappo":
        _positive(cfg, "algo.clip_epsilon")
        _count(cfg, "algo.ppo_epochs")
        _count(cfg, "algo.minibatches")
        return
    _count(cfg, "algo.target_update_interval")
    if name in Q_ALGOS:
        _unit(cfg, "algo.eps_start")
        _unit(cfg, "algo.eps_end")
        if cfg.algo.eps_end > cfg.algo.eps_start:
            _fail("algo.eps_end", cfg.algo.eps_end, f"must be <= algo.eps_start={cfg.algo.eps_start}")
        for key in ("eps_anneal_frames", "buffer_episodes", "batch_episodes", "updates_per_batch"):
            _count(cfg, f"algo.{key}")
    if name == "qmix":
        _count(cfg, "algo.mixing_embed_dim")


def validate_config(cfg: DictConfig) -> None:
    """Checks every value the trainer reads; raises :class:`ConfigError` on the first bad one."""
    _choice(cfg, "env.name", ENVS)
    _choice(cfg, "algo.name", ALGOS)
    _choice(cfg, "algo.policy", POLICIES)
    _choice(cfg, "algo.policy_optimizer", BASELINE_OPTIMIZERS if cfg.algo.name in BASELINES else POLICY_OPTIMIZERS)
    _choice(cfg, "logger.backend", LOGGERS)
    _count(cfg, "threads")
    cache = _get(cfg, "jax_cache_dir")
    if cache is not None and not isinstance(cache, str):
        _fail("jax_cache_dir", cache, "must be a directory path, or null to turn the cache off")
    for key in ("algo.lr_policy", "collector.total_frames", "env.num_envs", "eval.episodes"):
        _positive(cfg, key)
    _positive(cfg, "eval.interval_episodes", strict=False)
    if cfg.env.name == "pursuit":
        _positive(cfg, "env.max_steps")
        _positive(cfg, "env.max_value")
    else:
        if cfg.env.get("episode_limit") is not None:
            _positive(cfg, "env.episode_limit")
        if not isinstance(_get(cfg, "map"), str):
            _fail("map", cfg.map, "must be a map name such as 3m")
    if cfg.env.name == "smac":
        _choice(cfg, "env.backend", SMAC_BACKENDS)
    _positive(cfg, "algo.max_grad_norm", strict=False)
    _unit(cfg, "algo.gamma")
    if cfg.algo.name not in Q_ALGOS:
        _positive(cfg, "algo.lr_critic")
        _positive(cfg, "algo.entropy_coeff", strict=False)
        _positive(cfg, "algo.critic_coeff", strict=False)
        _unit(cfg, "algo.lmbda")
    if cfg.algo.name in BASELINES:
        _validate_baseline(cfg)
    if cfg.algo.name == "liir":
        _positive(cfg, "algo.lambda_in", strict=False)
        _positive(cfg, "algo.lr_intrinsic")
        _choice(cfg, "algo.meta_gradient", ("fast", "reference"))
        _choice(cfg, "algo.variant", ("paper", "released_code"))
        _choice(cfg, "algo.proxy_critic", ("state", "obs"))
    device = str(_get(cfg, "device"))
    try:
        torch.device(device)
    except RuntimeError:
        _fail("device", device, "not a torch device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        _fail("device", device, "CUDA is not available on this machine")
