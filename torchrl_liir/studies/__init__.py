"""The paper's studies of a trained LIIR run: Fig. 2 on pursuit, the StarCraft case study (Figs. 4/5, §5.2.3).

A study named by the ``experiment.study`` config key runs as the trainer's shutdown hook once training has finished.
Its code (torch, TorchRL, matplotlib) is imported when it runs: the config checks read :data:`STUDIES` alone.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from tensordict.nn import TensorDictModule, TensorDictModuleBase
    from torchrl.envs import EnvBase
    from torchrl.trainers import Trainer


class StudyInterrupted(Exception):
    """A signal asked the run to stop while its study ran: the study stops, and writes nothing."""


class PursuitFig2:
    """Fig. 2: r_in of Good vs Bad actions over ``experiment.study_episodes`` pursuit episodes (LIIR runs only)."""

    summary_key = "fig2"

    def __call__(self, cfg: DictConfig, make_env: Callable[[int, int], EnvBase], actor: TensorDictModuleBase,
                 intrinsic_reward: TensorDictModule | None, run_dir: Path, episode_limit: int,
                 stop_requested: Callable[[], bool] = lambda: False) -> dict | None:
        from torchrl_liir.studies.pursuit_fig2 import intrinsic_reward_study

        if intrinsic_reward is None:
            return None
        env = make_env(cfg.experiment.study_episodes, cfg.seed + 1)
        try:
            return intrinsic_reward_study(env, actor, intrinsic_reward, run_dir, max_steps=episode_limit,
                                          stop_requested=stop_requested)
        finally:
            env.close()


STUDIES = {"pursuit_fig2": PursuitFig2}


class StudyHook:
    """Runs ``study`` at the trainer's shutdown once training has reached its budget; ``result`` holds its output,
    ``interrupted`` whether a signal (the trainer's stop request) cut it short."""

    def __init__(self, study: PursuitFig2, trainer: Trainer, **inputs) -> None:
        self.study, self.trainer, self.inputs = study, trainer, inputs
        self.result: dict | None = None
        self.interrupted = False

    def __call__(self) -> None:
        import torch

        if self.trainer.collected_frames >= self.trainer.total_frames:
            try:
                with torch.no_grad():
                    self.result = self.study(**self.inputs, stop_requested=lambda: self.trainer._stop_training)
            except StudyInterrupted:
                self.interrupted = True


__all__ = ["STUDIES", "PursuitFig2", "StudyHook", "StudyInterrupted"]
