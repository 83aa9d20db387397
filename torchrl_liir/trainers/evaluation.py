"""Greedy test episodes (paper §5.2: test win rate), run with the learning frozen."""
from __future__ import annotations

import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType, set_exploration_type

from torchrl_liir.trainers.episodes import first_episodes


@torch.no_grad()
def evaluate(env: EnvBase, actor: TensorDictModuleBase, episodes: int, max_steps: int) -> dict[str, float]:
    """Mean return, length and (StarCraft envs) win rate over ``episodes`` greedy test episodes.

    Runs rollouts of ``max_steps`` steps (the longest episode) on the batched
    ``env`` until it has ``episodes`` first episodes, each env contributing one
    per rollout; the actor acts greedily (``ExplorationType.DETERMINISTIC``).
    """
    results: dict[str, list[torch.Tensor]] = {}
    collected = 0
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        while collected < episodes:
            rollout = env.rollout(max_steps, actor, break_when_any_done=False)
            if rollout.ndim == 1:
                rollout = rollout.unsqueeze(0)
            for key, value in first_episodes(rollout).items():
                results.setdefault(key, []).append(value)
            collected = sum(v.numel() for v in results["return"])
            if not rollout.get(("next", "done")).any():
                raise RuntimeError(f"no test episode ended within {max_steps} steps")
    stats = {key: torch.cat(values)[:episodes].float() for key, values in results.items()}
    out = {"test_return": stats["return"].mean().item(), "test_episode_length": stats["length"].mean().item()}
    if "won" in stats:
        out["test_win_rate"] = stats["won"].mean().item()
    return out
