"""A TorchRL transform that writes LIIR's intrinsic and proxy rewards (eq. 2)."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.data import Composite, Unbounded
from torchrl.envs import Transform

from torchrl_liir.rewards import proxy_reward, team_reward


class IntrinsicRewardTransform(Transform):
    """Writes per-agent ``intrinsic_reward`` r_in_η(o_t, u_t) and ``proxy_reward`` r_ex + λ·r_in.

    Both land next to the env's reward (under ``"next"``), are computed under
    ``no_grad`` (the loss recomputes r_in with gradients for the meta step) and
    are declared in the reward spec. Use it as an environment transform, or call
    it on a collected ``[*B, T]`` batch (collector ``postproc``, replay-buffer
    transform), where it reads ``(o_t, u_t)`` at the root and writes into
    ``"next"``. Per-agent rewards (VMAS, PettingZoo) are averaged into the team
    reward r_ex first (:func:`~torchrl_liir.rewards.team_reward`), as the losses do.

    Args:
        intrinsic_reward: module with ``in_keys`` (observation, action) writing one
            ``[*B, n_agents, 1]`` entry.
        lambda_in: λ of eq. 2, non-negative.
        reward_key: the env's reward, team ``[*B, 1]`` or per agent ``[*B, n_agents, 1]``;
            default the env's reward key (``"reward"`` when it has several, or on a batch).
        proxy_reward_key: where r_ex + λ·r_in is written.

    Examples:
        >>> import torch
        >>> from torchrl.envs import TransformedEnv
        >>> from torchrl_liir import (EpisodeCollector, IntrinsicRewardTransform, PursuitEnv, make_intrinsic_reward,
        ...                           make_mlp_policy)
        >>> r_in = make_intrinsic_reward(obs_dim=2, n_actions=3, n_agents=2)
        >>> actor = make_mlp_policy(2, 2, 3, action_mask_key=("agents", "action_mask"))
        >>> env = TransformedEnv(PursuitEnv(num_envs=4, seed=0), IntrinsicRewardTransform(r_in, lambda_in=0.01))
        >>> rollout = env.rollout(5, actor)  # as an env transform
        >>> rollout.get(("next", "agents", "proxy_reward")).shape  # [envs, T, n_agents, 1]
        torch.Size([4, 5, 2, 1])
        >>> list(env.reward_spec.keys(True, True))
        ['reward', ('agents', 'intrinsic_reward'), ('agents', 'proxy_reward')]
        >>> collector = EpisodeCollector(PursuitEnv(num_envs=4, seed=0), actor,  # in batch mode
        ...                              postproc=IntrinsicRewardTransform(r_in, lambda_in=0.01))
        >>> batch = next(iter(collector))
        >>> nxt = batch.get("next")
        >>> torch.allclose(nxt.get(("agents", "proxy_reward")),
        ...                nxt.get("reward").unsqueeze(-2) + 0.01 * nxt.get(("agents", "intrinsic_reward")))
        True
    """

    def __init__(
        self,
        intrinsic_reward: TensorDictModuleBase,
        lambda_in: float = 0.01,
        *,
        reward_key: NestedKey | None = None,
        proxy_reward_key: NestedKey = ("agents", "proxy_reward"),
    ) -> None:
        if lambda_in < 0:
            raise ValueError(f"lambda_in must be >= 0, got lambda_in={lambda_in}")
        for name, key in (("out_key", intrinsic_reward.out_keys[0]), ("proxy_reward_key", proxy_reward_key)):
            if isinstance(key, str):
                raise ValueError(f"{name}={key!r} must be nested under the agents' group, e.g. ('agents', {key!r})")
        super().__init__(
            in_keys=list(intrinsic_reward.in_keys),
            out_keys=[intrinsic_reward.out_keys[0], proxy_reward_key],
        )
        self.intrinsic_reward = intrinsic_reward
        self.lambda_in = lambda_in
        self._reward_key = reward_key

    @property
    def reward_key(self) -> NestedKey:
        """The given reward key, else the env's (``"reward"`` if it has several or none is known).

        The env's is looked up once: ``self.parent`` rebuilds the chain of transforms before this one.
        """
        if self._reward_key is None and self.parent is not None:
            keys = self.parent.reward_keys
            self._reward_key = keys[0] if len(keys) == 1 else "reward"
        return "reward" if self._reward_key is None else self._reward_key

    def _rewards(self, tensordict: TensorDictBase, next_tensordict: TensorDictBase) -> None:
        reward_key = self.reward_key
        if reward_key not in next_tensordict.keys(True, True):
            raise KeyError(f"IntrinsicRewardTransform: the reward {reward_key!r} is not in the data; "
                           f"pass the env's reward key, e.g. reward_key=('agents', 'reward')")
        with torch.no_grad():
            r_in = self.intrinsic_reward(tensordict.select(*self.in_keys).copy())
            r_in = r_in.get(self.out_keys[0])
        r_ex = team_reward(next_tensordict.get(reward_key), next_tensordict.batch_dims)
        next_tensordict.set(self.out_keys[0], r_in)
        next_tensordict.set(self.out_keys[1], proxy_reward(r_ex, r_in, self.lambda_in))

    def _step(self, tensordict: TensorDictBase, next_tensordict: TensorDictBase) -> TensorDictBase:
        self._rewards(tensordict, next_tensordict)
        return next_tensordict

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Batch mode: ``(o_t, u_t)`` from the root, rewards into ``tensordict["next"]``."""
        self._rewards(tensordict, tensordict.get("next"))
        return tensordict

    def transform_reward_spec(self, reward_spec: Composite) -> Composite:
        team = reward_spec[self.reward_key]
        n_agents = self.parent.full_observation_spec[self.in_keys[0]].shape[-2]
        shape = (*reward_spec.shape, n_agents, 1)
        for key in self.out_keys:
            group, leaf = key[:-1], key[-1]
            if group not in reward_spec.keys(True):
                reward_spec[group] = Composite(shape=shape[:-1], device=team.device)
            reward_spec[group][leaf] = Unbounded(shape=shape, dtype=team.dtype, device=team.device)
        return reward_spec
