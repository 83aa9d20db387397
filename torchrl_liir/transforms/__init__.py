"""TorchRL transforms: LIIR's intrinsic and proxy rewards, and the team reward of per-agent rewards."""
from torchrl_liir.transforms.intrinsic_reward import IntrinsicRewardTransform
from torchrl_liir.transforms.team_reward import TeamReward

__all__ = ["IntrinsicRewardTransform", "TeamReward"]
