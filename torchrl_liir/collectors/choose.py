"""The episode collector for an env and a policy: the fused SMAX rollout where it applies, else step by step."""
from __future__ import annotations

from typing import Any

from tensordict.nn import TensorDictModuleBase
from torchrl.envs import EnvBase

from torchrl_liir.collectors.episode_collector import EpisodeCollector


def make_episode_collector(
    env: EnvBase, policy: TensorDictModuleBase, episode_limit: int | None = None, *, fused: bool = True,
    **kwargs: Any,
) -> tuple[EpisodeCollector, str]:
    """A :class:`~torchrl_liir.collectors.fused_smax.FusedSMAXCollector` when ``fused`` and it can serve ``env``
    and ``policy`` (:func:`~torchrl_liir.collectors.fused_smax.fused_rollout_applies`), else an
    :class:`EpisodeCollector`; both take ``kwargs``. Also returns one line saying which, and why.

    Examples:
        >>> from torchrl_liir import PursuitEnv, make_mlp_policy
        >>> from torchrl_liir.collectors import make_episode_collector
        >>> policy = make_mlp_policy(2, 2, 3, action_mask_key=("agents", "action_mask"))
        >>> collector, how = make_episode_collector(PursuitEnv(num_envs=4, seed=0), policy)
        >>> type(collector).__name__, how
        ('EpisodeCollector', 'step by step (the env is a PursuitEnv, not a SMAXEnv)')
    """
    if not fused:
        return EpisodeCollector(env, policy, episode_limit, **kwargs), "step by step (experiment.fused_rollout=false)"
    # Imported here: the fused path's module imports SMAX's, which only SMAX runs need.
    from torchrl_liir.collectors.fused_smax import FusedSMAXCollector, fused_rollout_applies

    reason = fused_rollout_applies(env, policy)
    if reason is None:
        return (FusedSMAXCollector(env, policy, episode_limit, **kwargs),
                "fused: SMAX and the policy in one compiled JAX program per batch")
    return EpisodeCollector(env, policy, episode_limit, **kwargs), f"step by step ({reason})"
