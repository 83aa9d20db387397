"""Greedy test episodes (paper §5.2: test win rate), run with the learning frozen."""
from __future__ import annotations

import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType

from torchrl_liir.collectors import EpisodeCollector, first_episodes


@torch.no_grad()
def evaluate(env: EnvBase, actor: TensorDictModuleBase, episodes: int, max_steps: int) -> dict[str, float]:
    """Mean return, length and (StarCraft envs) win rate over ``episodes`` greedy test episodes.

    Every env of the batched ``env`` plays one episode from its start per round
    (:class:`EpisodeCollector`, stopping once all have ended), until ``episodes``
    episodes are in; the first ``episodes`` count. The actor acts greedily
    (``ExplorationType.DETERMINISTIC``).
    """
    collector = EpisodeCollector(env, actor, max_steps, exploration_type=ExplorationType.DETERMINISTIC)
    results: dict[str, list[torch.Tensor]] = {}
    collected = 0
    while collected < episodes:
        batch = collector.rollout()
        if batch.shape[0] == 0:
            raise RuntimeError(f"no test episode ended within {max_steps} steps")
        for key, value in first_episodes(batch).items():
            results.setdefault(key, []).append(value)
        collected += batch.shape[0]
    stats = {key: torch.cat(values)[:episodes].float() for key, values in results.items()}
    out = {"test_return": stats["return"].mean().item(), "test_episode_length": stats["length"].mean().item()}
    if "won" in stats:
        out["test_win_rate"] = stats["won"].mean().item()
    return out
