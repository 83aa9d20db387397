"""What this package's on-policy multi-agent losses share: key checks, the batch layout, estimates, in/out keys."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, fields
from difflib import get_close_matches
from typing import ClassVar, Literal

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey, unravel_key
from torch import distributions as D
from torchrl.objectives import LossModule, ValueEstimators

from torchrl_liir.finite_inputs import InputChecks, refuse_empty, refuse_non_finite
from torchrl_liir.objectives.common import (
    check_and_fill_actions,
    check_discount,
    masked_mean,
    team_flag,
    valid_mask,
)


def action_kind(actor: TensorDictModuleBase) -> Literal["discrete", "continuous"] | None:
    """Whether ``actor`` samples discrete (categorical) or continuous actions; ``None`` if it cannot tell."""
    for module in actor.modules():
        distribution = getattr(module, "distribution_class", None)
        if isinstance(distribution, type):
            return "discrete" if issubclass(distribution, (D.Categorical, D.OneHotCategorical)) else "continuous"
    return None


def check_networks(loss_name: str, actor_network: TensorDictModuleBase, **networks: TensorDictModuleBase) -> None:
    """Refuses at construction, in one line, a network that is not a TensorDict module (the loss reads its
    ``in_keys`` and ``out_keys``) and an intrinsic reward built for the other kind of actions than the policy's."""
    for name, network in {"actor_network": actor_network, **networks}.items():
        if not isinstance(network, TensorDictModuleBase) or not network.out_keys:
            raise TypeError(f"{loss_name}: {name} is a {type(network).__name__}; wrap it as "
                            f"tensordict.nn.TensorDictModule(module, in_keys=[...], out_keys=[...])")
    kind = action_kind(actor_network)
    for name, network in networks.items():
        continuous = getattr(getattr(network, "module", None), "continuous", None)
        if kind is not None and continuous is not None and continuous != (kind == "continuous"):
            built = "continuous" if continuous else "discrete"
            raise ValueError(f"{loss_name}: {name} is built for {built} actions and the policy's are {kind} "
                             f"(make_intrinsic_reward(obs_dim, n_actions, n_agents) for discrete ones, "
                             f"make_intrinsic_reward(obs_dim, None, n_agents, action_dim=d) for continuous ones)")


def _same_values(params: TensorDictBase, reference: TensorDictBase | None, module: TensorDictModuleBase) -> bool:
    """Whether ``params`` hold the values of ``reference`` (``None``: the parameters ``module`` has now)."""
    if params is reference:
        return True
    reference = TensorDict.from_module(module) if reference is None else reference
    return set(params.keys(True, True)) == set(reference.keys(True, True)) and all(
        torch.equal(params.get(key), reference.get(key)) for key in params.keys(True, True))


class EpisodeEstimator:
    """What ``loss.value_estimator`` (TorchRL's property) returns for this package's on-policy losses.

    ``loss.value_estimator(batch)`` and TorchRL's call ``loss.value_estimator(batch, params=...,
    target_params=...)`` write the loss's advantages and value targets into a ``[*B, T]`` batch, computed over
    its whole padded episodes as the loss itself computes them; ``params`` are the critic's parameters to use
    (``loss.critic_network_params``' layout). ``gamma`` and ``lmbda`` are the loss's.
    """

    def __init__(self, loss: MultiAgentLoss) -> None:
        self.loss = loss

    @property
    def gamma(self) -> float:
        return self.loss.gamma

    @property
    def lmbda(self) -> float:
        return self.loss.lmbda

    def __call__(self, tensordict: TensorDictBase, *, params: TensorDictBase | None = None,
                 target_params: TensorDictBase | None = None) -> TensorDictBase:
        return self.loss.write_estimates(tensordict, params, target_params)


class SelfBootstrappedCritic:
    """A loss whose critic's TD(λ) targets bootstrap from the critic itself (no target copy), with TorchRL's
    ``critic_network_params`` / ``target_critic_network_params`` for ``value_estimator(batch, params=...)``."""

    @property
    def estimated_critic(self) -> TensorDictModuleBase:
        """The critic whose parameters ``loss.value_estimator(batch, params=..., target_params=...)`` replace."""
        raise NotImplementedError

    @property
    def critic_network_params(self) -> TensorDictBase:
        """The critic's parameters, detached, in ``TensorDict.from_module``'s layout."""
        return TensorDict.from_module(self.estimated_critic).detach()

    @property
    def target_critic_network_params(self) -> TensorDictBase:
        """The same parameters: there is no target copy."""
        return self.critic_network_params

    def write_estimates(
        self, tensordict: TensorDictBase, params: TensorDictBase | None = None,
        target_params: TensorDictBase | None = None,
    ) -> TensorDictBase:
        """Writes the loss's estimates into ``tensordict``, with the critic at ``params`` when given."""
        critic = self.estimated_critic
        if target_params is not None and not _same_values(target_params, params, critic):
            raise ValueError(f"{type(self).__name__}: target_params differ from the critic's parameters; this loss "
                             "bootstraps its TD(λ) targets from the critic itself (pass params only)")
        with params.to_module(critic) if params is not None else nullcontext():
            return self.write_checked_estimates(tensordict)


@dataclass
class EpisodeKeys:
    """The batch keys every on-policy loss of this package reads; change them with ``set_keys``.

    Attributes:
        action (NestedKey): the agents' taken actions, ``[*B, T, n_agents]`` integers or ``[*B, T, n_agents, d]``
            floats. Defaults to ``("agents", "action")``.
        action_mask (NestedKey): the available actions ``[*B, T, n_agents, n_actions]`` (absent: every action).
            Defaults to ``("agents", "action_mask")``.
        reward (NestedKey): under ``"next"``, the team reward ``[*B, T, 1]`` or per-agent rewards
            ``[*B, T, n_agents, 1]`` (averaged into the team's). Defaults to ``"reward"``.
        done (NestedKey): under ``"next"``, the episode's end: the team's ``[*B, T, 1]`` or agent-level flags
            ``[*B, T, n_agents, 1]`` (TorchRL's multi-agent convention; the team's episode ends with every agent's).
            Defaults to ``"done"``.
        terminated (NestedKey): under ``"next"``, an end without bootstrap, in either layout of ``done``. Defaults
            to ``"terminated"``.
        padding_mask (NestedKey or None): ``[*B, T]`` steps that hold data (the collector's padding; ``None`` or
            absent: all). Defaults to ``("collector", "mask")``.
        agent_mask (NestedKey or None): ``[*B, T, n_agents]`` agents alive (dead agents' entries do not count;
            ``None``: all). Defaults to ``None``.
    """

    action: NestedKey = ("agents", "action")
    action_mask: NestedKey = ("agents", "action_mask")
    reward: NestedKey = "reward"
    done: NestedKey = "done"
    terminated: NestedKey = "terminated"
    padding_mask: NestedKey | None = ("collector", "mask")
    agent_mask: NestedKey | None = None


class MultiAgentLoss(InputChecks, LossModule):
    """Base of the on-policy losses over padded ``[*B, T]`` multi-agent episodes (LIIR, actor-critic, COMA).

    - ``set_keys`` refuses an unknown name in one line, with the closest accepted one;
    - :meth:`prepare` checks the batch: ``[*B, T]`` (time last), the keys, the actions' dtype and
      shape against the policy (integer ``[*B, T, n_agents]`` for a categorical one, float
      ``[*B, T, n_agents, action_dim]`` for a continuous one) and the agent count (``n_agents``, or
      read from the actions when ``None``), and that the env's rewards, observations and states are finite on
      the played steps (``check_inputs``, on by default; the trainer, which checks every batch as it is
      collected, turns it off);
    - ``loss.value_estimator(batch, params=..., target_params=...)`` writes the loss's advantages and value
      targets into ``batch`` (TorchRL's property and call), through the subclass's :meth:`estimate_values`;
      ``make_value_estimator`` picks GAE/TD(λ)/TD(0) and ``gamma``/``lmbda`` as in TorchRL's losses;
    - batches straight from ``env.rollout()`` (with the actor's autograd history) are detached on entry;
    - TorchRL's multi-agent done keys: ``set_keys(done=("agents", "done"), terminated=("agents", "terminated"))``
      (:meth:`end_flags`);
    - ``in_keys`` (what a batch must hold) and ``out_keys`` (the entries ``forward`` returns).
    """

    actor_network: TensorDictModuleBase
    n_agents: int | None
    entropy_coeff: float
    returned: ClassVar[tuple[str, ...]] = ()
    # The estimator module that checkpoints saved under "_value_estimator" (now TorchRL's property's slot).
    legacy_estimator: ClassVar[str | None] = None

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
        """The networks evaluated at both ``t`` and ``t+1`` (the critics)."""
        return []

    def step_networks(self) -> list[TensorDictModuleBase]:
        """The networks evaluated at ``t`` only, besides the actor (LIIR's intrinsic reward of ``(o_t, u_t)``)."""
        return []

    @property
    def in_keys(self) -> list[NestedKey]:
        keys = self.tensor_keys
        wanted = [keys.action, *self.actor_network.in_keys]
        for network in self.step_networks():
            wanted += network.in_keys
        for network in self.value_networks():
            wanted += [*network.in_keys, *(("next", k) for k in network.in_keys)]
        wanted += [("next", k) for k in (keys.reward, keys.done, keys.terminated)]
        wanted += [k for k in (keys.padding_mask, keys.agent_mask) if k is not None]
        return list(dict.fromkeys(unravel_key(k) for k in wanted))

    @property
    def out_keys(self) -> list[str]:
        return list(self.returned)

    def make_value_estimator(self, value_type: ValueEstimators | None = None, **hyperparams) -> MultiAgentLoss:
        """Sets the estimator of ``loss.value_estimator`` (TorchRL's property) and of the loss itself.

        ``ValueEstimators.GAE`` / ``TDLambda`` give TD(λ) targets and GAE advantages (the same thing with a
        critic held fixed); ``TD0`` is λ = 0 (the paper's one-step advantage). Hyper-parameters: ``gamma``,
        ``lmbda`` (unchanged ones keep their value). The estimates run over whole padded episodes, so TorchRL's
        estimator classes and instances, which cannot see the padding, are refused.
        """
        value_type = value_type or self.default_value_estimator
        name = type(self).__name__
        if value_type not in (ValueEstimators.GAE, ValueEstimators.TDLambda, ValueEstimators.TD0):
            raise ValueError(f"{name}.make_value_estimator: value_type={value_type!r}; this loss estimates over padded "
                             f"episodes itself: use ValueEstimators.GAE, TDLambda or TD0 with gamma=, lmbda=")
        unknown = set(hyperparams) - {"gamma", "lmbda"}
        if unknown:
            raise ValueError(f"{name}.make_value_estimator: unknown hyper-parameters {sorted(unknown)} "
                             f"(accepted: gamma, lmbda)")
        gamma = hyperparams.get("gamma", getattr(self, "gamma", 0.99))
        lmbda = 0.0 if value_type == ValueEstimators.TD0 else hyperparams.get("lmbda", getattr(self, "lmbda", 0.8))
        check_discount(name, gamma, lmbda)
        self.gamma, self.lmbda, self.value_type = float(gamma), float(lmbda), value_type
        self.build_estimators()
        self._value_estimator = EpisodeEstimator(self)
        self._forward_value_estimator_keys()
        return self

    def build_estimators(self) -> None:
        """Builds the loss's own estimators from ``self.gamma`` and ``self.lmbda``."""

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        """The loss's own estimators read its keys (subclasses forward them); TorchRL's default has no target."""

    def estimate_values(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Advantages and value targets (and the values they used) of a checked ``[*B, T]`` batch."""
        raise NotImplementedError

    def write_estimates(
        self, tensordict: TensorDictBase, params: TensorDictBase | None = None,
        target_params: TensorDictBase | None = None,
    ) -> TensorDictBase:
        """``loss.value_estimator(tensordict, params=..., target_params=...)``: each loss says which of its critics
        the parameters replace, then :meth:`write_checked_estimates`."""
        raise NotImplementedError

    def write_checked_estimates(self, tensordict: TensorDictBase, **kwargs) -> TensorDictBase:
        """Checks ``tensordict`` and writes :meth:`estimate_values` (given ``kwargs``) into it."""
        checked, _ = self.prepare(tensordict)
        with torch.no_grad():
            tensordict.update(self.estimate_values(checked, **kwargs).exclude("next"))
        return tensordict

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # Checkpoints saved before the estimators had their own names kept one under "_value_estimator".
        legacy = f"{prefix}_value_estimator."
        if self.legacy_estimator is not None:
            for key in [k for k in state_dict if k.startswith(legacy)]:
                state_dict[f"{prefix}{self.legacy_estimator}.{key[len(legacy):]}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def end_flags(self, next_tensordict: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        """The team's ``(done, terminated)`` ``[*B, 1]`` at the next step; agent-level flags ``[*B, n_agents, 1]``
        (TorchRL's multi-agent convention, ``set_keys(done=("agents", "done"), ...)``) end the team's episode
        when every agent's has ended."""
        keys = self.tensor_keys
        return tuple(team_flag(next_tensordict.get(key), next_tensordict.batch_dims, key)
                     for key in (keys.done, keys.terminated))

    def prepare(self, tensordict: TensorDictBase) -> tuple[TensorDictBase, torch.Tensor]:
        """Checks a batch; returns its log-prob-safe copy and the ``[*B, T, n_agents]`` mask of valid entries."""
        name, keys = type(self).__name__, self.tensor_keys
        # A batch straight from env.rollout() carries the actor's graph; the loss builds its own (as TorchRL's).
        tensordict = tensordict.detach()
        if tensordict.batch_dims < 2:
            raise ValueError(
                f"{name}: batch_size {list(tensordict.batch_size)}: expected [*B, T] episodes with time last "
                "(a collector's batch, whole: no replay buffer of shuffled steps; one episode: batch.unsqueeze(0)); "
                "time-flattened steps cannot be bootstrapped"
            )
        refuse_empty(name, tensordict)
        present = set(tensordict.keys(True, True))
        required = {"action": keys.action, "reward": ("next", keys.reward), "done": ("next", keys.done),
                    "terminated": ("next", keys.terminated)}
        for entry, key in required.items():
            if unravel_key(key) not in present:
                raise KeyError(f"{name}: {key!r} is not in the batch; name the batch's key with "
                               f"{name}.set_keys({entry}=<key>)")
        n_agents = self._check_actions(tensordict.get(keys.action), tensordict.batch_dims)
        if action_kind(self.actor_network) == "discrete" and tensordict.get(keys.action).dtype != torch.long:
            tensordict.set(keys.action, tensordict.get(keys.action).long())  # int32 indices, as envs take them
        played = tensordict.get(keys.padding_mask).bool() if unravel_key(keys.padding_mask) in present else None
        if self.check_inputs:
            refuse_non_finite(name, tensordict, played)
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

