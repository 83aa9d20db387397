"""TorchRL transforms: LIIR's intrinsic and proxy rewards, and the team reward of per-agent rewards. Imported on
first use (:mod:`torchrl_liir._lazy`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torchrl_liir._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {
    "IntrinsicRewardTransform": "torchrl_liir.transforms.intrinsic_reward",
    "TeamReward": "torchrl_liir.transforms.team_reward",
})

if TYPE_CHECKING:
    from torchrl_liir.transforms.intrinsic_reward import IntrinsicRewardTransform
    from torchrl_liir.transforms.team_reward import TeamReward

__all__ = ["IntrinsicRewardTransform", "TeamReward"]
