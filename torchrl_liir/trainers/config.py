"""The experiment's configuration checks: every value, before anything is built, in one line each. They import
no torch or JAX (except to check a CUDA device, or the maps of an env that needs them), so that the command line
runs them before hydra creates a run directory."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import yaml
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
from torchrl_liir.trainers.members import Seeds, Variants, is_population, member_configs

LOGGERS = ("csv", "tensorboard", "wandb")
PRESETS = tuple(sorted(path.stem for path in (Path(__file__).parents[1] / "conf" / "preset").glob("*.yaml")))
# Keys the StarCraft env configs wrote into every algorithm's section before preset=smac_paper gave each algorithm
# only its own: a run saved then still holds them where its algorithm never read them.
FORMER_PRESET_KEYS = ("lr_critic", "normalize_advantage")
# Keys renamed since runs were saved (old name: new name); "update" is a collected batch's, a "step" an optimiser's.
RENAMED_ALGO_KEYS = {"updates_per_batch": "steps_per_batch"}
# Keys of the agents' networks, in the algo section until the model section held them.
MODEL_KEYS = ("policy", "num_cells", "rnn_hidden")
# Keys moved into the experiment and task sections (BenchMARL's split; old path: new path, in the order they move):
# runs saved before still load, and a command line with an old path is told the new one.
MOVED_KEYS = {
    "collector.total_frames": "experiment.total_frames", "device": "experiment.device",
    "threads": "experiment.threads", "eval.interval_episodes": "experiment.evaluation_interval_episodes",
    "eval.episodes": "experiment.evaluation_episodes",
    "checkpoint.every_updates": "experiment.checkpoint_interval_updates",
    "checkpoint.every_minutes": "experiment.checkpoint_interval_minutes", "logger.backend": "experiment.logger",
    "logger.project": "experiment.wandb_project", "logger.wandb_mode": "experiment.wandb_mode",
    "progress_bar": "experiment.progress_bar", "jax_cache_dir": "experiment.jax_cache_dir",
    "study.name": "experiment.study", "study.episodes": "experiment.study_episodes",
    "env.max_steps": "env.episode_limit", "env.task": "env.scenario", "env": "task", "map": "task.map",
}
# What a resumed run may change; everything else comes from its saved config.yaml.
RESUMABLE_KEYS = ("experiment.total_frames", "experiment.device", "experiment.progress_bar", "experiment.threads",
                  "experiment.jax_cache_dir", "resume")


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


def moved_key(key: str) -> str | None:
    """The path of today of a key given under a former one (``env.max_steps``: ``task.episode_limit``), else
    ``None``."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        old = ".".join(parts[:end])
        if old in MOVED_KEYS:
            new = ".".join([MOVED_KEYS[old], *parts[end:]])
            return moved_key(new) or new
    return None


TOP_LEVEL_CHECKS: dict[str, Check] = {
    "seed": Integer(0, 2**32 - 1), "resume": Text("a run directory", nullable=True),
    "preset": Added(Choice(PRESETS), "none"), "seeds": Added(Seeds(), None), "variants": Added(Variants(), None),
}
EXPERIMENT_CHECKS: dict[str, Check] = {
    "total_frames": COUNT, "device": Device(), "threads": COUNT,
    "evaluation_interval_episodes": Integer(0), "evaluation_episodes": COUNT,
    "checkpoint_interval_updates": Integer(0), "checkpoint_interval_minutes": NON_NEGATIVE,
    "logger": Choice(LOGGERS), "wandb_project": Text(), "wandb_mode": Choice(("offline", "online")),
    "progress_bar": Boolean(), "jax_cache_dir": Text("a directory path", nullable=True),
    "study": Choice((None, *STUDIES)), "study_episodes": COUNT, "fused_rollout": Added(Boolean(), False),
    "member_rollout": Added(Choice(("auto", "together", "one_by_one")), "auto"),
}
MODEL_CHECKS: dict[str, Check] = {"policy": Choice(("mlp", "gru")), "num_cells": Sizes(), "rnn_hidden": COUNT}
SECTIONS = ("experiment", "task", "algo", "model")


def _check_sections(cfg: DictConfig) -> None:
    absent = object()
    for old in MOVED_KEYS:  # e.g. +collector.total_frames=...: named with its path of today
        value = OmegaConf.select(cfg, old, default=absent)
        if value is not absent:
            fail(old, value, f"moved: {moved_key(old)}")
    check_section({k: v for k, v in cfg.items() if k not in SECTIONS}, "", TOP_LEVEL_CHECKS)
    check_section(cfg.get("experiment"), "experiment.", EXPERIMENT_CHECKS)
    check_section(cfg.get("model"), "model.", MODEL_CHECKS)


@dataclass(frozen=True)
class Experiment:
    """The task and the algorithm a config names, resolved once for the checks and the build."""

    task: Task
    algorithm: Algorithm

    @classmethod
    def of(cls, cfg: DictConfig) -> Experiment:
        for section in ("task", "algo"):
            if not isinstance(cfg.get(section), DictConfig) or "name" not in cfg[section]:
                fail(f"{section}.name", None, "missing from the configuration")
        return cls(get_task(cfg.task.name), get_algorithm(cfg.algo.name))


def check_config(cfg: DictConfig) -> Experiment:
    """Checks every value the trainer reads (experiment, task, algo, model; in a population, every variant's);
    raises :class:`ConfigError` (or ``ImportError`` for a missing optional package) on the first bad one, before
    anything is built. Returns the resolved :class:`Experiment`."""
    if is_population(cfg):
        _check_sections(cfg)
        checked = set()
        for member in member_configs(cfg):
            variant = member.name.rpartition("_seed")[0]
            if variant not in checked:
                checked.add(variant)
                try:
                    experiment = check_config(member.cfg)
                except ConfigError as err:
                    raise ConfigError(f"{err} (in variant {variant})" if variant else str(err)) from None
        return experiment
    experiment = Experiment.of(cfg)
    task, algorithm = experiment.task, experiment.algorithm
    _check_sections(cfg)
    for key in cfg.task:  # a task key renamed since (task.max_steps): named with its name of today
        moved = moved_key(f"env.{key}")
        if key not in task.config_checks() and moved != f"task.{key}":
            fail(f"task.{key}", cfg.task[key], f"moved: {moved}")
    task.check(cfg)
    for key in MODEL_KEYS:
        if key in cfg.algo:
            fail(f"algo.{key}", cfg.algo[key], f"the agents' networks are the model section's now: model.{key}")
    algorithm.check(cfg.algo)
    check_capabilities(cfg, task, algorithm)
    episode_limit = task.episode_limit(cfg)
    check_budget(cfg, episode_limit)
    algorithm.check_batch(cfg.algo, cfg.task.num_envs * episode_limit)
    logger = cfg.experiment.logger
    if logger in ("tensorboard", "wandb") and importlib.util.find_spec(logger) is None:
        raise ImportError(f"experiment.logger={logger} needs {logger}: pip install 'torchrl_liir[{logger}]'")
    return experiment


def check_capabilities(cfg: DictConfig, task: Task, algorithm: Algorithm) -> None:
    """The algorithm can train on the task's actions; a one-line ``ConfigError`` says what to use instead."""
    if task.continuous_actions(cfg):
        refusal = algorithm.takes_continuous_actions(cfg.algo)
        if refusal is not None:
            able = [name for name, kind in ALGORITHMS.items() if kind.supports_continuous_actions]
            raise ConfigError(f"{refusal}; task={task.name}'s actions are continuous here "
                              f"(use {', '.join(able[:-1])} or {able[-1]})")


def load_saved_config(path: Path) -> DictConfig:
    """A run's saved ``config.yaml``, less the :data:`FORMER_PRESET_KEYS` its algorithm does not read, with the
    :data:`RENAMED_ALGO_KEYS` under their names of today and the :data:`MODEL_KEYS` in the model section, and the
    :data:`MOVED_KEYS` at their paths of today (a ``map`` only where the task has one)."""
    try:
        cfg = OmegaConf.load(path)
    except (OSError, ValueError, yaml.YAMLError) as err:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"{path}: unreadable ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: not a run's configuration (a {type(cfg).__name__}, not a mapping)")
    absent = object()
    for old, new in MOVED_KEYS.items():
        value = OmegaConf.select(cfg, old, default=absent)
        if value is absent:
            continue
        parent, _, key = old.rpartition(".")
        (OmegaConf.select(cfg, parent) if parent else cfg).pop(key)
        if old == "map" and "map" not in get_task(cfg.task.name).config_checks():
            continue
        OmegaConf.update(cfg, new, value, force_add=True)
    for section in ("collector", "eval", "checkpoint", "logger", "study"):
        if cfg.get(section) == {}:
            cfg.pop(section)
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
    """One batch (``task.num_envs`` episodes of up to ``episode_limit`` steps) fits in
    ``experiment.total_frames``."""
    num_envs, total = cfg.task.num_envs, cfg.experiment.total_frames
    if num_envs * episode_limit > total:
        fail("task.num_envs", num_envs, f"one batch of {num_envs} episodes of up to {episode_limit} steps "
             f"({num_envs * episode_limit} frames) is more than experiment.total_frames={total}")


def check_resume_overrides(keys: list[str]) -> None:
    """A resumed run takes its saved config; only :data:`RESUMABLE_KEYS` may be changed."""
    for key in keys:
        if key.lstrip("+~") not in RESUMABLE_KEYS:
            raise ConfigError(f"{key}: cannot be changed when resuming (allowed: {', '.join(RESUMABLE_KEYS)})")


__all__ = ["ConfigError", "Experiment", "RESUMABLE_KEYS", "check_config", "check_resume_overrides", "moved_key"]
