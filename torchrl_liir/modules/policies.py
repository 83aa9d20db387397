"""Parameter-shared multi-agent policies with action masks: MLP and GRU (paper §5.2.1)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModuleBase, TensorDictSequential
from tensordict.utils import NestedKey
from torch import nn
from torchrl.envs import TensorDictPrimer
from torchrl.modules import MaskedCategorical, ProbabilisticActor
from torchrl.modules.utils import get_primers_from_module

from torchrl_liir.modules.agent_networks import gru_agent_network, mlp_agent_network

LOGITS_KEY = ("agents", "logits")
LOG_PROB_KEY = ("agents", "action_log_prob")


def _masked_actor(
    logits_module: TensorDictModuleBase, action_mask_key: NestedKey, action_key: NestedKey
) -> ProbabilisticActor:
    return ProbabilisticActor(
        logits_module,
        in_keys={"logits": LOGITS_KEY, "mask": action_mask_key},
        out_keys=[action_key],
        distribution_class=MaskedCategorical,
        return_log_prob=True,
        log_prob_key=LOG_PROB_KEY,
    )


def make_mlp_policy(
    n_agents: int,
    obs_dim: int,
    n_actions: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    observation_key: NestedKey = ("agents", "observation"),
    action_mask_key: NestedKey = ("agents", "action_mask"),
    action_key: NestedKey = ("agents", "action"),
    device: torch.device | str | None = None,
) -> ProbabilisticActor:
    """π_θ(u_i | o_i): one MLP shared by all agents, masked categorical over actions.

    A plain ``MLP`` over the last dim is shared across the agent dim by
    construction. ``MultiAgentMLP(share_params=True)`` is not used: its forward
    swaps its own stored weights into its network, so
    ``torch.func.functional_call`` (used by the meta-gradient) is silently
    ignored, with ``use_td_params`` True or False.
    ``n_agents`` is unused; it keeps the signature of :func:`make_gru_policy`.
    """
    logits = mlp_agent_network(obs_dim, n_actions, num_cells, observation_key, LOGITS_KEY, device)
    return _masked_actor(logits, action_mask_key, action_key)


def make_gru_policy(
    n_agents: int,
    obs_dim: int,
    n_actions: int,
    *,
    hidden_size: int = 64,
    observation_key: NestedKey = ("agents", "observation"),
    action_mask_key: NestedKey = ("agents", "action_mask"),
    action_key: NestedKey = ("agents", "action"),
    device: torch.device | str | None = None,
) -> ProbabilisticActor:
    """π_θ(u_i | τ_i): the paper's shared agent network, FC → GRU-64 → FC, masked categorical.

    Needs ``"is_init"`` (``torchrl.envs.InitTracker``) and the hidden-state
    primer (:func:`policy_primer`) on the environment.
    """
    parts = gru_agent_network(n_agents, obs_dim, n_actions, hidden_size, observation_key, LOGITS_KEY, device)
    return _masked_actor(TensorDictSequential(*parts), action_mask_key, action_key)


def policy_primer(policy: nn.Module) -> TensorDictPrimer | None:
    """The environment primer of a policy's recurrent state, ``None`` for a feed-forward policy."""
    return get_primers_from_module(policy, warn=False)
