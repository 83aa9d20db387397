"""What this package's on-policy multi-agent losses share: key checks, the batch layout, estimates, in/out keys."""
from __future__ import annotations

from dataclasses import fields
from difflib import get_close_matches
from typing import ClassVar, Literal

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey, unravel_key
from torch import distributions as D
from torchrl.objectives import LossModule

from torchrl_liir.objectives.common import check_and_fill_actions, masked_mean, valid_mask


def action_kind(actor: TensorDictModuleBase) -> Literal["discrete", "continuous"] | None:
    """Whether ``actor`` samples discrete (categorical) or continuous actions; ``None`` if it cannot tell."""
    for module in actor.modules():
        distribution = getattr(module, "distribution_class", None)
        if isinstance(distribution, type):
            return "discrete" if issubclass(distribution, (D.Categorical, D.OneHotCategorical)) else "continuous"
    return None


class MultiAgentLoss(LossModule):
    """Base of the on-policy losses over padded ``[*B, T]`` multi-agent episodes (LIIR, actor-critic, COMA).

    - ``set_keys`` refuses an unknown name in one line, with the closest accepted one;
    - :meth:`prepare` checks the batch: ``[*B, T]`` (time last), the keys, the actions' dtype and
      shape against the policy (integer ``[*B, T, n_agents]`` for a categorical one, float
      ``[*B, T, n_agents, action_dim]`` for a continuous one) and the agent count (``n_agents``, or
      read from the actions when ``None``);
    - ``loss.value_estimator(batch)`` writes the loss's advantages and value targets into ``batch``
      (as TorchRL's losses), through the subclass's :meth:`estimate_values`;
    - ``in_keys`` (what a batch must hold) and ``out_keys`` (the entries ``forward`` returns).
    """

    actor_network: TensorDictModuleBase
    n_agents: int | None
    entropy_coeff: float
    returned: ClassVar[tuple[str, ...]] = ()

    def set_keys(self, **kwargs) -> None:
        accepted = [f.name for f in fields(self._AcceptedKeys)]
        for name in kwargs:
            if name not in accepted:
                close = get_close_matches(name, accepted, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{type(self).__name__}.set_keys: unknown key {name!r}{hint} "
                                 f"(accepted: {', '.join(accepted)})")
        super().set_keys(**kwargs)

    def value_networks(self) -> list[TensorDictModuleBase]:
        """The networks evaluated at both ``t`` and ``t+1`` (critics, the intrinsic reward)."""
        return []

    @property
    def in_keys(self) -> list[NestedKey]:
        keys = self.tensor_keys
        wanted = [keys.action, *self.actor_network.in_keys]
        for network in self.value_networks():
            wanted += [*network.in_keys, *(("next", k) for k in network.in_keys)]
        wanted += [("next", k) for k in (keys.reward, keys.done, keys.terminated)]
        wanted += [k for k in (keys.padding_mask, keys.agent_mask) if k is not None]
        return list(dict.fromkeys(unravel_key(k) for k in wanted))

    @property
    def out_keys(self) -> list[str]:
        return list(self.returned)

    @property
    def value_estimator(self):
        """``loss.value_estimator(batch)``: writes the advantages and value targets of a ``[*B, T]`` batch."""
        return self._write_estimates

    def estimate_values(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Advantages and value targets (and the values they used) of a checked ``[*B, T]`` batch."""
        raise NotImplementedError

    @torch.no_grad()
    def _write_estimates(self, tensordict: TensorDictBase) -> TensorDictBase:
        checked, _ = self.prepare(tensordict)
        tensordict.update(self.estimate_values(checked).exclude("next"))
        return tensordict

    def prepare(self, tensordict: TensorDictBase) -> tuple[TensorDictBase, torch.Tensor]:
        """Checks a batch; returns its log-prob-safe copy and the ``[*B, T, n_agents]`` mask of valid entries."""
        name, keys = type(self).__name__, self.tensor_keys
        if tensordict.batch_dims < 2:
            raise ValueError(
                f"{name}: batch_size {list(tensordict.batch_size)}: expected [*B, T] episodes with time last "
                "(a collector's batch; one episode: batch.unsqueeze(0)); time-flattened steps cannot be bootstrapped"
            )
        present = set(tensordict.keys(True, True))
        required = {"action": keys.action, "reward": ("next", keys.reward), "done": ("next", keys.done),
                    "terminated": ("next", keys.terminated)}
        for entry, key in required.items():
            if unravel_key(key) not in present:
                raise KeyError(f"{name}: {key!r} is not in the batch; name the batch's key with "
                               f"{name}.set_keys({entry}=<key>)")
        n_agents = self._check_actions(tensordict.get(keys.action), tensordict.batch_dims)
        valid = valid_mask(tensordict, n_agents, keys.padding_mask, keys.agent_mask)
        return check_and_fill_actions(name, tensordict, valid, keys.action, keys.action_mask), valid

    def _check_actions(self, action: torch.Tensor, batch_dims: int) -> int:
        """The agent count of ``action`` after checking its dtype and shape against the policy."""
        name, key = type(self).__name__, self.tensor_keys.action
        kind = action_kind(self.actor_network)
        if kind == "discrete" and (action.is_floating_point() or action.ndim != batch_dims + 1):
            raise ValueError(f"{name}: {key!r} is {action.dtype} of shape {list(action.shape)}; a categorical policy "
                             f"takes integer actions [*B, T, n_agents]")
        if kind == "continuous" and (not action.is_floating_point() or action.ndim != batch_dims + 2):
            raise ValueError(f"{name}: {key!r} is {action.dtype} of shape {list(action.shape)}; a continuous policy "
                             f"takes float actions [*B, T, n_agents, action_dim]")
        if action.ndim <= batch_dims:
            raise ValueError(f"{name}: {key!r} of shape {list(action.shape)} has no agent dim after the batch's "
                             f"{batch_dims} dims")
        n_agents = action.shape[batch_dims]
        if self.n_agents is not None and n_agents != self.n_agents:
            raise ValueError(f"{name}: the batch has {n_agents} agents ({key!r} of shape {list(action.shape)}), "
                             f"the loss was built for n_agents={self.n_agents}")
        return n_agents

    def entropy_terms(self, entropy: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss_entropy, mean entropy)`` (see :class:`~torchrl_liir.objectives.common.PolicyTerms` for
        distributions without a closed-form entropy)."""
        mean = masked_mean(entropy, weights)
        return -self.entropy_coeff * mean, mean

