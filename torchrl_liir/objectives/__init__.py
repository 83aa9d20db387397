"""LIIR and baseline losses."""
from torchrl_liir.objectives.actor_critic import MultiAgentActorCriticLoss
from torchrl_liir.objectives.coma import COMALoss, counterfactual_baseline
from torchrl_liir.objectives.inner_step import InnerStep
from torchrl_liir.objectives.liir import LIIRLoss
from torchrl_liir.objectives.mappo import EpisodeMAPPOLoss
from torchrl_liir.objectives.q_learning import IQLLoss, QMIXLoss

__all__ = [
    "COMALoss",
    "EpisodeMAPPOLoss",
    "IQLLoss",
    "InnerStep",
    "LIIRLoss",
    "MultiAgentActorCriticLoss",
    "QMIXLoss",
    "counterfactual_baseline",
]
