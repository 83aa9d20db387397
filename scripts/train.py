"""Train LIIR (or a baseline) with a hydra configuration from conf/.

    python scripts/train.py                       # LIIR on 1D Pursuit
    python scripts/train.py algo=central_v seed=3 # a baseline
    python scripts/train.py env=smax map=3m       # LIIR on SMAX battles
"""
from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from torchrl_liir.trainers import ConfigError, NonFiniteLossError, train


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        summary = train(cfg, HydraConfig.get().runtime.output_dir)
    except (ConfigError, NonFiniteLossError, ImportError) as err:
        sys.exit(f"error: {err}")
    print(f"run directory: {HydraConfig.get().runtime.output_dir}")
    print("test: " + ", ".join(f"{k}={v:.3f}" for k, v in summary["test"].items()))
    if "fig2" in summary:
        print(f"Fig. 2: AUROC(Good vs Bad r_in) = {summary['fig2']['auroc']}")


if __name__ == "__main__":
    main()
