"""Run directories: a unique name per run, and no run written over another."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from omegaconf import ListConfig, OmegaConf

from torchrl_liir.trainers.members import population_label


class RunDirectoryError(RuntimeError):
    """The run directory holds another run (or, when resuming, none), or another process writes it."""


class TableMismatch(RunDirectoryError):
    """A run's CSV table no longer holds the rows its checkpoint recorded; the message (one line) says which."""


def unique_suffix() -> str:
    """Six random hex digits: runs started in the same second by the same command still get their own names."""
    return secrets.token_hex(3)


def _label(seed: int, seeds) -> str:
    return population_label(seed, list(seeds) if isinstance(seeds, ListConfig) else seeds)


def default_run_dir(run_name: str, algo: str, seed: int, seeds: int | list[int] | None = None) -> str:
    """``runs/<date>_<time>_<task>_<algo>_seed<N>_<id>`` (a population: ``seeds<first>-<last>``)."""
    return f"runs/{datetime.now():%Y-%m-%d_%H-%M-%S}_{run_name}_{algo}_{_label(seed, seeds)}_{unique_suffix()}"


def register_resolvers() -> None:
    """``${unique:}``, ``${run_dir:resume,run_name,algo,seed,seeds}`` and ``${seeds_label:seed,seeds}`` for hydra's
    run and sweep directories."""
    if not OmegaConf.has_resolver("unique"):
        OmegaConf.register_new_resolver("unique", unique_suffix, use_cache=True)
    if not OmegaConf.has_resolver("seeds_label"):
        OmegaConf.register_new_resolver("seeds_label", _label)
    if not OmegaConf.has_resolver("run_dir"):
        OmegaConf.register_new_resolver(
            "run_dir", lambda resume, run_name, algo, seed, seeds=None: resume or default_run_dir(run_name, algo, seed,
                                                                                               seeds),
            use_cache=True)


LOCK_FILE = ".lock"  # holds the PID of the process writing the run directory


@contextlib.contextmanager
def locked_run_dir(run_dir: Path) -> Iterator[None]:
    """One writer per run directory: an exclusive ``flock`` on ``run_dir/.lock`` for as long as the run is trained
    here (the kernel drops it when the process ends, however it ends, so a killed run never blocks its resume). A
    second writer is refused with :class:`RunDirectoryError` naming the holder's PID."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunDirectoryError(f"{run_dir}: another process (PID {holder}) is training this run; wait for it "
                                    "to end or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_atomically(path: Path, text: str) -> None:
    """Writes ``path`` whole or not at all (a temporary file beside it, then renamed over it): a kill never leaves
    it cut short."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def claim_run_dir(run_dir: Path, resume: bool) -> Path:
    """Creates ``run_dir`` for a new run (refusing one with files in it), or checks it holds a run to resume."""
    run_dir = Path(run_dir)
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise RunDirectoryError(f"{run_dir}: not a run directory (no config.yaml) to resume")
        return run_dir
    if run_dir.exists() and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
        raise RunDirectoryError(f"{run_dir}: not empty; resume it with resume={run_dir}, or pick a new directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def checkpoint_step(path: Path) -> int | None:
    """The step (frames) a rotated checkpoint's name ``checkpoint-<step>[.torchrl]`` carries; ``None`` for other
    names (the NaN guard's ``nonfinite-*``, staging leftovers)."""
    digits = path.name.removeprefix("checkpoint-").removesuffix(".torchrl")
    return int(digits) if path.name.startswith("checkpoint-") and digits.isdigit() else None


def frames_played(run_dir: Path) -> int | None:
    """The frames the run in ``run_dir`` had played at its latest checkpoint (``None``: no checkpoint), read from
    the checkpoints' manifests alone."""
    played = None
    for path in (Path(run_dir) / "checkpoints").glob("checkpoint-*"):
        step = checkpoint_step(path)
        if step is None:
            continue
        try:
            frames = int(json.loads((path / "manifest.json").read_text())["metadata"]["collected_frames"])
        except (OSError, ValueError, KeyError, TypeError):
            frames = step if path.suffix == ".torchrl" else None  # an archive, or a checkpoint cut short
        if frames is not None:
            played = max(played or 0, frames)
    return played
