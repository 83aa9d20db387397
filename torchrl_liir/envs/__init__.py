"""Environments: the paper's 1D Pursuit and StarCraft-style battles (SMAC v1 API, SMAX). Imported on first use
(:mod:`torchrl_liir._lazy`): importing this package imports neither torch nor JAX."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {
    "PursuitEnv": "torchrl_liir.envs.pursuit", "action_labels": "torchrl_liir.envs.pursuit",
    "SMACEnv": "torchrl_liir.envs.smac", "SMAC_EPISODE_LIMITS": "torchrl_liir.envs.smac_maps",
    "SMAXEnv": "torchrl_liir.envs.smax", "SMAXSmacAPI": "torchrl_liir.envs.smax_smac_api",
})

if TYPE_CHECKING:
    from torchrl_liir.envs.pursuit import PursuitEnv, action_labels
    from torchrl_liir.envs.smac import SMACEnv
    from torchrl_liir.envs.smac_maps import SMAC_EPISODE_LIMITS
    from torchrl_liir.envs.smax import SMAXEnv
    from torchrl_liir.envs.smax_smac_api import SMAXSmacAPI

__all__ = ["SMAC_EPISODE_LIMITS", "PursuitEnv", "SMACEnv", "SMAXEnv", "SMAXSmacAPI", "action_labels"]
