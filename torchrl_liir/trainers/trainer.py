"""The experiment: a task's env and an algorithm's recipe trained by TorchRL's ``Trainer``.

``make_trainer(cfg, run_dir)`` builds an :class:`EpisodeTrainer` from a configuration;
:func:`torchrl_liir.trainers.population.train` also claims the run directory, resumes, handles signals and
non-finite values and writes ``summary.json``, for one run or a population of them.
"""
from __future__ import annotations

import platform
import random
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.checkpoint import Checkpoint, GlobalRNGState
from torchrl.envs import Compose, EnvBase, InitTracker, TransformedEnv
from torchrl.record.loggers import Logger, get_logger
from torchrl.trainers import Trainer, UpdateWeights
from tqdm import tqdm

from torchrl_liir.algorithms import EnvDims, Recipe
from torchrl_liir.collectors import PADDING_MASK, EpisodeCollector, make_episode_collector
from torchrl_liir.config_checks import with_added_defaults
from torchrl_liir.modules import policy_primer
from torchrl_liir.optimizer_steps import NonFiniteError
from torchrl_liir.runtime import configure_runtime
from torchrl_liir.studies import STUDIES, StudyHook
from torchrl_liir.tasks import Task
from torchrl_liir.trainers.checkpoints import (
    CHECKPOINTS,
    EnvRandomState,
    VerifiedCheckpoint,
    load_checkpoint,
    restore_intact,
    rotation,
)
from torchrl_liir.trainers.config import Experiment, check_config, load_saved_config
from torchrl_liir.trainers.evaluation import evaluate
from torchrl_liir.trainers.hooks import (
    CheckpointSchedule,
    Evaluation,
    RecipeStepper,
    RunProgress,
    UpdateRow,
    metadata_test_score,
)
from torchrl_liir.trainers.metrics_table import MetricsTables
from torchrl_liir.trainers.run_directory import checkpoint_step, write_atomically
from torchrl_liir.trainers.signals import RunInterrupted


def describe_machine(device: torch.device) -> dict:
    """Device and library versions, for the record a results table cites."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")]
            name = f"{models[0]} ({len(models)} threads)" if models else name
    versions = {}
    for package in ("torch", "torchrl", "tensordict", "jax", "jaxmarl"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return {"device": f"{device.type}: {name}", "versions": versions}


def make_env(task: Task, cfg: DictConfig, device: torch.device, num_envs: int, seed: int,
             actor: TensorDictModuleBase | None = None) -> EnvBase:
    """``num_envs`` envs of the task with an episode-start marker (and the policy's RNN primer)."""
    transforms = [InitTracker()]
    primer = policy_primer(actor) if actor is not None else None
    if primer is not None:
        transforms.append(primer)
    # A task's env may already be transformed: its transforms and these join one chain (said explicitly,
    # which also silences TorchRL's warning about the default).
    return TransformedEnv(task.make_env(cfg, device, num_envs, seed), Compose(*transforms), auto_unwrap=True)


def build_recipe(cfg: DictConfig, device: torch.device, experiment: Experiment | None = None) -> Recipe:
    """The configured algorithm's recipe for the configured env (sizes read from a one-env probe)."""
    experiment = experiment or Experiment.of(cfg)
    task, algorithm = experiment.task, experiment.algorithm
    probe = task.make_env(cfg, device, 1, cfg.seed)
    try:
        dims = EnvDims.from_env(probe)
    finally:
        probe.close(raise_if_closed=False)  # a batched probe is never started
    algo = with_added_defaults(cfg.algo, algorithm.config_checks())  # runs saved before a key was added
    return algorithm.build(algo, cfg.model, dims, task.episode_limit(cfg), device)


def make_logger(cfg: DictConfig, run_dir: Path) -> Logger | None:
    """TensorBoard or wandb (TorchRL's loggers) beside the CSV tables; ``csv`` writes only the tables."""
    if cfg.experiment.logger == "csv":
        return None
    kwargs = {}
    if cfg.experiment.logger == "wandb":
        kwargs["wandb_kwargs"] = {"offline": cfg.experiment.wandb_mode == "offline",
                                  "project": cfg.experiment.wandb_project}
    return get_logger(cfg.experiment.logger, logger_name=str(run_dir / cfg.experiment.logger),
                      experiment_name=run_dir.name, **kwargs)


class FrameBar(tqdm):
    """The progress bar over played frames.

    A batch holds whole episodes, so the last one usually ends past the budget: the total then grows to the
    frames played, and the bar ends at 100 % with the run's true frame count (a count past its total would
    lose the percentage and the bar).
    """

    def __init__(self, total: int, initial: int = 0, **kwargs) -> None:
        super().__init__(total=max(int(total), int(initial)), initial=int(initial), **kwargs)

    def update(self, n: float | None = 1) -> bool | None:
        if n and self.total is not None and self.n + n > self.total:
            self.total = self.n + n
        return super().update(n)


def fused_rollout(cfg: DictConfig) -> bool:
    """Whether the run collects with the fused SMAX rollout where it applies (runs saved before the key: no)."""
    return bool(cfg.experiment.get("fused_rollout", False))


ACTOR_MODULE = "actor"  # the trainer module holding the acting policy, exploration state included


class EpisodeTrainer(Trainer):
    """TorchRL's ``Trainer`` over batches of whole episodes, with a run directory.

    The loop, hook stages, averaged loss logging, progress bar and ``Checkpoint`` / ``CheckpointRotation``
    are TorchRL's. Registered here: a :class:`RecipeStepper` (the recipe's optimiser groups, each with its
    own clip, and the NaN guard), the recipe's feed and hooks, test episodes, the CSV tables and a checkpoint
    schedule by updates and wall time. Subclassed for the progress bar (a :class:`FrameBar` from the restored
    frame count), to save a non-finite state aside, to close the test env and the bar, and to split TorchRL's
    loop into :meth:`begin`, :meth:`train_on` (one batch) and :meth:`end`, so that a population
    (:class:`~torchrl_liir.trainers.population.Population`) drives its members batch by batch in one process.

    Built by :func:`make_trainer`; ``trainer.train()`` runs it, ``trainer.close()`` closes its envs.

    Args:
        cfg: the run's config (checked).
        run_dir: the run directory it writes (tables, checkpoints).
        recipe: the algorithm's networks, loss, optimiser groups, feed and hooks.
        collector: the training batches' collector, over ``recipe.actor``.
        test_env: the env of the greedy test episodes.
        task: the task (episode limit, the envs' random state).

    Examples:
        >>> import tempfile
        >>> from torchrl_liir.cli import compose_config
        >>> cfg = compose_config(["task=pursuit", "algo=liir", "task.num_envs=4", "experiment.total_frames=100",
        ...                       "experiment.evaluation_episodes=4", "experiment.study=null",
        ...                       "experiment.progress_bar=false", "experiment.jax_cache_dir=null"])
        >>> from torchrl_liir.trainers import EpisodeTrainer, make_trainer
        >>> trainer = make_trainer(cfg, tempfile.mkdtemp())
        >>> isinstance(trainer, EpisodeTrainer), trainer.total_frames, trainer.collector_description
        (True, 100, 'step by step (the env is a PursuitEnv, not a SMAXEnv)')
        >>> trainer.train()
        >>> trainer.collected_frames >= 100, trainer.progress.updates >= 1
        (True, True)
        >>> trainer.close()
    """

    def __init__(self, *, cfg: DictConfig, run_dir: Path, recipe: Recipe, collector: EpisodeCollector,
                 test_env: EnvBase, task: Task) -> None:
        self.cfg, self.run_dir, self.recipe, self.test_env = cfg, Path(run_dir), recipe, test_env
        # RunProgress checks every batch's env outputs as it is collected; the loss need not do it again (once
        # per optimiser step: QMIX's replayed samples come from batches checked already).
        recipe.loss.check_inputs = False
        self.progress = RunProgress()
        self.collector_description = type(collector).__name__  # the builder's "collector: ..." line replaces it
        super().__init__(
            collector=collector, total_frames=cfg.experiment.total_frames, frame_skip=1,
            optim_steps_per_batch=recipe.feed.steps_per_epoch, num_epochs=recipe.feed.epochs,
            loss_module=recipe.loss, optimization_stepper=RecipeStepper(recipe.optimizers, self.progress),
            progress_bar=cfg.experiment.progress_bar, seed=None,  # seeded before the networks and envs were built
            save_trainer_interval=sys.maxsize,  # scheduled saves come from CheckpointSchedule
            checkpoint=VerifiedCheckpoint(), checkpoint_rotation=rotation(self.run_dir),
            checkpoint_metadata=lambda trainer: {"test_score": metadata_test_score(self.progress),
                                                 "update": self.progress.updates},
            auto_log_optim_steps=False,
        )
        self.tables = MetricsTables(self.run_dir, make_logger(cfg, self.run_dir))
        limit = task.episode_limit(cfg)

        self.progress.register(self)
        recipe.feed.register(self)
        for name, hook in recipe.hooks.items():
            hook.register(self, name)
        UpdateWeights(collector, 1).register(self)
        fused = fused_rollout(cfg)
        Evaluation(lambda: evaluate(test_env, recipe.actor, cfg.experiment.evaluation_episodes, limit, fused),
                   cfg.experiment.evaluation_interval_episodes,
                   cfg.experiment.total_frames, self.progress, lambda row: self.tables.write("test", row)
                   ).register(self)
        self.update_row = UpdateRow(self.progress, lambda row: self.tables.write("metrics", row))
        self.update_row.register(self)
        CheckpointSchedule(self.save_checkpoint, self.progress, cfg.experiment.checkpoint_interval_updates,
                           cfg.experiment.checkpoint_interval_minutes, cfg.experiment.total_frames).register(self)
        self.register_module(ACTOR_MODULE, recipe.actor)  # exploration state (ε) beside the loss's networks
        self.register_module("metrics_tables", self.tables)
        self.register_module("rng", GlobalRNGState())
        self.register_module("env_random_state", EnvRandomState(task, train=collector.env, test=test_env))
        self.register_op("setup", self._start_progress_bar)
        self.study = None
        if cfg.experiment.study is not None:
            self.study = StudyHook(STUDIES[cfg.experiment.study](), self, cfg=cfg, actor=recipe.actor,
                                   make_env=lambda n, seed: make_env(task, cfg, collector.env.device, n, seed,
                                                                     recipe.actor),
                                   intrinsic_reward=recipe.intrinsic_reward, run_dir=self.run_dir,
                                   episode_limit=limit)
            self.register_op("shutdown", self.study)

    def train(self) -> None:
        """TorchRL's ``Trainer.train`` (synchronous collection): :meth:`begin`, :meth:`train_on` every batch of
        the collector until the run is over, :meth:`end`."""
        self.begin()
        for batch in self.collector:
            if self.train_on(batch):
                break
        self.end()

    def begin(self) -> None:
        """The start of TorchRL's loop: the progress bar and the ``setup`` hooks (the first test)."""
        if self.progress_bar:
            self._pbar, self._pbar_str = tqdm(total=self.total_frames), {}
        self._setup_hook()

    def train_on(self, batch: TensorDictBase) -> bool:
        """One iteration of TorchRL's loop on a collected ``batch``: its hooks, the update's optimiser steps, the
        logs; returns whether the run is over (budget reached or stop requested: a checkpoint was saved)."""
        batch = self._process_batch_hook(batch)
        frames = int(batch.get(PADDING_MASK).sum()) * self.frame_skip
        self.collected_frames += frames
        self._pre_steps_log_hook(batch)
        if self.collected_frames >= self.collector.init_random_frames:
            self.optim_steps(batch)
        self._post_steps_hook()
        self._post_steps_log_hook(batch)
        if self._stop_training:
            self.save_trainer(force_save=True)
            return True
        if self.progress_bar:
            self._pbar.update(frames)
            self._pbar_description()
        if self.collected_frames >= self.total_frames:
            self.save_trainer(force_save=True)
            return True
        self.save_trainer()
        return False

    def end(self) -> None:
        """The end of TorchRL's loop: the ``shutdown`` hooks (a study), then the collector's shutdown. A second
        signal during the study ends the study alone: the run's training is whole all the same."""
        try:
            self._shutdown_hook()
        except RunInterrupted:
            if self.study is None:
                raise
            self.study.interrupted = True
        finally:
            self.collector.shutdown()

    def _start_progress_bar(self) -> None:
        """TorchRL's bar, made before a checkpoint's frames were restored, gives way to a :class:`FrameBar`
        starting from them (its rate then counts only this process's frames)."""
        if not self.progress_bar:
            return
        self._pbar.leave = False
        self._pbar.close()  # clears its line
        self._pbar = FrameBar(self.total_frames, initial=int(self.collected_frames))

    def _close_progress_bar(self) -> None:
        """Shows the frames collected (a stopped run leaves its loop before the bar counts the last batch) and
        ends the bar's line, so that the lines printed after the run start on their own."""
        bar = getattr(self, "_pbar", None)
        if not self.progress_bar or bar is None:
            return
        if self.collected_frames > bar.n:
            bar.update(int(self.collected_frames) - bar.n)
        bar.close()

    def save_checkpoint(self) -> None:
        """Writes a rotated checkpoint of everything the next update depends on (atomically)."""
        self._save_trainer()

    def restore(self, path: Path) -> None:
        """Loads a checkpoint written by :meth:`save_checkpoint` (CSV tables cut back to its rows)."""
        load_checkpoint(self._sync_checkpoint_components(), path, map_location=str(self.collector.env.device))
        self.collector.update_policy_weights_()

    def save_bad_state(self, error: NonFiniteError) -> str:
        """Saves the state the non-finite ``error`` left beside the rotated checkpoints, leaving those untouched:
        after the step that made the parameters non-finite and, beside it, before that step (``-before``); or, for
        a non-finite loss or gradient, before the step it stopped. Returns where, in words."""
        path = self.run_dir / CHECKPOINTS / f"nonfinite-update-{self.progress.updates + 1:06d}"
        self._sync_checkpoint_components().save(path)
        if error.undo is None:
            return f"the bad state (before the step it stopped) is in {path}"
        error.undo()
        before = path.with_name(path.name + "-before")
        self._sync_checkpoint_components().save(before)
        return f"the bad state is in {path} (after the step; before it: {before})"

    def summary(self, status: str) -> dict:
        progress = self.progress
        summary = {"status": status, "frames": int(self.collected_frames), "episodes": progress.episodes,
                   "updates": progress.updates, "final": self.update_row.last, "test": progress.last_test,
                   "crashed_episodes": progress.crashed, "wall_seconds": round(progress.wall_seconds(), 1),
                   "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   **describe_machine(self.collector.env.device)}
        if self.study is not None and self.study.result is not None:
            summary[self.study.study.summary_key] = self.study.result
        if self.study is not None and self.study.interrupted:
            summary["study"] = "interrupted by a signal: not written"
        return summary

    def close(self) -> None:
        self._close_progress_bar()
        self.collector.shutdown()
        if not self.test_env.is_closed:
            self.test_env.close()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_trainer(cfg: DictConfig, run_dir: str | Path) -> EpisodeTrainer:
    """The configured experiment as a TorchRL trainer writing into ``run_dir`` (``trainer.train()`` runs it).

    ``cfg`` is the trainer's hydra config (``torchrl_liir/conf``), checked here; ``run_dir`` is created and gets
    the resolved ``config.yaml``. :func:`~torchrl_liir.trainers.train` does this and also resumes, handles signals
    and writes ``summary.json``.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_liir.cli import compose_config
        >>> cfg = compose_config(["task=pursuit", "algo=liir", "task.num_envs=4", "experiment.total_frames=100",
        ...                       "experiment.evaluation_episodes=4", "experiment.study=null",
        ...                       "experiment.progress_bar=false", "experiment.jax_cache_dir=null"])
        >>> from torchrl_liir.trainers import make_trainer
        >>> run_dir = Path(tempfile.mkdtemp())
        >>> trainer = make_trainer(cfg, run_dir)
        >>> type(trainer.recipe.loss).__name__, sorted(trainer.recipe.optimizers)
        ('LIIRLoss', ['critic', 'intrinsic', 'policy'])
        >>> trainer.train()
        >>> trainer.close()
        >>> sorted(path.name for path in run_dir.iterdir())
        ['checkpoints', 'config.yaml', 'metrics.csv', 'test.csv']
    """
    return build_trainer(cfg, Path(run_dir), check_config(cfg))


def build_trainer(cfg: DictConfig, run_dir: Path, experiment: Experiment) -> EpisodeTrainer:
    """:func:`make_trainer` for a config already checked into ``experiment``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    configure_runtime(cfg.experiment.threads, cfg.experiment.jax_cache_dir)
    seed_everything(cfg.seed)
    device = torch.device(cfg.experiment.device)
    task = experiment.task
    recipe = build_recipe(cfg, device, experiment)
    env = make_env(task, cfg, device, cfg.task.num_envs, cfg.seed, recipe.actor)
    test_env = make_env(task, cfg, device, task.test_envs(cfg), cfg.seed + 10_000, recipe.actor)
    collector, how = make_episode_collector(env, recipe.actor, task.episode_limit(cfg),
                                            fused=fused_rollout(cfg),
                                            total_frames=cfg.experiment.total_frames)
    trainer = EpisodeTrainer(cfg=cfg, run_dir=run_dir, recipe=recipe, collector=collector, test_env=test_env,
                             task=task)
    trainer.collector_description = how
    return trainer


class LoadedRun(NamedTuple):
    """A run directory read back by :func:`load_run`."""

    config: DictConfig
    """The run's saved configuration."""
    recipe: Recipe
    """Its algorithm's networks and loss, with the checkpoint's parameters."""
    checkpoint: Path
    """The checkpoint restored: the newest intact one, which may be older than the run's last step."""

    @property
    def frames(self) -> int:
        """The environment steps the run had taken at :attr:`checkpoint`."""
        return checkpoint_step(self.checkpoint)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """The configuration and trained networks (latest checkpoint) of a run directory, for studies and plots.

    Returns the run's saved config, its algorithm's :class:`~torchrl_liir.algorithms.Recipe` on ``device`` with the
    checkpoint's parameters loaded, and that checkpoint (a damaged newest one is named on stderr and the one before
    it restored, so :attr:`LoadedRun.frames` says which step the networks are from).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_liir.cli import compose_config
        >>> cfg = compose_config(["task=pursuit", "algo=liir", "task.num_envs=4", "experiment.total_frames=100",
        ...                       "experiment.evaluation_episodes=4", "experiment.study=null",
        ...                       "experiment.progress_bar=false", "experiment.jax_cache_dir=null"])
        >>> from torchrl_liir.trainers import load_run, train
        >>> run_dir = Path(tempfile.mkdtemp()) / "run"
        >>> summary = train(cfg, run_dir)
        collector: step by step (the env is a PursuitEnv, not a SMAXEnv)
        >>> run = load_run(run_dir)
        >>> run.config.algo.name, type(run.recipe.loss).__name__, run.recipe.intrinsic_reward is not None
        ('liir', 'LIIRLoss', True)
        >>> run.frames >= 100
        True
    """
    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config} is missing: is {run_dir} a training run directory?")
    cfg = load_saved_config(config)
    device = torch.device(device)
    recipe = build_recipe(cfg, device)
    # The actor beside the loss (TorchRL's Trainer checkpoints registered modules as ``trainer_module.<name>``):
    # IQL's and QMIX's ε-greedy ε lives in the actor only.
    components = Checkpoint(loss_module=recipe.loss, **{f"trainer_module.{ACTOR_MODULE}": recipe.actor})
    checkpoint = restore_intact(lambda path: load_checkpoint(components, path, map_location=str(device)), run_dir)
    return LoadedRun(cfg, recipe, checkpoint)
