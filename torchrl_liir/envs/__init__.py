"""Environments: the paper's 1D Pursuit and StarCraft-style battles (SMAC v1 API, SMAX)."""
from torchrl_liir.envs.pursuit import PursuitEnv, action_labels
from torchrl_liir.envs.smac import SMACEnv
from torchrl_liir.envs.smac_layout import SMAC_EPISODE_LIMITS
from torchrl_liir.envs.smax import SMAXEnv
from torchrl_liir.envs.smax_smac_api import SMAXSmacAPI

__all__ = ["SMAC_EPISODE_LIMITS", "PursuitEnv", "SMACEnv", "SMAXEnv", "SMAXSmacAPI", "action_labels"]
