"""Batch bookkeeping shared by the multi-agent losses: masks, key checks, log-probabilities."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey, unravel_key
from torch import nn
from torchrl.modules import set_recurrent_mode


def check_keys(loss_name: str, tensordict: TensorDictBase, required: dict[str, NestedKey]) -> None:
    """Raises a one-line ``KeyError`` naming the ``set_keys`` entry whose key is missing."""
    present = set(tensordict.keys(True, True))
    for name, key in required.items():
        if unravel_key(key) not in present:
            raise KeyError(
                f"{loss_name}: key {key!r} (set_keys({name}=...)) is not in the batch; "
                f"set it with {loss_name}.set_keys({name}=<key>)"
            )


def valid_mask(
    tensordict: TensorDictBase, n_agents: int, padding_key: NestedKey | None, agent_mask_key: NestedKey | None
) -> torch.Tensor:
    """Boolean ``[*B, T, n_agents]`` mask of the (time, agent) entries that count.

    Padded time steps (``padding_key``, e.g. the collector's ``("collector", "mask")``)
    and dead agents (``agent_mask_key``) are excluded; absent keys count as all valid.
    """
    keys = tensordict.keys(True, True)
    mask = torch.ones(*tensordict.batch_size, n_agents, dtype=torch.bool, device=tensordict.device)
    if padding_key is not None and padding_key in keys:
        mask = mask & tensordict.get(padding_key).bool().reshape(*tensordict.batch_size, 1)
    if agent_mask_key is not None and agent_mask_key in keys:
        mask = mask & tensordict.get(agent_mask_key).bool().reshape(*tensordict.batch_size, n_agents)
    return mask


def prepare_batch(
    loss_name: str, tensordict: TensorDictBase, keys, n_agents: int
) -> tuple[TensorDictBase, torch.Tensor]:
    """Checks a loss's input keys and actions; returns the log-prob-safe batch and the valid mask.

    ``keys`` is the loss's ``tensor_keys`` (action, action_mask, reward, done,
    terminated, padding_mask, agent_mask).
    """
    check_keys(loss_name, tensordict, {
        "action": keys.action, "reward": ("next", keys.reward),
        "done": ("next", keys.done), "terminated": ("next", keys.terminated),
    })
    valid = valid_mask(tensordict, n_agents, keys.padding_mask, keys.agent_mask)
    return check_and_fill_actions(loss_name, tensordict, valid, keys.action, keys.action_mask), valid


def run_module(network: TensorDictModuleBase, tensordict: TensorDictBase) -> torch.Tensor:
    """The first output of ``network`` on ``tensordict``, without writing into it."""
    return network(tensordict.select(*network.in_keys, strict=False)).get(network.out_keys[0])


def with_gradient(
    value: torch.Tensor, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]
) -> torch.Tensor:
    """``value`` (detached) whose gradient w.r.t. ``params`` is ``grads``: ``value + Σ⟨θ, g⟩ − Σ⟨θ, g⟩.detach()``.

    Hands a gradient already computed to a later ``backward()``; parameters with a ``None``
    gradient get none.
    """
    surrogate = sum((p * g).sum() for p, g in zip(params, grads) if g is not None)
    if not isinstance(surrogate, torch.Tensor):
        return value.detach()
    return value.detach() + (surrogate - surrogate.detach())


def masked_mean(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ w·x / Σ w`` (0 when nothing is valid)."""
    return (weights * x).sum() / weights.sum().clamp_min(1)


def masked_normalize(x: torch.Tensor, weights: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(x − mean) / std`` over the weighted entries (differentiable; as the authors' code does to advantages)."""
    mean = masked_mean(x, weights)
    std = masked_mean((x - mean).pow(2), weights).sqrt()
    return (x - mean) / (std + eps)


def check_and_fill_actions(
    loss_name: str,
    tensordict: TensorDictBase,
    valid: torch.Tensor,
    action_key: NestedKey,
    action_mask_key: NestedKey,
) -> TensorDictBase:
    """Checks taken actions against the action mask; returns a copy safe for log-probs.

    A valid entry whose action the mask forbids raises a one-line ``ValueError``.
    Padded or dead entries get every action allowed, so their (ignored)
    log-probabilities stay finite and cannot poison gradients with NaN.
    """
    action = tensordict.get(action_key).long()
    out = tensordict.copy()
    if action_mask_key not in tensordict.keys(True, True):
        return out
    mask = tensordict.get(action_mask_key).bool()
    allowed = mask.gather(-1, action.unsqueeze(-1)).squeeze(-1)
    if (valid & ~allowed).any():
        idx = tuple(i.item() for i in (valid & ~allowed).nonzero()[0])
        raise ValueError(
            f"{loss_name}: {action_key!r}={action[idx].item()} at index {idx} "
            f"is outside the action mask {action_mask_key!r}"
        )
    out.set(action_mask_key, mask | ~valid.unsqueeze(-1))
    return out


class PolicyTerms(nn.Module):
    """Log-probability and entropy of the taken actions over a ``[*B, T]`` batch.

    A module (rather than a function) so ``torch.func.functional_call`` can
    evaluate it at other policy parameters; recurrent policies run in sequence mode.
    With ``entropy=False`` the entropy is not computed (``None``).
    """

    def __init__(self, actor: TensorDictModuleBase, action_key: NestedKey) -> None:
        super().__init__()
        self.actor = actor
        self.action_key = action_key

    def forward(self, tensordict: TensorDictBase, entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        with set_recurrent_mode(True):
            dist = self.actor.get_dist(tensordict.copy())
        return dist.log_prob(tensordict.get(self.action_key)), dist.entropy() if entropy else None
