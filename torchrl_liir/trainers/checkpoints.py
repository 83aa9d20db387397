"""What a checkpoint holds beyond TorchRL's standard trainer components, and how a run's checkpoints are found."""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from torchrl.checkpoint import Checkpoint, CheckpointRotation
from torchrl.envs import EnvBase, TransformedEnv

from torchrl_liir.tasks import Task
from torchrl_liir.trainers.run_directory import TableMismatch, checkpoint_step

CHECKPOINTS = "checkpoints"
KEEP_LAST = 3
CHECKSUMS = "checksums.json"  # in each checkpoint: the SHA-256 of every other file


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


def file_checksums(directory: Path) -> dict[str, str]:
    """The SHA-256 of every file under ``directory`` but :data:`CHECKSUMS`, by relative path."""
    sums = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != CHECKSUMS:
            with path.open("rb") as f:
                sums[path.relative_to(directory).as_posix()] = hashlib.file_digest(f, "sha256").hexdigest()
    return sums


class VerifiedCheckpoint(Checkpoint):
    """TorchRL's ``Checkpoint``, each one written with :data:`CHECKSUMS` (the SHA-256 of every payload file and of
    the manifest) into its staging directory, so that the sums are published with it, atomically;
    :func:`checkpoint_damage` checks them. TorchRL's manifest lists the files but no sums, hence this subclass."""

    @staticmethod
    def _publish_path(source: Path, destination: Path) -> None:
        if source.is_dir() and ".stage-" in source.name:
            (source / CHECKSUMS).write_text(json.dumps(file_checksums(source), indent=1))
        Checkpoint._publish_path(source, destination)


def checkpoint_damage(path: Path) -> str | None:
    """What is wrong with the checkpoint at ``path`` (a file missing, changed or unlisted), ``None`` if every file
    matches its checksum. Checkpoints written before checksums existed are taken as they are."""
    listed = Path(path) / CHECKSUMS
    if not listed.is_file():
        return None
    try:
        expected = json.loads(listed.read_text())
    except (OSError, ValueError):
        return f"{CHECKSUMS} unreadable"
    found = file_checksums(Path(path))
    for name, digest in expected.items():
        if name not in found:
            return f"{name} missing"
        if found[name] != digest:
            return f"{name} does not match its checksum"
    extra = sorted(set(found) - set(expected))
    return f"{extra[0]} not in {CHECKSUMS}" if extra else None


def clean_interrupted_writes(run_dir: Path) -> None:
    """Removes the staging and backup directories that checkpoint writes cut short by a kill leave behind (only
    the run directory's writer may call it: see :func:`~torchrl_liir.trainers.run_directory.locked_run_dir`)."""
    for leftover in (Path(run_dir) / CHECKPOINTS).glob(".*"):
        if ".stage-" in leftover.name or ".backup-" in leftover.name:
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def checkpoint_candidates(run_dir: Path) -> list[Path]:
    """The run's checkpoint directories, newest first, whether or not TorchRL can read their manifests."""
    found = [p for p in (Path(run_dir) / CHECKPOINTS).glob("checkpoint-*") if checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step, reverse=True)


def restore_intact(restore, run_dir: Path) -> Path:
    """Restores (``restore(path)``) the newest intact checkpoint of ``run_dir``: one whose files match their
    checksums and which loads. Each damaged one is named on stderr in one line and the previous one is tried;
    :class:`CheckpointFileError` when none is intact. Returns the checkpoint restored."""
    damaged = []
    for path in checkpoint_candidates(run_dir):
        damage = checkpoint_damage(path)
        if damage is None:
            try:
                restore(path)
                return path
            except CheckpointFileError as err:
                damage = str(err).removeprefix(f"{path}: unreadable checkpoint (").removesuffix(")")
        damaged.append(path.name)
        print(f"warning: {path}: damaged ({damage}); trying the previous checkpoint", file=sys.stderr, flush=True)
    where = Path(run_dir) / CHECKPOINTS
    if damaged:
        raise CheckpointFileError(f"{where}: no intact checkpoint to resume from ({len(damaged)} damaged: "
                                  f"{', '.join(damaged)})")
    raise CheckpointFileError(f"{where}: no checkpoint to resume from")


def rotation(run_dir: Path) -> CheckpointRotation:
    """The run's rotated checkpoints: the last :data:`KEEP_LAST` and the best by test score."""
    return CheckpointRotation(Path(run_dir) / CHECKPOINTS, keep_last=KEEP_LAST, keep_best=("test_score", "max"))


def load_checkpoint(checkpoint: Checkpoint, path: Path, map_location: str, components: list[str] | None = None) -> None:
    """Restores ``components`` (all by default) from ``path``; any failure is one line naming the file."""
    try:
        checkpoint.load(path, components=components, map_location=map_location)
    except Exception as err:  # a truncated or foreign file fails in many ways; all mean "unreadable"
        cause = err
        while cause is not None:  # the tables disagree with an intact checkpoint: not the checkpoint's fault
            if isinstance(cause, TableMismatch):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointFileError(f"{path}: unreadable checkpoint ({first_line})") from err
