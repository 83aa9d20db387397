"""The key layout shared by the StarCraft-style envs (same keys as TorchRL's ``SMACv2Env``)."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded


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


def masked_rand_action(spec: Composite, tensordict: TensorDictBase) -> TensorDictBase:
    """Writes uniform random actions among those ``tensordict``'s action mask allows."""
    action = spec["agents", "action"].clone()
    action.update_mask(tensordict.get(("agents", "action_mask")))
    tensordict.set(("agents", "action"), action.rand())
    return tensordict
