"""COMA: counterfactual multi-agent policy gradients (Foerster et al., AAAI 2018), on LIIR's pipeline."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ValueEstimators
from torchrl.objectives.value.functional import vec_td_lambda_return_estimate

from torchrl_liir.objectives.common import masked_mean, run_module
from torchrl_liir.objectives.multi_agent_loss import EpisodeKeys, MultiAgentLoss
from torchrl_liir.rewards import team_reward


def counterfactual_baseline(
    action_value: torch.Tensor, probs: torch.Tensor, action_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """COMA's baseline ``Σ_u' π_i(u'|τ_i) Q_i(s, (u_{-i}, u'))`` (Foerster et al. 2018, eq. 4).

    ``action_value`` and ``probs`` are ``[..., n_actions]``; actions outside
    ``action_mask`` add nothing, whatever their Q-value. Returns the baseline ``[...]``.

    Examples:
        >>> import torch
        >>> from torchrl_liir.objectives import counterfactual_baseline
        >>> action_value = torch.tensor([[1.0, 2.0, 4.0]])
        >>> probs = torch.tensor([[0.5, 0.25, 0.25]])
        >>> counterfactual_baseline(action_value, probs)
        tensor([2.])
        >>> counterfactual_baseline(action_value, probs, torch.tensor([[True, True, False]]))
        tensor([1.])
    """
    terms = probs * action_value
    if action_mask is not None:
        terms = torch.where(action_mask, terms, torch.zeros_like(terms))
    return terms.sum(-1)


class COMALoss(MultiAgentLoss):
    """COMA's actor and critic losses over padded ``[*B, T]`` episodes (Foerster et al. 2018).

    TorchRL has no COMA loss; this one is written by hand. The centralised
    critic (:func:`~torchrl_liir.modules.make_coma_critic`) gives every agent
    Q_i(s, (u_{-i}, ·)); the actor follows the counterfactual advantage
    ``A_i = Q_i(s, u) − Σ_u' π_i(u'|τ_i) Q_i(s, (u_{-i}, u'))`` with the policy's
    masked probabilities, and the critic regresses Q_i(s, u) on TD(λ) targets
    built from a target critic's Q of the taken joint actions. Where an
    episode is cut without termination (a time limit, or the batch's last
    step), the bootstrap at the next state is the target critic's baseline
    with the other agents' actions sampled from the policy. The target
    critic's parameters (``target_critic_network_params``) are copied by an
    updater such as ``torchrl.objectives.HardUpdate``. Recurrent policies run
    in recurrent mode over the time dim.

    ``critic_updates="batch"`` trains the critic in the same optimiser step as
    the actor. ``"time_step"`` is pymarl's COMA: the critic takes one step per
    time step of the batch, last to first (:meth:`critic_time_step_losses`),
    before the actor's step, whose ``loss_critic`` is then only reported
    (detached) and whose advantages read the critic after those steps.

    Args:
        actor_network: probabilistic actor with ``get_dist`` (masked categorical).
        critic_network: COMA critic writing ``[*B, n_agents, n_actions]`` Q-values.
        n_agents: number of agents.
        entropy_coeff, critic_coeff: loss weights.
        gamma, lmbda: discount and TD(λ) λ.
        critic_updates: ``"batch"`` or ``"time_step"`` (above).

    Calling the loss on a ``[*B, T]`` batch returns ``loss_objective``, ``loss_entropy`` and ``loss_critic`` and the
    detached ``entropy`` and mean ``advantage``.

    Examples:
        >>> import torch
        >>> from torchrl.objectives import HardUpdate
        >>> from torchrl_liir import COMALoss, EpisodeCollector, PursuitEnv, make_mlp_policy
        >>> from torchrl_liir.modules import make_coma_critic
        >>> env = PursuitEnv(num_envs=4, seed=0)  # 2 agents, 3 actions, observations and state of 2 values
        >>> actor = make_mlp_policy(env.n_agents, 2, env.n_actions, action_mask_key=("agents", "action_mask"))
        >>> loss = COMALoss(actor, make_coma_critic(2, env.n_agents, env.n_actions), env.n_agents)
        >>> target_updater = HardUpdate(loss, value_network_update_interval=200)  # copies the target critic
        >>> batch = EpisodeCollector(env, actor).rollout()
        >>> out = loss(batch)
        >>> list(out.keys())
        ['loss_objective', 'loss_entropy', 'loss_critic', 'entropy', 'advantage']
        >>> all(bool(torch.isfinite(value)) for value in out.values())
        True
        >>> sum(value for key, value in out.items() if key.startswith("loss_")).backward()
        >>> target_updater.step()
    """

    @dataclass
    class _AcceptedKeys(EpisodeKeys):
        """:class:`EpisodeKeys` and the critic's entry; change them with ``set_keys``.

        Attributes:
            action_value (NestedKey): the critic's Q_i(s, (u_{-i}, ·)) ``[*B, T, n_agents, n_actions]``. Defaults to
                ``("agents", "action_value")``; the constructor sets it to the critic's first out key.
        """

        action_value: NestedKey = ("agents", "action_value")

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys
    critic_network: TensorDictModule
    critic_network_params: TensorDictParams
    target_critic_network_params: TensorDictParams
    default_value_estimator = ValueEstimators.TDLambda
    returned = ("loss_objective", "loss_entropy", "loss_critic", "entropy", "advantage")

    def __init__(
        self,
        actor_network: TensorDictModuleBase,
        critic_network: TensorDictModule,
        n_agents: int,
        *,
        entropy_coeff: float = 0.0,
        critic_coeff: float = 1.0,
        gamma: float = 0.99,
        lmbda: float = 0.8,
        critic_updates: str = "batch",
    ) -> None:
        super().__init__()
        if critic_updates not in ("batch", "time_step"):
            raise ValueError(f"critic_updates must be 'batch' or 'time_step', got {critic_updates!r}")
        self.critic_updates = critic_updates
        self.actor_network = actor_network
        self.convert_to_functional(critic_network, "critic_network", create_target_params=True)
        self.n_agents = n_agents
        self.entropy_coeff, self.critic_coeff = entropy_coeff, critic_coeff
        self.make_value_estimator(self.default_value_estimator, gamma=gamma, lmbda=lmbda)
        self.set_keys(action_value=critic_network.out_keys[0])

    def value_networks(self) -> list[TensorDictModuleBase]:
        return [self.critic_network]

    def write_estimates(
        self, tensordict: TensorDictBase, params: TensorDictBase | None = None,
        target_params: TensorDictBase | None = None,
    ) -> TensorDictBase:
        """Writes the TD(λ) targets into ``tensordict``, from the target critic at ``target_params`` when given
        (the targets do not read the online critic, so ``params`` change nothing)."""
        return self.write_checked_estimates(tensordict, target_params=target_params)

    def estimate_values(
        self, tensordict: TensorDictBase, target_params: TensorDictBase | None = None
    ) -> TensorDictBase:
        """The target critic's TD(λ) returns of the taken joint actions, ``("agents", "value_target")``."""
        target_params = self.target_critic_network_params if target_params is None else target_params
        action = tensordict.get(self.tensor_keys.action).long().unsqueeze(-1)
        taken_target = self._action_values(tensordict, target_params).gather(-1, action)
        targets = self._td_lambda_targets(tensordict, taken_target.squeeze(-1), target_params)
        return TensorDict({("agents", "value_target"): targets.unsqueeze(-1)}, batch_size=tensordict.batch_size)

    def _action_values(self, tensordict: TensorDictBase, params: TensorDictParams) -> torch.Tensor:
        with params.to_module(self.critic_network):
            return run_module(self.critic_network, tensordict)

    def _cut_bootstrap(self, next_td: TensorDictBase, target_params: TensorDictBase) -> torch.Tensor:
        """Target-critic baseline at next states, the other agents' actions sampled from π."""
        keys = self.tensor_keys
        next_td = next_td.select(*self.actor_network.in_keys, *self.critic_network.in_keys, strict=False).copy()
        with set_recurrent_mode(False):
            dist = self.actor_network.get_dist(next_td.copy())
        next_td.set(keys.action, dist.sample())
        action_value = self._action_values(next_td, target_params)
        return counterfactual_baseline(action_value, dist.probs, next_td.get(keys.action_mask, None))

    def _td_lambda_targets(
        self, tensordict: TensorDictBase, taken_target: torch.Tensor, target_params: TensorDictBase
    ) -> torch.Tensor:
        """TD(λ) returns ``[*B, T, n_agents]`` of the taken joint actions under the target critic."""
        keys = self.tensor_keys
        nxt = tensordict.get("next")
        done, terminated = (flag[..., 0].bool() for flag in self.end_flags(nxt))
        # The batch's last step is a cut too: nothing after it is known.
        cut = done.clone()
        cut[..., -1] = True
        step_valid = torch.ones_like(cut)
        if keys.padding_mask is not None and keys.padding_mask in tensordict.keys(True, True):
            step_valid = tensordict.get(keys.padding_mask).bool().reshape(cut.shape)
        following = torch.cat([taken_target[..., 1:, :], taken_target[..., -1:, :]], dim=-2)
        bootstrap = cut & ~terminated & step_valid
        if bootstrap.any():
            following[bootstrap] = self._cut_bootstrap(nxt[bootstrap], target_params)

        def per_agent(team: torch.Tensor) -> torch.Tensor:  # [*B, T] -> [*B, T, n_agents, 1]
            return team.unsqueeze(-1).expand(taken_target.shape).unsqueeze(-1)

        reward = team_reward(nxt.get(keys.reward), nxt.batch_dims)[..., 0]
        return vec_td_lambda_return_estimate(
            self.gamma, self.lmbda, following.unsqueeze(-1), per_agent(reward),
            per_agent(cut), per_agent(terminated), time_dim=-3,
        ).squeeze(-1)

    def critic_time_step_losses(self, tensordict: TensorDictBase) -> Iterator[torch.Tensor]:
        """pymarl's COMA critic training: the TD(λ) targets from the target critic once, then for each time step
        with a valid entry, last to first, the weighted squared error of Q_i(s_t, u_t) over the valid agents.

        Each loss is computed when the next one is asked for, so an optimiser step taken on it in between is
        seen by the following time steps (the critic is feed-forward: one time step needs no other).
        """
        tensordict, valid = self.prepare(tensordict)
        with torch.no_grad():
            targets = self.estimate_values(tensordict).get(("agents", "value_target"))[..., 0]
        action = tensordict.get(self.tensor_keys.action).long().unsqueeze(-1)
        weights = valid.to(targets.dtype)
        # The time steps with a valid entry, read once (one device sync, not one per step).
        steps = valid.movedim(-2, 0).flatten(1).any(1).nonzero().squeeze(-1).tolist()
        for t in reversed(steps):
            action_value = self._action_values(tensordict[..., t], self.critic_network_params)
            taken = action_value.gather(-1, action[..., t, :, :]).squeeze(-1)
            yield self.critic_coeff * masked_mean((taken - targets[..., t, :]).pow(2), weights[..., t, :])

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        keys = self.tensor_keys
        tensordict, valid = self.prepare(tensordict)
        action = tensordict.get(keys.action).long().unsqueeze(-1)
        action_value = self._action_values(tensordict, self.critic_network_params)
        taken = action_value.gather(-1, action).squeeze(-1)
        with torch.no_grad():
            targets = self.estimate_values(tensordict).get(("agents", "value_target"))[..., 0]

        with set_recurrent_mode(True):
            dist = self.actor_network.get_dist(tensordict.copy())
        log_prob, entropy = dist.log_prob(action.squeeze(-1)), dist.entropy()
        baseline = counterfactual_baseline(action_value.detach(), dist.probs.detach(),
                                           tensordict.get(keys.action_mask, None))
        advantage = taken.detach() - baseline
        w = valid.to(action_value.dtype)
        loss_critic = self.critic_coeff * masked_mean((taken - targets).pow(2), w)
        return TensorDict(
            {
                "loss_objective": -masked_mean(log_prob * advantage, w),
                "loss_entropy": -self.entropy_coeff * masked_mean(entropy, w),
                "loss_critic": loss_critic.detach() if self.critic_updates == "time_step" else loss_critic,
                "entropy": masked_mean(entropy, w).detach(),
                "advantage": masked_mean(advantage, w).detach(),
            },
            batch_size=[],
        )
