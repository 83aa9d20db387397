"""The hooks and optimisation stepper that make TorchRL's ``Trainer`` run an episode-batch recipe."""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from tensordict import TensorDictBase
from torchrl.trainers import OptimizationStepper, Trainer, TrainerHookBase

from torchrl_liir.algorithms import OptimizerGroup
from torchrl_liir.collectors import PADDING_MASK
from torchrl_liir.finite_inputs import first_non_finite
from torchrl_liir.hook_bases import StatelessHook
from torchrl_liir.optimizer_steps import NonFiniteError, guarded_step


def episode_metrics(batch: TensorDictBase) -> dict[str, float]:
    """Mean return, length (and win rate) of the complete episodes in a padded ``[episodes, T]`` batch."""
    mask = batch.get(PADDING_MASK).to(torch.float32)
    reward = batch.get(("next", "reward"))[..., 0].to(torch.float32)
    metrics = {"episode_return": (reward * mask).sum(-1).mean(), "episode_length": mask.sum(-1).mean()}
    if ("next", "info", "battle_won") in batch.keys(True):
        won = batch.get(("next", "info", "battle_won")).reshape(mask.shape) & mask.bool()
        metrics["win_rate"] = won.any(-1).float().mean()
    return dict(zip(metrics, torch.stack(list(metrics.values())).tolist()))


def drop_crashed_episodes(batch: TensorDictBase) -> tuple[TensorDictBase, int]:
    """Removes the episodes a simulator crash cut short (``("next", "info", "crashed")``)."""
    key = ("next", "info", "crashed")
    if key not in batch.keys(True):
        return batch, 0
    crashed = (batch.get(key).reshape(batch.shape) & batch.get(PADDING_MASK)).any(-1)
    return batch[~crashed], int(crashed.sum())


def check_env_outputs(batch: TensorDictBase, update: int) -> None:
    """Raises :class:`~torchrl_liir.optimizer_steps.NonFiniteError` naming the first NaN or infinite reward,
    observation or state of a batch's played steps, with its ``[episode, step, ...]`` index: the losses would turn
    it into NaN gradients without saying where it came from."""
    found = first_non_finite(batch, batch.get(PADDING_MASK))
    if found is not None:
        key, index, value = found
        raise NonFiniteError(f"{key}={value} at [episode, step, ...] = {index} in the batch of update {update}: "
                             "the env gave it")


class RunProgress(TrainerHookBase):
    """Counters a checkpoint restores: updates, episodes, crashed episodes, the last test, time trained.

    Registered first, it drops crashed episodes from each batch, checks what the envs gave is finite
    (:func:`check_env_outputs`) and measures the batch's episodes.
    """

    def __init__(self) -> None:
        self.updates = self.episodes = self.crashed = 0
        self.seconds = 0.0
        self.last_test: dict[str, float] = {}
        self.batch: dict[str, float] = {}
        self._since = time.monotonic()

    def drop_crashed(self, batch: TensorDictBase) -> TensorDictBase:
        batch, dropped = drop_crashed_episodes(batch)
        self.crashed += dropped
        check_env_outputs(batch, self.updates + 1)
        return batch

    def measure(self, batch: TensorDictBase) -> None:
        self.batch = episode_metrics(batch) if batch.shape[0] else {}
        self.episodes += batch.shape[0]

    def count_update(self) -> None:
        self.updates += 1

    def wall_seconds(self) -> float:
        return self.seconds + time.monotonic() - self._since

    def state_dict(self) -> dict:
        return {"updates": self.updates, "episodes": self.episodes, "crashed": self.crashed,
                "seconds": self.wall_seconds(), "last_test": dict(self.last_test)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.updates, self.episodes = int(state_dict["updates"]), int(state_dict["episodes"])
        self.crashed, self.seconds = int(state_dict["crashed"]), float(state_dict["seconds"])
        self.last_test = {k: float(v) for k, v in state_dict["last_test"].items()}
        self._since = time.monotonic()

    def register(self, trainer: Trainer, name: str = "progress") -> None:
        trainer.register_op("batch_process", self.drop_crashed)
        trainer.register_op("pre_steps_log", self.measure)
        trainer.register_op("post_steps", self.count_update)
        trainer.register_module(name, self)


class RecipeStepper(OptimizationStepper):
    """One optimiser step of every group (:func:`~torchrl_liir.optimizer_steps.guarded_step`): backward of the
    summed loss terms, each group's own clip, then a check that no loss term, gradient norm or parameter is NaN
    or infinite (:class:`~torchrl_liir.optimizer_steps.NonFiniteError`). Returns the loss's entries and each
    group's ``grad_norm_<group>`` and ``update_norm_<group>``."""

    def __init__(self, optimizers: dict[str, OptimizerGroup], progress: RunProgress) -> None:
        self.optimizers, self.progress = optimizers, progress

    def step(self, trainer: Trainer, sub_batch: TensorDictBase) -> TensorDictBase:
        losses = trainer.compute_loss(sub_batch)
        terms = {key: value for key, value in losses.items() if key.startswith("loss_")}
        norms = guarded_step(self.optimizers, terms, self.progress.updates + 1)
        out = losses.detach()
        for name, value in norms.items():
            out.set(name, value)
        return out

    def state_dict(self) -> dict:
        return {name: group.optimizer.state_dict() for name, group in self.optimizers.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        for name, group in self.optimizers.items():
            group.optimizer.load_state_dict(state_dict[name])


class Evaluation(StatelessHook):
    """Greedy test episodes (paper §5.2) before training, every ``interval_episodes`` training episodes and at
    the end; each result is a row of ``test.csv``."""

    def __init__(self, evaluate: Callable[[], dict[str, float]], interval_episodes: int, total_frames: int,
                 progress: RunProgress, write: Callable[[dict], None]) -> None:
        self.evaluate, self.interval, self.total_frames = evaluate, interval_episodes, total_frames
        self.progress, self.write = progress, write
        self._trainer: Trainer | None = None

    def run(self) -> None:
        test = self.evaluate()
        self.progress.last_test = test
        self.write({"update": self.progress.updates, "frames": int(self._trainer.collected_frames),
                    "episodes": self.progress.episodes, **test})

    def first_test(self) -> None:
        if self.progress.updates == 0 and not self.progress.last_test:
            self.run()

    def __call__(self, batch: TensorDictBase) -> None:
        episodes, before = self.progress.episodes, self.progress.episodes - batch.shape[0]
        due = self.interval and episodes // self.interval > before // self.interval
        if due or self._trainer.collected_frames >= self.total_frames:
            self.run()

    def register(self, trainer: Trainer, name: str = "evaluation") -> None:
        self._trainer = trainer
        trainer.register_op("setup", self.first_test)
        trainer.register_op("post_steps_log", self)


class UpdateRow(TrainerHookBase):
    """Writes each update's row of ``metrics.csv``: counters, the batch's episodes, the loss's entries (terms and
    statistics) and each optimiser group's gradient and update norms averaged over the update's optimiser steps;
    shows return and last test in the progress bar."""

    def __init__(self, progress: RunProgress, write: Callable[[dict], None]) -> None:
        self.progress, self.write = progress, write
        self.losses: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self._trainer: Trainer | None = None

    def keep_losses(self, optim_steps: int, average_losses: TensorDictBase | None) -> None:
        if average_losses is not None:
            values = torch.stack([v.float().mean() for v in average_losses.values()]).tolist()
            self.losses = dict(zip(average_losses.keys(), values))

    def __call__(self, batch: TensorDictBase) -> dict:
        progress = self.progress
        self.last = {"update": progress.updates, "frames": int(self._trainer.collected_frames),
                     "episodes": progress.episodes, **progress.batch, **self.losses,
                     "crashed_episodes": progress.crashed, "wall_seconds": round(progress.wall_seconds(), 1)}
        self.write(self.last)
        shown = {"ret": progress.batch.get("episode_return", math.nan)}
        if "test_win_rate" in progress.last_test:
            shown["test_win"] = progress.last_test["test_win_rate"]
        elif "test_return" in progress.last_test:
            shown["test_ret"] = progress.last_test["test_return"]
        return {**shown, "log_pbar": True}

    def state_dict(self) -> dict:
        return {"last": dict(self.last)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.last = dict(state_dict["last"])

    def register(self, trainer: Trainer, name: str = "update_row") -> None:
        self._trainer = trainer
        trainer.register_op("post_optim_complete_log", self.keep_losses)
        trainer.register_op("post_steps_log", self)
        trainer.register_module(name, self)


class CheckpointSchedule(StatelessHook):
    """Saves a checkpoint after the first update, then every ``every_updates`` updates or ``every_minutes``
    minutes of wall time, whichever comes first (the Trainer itself saves at the end and when stopped)."""

    def __init__(self, save: Callable[[], None], progress: RunProgress, every_updates: int, every_minutes: float,
                 total_frames: int) -> None:
        self.save, self.progress = save, progress
        self.every_updates, self.every_seconds, self.total_frames = every_updates, every_minutes * 60, total_frames
        self._last = time.monotonic()
        self._trainer: Trainer | None = None

    def __call__(self, batch: TensorDictBase) -> None:
        if self._trainer.collected_frames >= self.total_frames:
            return  # the Trainer saves the final state itself
        updates = self.progress.updates
        by_updates = updates == 1 or (self.every_updates and updates % self.every_updates == 0)
        if by_updates or (self.every_seconds and time.monotonic() - self._last >= self.every_seconds):
            self.save()
            self._last = time.monotonic()

    def register(self, trainer: Trainer, name: str = "checkpoint_schedule") -> None:
        self._trainer = trainer
        trainer.register_op("post_steps_log", self)


def metadata_test_score(progress: RunProgress) -> float:
    """The score the best checkpoint is kept by: the last test's win rate, else its return."""
    test = progress.last_test
    # Every run tests before its first update, so a checkpoint always has a test behind it.
    return float(test.get("test_win_rate", test.get("test_return", 0.0)))
