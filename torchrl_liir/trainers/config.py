"""The experiment's configuration checks: every value, before anything is built, in one line each. They import
no torch or JAX (except to check a CUDA device, or the maps of an env that needs them), so that the command line
runs them before hydra creates a run directory."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from torchrl_liir.algorithms import ALGORITHMS, Algorithm, get_algorithm
from torchrl_liir.config_checks import (
    COUNT,
    NON_NEGATIVE,
    Added,
    Boolean,
    Check,
    Choice,
    ConfigError,
    Integer,
    Sizes,
    Text,
    check_section,
    fail,
)
from torchrl_liir.studies import STUDIES
from torchrl_liir.tasks import get_task
from torchrl_liir.tasks.base import Task

LOGGERS = ("csv", "tensorboard", "wandb")
PRESETS = tuple(sorted(path.stem for path in (Path(__file__).parents[1] / "conf" / "preset").glob("*.yaml")))
# Keys the StarCraft env configs wrote into every algorithm's section before preset=smac_paper gave each algorithm
# only its own: a run saved then still holds them where its algorithm never read them.
FORMER_PRESET_KEYS = ("lr_critic", "normalize_advantage")
# Keys renamed since runs were saved (old name: new name); "update" is a collected batch's, a "step" an optimiser's.
RENAMED_ALGO_KEYS = {"updates_per_batch": "steps_per_batch"}
# Keys of the agents' networks, in the algo section until the model section held them.
MODEL_KEYS = ("policy", "num_cells", "rnn_hidden")
# What a resumed run may change; everything else comes from its saved config.yaml.
RESUMABLE_KEYS = ("collector.total_frames", "device", "progress_bar", "threads", "jax_cache_dir", "resume")


class Device(Check):
    """``cpu``, ``cuda`` or ``cuda:N``, available on this machine."""

    allowed = "cpu, cuda or cuda:N (a GPU of this machine)"

    def __call__(self, key: str, value) -> None:
        if value == "cpu":
            return
        import torch

        gpus = torch.cuda.device_count()
        here = f"cuda:0..{gpus - 1}" if gpus else "no GPU"
        allowed = f"must be cpu, cuda or cuda:N (this machine: cpu, {here})"
        if not isinstance(value, str):
            fail(key, value, allowed)
        try:
            device = torch.device(value)
        except RuntimeError:
            fail(key, value, allowed)
        if device.type not in ("cpu", "cuda") or (device.type == "cuda" and (device.index or 0) >= gpus):
            fail(key, value, allowed)


EXPERIMENT_CHECKS: dict[str, Check] = {
    "seed": Integer(0, 2**32 - 1), "map": Text("a map name such as 3m"), "device": Device(), "threads": COUNT,
    "jax_cache_dir": Text("a directory path", nullable=True), "progress_bar": Boolean(),
    "resume": Text("a run directory", nullable=True), "preset": Added(Choice(PRESETS), "none"),
    "model": {"policy": Choice(("mlp", "gru")), "num_cells": Sizes(), "rnn_hidden": COUNT},
    "collector": {"total_frames": COUNT},
    "eval": {"interval_episodes": Integer(0), "episodes": COUNT},
    "checkpoint": {"every_updates": Integer(0), "every_minutes": NON_NEGATIVE},
    "logger": {"backend": Choice(LOGGERS), "project": Text(), "wandb_mode": Choice(("offline", "online"))},
    "study": {"name": Choice((None, *STUDIES)), "episodes": COUNT},
}


def _check_sections(cfg: DictConfig) -> None:
    top = {key: check for key, check in EXPERIMENT_CHECKS.items() if not isinstance(check, dict)}
    sections = {key: checks for key, checks in EXPERIMENT_CHECKS.items() if isinstance(checks, dict)}
    check_section({k: v for k, v in cfg.items() if k not in ("env", "algo", *sections)}, "", top)
    for name, checks in sections.items():
        check_section(cfg.get(name), f"{name}.", checks)


@dataclass(frozen=True)
class Experiment:
    """The task and the algorithm a config names, resolved once for the checks and the build."""

    task: Task
    algorithm: Algorithm

    @classmethod
    def of(cls, cfg: DictConfig) -> Experiment:
        for section in ("env", "algo"):
            if not isinstance(cfg.get(section), DictConfig) or "name" not in cfg[section]:
                fail(f"{section}.name", None, "missing from the configuration")
        return cls(get_task(cfg.env.name), get_algorithm(cfg.algo.name))


def check_config(cfg: DictConfig) -> Experiment:
    """Checks every value the trainer reads (experiment, env, algo); raises :class:`ConfigError` (or
    ``ImportError`` for a missing optional package) on the first bad one, before anything is built. Returns the
    resolved :class:`Experiment`."""
    experiment = Experiment.of(cfg)
    task, algorithm = experiment.task, experiment.algorithm
    _check_sections(cfg)
    task.check(cfg)
    for key in MODEL_KEYS:
        if key in cfg.algo:
            fail(f"algo.{key}", cfg.algo[key], f"the agents' networks are the model section's now: model.{key}")
    algorithm.check(cfg.algo)
    check_capabilities(cfg, task, algorithm)
    episode_limit = task.episode_limit(cfg)
    check_budget(cfg, episode_limit)
    algorithm.check_batch(cfg.algo, cfg.env.num_envs * episode_limit)
    if cfg.logger.backend in ("tensorboard", "wandb") and importlib.util.find_spec(cfg.logger.backend) is None:
        raise ImportError(f"logger.backend={cfg.logger.backend} needs {cfg.logger.backend}: "
                          f"pip install 'torchrl_liir[{cfg.logger.backend}]'")
    return experiment


def check_capabilities(cfg: DictConfig, task: Task, algorithm: Algorithm) -> None:
    """The algorithm can train on the task's actions; a one-line ``ConfigError`` says what to use instead."""
    if task.continuous_actions(cfg):
        refusal = algorithm.takes_continuous_actions(cfg.algo)
        if refusal is not None:
            able = [name for name, kind in ALGORITHMS.items() if kind.supports_continuous_actions]
            raise ConfigError(f"{refusal}; env={task.name}'s actions are continuous here "
                              f"(use {', '.join(able[:-1])} or {able[-1]})")


def load_saved_config(path: Path) -> DictConfig:
    """A run's saved ``config.yaml``, less the :data:`FORMER_PRESET_KEYS` its algorithm does not read, with the
    :data:`RENAMED_ALGO_KEYS` under their names of today and the :data:`MODEL_KEYS` in the model section."""
    cfg = OmegaConf.load(path)
    if isinstance(cfg.get("algo"), DictConfig) and "name" in cfg.algo:
        if "model" not in cfg:
            cfg.model = {key: cfg.algo.pop(key) for key in MODEL_KEYS if key in cfg.algo}
        for old, new in RENAMED_ALGO_KEYS.items():
            if old in cfg.algo:
                cfg.algo[new] = cfg.algo.pop(old)
        known = get_algorithm(cfg.algo.name).config_checks()
        for key in FORMER_PRESET_KEYS:
            if key in cfg.algo and key not in known:
                cfg.algo.pop(key)
    return cfg


def check_budget(cfg: DictConfig, episode_limit: int) -> None:
    """One batch (``env.num_envs`` episodes of up to ``episode_limit`` steps) fits in ``collector.total_frames``."""
    num_envs, total = cfg.env.num_envs, cfg.collector.total_frames
    if num_envs * episode_limit > total:
        fail("env.num_envs", num_envs, f"one batch of {num_envs} episodes of up to {episode_limit} steps "
             f"({num_envs * episode_limit} frames) is more than collector.total_frames={total}")


def check_resume_overrides(keys: list[str]) -> None:
    """A resumed run takes its saved config; only :data:`RESUMABLE_KEYS` may be changed."""
    for key in keys:
        if key.lstrip("+~") not in RESUMABLE_KEYS:
            raise ConfigError(f"{key}: cannot be changed when resuming (allowed: {', '.join(RESUMABLE_KEYS)})")


__all__ = ["ConfigError", "Experiment", "RESUMABLE_KEYS", "check_config", "check_resume_overrides"]
