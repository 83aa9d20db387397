"""A TorchRL transform that writes the team reward of an env with per-agent rewards."""
from __future__ import annotations

from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torchrl.data import Composite, Unbounded
from torchrl.envs import Transform

from torchrl_liir.rewards import team_reward


class TeamReward(Transform):
    """Writes the team reward ``[*B, 1]``, the mean of the per-agent rewards ``[*B, n_agents, 1]``.

    VMAS and PettingZoo give each agent a reward; LIIR's r_ex is the team's (eq. 2). The
    per-agent rewards are kept. The reduction is :func:`~torchrl_liir.rewards.team_reward`, the one
    every loss of this package applies to per-agent rewards.

    Args:
        in_key: the per-agent reward.
        out_key: where the team reward is written.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_liir import TeamReward
        >>> rewards = torch.tensor([[[1.0], [3.0]], [[0.0], [-2.0]]])  # [envs=2, n_agents=2, 1]
        >>> batch = TensorDict({"next": {"agents": TensorDict({"reward": rewards}, [2, 2])}}, [2])
        >>> TeamReward()(batch).get(("next", "reward"))  # in batch mode; as an env transform it acts at each step
        tensor([[ 2.],
                [-1.]])
    """

    def __init__(self, in_key: NestedKey = ("agents", "reward"), out_key: NestedKey = "reward") -> None:
        super().__init__(in_keys=[in_key], out_keys=[out_key])

    def _step(self, tensordict: TensorDictBase, next_tensordict: TensorDictBase) -> TensorDictBase:
        reward = next_tensordict.get(self.in_keys[0])
        next_tensordict.set(self.out_keys[0], team_reward(reward, next_tensordict.batch_dims))
        return next_tensordict

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Batch mode: the team reward of ``tensordict["next"]``."""
        self._step(tensordict, tensordict.get("next"))
        return tensordict

    def transform_reward_spec(self, reward_spec: Composite) -> Composite:
        agents = reward_spec[self.in_keys[0]]
        reward_spec[self.out_keys[0]] = Unbounded(shape=(*reward_spec.shape, 1), dtype=agents.dtype,
                                                  device=agents.device)
        return reward_spec
