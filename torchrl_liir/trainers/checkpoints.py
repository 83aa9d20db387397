"""What a checkpoint holds beyond TorchRL's standard trainer components, and how a run's checkpoints are found."""
from __future__ import annotations

from pathlib import Path

from torchrl.checkpoint import Checkpoint, CheckpointRotation
from torchrl.envs import EnvBase, TransformedEnv

from torchrl_liir.tasks import Task

CHECKPOINTS = "checkpoints"
KEEP_LAST = 3


class CheckpointFileError(RuntimeError):
    """A checkpoint is missing or cannot be read; the message names the file."""


def base_env(env: EnvBase) -> EnvBase:
    while isinstance(env, TransformedEnv):
        env = env.base_env
    return env


class EnvRandomState:
    """The random streams of the run's envs (pursuit's generator, SMAX's JAX keys) and the one the task's envs
    share process-wide (VMAS's), saved and restored with the run so that a resumed run plays the same games. Envs
    without ``random_state`` (StarCraft II processes) are left as they are."""

    SHARED = "task_shared"

    def __init__(self, task: Task, **envs: EnvBase) -> None:
        # Looked up on the type: a batched env forwards unknown attributes to its (maybe unstarted) workers.
        self.envs = {name: base_env(env) for name, env in envs.items() if hasattr(type(base_env(env)), "random_state")}
        self.task = task

    def state_dict(self) -> dict:
        state = {name: env.random_state() for name, env in self.envs.items()}
        shared = self.task.shared_random_state()
        return state if shared is None else {**state, self.SHARED: shared}

    def load_state_dict(self, state_dict: dict) -> None:
        for name, env in self.envs.items():
            env.set_random_state(state_dict[name])
        if self.SHARED in state_dict:  # checkpoints written before it was saved lack it
            self.task.set_shared_random_state(state_dict[self.SHARED])


def rotation(run_dir: Path) -> CheckpointRotation:
    """The run's rotated checkpoints: the last :data:`KEEP_LAST` and the best by test score."""
    return CheckpointRotation(Path(run_dir) / CHECKPOINTS, keep_last=KEEP_LAST, keep_best=("test_score", "max"))


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest readable checkpoint of a run directory."""
    latest = rotation(run_dir).latest()
    if latest is None:
        raise CheckpointFileError(f"{Path(run_dir) / CHECKPOINTS}: no checkpoint to resume from")
    return latest


def load_checkpoint(checkpoint: Checkpoint, path: Path, map_location: str, components: list[str] | None = None) -> None:
    """Restores ``components`` (all by default) from ``path``; any failure is one line naming the file."""
    try:
        checkpoint.load(path, components=components, map_location=map_location)
    except Exception as err:  # a truncated or foreign file fails in many ways; all mean "unreadable"
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointFileError(f"{path}: unreadable checkpoint ({first_line}); delete it to resume from the "
                                  "previous one") from err
