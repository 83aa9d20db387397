"""Each env's first episode in a ``[envs, T]`` rollout: padded batches and per-episode statistics."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

from torchrl_liir.collectors.episode_collector import PADDING_MASK, first_episode_mask


def one_episode_per_env(rollout: TensorDictBase) -> TensorDictBase:
    """``[envs, T]`` rollout (e.g. TorchRL's ``Collector``) → padded ``[episodes, T]`` batch of first episodes.

    Sets ``("collector", "mask")`` to the steps of that episode; rows whose first
    episode did not finish within ``T`` steps are dropped, and a rollout in which no
    episode finished is refused (a ``ValueError``: the losses would train on nothing).
    :class:`EpisodeCollector` yields such batches directly.

    Examples:
        >>> from torchrl_liir import PursuitEnv, make_mlp_policy, one_episode_per_env
        >>> env = PursuitEnv(num_envs=4, max_steps=5, seed=0)  # every game ends within 5 steps
        >>> policy = make_mlp_policy(2, 2, 3, action_mask_key=("agents", "action_mask"))
        >>> batch = one_episode_per_env(env.rollout(8, policy, break_when_any_done=False))
        >>> batch.batch_size, batch.get(("collector", "mask")).sum(-1).le(5).all()
        (torch.Size([4, 8]), tensor(True))
    """
    done = rollout.get(("next", "done"))
    finished = done[..., 0].any(-1)
    if not bool(finished.any()):
        raise ValueError(f"no episode ended within the rollout's {rollout.shape[-1]} steps: collect at least the "
                         "env's longest episode per env (frames_per_batch >= envs · episode limit)")
    rollout.set(PADDING_MASK, first_episode_mask(done))
    return rollout[finished]


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
