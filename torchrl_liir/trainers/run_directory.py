"""Run directories: a unique name per run, and no run written over another."""
from __future__ import annotations

import json
import secrets
from datetime import datetime
from pathlib import Path

from omegaconf import ListConfig, OmegaConf

from torchrl_liir.trainers.members import population_label


class RunDirectoryError(RuntimeError):
    """The run directory holds another run (or, when resuming, none)."""


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


def claim_run_dir(run_dir: Path, resume: bool) -> Path:
    """Creates ``run_dir`` for a new run (refusing one with files in it), or checks it holds a run to resume."""
    run_dir = Path(run_dir)
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise RunDirectoryError(f"{run_dir}: not a run directory (no config.yaml) to resume")
        return run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirectoryError(f"{run_dir}: not empty; resume it with resume={run_dir}, or pick a new directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def frames_played(run_dir: Path) -> int | None:
    """The frames the run in ``run_dir`` had played at its latest checkpoint (``None``: no checkpoint), read from
    the checkpoints' manifests alone."""
    played = None
    for path in (Path(run_dir) / "checkpoints").glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-").removesuffix(".torchrl")
        if not step.isdigit():
            continue
        try:
            frames = int(json.loads((path / "manifest.json").read_text())["metadata"]["collected_frames"])
        except (OSError, ValueError, KeyError, TypeError):
            frames = int(step) if path.suffix == ".torchrl" else None  # an archive, or a checkpoint cut short
        if frames is not None:
            played = max(played or 0, frames)
    return played
