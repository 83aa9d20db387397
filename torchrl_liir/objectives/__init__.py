"""LIIR and baseline losses."""
from torchrl_liir.objectives.actor_critic import MultiAgentActorCriticLoss
from torchrl_liir.objectives.inner_step import InnerStep
from torchrl_liir.objectives.liir import LIIRLoss

__all__ = ["InnerStep", "LIIRLoss", "MultiAgentActorCriticLoss"]
