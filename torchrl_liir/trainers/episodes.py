"""Whole episodes from batched envs: one per env and batch, as the paper's (pymarl's) episode runner."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torchrl.collectors import Collector
from torchrl.envs import EnvBase


def first_episode_mask(done: torch.Tensor) -> torch.Tensor:
    """``[N, T]`` mask of the steps of each row's first episode (``done`` is ``[N, T, 1]``)."""
    done = done[..., 0].long()
    return (done.cumsum(-1) - done) == 0


def episode_collector(
    env: EnvBase, policy: TensorDictModuleBase, episode_limit: int, device: torch.device | None = None
) -> Collector:
    """A TorchRL ``Collector`` whose every batch starts all of ``env``'s battles afresh and runs ``episode_limit``
    steps, so each battle plays exactly one complete episode with the current policy.

    Collecting "the first K episodes to finish" instead (``trajs_per_batch``)
    over-samples short episodes and carries long ones across policy updates,
    which biases the policy gradient; this is the paper's sampling (32 actors,
    one episode each, per batch of 32 episodes). Turn its batches into padded
    episodes with :func:`one_episode_per_env`.
    """
    return Collector(env, policy, frames_per_batch=env.batch_size.numel() * episode_limit, total_frames=-1,
                     reset_at_each_iter=True, device=device)


def one_episode_per_env(rollout: TensorDictBase) -> TensorDictBase:
    """``[envs, T]`` rollout → padded ``[episodes, T]`` batch of each env's first episode.

    Sets ``("collector", "mask")`` to the steps of that episode; rows whose first
    episode did not finish within ``T`` steps are dropped.
    """
    done = rollout.get(("next", "done"))
    mask = first_episode_mask(done)
    rollout.set(("collector", "mask"), mask)
    return rollout[done[..., 0].any(-1)]


def first_episodes(rollout: TensorDictBase) -> dict[str, torch.Tensor]:
    """Return, length and win flag of each env's first episode in a ``[envs, T]`` rollout.

    Envs whose first episode did not end within the rollout are left out.
    """
    done = rollout.get(("next", "done"))[..., 0]
    finished = done.any(-1)
    end = done.float().argmax(-1)
    in_first = first_episode_mask(rollout.get(("next", "done")))
    reward = rollout.get(("next", "reward"))[..., 0]
    out = {
        "return": (reward * in_first).sum(-1)[finished],
        "length": (end + 1)[finished].to(reward.dtype),
    }
    if ("next", "info", "battle_won") in rollout.keys(True):
        won = rollout.get(("next", "info", "battle_won")).reshape(done.shape)
        out["won"] = won.gather(-1, end.unsqueeze(-1)).squeeze(-1)[finished]
    return out
