"""Environments: the paper's 1D Pursuit."""
from torchrl_liir.envs.pursuit import PursuitEnv, action_labels

__all__ = ["PursuitEnv", "action_labels"]
