"""The key layout shared by the StarCraft-style envs (same keys as TorchRL's ``SMACv2Env``)."""
from __future__ import annotations

import warnings

import torch
from tensordict import TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded

# Episode limits of the SMAC v1 maps (StarCraft II's map files); SMAX's own default is 100 for all.
SMAC_EPISODE_LIMITS = {
    "3m": 60, "8m": 120, "25m": 150, "5m_vs_6m": 70, "10m_vs_11m": 150, "27m_vs_30m": 180,
    "2s3z": 120, "3s5z": 150, "3s5z_vs_3s6z": 170, "3s_vs_5z": 250, "6h_vs_8z": 150,
}


def default_episode_limit(map_name: str) -> int:
    """SMAC's episode limit of ``map_name``; SMAX's 100 (with a warning) for a map SMAC does not list."""
    if map_name not in SMAC_EPISODE_LIMITS:
        warnings.warn(f"map {map_name!r} has no known SMAC episode limit; using SMAX's 100", stacklevel=3)
        return 100
    return SMAC_EPISODE_LIMITS[map_name]


def smac_specs(
    batch: tuple[int, ...], n_agents: int, n_enemies: int, n_actions: int, obs_dim: int, state_dim: int,
    device: torch.device,
) -> dict[str, Composite]:
    """Specs for ``("agents", observation|action_mask|health|alive|action)``, ``state``, ``info``, reward, done.

    ``health`` (in [0, 1]) and ``alive`` are for analysis and loss masking, not policy inputs.
    """
    agents = (*batch, n_agents)
    flag = Categorical(2, (*batch, 1), dtype=torch.bool, device=device)
    return {
        "observation_spec": Composite(
            agents=Composite(
                observation=Bounded(-1.0, 1.0, (*agents, obs_dim), device=device),
                action_mask=Categorical(2, (*agents, n_actions), dtype=torch.bool, device=device),
                health=Bounded(0.0, 1.0, (*agents, 1), device=device),
                alive=Categorical(2, (*agents, 1), dtype=torch.bool, device=device),
                shape=agents,
            ),
            state=Bounded(-1.0, 1.0, (*batch, state_dim), device=device),
            info=Composite(
                battle_won=Categorical(2, batch, dtype=torch.bool, device=device),
                episode_limit=Categorical(2, batch, dtype=torch.bool, device=device),
                dead_allies=Bounded(0, n_agents, batch, dtype=torch.long, device=device),
                dead_enemies=Bounded(0, n_enemies, batch, dtype=torch.long, device=device),
                shape=batch,
            ),
            shape=batch,
        ),
        "action_spec": Composite(
            agents=Composite(action=Categorical(n_actions, agents, device=device), shape=agents), shape=batch
        ),
        "reward_spec": Unbounded((*batch, 1), device=device),
        "done_spec": Composite(done=flag, terminated=flag.clone(), truncated=flag.clone(), shape=batch),
    }


def check_actions(action: torch.Tensor, mask: torch.Tensor) -> None:
    """Raises ``ValueError`` for an action out of range or outside ``("agents", "action_mask")``."""
    n_actions = mask.shape[-1]
    invalid = (action < 0) | (action >= n_actions)
    if invalid.any():
        raise ValueError(f"('agents', 'action')={action[invalid][0].item()} is not in [0, {n_actions})")
    allowed = mask.gather(-1, action.unsqueeze(-1)).squeeze(-1)
    if not allowed.all():
        raise ValueError(f"('agents', 'action')={action[~allowed][0].item()} "
                         "is outside the action mask ('agents', 'action_mask')")


def masked_rand_action(spec: Composite, tensordict: TensorDictBase) -> TensorDictBase:
    """Writes uniform random actions among those ``tensordict``'s action mask allows."""
    action = spec["agents", "action"].clone()
    action.update_mask(tensordict.get(("agents", "action_mask")))
    tensordict.set(("agents", "action"), action.rand())
    return tensordict
