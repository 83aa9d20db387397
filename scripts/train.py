"""Train LIIR (or a baseline) with a hydra configuration from conf/.

    python scripts/train.py                          # LIIR on 1D Pursuit
    python scripts/train.py algo=central_v seed=3    # a baseline
    python scripts/train.py env=smax map=3m          # LIIR on SMAX battles
    python scripts/train.py resume=runs/<run>        # continue a run from its latest checkpoint
    python scripts/train.py -m seed=0,1,2 algo=liir,central_v hydra/launcher=joblib   # a sweep
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from torchrl_liir.trainers import (
    CheckpointFileError,
    ConfigError,
    NonFiniteError,
    RunDirectoryError,
    RunInterrupted,
    train,
)
from torchrl_liir.trainers.config import check_resume_overrides
from torchrl_liir.trainers.run_directory import claim_run_dir, register_resolvers

register_resolvers()


def resumed_config(cfg: DictConfig) -> DictConfig:
    """The saved config of the run ``cfg.resume`` names, with the command line's resumable overrides."""
    saved = claim_run_dir(Path(cfg.resume), resume=True) / "config.yaml"
    overrides = [o.split("=", 1)[0] for o in HydraConfig.get().overrides.task]
    check_resume_overrides(overrides)
    resumed = OmegaConf.load(saved)
    for key in overrides:
        OmegaConf.update(resumed, key.lstrip("+~"), OmegaConf.select(cfg, key.lstrip("+~")), force_add=True)
    return resumed


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        if cfg.resume is not None:
            cfg, run_dir, resume = resumed_config(cfg), Path(cfg.resume), True
        else:
            run_dir, resume = Path(HydraConfig.get().runtime.output_dir), False
        print(f"run directory: {run_dir}", flush=True)
        summary = train(cfg, run_dir, resume=resume)
    except (ConfigError, RunDirectoryError, CheckpointFileError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except RunInterrupted as err:
        print(f"{err}; resume with: python scripts/train.py resume={run_dir}", file=sys.stderr)
        sys.exit(err.exit_code)
    print("test: " + ", ".join(f"{k}={v:.3f}" for k, v in summary["test"].items()))
    if "fig2" in summary:
        print(f"Fig. 2: AUROC(Good vs Bad r_in) = {summary['fig2']['auroc']}")


if __name__ == "__main__":
    main()
