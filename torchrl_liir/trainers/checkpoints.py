"""Run checkpoints: written atomically during training, read back for studies and plots."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from torchrl_liir.trainers.builders import Components, make_components, make_env


def save_checkpoint(components: Components, path: Path, update: int, frames: int) -> None:
    """Writes every network and optimiser state atomically (no half-written file on a crash)."""
    state = {
        "update": update,
        "frames": frames,
        "loss": components.loss.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in components.optimizers.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[DictConfig, Components]:
    """The configuration and trained networks of a run directory (``config.yaml``, ``checkpoints/last.pt``)."""
    run_dir = Path(run_dir)
    config, checkpoint = run_dir / "config.yaml", run_dir / "checkpoints" / "last.pt"
    for path in (config, checkpoint):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: is {run_dir} a training run directory?")
    cfg = OmegaConf.load(config)
    device = torch.device(device)
    components = make_components(cfg, make_env(cfg, device, 1, cfg.seed), device)
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    components.loss.load_state_dict(state["loss"])
    return cfg, components
