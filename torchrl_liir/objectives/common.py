"""Batch bookkeeping shared by the multi-agent losses: masks, key checks, log-probabilities."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey, unravel_key
from torch import nn
from torchrl.modules import set_recurrent_mode


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


def _team_layout(x: torch.Tensor, batch_dims: int, reduce: str, what: str) -> torch.Tensor:
    """``x`` as the team's ``[*B, 1]``: as is, or reduced over the agent dim of ``[*B, n_agents, 1]``."""
    if x.ndim == batch_dims + 1 and x.shape[-1] == 1:
        return x
    if x.ndim == batch_dims + 2 and x.shape[-1] == 1:
        return x.all(-2) if reduce == "all" else x.mean(-2)
    raise ValueError(f"{what} of shape {list(x.shape)} for a batch of {batch_dims} dims: expected the team's "
                     f"[*B, 1] or one per agent [*B, n_agents, 1]")


def team_flag(flag: torch.Tensor, batch_dims: int, key: NestedKey = "done") -> torch.Tensor:
    """The team's end flag ``[*B, 1]``: a team flag as is; agent-level flags ``[*B, n_agents, 1]`` (TorchRL's
    multi-agent convention, e.g. ``("agents", "done")``) end the team's episode when every agent's has ended."""
    return _team_layout(flag, batch_dims, "all", repr(key))


def team_value(value: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """The team's value ``[*B, 1]`` of a centralised critic's output: ``[*B, 1]`` as is, or the mean of one output
    per agent ``[*B, n_agents, 1]`` (TorchRL's centralised ``MultiAgentMLP``, whose shared outputs all equal V(s))."""
    return _team_layout(value, batch_dims, "mean", "a centralised critic's value")


def per_agent_like(team: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A team quantity ``[*B, 1]`` broadcast to ``value``'s per-agent layout ``[*B, n_agents, 1]`` (as is when
    ``value`` is the team's)."""
    return team.unsqueeze(-2).expand_as(value) if value.ndim == team.ndim + 1 else team


def check_discount(loss_name: str, gamma: float, lmbda: float) -> None:
    """Refuses a discount or TD(λ) λ outside ``[0, 1]`` in one line."""
    for name, value in (("gamma", gamma), ("lmbda", lmbda)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{loss_name}: {name}={value!r}: must be a number in [0, 1]")


def run_module(network: TensorDictModuleBase, tensordict: TensorDictBase) -> torch.Tensor:
    """The first output of ``network`` on ``tensordict``, without writing into it.

    A missing input raises a one-line ``KeyError`` (a ``TensorDictModule`` would pass ``None`` on).
    """
    require_inputs(network, tensordict)
    return network(tensordict.select(*network.in_keys)).get(network.out_keys[0])


def require_inputs(network: TensorDictModuleBase, tensordict: TensorDictBase) -> None:
    """A one-line ``KeyError`` naming the first of ``network``'s inputs that ``tensordict`` lacks."""
    present = set(tensordict.keys(True, True))
    for key in network.in_keys:
        if unravel_key(key) not in present:
            hint = (": for an env without a global state, build the critic with state_key=None (it then reads the "
                    "agents' observations, concatenated)") if unravel_key(key) == "state" else ""
            name = type(getattr(network, "module", network)).__name__
            raise KeyError(f"{name} reads {key!r}, which is not in the batch{hint}")


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
    """``(x − mean) / std`` over the weighted entries (differentiable; as the authors' code does to advantages).

    With no spread (nothing valid, or one value) ``std`` is 0 and its gradient 0, not the square root's infinite
    slope at 0 (which times a zero upstream gradient would be NaN); elsewhere values and gradients are the plain
    square root's."""
    mean = masked_mean(x, weights)
    var = masked_mean((x - mean).pow(2), weights)
    spread = var > 0
    std = torch.where(spread, torch.where(spread, var, 1.0).sqrt(), 0.0)
    return (x - mean) / (std + eps)


def check_and_fill_actions(
    loss_name: str,
    tensordict: TensorDictBase,
    valid: torch.Tensor,
    action_key: NestedKey,
    action_mask_key: NestedKey,
) -> TensorDictBase:
    """Checks taken actions against the action mask; returns a copy safe for log-probs.

    A valid entry whose action is out of range or the mask forbids raises a one-line ``ValueError``.
    Padded or dead entries get every action allowed, so their (ignored)
    log-probabilities stay finite and cannot poison gradients with NaN. Without a
    mask in the batch (or with continuous actions) the copy is returned as is.
    """
    out = tensordict.copy()
    if action_mask_key not in tensordict.keys(True, True):
        return out
    action = tensordict.get(action_key).long()
    mask = tensordict.get(action_mask_key).bool()
    n_actions = mask.shape[-1]
    out_of_range = (action < 0) | (action >= n_actions)
    if (valid & out_of_range).any():
        idx = tuple(i.item() for i in (valid & out_of_range).nonzero()[0])
        raise ValueError(f"{loss_name}: {action_key!r}={action[idx].item()} at index {idx} is not in [0, {n_actions})")
    allowed = mask.gather(-1, action.clamp(0, n_actions - 1).unsqueeze(-1)).squeeze(-1)
    if (valid & ~allowed).any():
        idx = tuple(i.item() for i in (valid & ~allowed).nonzero()[0])
        raise ValueError(
            f"{loss_name}: {action_key!r}={action[idx].item()} at index {idx} "
            f"is outside the action mask {action_mask_key!r}"
        )
    out.set(action_mask_key, mask | ~valid.unsqueeze(-1))
    if out_of_range.any():  # only on padded or dead entries, whose log-probabilities are ignored
        out.set(action_key, action.clamp(0, n_actions - 1))
    return out


class PolicyTerms(nn.Module):
    """Log-probability and entropy of the taken actions over a ``[*B, T]`` batch.

    Recurrent policies run in sequence mode. Continuous actions' log-probabilities
    and entropies are summed over the action dims (a factorised distribution such as
    ``torch.distributions.Normal`` gives one per dim). A distribution without a
    closed-form entropy (``TanhNormal``) gets the on-policy sample estimate from the
    taken actions: value ``−log π(u)``, gradient ``−log π(u)·∇log π(u)`` (the score-function
    gradient of the entropy, unbiased for on-policy data); ``estimate_entropy=False`` refuses such a
    distribution instead, where the batch's actions are not the policy's samples (at other parameters). The
    entropy is ``None`` when not asked for.
    """

    def __init__(self, actor: TensorDictModuleBase, action_key: NestedKey, estimate_entropy: bool = True) -> None:
        super().__init__()
        self.actor = actor
        self.action_key = action_key
        self.estimate_entropy = estimate_entropy

    def forward(self, tensordict: TensorDictBase, entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        with set_recurrent_mode(True):
            dist = self.actor.get_dist(tensordict.copy())
        action = tensordict.get(self.action_key)
        log_prob = dist.log_prob(action)
        factorised = action.is_floating_point() and log_prob.shape == action.shape
        if factorised:
            log_prob = log_prob.sum(-1)
        if not entropy:
            return log_prob, None
        try:
            dist_entropy = dist.entropy()
        except NotImplementedError:
            if not self.estimate_entropy:
                raise ValueError(f"the policy's {type(dist).__name__} has no closed-form entropy, and the batch's "
                                 "actions are not samples of the policy at these parameters") from None
            surprise = log_prob.detach()
            return log_prob, -surprise - surprise * (log_prob - surprise)
        return log_prob, dist_entropy.sum(-1) if factorised else dist_entropy

    def at(
        self, params: dict[str, torch.Tensor], tensordict: TensorDictBase, entropy: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The terms at other actor parameters ``params`` (named as ``actor.named_parameters()``).

        Dual tensors (forward-mode AD) and differentiable tensors pass through. Plain modules go
        through ``torch.func.functional_call``; weights kept in a ``TensorDictParams`` (TorchRL's
        ``MultiAgentMLP``), which ``functional_call`` silently leaves in place, are swapped with
        tensordict's ``to_module`` (which, on plain modules, would wrap dual tensors into
        ``nn.Parameter`` and drop their tangents).
        """
        if any(isinstance(m, TensorDictParams) for m in self.actor.modules()):
            # The actor's own structure keeps the batch dims vmap reads (MultiAgentMLP(share_params=False)).
            theta = TensorDict.from_module(self.actor).empty(recurse=True)
            for name, value in params.items():
                theta.set(tuple(name.split(".")), value)
            with theta.to_module(self.actor):
                return self(tensordict, entropy)
        return torch.func.functional_call(
            self, {f"actor.{k}": v for k, v in params.items()}, (tensordict,), {"entropy": entropy}
        )
