"""Test episodes (paper §5.2: test win rate), run with the learning frozen, and their confidence intervals."""
from __future__ import annotations

import math

import torch
from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType

from torchrl_liir.collectors import first_episodes, make_episode_collector


@torch.no_grad()
def play_episodes(
    env: EnvBase, actor: TensorDictModuleBase, episodes: int, max_steps: int,
    exploration_type: ExplorationType = ExplorationType.DETERMINISTIC, fused: bool = False,
) -> dict[str, torch.Tensor]:
    """Return, length and (StarCraft envs) win flag of each of ``episodes`` episodes.

    Every env of the batched ``env`` plays one episode from its start per round
    (:class:`~torchrl_liir.collectors.EpisodeCollector`, stopping once all have ended, or with ``fused`` the
    fused SMAX rollout where it applies: the same greedy episodes), until ``episodes`` episodes are in; the
    first ``episodes`` count. ``DETERMINISTIC``: the greedy policy; ``RANDOM``: the stochastic one.
    """
    collector, _ = make_episode_collector(env, actor, max_steps, fused=fused, exploration_type=exploration_type)
    results: dict[str, list[torch.Tensor]] = {}
    collected = 0
    while collected < episodes:
        batch = collector.rollout()
        if batch.shape[0] == 0:
            raise RuntimeError(f"no test episode ended within {max_steps} steps")
        for key, value in first_episodes(batch).items():
            results.setdefault(key, []).append(value)
        collected += batch.shape[0]
    return {key: torch.cat(values)[:episodes].float() for key, values in results.items()}


def evaluate(
    env: EnvBase, actor: TensorDictModuleBase, episodes: int, max_steps: int, fused: bool = False
) -> dict[str, float]:
    """Mean return, length and (StarCraft envs) win rate over ``episodes`` greedy test episodes."""
    stats = play_episodes(env, actor, episodes, max_steps, fused=fused)
    out = {"test_return": stats["return"].mean().item(), "test_episode_length": stats["length"].mean().item()}
    if "won" in stats:
        out["test_win_rate"] = stats["won"].mean().item()
    return out


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate (95 % for ``z=1.96``); sound near 0 and 1, unlike p ± z·se."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)
