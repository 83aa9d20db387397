"""The discrete-action envs' one check of what a step is given: integer indices, in range, inside the mask."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase

ACTION_KEY = ("agents", "action")


def read_actions(tensordict: TensorDictBase) -> torch.Tensor:
    """The step's ``("agents", "action")`` as int64; ``ValueError`` in one line when it is missing or not integer
    (a float action would otherwise be truncated to an index)."""
    action = tensordict.get(ACTION_KEY, None)
    if action is None:
        raise ValueError(f"{ACTION_KEY} is missing: a step needs one action index per agent")
    if action.is_floating_point() or action.is_complex() or action.dtype == torch.bool:
        raise ValueError(f"{ACTION_KEY} must hold integer action indices, got {action.dtype}")
    return action.long()


def check_actions(action: torch.Tensor, mask: torch.Tensor) -> None:
    """``ValueError`` naming the first agent (and env) whose action is out of range or outside its action mask,
    with the actions it may take; ``action`` is ``[*envs, agents]``, ``mask`` ``[*envs, agents, n_actions]``."""
    n_actions = mask.shape[-1]
    invalid = (action < 0) | (action >= n_actions)
    if invalid.any():
        where = tuple(invalid.nonzero()[0].tolist())
        raise ValueError(f"{ACTION_KEY}={action[where].item()} of agent {where[-1]} (env {list(where[:-1])}) is not "
                         f"in [0, {n_actions})")
    allowed = mask.gather(-1, action.unsqueeze(-1)).squeeze(-1)
    if not allowed.all():
        where = tuple((~allowed).nonzero()[0].tolist())
        choices = mask[where].nonzero().flatten().tolist()
        raise ValueError(f"{ACTION_KEY}={action[where].item()} of agent {where[-1]} (env {list(where[:-1])}) is "
                         f"outside the action mask ('agents', 'action_mask'), which allows {choices}")
