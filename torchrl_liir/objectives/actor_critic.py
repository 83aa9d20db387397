"""Actor-critic baselines of the paper (§5.2.1): IAC and Central-V, on LIIR's pipeline."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.objectives import ValueEstimators
from torchrl.objectives.value import MultiAgentGAE

from torchrl_liir.objectives.common import PolicyTerms, masked_mean, masked_normalize, run_module, valid_mask
from torchrl_liir.objectives.multi_agent_loss import (
    EpisodeKeys,
    MultiAgentLoss,
    SelfBootstrappedCritic,
    check_networks,
)
from torchrl_liir.rewards import team_reward


class MultiAgentActorCriticLoss(SelfBootstrappedCritic, MultiAgentLoss):
    """Shared-parameter policy gradient ``−mean lp·A`` with a TD(λ) critic on the team reward.

    The critic decides the baseline: a per-agent V(o_i) writing ``[*B, n_agents, 1]``
    gives IAC (independent actor-critic); a centralised V(s) writing ``[*B, 1]``
    gives Central-V (the team advantage broadcast over agents). Per-agent rewards are averaged
    into the team reward (:func:`~torchrl_liir.rewards.team_reward`), as in :class:`LIIRLoss`.

    Args:
        actor_network: probabilistic actor with ``get_dist`` (discrete or continuous).
        critic_network: per-agent or centralised value network.
        n_agents: number of agents (``None``: read from each batch's actions).
        entropy_coeff, critic_coeff: loss weights.
        normalize_advantage: standardise the advantage over the batch's valid entries.
        gamma, lmbda: discount and GAE/TD(λ) λ.

    Calling the loss on a ``[*B, T]`` batch returns ``loss_objective``, ``loss_entropy`` and ``loss_critic`` (their
    sum is the loss to backpropagate) and the detached ``entropy`` and mean ``advantage``.

    Examples:
        >>> import torch
        >>> from torchrl_liir import (EpisodeCollector, MultiAgentActorCriticLoss, PursuitEnv, make_extrinsic_critic,
        ...                           make_mlp_policy, make_proxy_critic)
        >>> env = PursuitEnv(num_envs=4, seed=0)  # 2 agents, 3 actions, observations and state of 2 values
        >>> actor = make_mlp_policy(env.n_agents, 2, env.n_actions, action_mask_key=("agents", "action_mask"))
        >>> central_v = MultiAgentActorCriticLoss(actor, make_extrinsic_critic(2))  # V(s): Central-V
        >>> iac = MultiAgentActorCriticLoss(  # V(o_i) per agent: IAC
        ...     actor, make_proxy_critic(2, env.n_agents, out_key=("agents", "state_value")))
        >>> batch = EpisodeCollector(env, actor).rollout()
        >>> out = central_v(batch)
        >>> list(out.keys())
        ['loss_objective', 'loss_entropy', 'loss_critic', 'entropy', 'advantage']
        >>> all(bool(torch.isfinite(value)) for value in out.values())
        True
        >>> sum(value for key, value in out.items() if key.startswith("loss_")).backward()
        >>> bool(torch.isfinite(iac(batch)["loss_critic"]))
        True
        >>> iac.value_estimator(batch).get("advantage").shape[2:]  # [*B, T, n_agents, 1]
        torch.Size([2, 1])
    """

    @dataclass
    class _AcceptedKeys(EpisodeKeys):
        """:class:`EpisodeKeys` and the critic's entries; change them with ``set_keys``.

        Attributes:
            value (NestedKey): the critic's output, ``[*B, T, 1]`` (Central-V) or ``[*B, T, n_agents, 1]`` (IAC, or
                TorchRL's centralised ``MultiAgentMLP``). Defaults to ``"state_value"``; the constructor sets it to
                the critic's first out key.
            advantage (NestedKey): the GAE advantage written by ``value_estimator``. Defaults to ``"advantage"``.
            value_target (NestedKey): the TD(λ) target written by ``value_estimator``. Defaults to
                ``"value_target"``.
        """

        value: NestedKey = "state_value"
        advantage: NestedKey = "advantage"
        value_target: NestedKey = "value_target"

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys
    default_value_estimator = ValueEstimators.GAE
    legacy_estimator = "gae"
    returned = ("loss_objective", "loss_entropy", "loss_critic", "entropy", "advantage")

    def __init__(
        self,
        actor_network: TensorDictModuleBase,
        critic_network: TensorDictModule,
        n_agents: int | None = None,
        *,
        entropy_coeff: float = 0.0,
        critic_coeff: float = 1.0,
        normalize_advantage: bool = False,
        gamma: float = 0.99,
        lmbda: float = 0.8,
    ) -> None:
        super().__init__()
        check_networks(type(self).__name__, actor_network, critic_network=critic_network)
        self.actor_network = actor_network
        self.critic_network = critic_network
        self.n_agents = n_agents
        self.entropy_coeff = entropy_coeff
        self.critic_coeff = critic_coeff
        self.normalize_advantage = normalize_advantage
        self.make_value_estimator(self.default_value_estimator, gamma=gamma, lmbda=lmbda)
        self.set_keys(value=self.critic_network.out_keys[0])

    def build_estimators(self) -> None:
        self.gae = MultiAgentGAE(gamma=self.gamma, lmbda=self.lmbda, value_network=None)

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        keys = self.tensor_keys
        if getattr(self, "gae", None) is not None:
            # estimate_values hands the estimator the team's reward and end flags under these plain names.
            self.gae.set_keys(reward="reward", done="done", terminated="terminated", value=keys.value,
                              advantage=keys.advantage, value_target=keys.value_target)

    def value_networks(self) -> list[TensorDictModuleBase]:
        return [self.critic_network]

    @property
    def estimated_critic(self) -> TensorDictModuleBase:
        return self.critic_network

    def estimate_values(self, tensordict: TensorDictBase, value: torch.Tensor | None = None) -> TensorDictBase:
        """TD(λ) targets and GAE advantages of the team reward (the critic's values are constants)."""
        keys = self.tensor_keys
        nxt = tensordict.get("next")
        if value is None:
            value = run_module(self.critic_network, tensordict)
        with torch.no_grad():
            next_value = run_module(self.critic_network, nxt)
        data = TensorDict(
            {
                keys.value: value.detach(),
                "next": {
                    keys.value: next_value,
                    "reward": team_reward(nxt.get(keys.reward), nxt.batch_dims),
                    **dict(zip(("done", "terminated"), self.end_flags(nxt))),
                },
            },
            batch_size=tensordict.batch_size,
        )
        with torch.no_grad():
            self.gae(data)
        return data

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        keys = self.tensor_keys
        tensordict, valid = self.prepare(tensordict)
        value = run_module(self.critic_network, tensordict)
        data = self.estimate_values(tensordict, value)
        w = valid.to(value.dtype)
        per_agent = value.ndim == w.ndim + 1
        advantage = data.get(keys.advantage)
        advantage = advantage[..., 0] if per_agent else advantage.expand(valid.shape)
        # The critic learns every unpadded step, dead agents' included, as returns run through them.
        unpadded = valid_mask(tensordict, valid.shape[-1], keys.padding_mask, None).to(w.dtype)
        value_w = unpadded.unsqueeze(-1) if per_agent else unpadded[..., :1]

        log_prob, entropy = PolicyTerms(self.actor_network, keys.action)(tensordict)
        loss_entropy, mean_entropy = self.entropy_terms(entropy, w)
        policy_advantage = masked_normalize(advantage, w) if self.normalize_advantage else advantage
        return TensorDict(
            {
                "loss_objective": -masked_mean(log_prob * policy_advantage, w),
                "loss_entropy": loss_entropy,
                "loss_critic": self.critic_coeff * masked_mean((value - data.get(keys.value_target)).pow(2), value_w),
                "entropy": mean_entropy.detach(),
                "advantage": masked_mean(advantage, w).detach(),
            },
            batch_size=[],
        )
