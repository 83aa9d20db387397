"""LIIRLoss: the TorchRL loss of Learning Individual Intrinsic Rewards (Du et al., NeurIPS 2019)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.modules import set_recurrent_mode
from torchrl.modules.models.multiagent import MultiAgentNetBase
from torchrl.objectives import ValueEstimators
from torchrl.objectives.value import GAE, MultiAgentGAE

from torchrl_liir.modules.intrinsic_reward import IntrinsicReward
from torchrl_liir.objectives.common import (
    PolicyTerms,
    masked_mean,
    masked_normalize,
    per_agent_like,
    require_inputs,
    run_module,
    team_value,
    valid_mask,
    with_gradient,
)
from torchrl_liir.objectives.inner_step import InnerStep
from torchrl_liir.objectives.meta_gradient import (
    importance_sampled_objective,
    meta_loss_fast,
    meta_loss_reference,
    meta_loss_released_code,
)
from torchrl_liir.objectives.multi_agent_loss import (
    EpisodeKeys,
    MultiAgentLoss,
    SelfBootstrappedCritic,
    check_networks,
)
from torchrl_liir.rewards import proxy_reward, team_reward


class LIIRLoss(SelfBootstrappedCritic, MultiAgentLoss):
    """LIIR's four objectives on one batch of ``[*B, T]`` multi-agent trajectories.

    Returned terms (all to be minimised; summing them is correct because each
    parameter set gets gradient from its own terms only):

    - ``loss_objective`` (θ): proxy policy gradient, eq. 6, ``−mean lp·A_proxy``; its θ-gradient is
      that of both policy terms, ``∇θ L_in = ∇θ(loss_objective + loss_entropy)``, computed once for
      the meta-step and handed on (the policy graph is not kept for a second backward);
    - ``loss_entropy``: ``−entropy_coeff · mean H(π)``, a detached value (its gradient is in ``loss_objective``);
    - ``loss_proxy_value`` (φ_i): TD(λ) regression of V_proxy(o_i) on the proxy reward (eq. 3, 4);
    - ``loss_extrinsic_value`` (φ): TD(λ) regression of V_ex(s) on the team reward;
    - ``loss_intrinsic`` (η): the meta term whose η-gradient is ``−∇η J_ex(θ')`` (eq. 7–9).

    Against TorchRL's ``ClipPPOLoss`` / ``MAPPOLoss``: ``loss_objective`` and ``loss_entropy`` are theirs (the
    policy), ``loss_proxy_value + loss_extrinsic_value`` is their ``loss_critic``, ``loss_intrinsic`` is LIIR's
    own; in both, the sum of every ``loss_*`` entry is the loss to backpropagate. The other entries are detached
    statistics: ``entropy``, the batch means of ``intrinsic_reward``, ``proxy_advantage`` and
    ``extrinsic_advantage``, ``meta_objective`` (J_ex(θ') of eq. 8, plus ``meta_entropy_coeff·H(π_θ')``), and
    diagnostics of whether r_in can move the policy (means over the valid (time, agent) entries, computed without
    gradient; no loss value or gradient depends on them):

    - ``r_in_spread_agents``: the std (population) of r_in over a step's living agents, averaged over the steps
      with at least two;
    - ``r_in_spread_actions``: the std of the network's r_in_η(o_i, u) over the actions u the action mask allows,
      averaged over the entries with at least two; only for an :class:`~torchrl_liir.modules.IntrinsicReward` with
      discrete actions (with continuous actions the entry is not returned);
    - ``r_in_saturated``: the fraction of entries whose network output is above ``0.95·bound`` in size (the bounded
      :class:`~torchrl_liir.modules.IntrinsicReward`'s ``bound·tanh(x / bound)``; not returned without a bound);
    - ``proxy_advantage_share_r_in``: ``mean|A_p(η) − A_p(λ=0)| / mean|A_p(η)|``, the share of the proxy
      advantage the policy's step uses (eq. 3, 6; standardised with ``normalize_advantage``) that r_in moves, where
      A_p(λ=0) is the same estimate on r_ex alone, with the same critic values (0 when λ = 0).

    ``out_keys`` lists the entries a loss returns.

    The batch is a collector's ``[*B, T]`` trajectories, whole: the TD(λ) estimates run along time and the
    meta-gradient models one optimiser step on the whole batch, so minibatches of shuffled steps (PPO's replay
    buffer) do not apply; step the optimiser once per loss call.

    Per-agent rewards ``[*B, T, n_agents, 1]`` (``set_keys(reward=("agents", "reward"))``) are
    averaged into the team reward (:func:`~torchrl_liir.rewards.team_reward`). Discrete and continuous
    policies (``Normal``; ``TanhNormal``, whose entropy is estimated from the taken actions) are
    supported, TorchRL's ``MultiAgentMLP`` included.

    Args:
        actor_network: probabilistic actor with ``get_dist`` (MLP or recurrent).
        intrinsic_reward_network: module computing r_in_η(o_t, u_t) per agent.
        proxy_value_network: per-agent V_proxy(o_i).
        extrinsic_value_network: centralised V_ex(s) (or of the agents' concatenated observations).
        inner_step: the policy optimiser step the meta-gradient differentiates.
        n_agents: agent count; default the intrinsic reward module's ``n_agents``, else read from
            each batch's actions.
        lambda_in: λ of eq. 2.
        entropy_coeff: entropy bonus weight (0 in the paper).
        critic_coeff: weight of both value losses.
        meta_gradient: ``"fast"`` (one JVP, no second-order graph) or
            ``"reference"`` (double backward); same η-gradient.
        variant: ``"paper"`` (default) or ``"released_code"``, the meta-gradient of
            the authors' released code (scalar factorisation, joint importance
            ratio, α dropped; see :func:`meta_loss_released_code`).
        intrinsic_centring: ``"none"`` (the paper) or ``"policy"``: the proxy reward uses
            ``r_in(o, u) − Σ_a π(a|o)·r_in(o, a)`` (π held constant), whose mean under the policy is 0 in every
            state, so r_in can only redistribute credit among an agent's actions, not pay for being alive. Needs an
            :class:`~torchrl_liir.modules.IntrinsicReward` of discrete actions.
        intrinsic_scale: ``"none"`` (the paper: r_in as the network gives it) or ``"batch_rms"``: r_in divided
            by its root mean square over the batch's valid entries, inside the graph (the meta-gradient sees
            that only r_in's shape, not its size, reaches the policy); meant for an unbounded network
            (``IntrinsicReward(bound=None)``), whose gradient never saturates.
        meta_entropy_coeff: β of the meta-objective ``J_ex(θ') + β·mean H(π_θ')`` that η ascends (0: the paper's
            J_ex(θ'), eq. 8). The policy's step pays ``entropy_coeff·H``, but J_ex(θ') values no exploration,
            so η is free to favour an r_in that makes the policy greedier; with ``β = entropy_coeff`` η ascends
            the same regularised objective as the policy. Needs a distribution with a closed-form entropy
            (the batch's actions are not samples of π_θ'); the paper's ``variant`` only.
        normalize_advantage: standardise the proxy advantage over the batch's valid entries before the
            policy step (as the authors' code does); the meta-gradient differentiates through it.
        gamma, lmbda: discount and TD(λ)/GAE λ of both estimators
            (``make_value_estimator`` changes them).

    Examples:
        >>> import torch
        >>> from torchrl_liir import (EpisodeCollector, InnerStep, LIIRLoss, PursuitEnv, make_extrinsic_critic,
        ...                           make_intrinsic_reward, make_mlp_policy, make_proxy_critic)
        >>> env = PursuitEnv(num_envs=4, seed=0)  # 2 agents, 3 actions, observations and state of 2 values
        >>> obs_dim = state_dim = 2
        >>> actor = make_mlp_policy(env.n_agents, obs_dim, env.n_actions, action_mask_key=("agents", "action_mask"))
        >>> policy_optimizer = torch.optim.RMSprop(actor.parameters(), lr=5e-4, alpha=0.99, eps=1e-5)
        >>> intrinsic_reward = make_intrinsic_reward(obs_dim, env.n_actions, env.n_agents)
        >>> loss = LIIRLoss(actor, intrinsic_reward, make_proxy_critic(obs_dim, env.n_agents, state_dim=state_dim),
        ...                 make_extrinsic_critic(state_dim),
        ...                 inner_step=InnerStep(policy_optimizer, max_grad_norm=10.0))  # models the policy's step
        >>> loss.out_keys[:5]
        ['loss_objective', 'loss_entropy', 'loss_proxy_value', 'loss_extrinsic_value', 'loss_intrinsic']
        >>> batch = EpisodeCollector(env, actor).rollout()  # one padded episode per env: [4, T]
        >>> batch.batch_size[0], batch.get(("collector", "mask")).dtype
        (4, torch.bool)
        >>> out = loss(batch)
        >>> list(out.keys()) == loss.out_keys
        True
        >>> all(bool(torch.isfinite(value)) for value in out.values())
        True
        >>> eta_optimizer = torch.optim.Adam(intrinsic_reward.parameters(), lr=5e-4)
        >>> sum(value for key, value in out.items() if key.startswith("loss_")).backward()
        >>> policy_optimizer.step()  # θ → θ', the step the meta-gradient modelled (eq. 6)
        >>> eta_optimizer.step()  # η along −∇η J_ex(θ') (eq. 7–9)
    """

    @dataclass
    class _AcceptedKeys(EpisodeKeys):
        """:class:`EpisodeKeys` and the entries LIIR's estimates write; change them with ``set_keys``.

        Attributes:
            intrinsic_reward (NestedKey): r_in_η(o_i, u_i) ``[*B, T, n_agents, 1]``, the intrinsic reward network's
                output. Defaults to ``("agents", "intrinsic_reward")``.
            proxy_reward (NestedKey): r_ex + λ·r_in per agent (eq. 2). Defaults to ``("agents", "proxy_reward")``.
            proxy_value (NestedKey): V_proxy's output per agent ``[*B, T, n_agents, 1]``. Defaults to
                ``("agents", "proxy_value")``.
            proxy_advantage (NestedKey): the proxy GAE advantage per agent. Defaults to
                ``("agents", "proxy_advantage")``.
            proxy_value_target (NestedKey): the proxy TD(λ) target per agent. Defaults to
                ``("agents", "proxy_value_target")``.
            value (NestedKey): V_ex's output: ``[*B, T, 1]``, or one per agent ``[*B, T, n_agents, 1]`` (a
                centralised ``MultiAgentMLP``, whose outputs are averaged into V_ex and each regressed on its
                target). Defaults to ``"state_value"``.
            advantage (NestedKey): the extrinsic GAE advantage ``[*B, T, 1]``. Defaults to ``"advantage"``.
            value_target (NestedKey): the extrinsic TD(λ) target ``[*B, T, 1]``. Defaults to ``"value_target"``.
        """

        intrinsic_reward: NestedKey = ("agents", "intrinsic_reward")
        proxy_reward: NestedKey = ("agents", "proxy_reward")
        proxy_value: NestedKey = ("agents", "proxy_value")
        proxy_advantage: NestedKey = ("agents", "proxy_advantage")
        proxy_value_target: NestedKey = ("agents", "proxy_value_target")
        value: NestedKey = "state_value"
        advantage: NestedKey = "advantage"
        value_target: NestedKey = "value_target"

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys
    default_value_estimator = ValueEstimators.GAE
    legacy_estimator = "proxy_value_estimator"
    returned = ("loss_objective", "loss_entropy", "loss_proxy_value", "loss_extrinsic_value", "loss_intrinsic",
                "entropy", "intrinsic_reward", "proxy_advantage", "extrinsic_advantage", "meta_objective",
                "r_in_spread_agents", "r_in_spread_actions", "r_in_saturated", "proxy_advantage_share_r_in")
    saturation = 0.95  # r_in_saturated counts |r_in| above this fraction of the bound

    def __init__(
        self,
        actor_network: TensorDictModuleBase,
        intrinsic_reward_network: TensorDictModule,
        proxy_value_network: TensorDictModule,
        extrinsic_value_network: TensorDictModule,
        *,
        inner_step: InnerStep,
        n_agents: int | None = None,
        lambda_in: float = 0.01,
        entropy_coeff: float = 0.0,
        critic_coeff: float = 1.0,
        normalize_advantage: bool = False,
        meta_gradient: Literal["fast", "reference"] = "fast",
        variant: Literal["paper", "released_code"] = "paper",
        intrinsic_centring: Literal["none", "policy"] = "none",
        intrinsic_scale: Literal["none", "batch_rms"] = "none",
        meta_entropy_coeff: float = 0.0,
        gamma: float = 0.99,
        lmbda: float = 0.8,
    ) -> None:
        if lambda_in < 0:
            raise ValueError(f"lambda_in must be >= 0, got lambda_in={lambda_in}")
        if meta_gradient not in ("fast", "reference"):
            raise ValueError(f"meta_gradient must be 'fast' or 'reference', got meta_gradient={meta_gradient!r}")
        if variant not in ("paper", "released_code"):
            raise ValueError(f"variant must be 'paper' or 'released_code', got variant={variant!r}")
        if intrinsic_centring not in ("none", "policy"):
            raise ValueError(f"intrinsic_centring must be 'none' or 'policy', got {intrinsic_centring!r}")
        if intrinsic_scale not in ("none", "batch_rms"):
            raise ValueError(f"intrinsic_scale must be 'none' or 'batch_rms', got {intrinsic_scale!r}")
        if meta_entropy_coeff < 0:
            raise ValueError(f"meta_entropy_coeff must be >= 0, got meta_entropy_coeff={meta_entropy_coeff}")
        if meta_entropy_coeff and variant == "released_code":
            raise ValueError("meta_entropy_coeff applies to variant='paper' only: the released code's meta-term "
                             "is not a gradient of an objective")
        super().__init__()
        if any(isinstance(m, MultiAgentNetBase) and not m.use_td_params for m in actor_network.modules()):
            raise ValueError("actor_network holds a MultiAgentMLP(use_td_params=False), whose forward reads weights "
                             "no functional call can swap (the meta-gradient would be zero); use use_td_params=True")
        check_networks(type(self).__name__, actor_network, intrinsic_reward_network=intrinsic_reward_network,
                       proxy_value_network=proxy_value_network, extrinsic_value_network=extrinsic_value_network)
        self.actor_network = actor_network
        self.intrinsic_reward_network = intrinsic_reward_network
        self.proxy_value_network = proxy_value_network
        self.extrinsic_value_network = extrinsic_value_network
        self.inner_step = inner_step
        self.lambda_in = lambda_in
        self.entropy_coeff = entropy_coeff
        self.critic_coeff = critic_coeff
        self.normalize_advantage = normalize_advantage
        self.meta_gradient = meta_gradient
        self.variant = variant
        self.intrinsic_centring = intrinsic_centring
        self.intrinsic_scale = intrinsic_scale
        self.meta_entropy_coeff = meta_entropy_coeff
        module = self._intrinsic_module
        if intrinsic_centring == "policy" and (module is None or module.continuous):
            raise ValueError("intrinsic_centring='policy' needs r_in of every action: an IntrinsicReward of "
                             "discrete actions as intrinsic_reward_network")
        self.n_agents = n_agents or getattr(getattr(intrinsic_reward_network, "module", None), "n_agents", None)
        self.make_value_estimator(self.default_value_estimator, gamma=gamma, lmbda=lmbda)

    def build_estimators(self) -> None:
        """The proxy estimator (per agent, differentiable in η) and the extrinsic one (team)."""
        self.proxy_value_estimator = MultiAgentGAE(gamma=self.gamma, lmbda=self.lmbda, value_network=None,
                                                   differentiable=True)
        self.extrinsic_value_estimator = GAE(gamma=self.gamma, lmbda=self.lmbda, value_network=None)

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        keys = self.tensor_keys
        # estimate_values hands the estimators the team's reward and end flags under these plain names.
        common = {"done": "done", "terminated": "terminated"}
        if getattr(self, "proxy_value_estimator", None) is not None:
            self.proxy_value_estimator.set_keys(
                reward=keys.proxy_reward, value=keys.proxy_value, advantage=keys.proxy_advantage,
                value_target=keys.proxy_value_target, **common,
            )
        if getattr(self, "extrinsic_value_estimator", None) is not None:
            self.extrinsic_value_estimator.set_keys(
                reward="reward", value=keys.value, advantage=keys.advantage,
                value_target=keys.value_target, **common,
            )

    def value_networks(self) -> list[TensorDictModuleBase]:
        return [self.proxy_value_network, self.extrinsic_value_network]

    def step_networks(self) -> list[TensorDictModuleBase]:
        return [self.intrinsic_reward_network]

    @property
    def _intrinsic_module(self) -> IntrinsicReward | None:
        module = getattr(self.intrinsic_reward_network, "module", None)
        return module if isinstance(module, IntrinsicReward) else None

    @property
    def out_keys(self) -> list[str]:
        """The entries ``forward`` returns: ``r_in_spread_actions`` needs an
        :class:`~torchrl_liir.modules.IntrinsicReward` of discrete actions and ``r_in_saturated`` a bounded one."""
        module = self._intrinsic_module
        absent = set()
        if module is None or module.continuous:
            absent.add("r_in_spread_actions")
        if module is None or module.bound is None:
            absent.add("r_in_saturated")
        return [key for key in self.returned if key not in absent]

    @property
    def estimated_critic(self) -> TensorDictModuleBase:
        return self.extrinsic_value_network

    def _policy_terms(
        self, tensordict: TensorDictBase, params: dict[str, torch.Tensor], entropy: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(lp, H)`` of the batch's taken actions at parameters ``params`` (dual tensors allowed)."""
        return PolicyTerms(self.actor_network, self.tensor_keys.action).at(params, tensordict, entropy)

    def intrinsic_rewards(self, tensordict: TensorDictBase, valid: torch.Tensor | None = None) -> torch.Tensor:
        """r_in ``[*B, T, n_agents, 1]`` as the proxy reward (eq. 2) uses it: the network's output, centred under
        the policy and scaled by its batch RMS where ``intrinsic_centring`` / ``intrinsic_scale`` ask; ``valid``
        (the ``[*B, T, n_agents]`` entries the RMS runs over) defaults to the unpadded steps of living agents."""
        return self._shaped_r_in(tensordict, valid, *self._network_r_in(tensordict))

    def _network_r_in(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One pass of the intrinsic network: the taken actions' r_in ``[*B, T, n_agents, 1]`` and, for an
        :class:`~torchrl_liir.modules.IntrinsicReward` of discrete actions, every action's ``[*B, T, n_agents,
        n_actions]`` (the taken one's gathered from it, as the module's forward does), else ``None``."""
        module = self._intrinsic_module
        if module is None or module.continuous:
            return run_module(self.intrinsic_reward_network, tensordict), None
        require_inputs(self.intrinsic_reward_network, tensordict)
        every = module.all_actions(tensordict.get(self.intrinsic_reward_network.in_keys[0]))
        return self._taken(tensordict, every), every

    def _shaped_r_in(
        self, tensordict: TensorDictBase, valid: torch.Tensor | None, r_in: torch.Tensor, every: torch.Tensor | None
    ) -> torch.Tensor:
        """:meth:`intrinsic_rewards` from the network's ``r_in`` and ``every`` action's (:meth:`_network_r_in`)."""
        keys = self.tensor_keys
        if self.intrinsic_centring == "policy":  # ``every`` exists: the constructor checked the module
            with torch.no_grad(), set_recurrent_mode(True):
                probs = self.actor_network.get_dist(tensordict.copy()).probs
            r_in = r_in - (probs * every).sum(-1, keepdim=True)
        if self.intrinsic_scale == "batch_rms":
            if valid is None:
                valid = valid_mask(tensordict, r_in.shape[-2], keys.padding_mask, keys.agent_mask)
            rms = masked_mean(r_in[..., 0].pow(2), valid.to(r_in.dtype)).sqrt()
            r_in = r_in / rms.clamp_min(torch.finfo(r_in.dtype).eps)
        return r_in

    def _taken(self, tensordict: TensorDictBase, every: torch.Tensor) -> torch.Tensor:
        """The taken actions' entries of ``every`` action's r_in, ``[*B, T, n_agents, 1]`` (the module's forward)."""
        action = tensordict.get(self.intrinsic_reward_network.in_keys[1]).long()
        return every.gather(-1, action.unsqueeze(-1))

    def estimate_values(
        self,
        tensordict: TensorDictBase,
        r_in: torch.Tensor | None = None,
        proxy_value: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
    ) -> TensorDictBase:
        """Proxy and extrinsic TD(λ) targets and advantages of a ``[*B, T]`` batch.

        The proxy ones (per agent, on r_ex + λ·r_in) are differentiable in η
        through ``r_in``; the critics' values are constants and the extrinsic
        estimates carry no gradient. ``r_in`` and the values at the root are
        computed when not given (r_in by :meth:`intrinsic_rewards`).
        """
        keys = self.tensor_keys
        if r_in is None:
            r_in = self.intrinsic_rewards(tensordict)
        if proxy_value is None:
            proxy_value = run_module(self.proxy_value_network, tensordict)
        if value is None:
            value = run_module(self.extrinsic_value_network, tensordict)
        nxt = tensordict.get("next")
        with torch.no_grad():
            next_proxy_value = run_module(self.proxy_value_network, nxt)
            next_value = team_value(run_module(self.extrinsic_value_network, nxt), nxt.batch_dims)
        if keys.agent_mask is not None and keys.agent_mask in tensordict.keys(True, True):
            # A dead agent takes no decision, so it earns no r_in; its proxy return still runs to the
            # episode's end (the team's later reward, a win included, is partly its doing).
            r_in = r_in * tensordict.get(keys.agent_mask).reshape(*tensordict.batch_size, -1, 1)
        reward = team_reward(nxt.get(keys.reward), nxt.batch_dims)
        done, terminated = self.end_flags(nxt)
        batch_size = tensordict.batch_size
        data = TensorDict(
            {keys.value: team_value(value, tensordict.batch_dims).detach(),
             "next": {"reward": reward, keys.value: next_value, "done": done, "terminated": terminated}},
            batch_size=batch_size,
        )
        with torch.no_grad():
            self.extrinsic_value_estimator(data)
        proxy = TensorDict(
            {keys.proxy_value: proxy_value.detach(),
             "next": {keys.proxy_value: next_proxy_value, keys.proxy_reward: proxy_reward(reward, r_in, self.lambda_in),
                      "done": done, "terminated": terminated}},
            batch_size=batch_size,
        )
        self.proxy_value_estimator(proxy)
        return data.update(proxy.select(keys.proxy_value, keys.proxy_advantage, keys.proxy_value_target,
                                        ("next", keys.proxy_value), ("next", keys.proxy_reward)))

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        keys = self.tensor_keys
        tensordict, valid = self.prepare(tensordict)

        # One pass of the intrinsic network serves r_in (with its gradient) and the diagnostics.
        raw_r_in, every = self._network_r_in(tensordict)
        r_in = self._shaped_r_in(tensordict, valid, raw_r_in, every)
        proxy_value = run_module(self.proxy_value_network, tensordict)
        value = run_module(self.extrinsic_value_network, tensordict)
        estimates = self.estimate_values(tensordict, r_in, proxy_value, value)
        raw_proxy_adv = estimates.get(keys.proxy_advantage)[..., 0]
        ex_adv = estimates.get(keys.advantage).expand(*valid.shape)
        w = valid.to(raw_proxy_adv.dtype)
        # Normalised inside the graph, so the meta-gradient differentiates through it.
        proxy_adv = masked_normalize(raw_proxy_adv, w) if self.normalize_advantage else raw_proxy_adv
        # Critics learn every unpadded step, dead agents' included, as returns run through them.
        critic_w = valid_mask(tensordict, valid.shape[-1], keys.padding_mask, None).to(w.dtype)
        team_w = critic_w[..., :1]

        log_prob, entropy = PolicyTerms(self.actor_network, keys.action)(tensordict, entropy=True)
        loss_objective = -masked_mean(log_prob * proxy_adv.detach(), w)
        loss_entropy, mean_entropy = self.entropy_terms(entropy, w)
        # g = ∇θ L_in (eq. 6) by one backward, which frees the policy's graph; loss_objective hands it on.
        params = dict(self.actor_network.named_parameters())
        grads = torch.autograd.grad(loss_objective + loss_entropy, list(params.values()), allow_unused=True)

        loss_proxy_value = self.critic_coeff * masked_mean(
            (proxy_value - estimates.get(keys.proxy_value_target).detach()).pow(2)[..., 0], critic_w
        )
        # A critic with one output per agent (TorchRL's centralised MultiAgentMLP) regresses each on the target.
        extrinsic_error = (value - per_agent_like(estimates.get(keys.value_target), value)).pow(2)
        loss_extrinsic_value = self.critic_coeff * masked_mean(
            extrinsic_error.mean(-2) if value.ndim > team_w.ndim else extrinsic_error, team_w
        )

        loss_intrinsic, meta_objective = self._meta_loss(
            tensordict, params, grads, log_prob.detach(), proxy_adv, ex_adv,
            estimates.get(keys.proxy_value_target)[..., 0], w,
        )
        return TensorDict(
            {
                "loss_objective": with_gradient(loss_objective, list(params.values()), grads),
                "loss_entropy": loss_entropy.detach(),
                "loss_proxy_value": loss_proxy_value,
                "loss_extrinsic_value": loss_extrinsic_value,
                "loss_intrinsic": loss_intrinsic,
                "entropy": mean_entropy.detach(),
                "intrinsic_reward": masked_mean(r_in[..., 0], w).detach(),
                "proxy_advantage": masked_mean(raw_proxy_adv, w).detach(),
                "extrinsic_advantage": masked_mean(ex_adv, w).detach(),
                "meta_objective": meta_objective,
                **self._diagnostics(tensordict, r_in, raw_r_in, every, proxy_adv, estimates, w),
            },
            batch_size=[],
        )

    @torch.no_grad()
    def _diagnostics(
        self,
        tensordict: TensorDictBase,
        r_in: torch.Tensor,
        raw_r_in: torch.Tensor,
        every: torch.Tensor | None,
        proxy_adv: torch.Tensor,
        estimates: TensorDictBase,
        w: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Detached statistics of r_in (eq. 2) and of its share in the policy's advantage (eq. 3, 6), on the
        valid entries ``w``: see the class docstring (``raw_r_in``, ``every``: the network's output before any
        centring or scaling, :meth:`_network_r_in`). Tensors on the loss's device (no host sync)."""
        keys = self.tensor_keys
        r_in = r_in.detach()[..., 0]
        out = {"r_in_spread_agents": _masked_std(r_in, w)}
        module = self._intrinsic_module
        if every is not None:
            every = every.detach()
            available = (tensordict.get(keys.action_mask) if keys.action_mask in tensordict.keys(True, True)
                         else torch.ones_like(every, dtype=torch.bool))
            out["r_in_spread_actions"] = _masked_std(every, available.to(every.dtype), w)
        if module is not None and module.bound is not None:
            # Saturation is the network's own output's, before any centring or scaling of the reward.
            raw = raw_r_in.detach()[..., 0]
            out["r_in_saturated"] = masked_mean((raw.abs() > self.saturation * module.bound).to(w.dtype), w)
        # A_p(λ=0): the proxy estimator on r_ex alone, with the critic values and end flags A_p(η) used.
        nxt = estimates.get("next")
        without = TensorDict(
            {keys.proxy_value: estimates.get(keys.proxy_value),
             "next": {keys.proxy_value: nxt.get(keys.proxy_value),
                      keys.proxy_reward: proxy_reward(nxt.get("reward"), torch.zeros_like(r_in).unsqueeze(-1), 0.0),
                      "done": nxt.get("done"), "terminated": nxt.get("terminated")}},
            batch_size=tensordict.batch_size,
        )
        self.proxy_value_estimator(without)
        adv_without = without.get(keys.proxy_advantage)[..., 0]
        if self.normalize_advantage:
            adv_without = masked_normalize(adv_without, w)
        adv = proxy_adv.detach()
        moved = masked_mean((adv - adv_without).abs(), w)
        out["proxy_advantage_share_r_in"] = moved / masked_mean(adv.abs(), w).clamp_min(torch.finfo(adv.dtype).tiny)
        return out

    def _meta_loss(
        self,
        tensordict: TensorDictBase,
        params: dict[str, torch.Tensor],
        grads: Sequence[torch.Tensor | None],
        old_log_prob: torch.Tensor,
        proxy_adv: torch.Tensor,
        ex_adv: torch.Tensor,
        proxy_return: torch.Tensor,
        w: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The η term (eq. 7–9) through one modelled policy step from θ along the inner gradient ``grads``."""
        leaves = list(params.values())
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(leaves, grads)]
        inner_grads = dict(zip(params, grads))
        sizes, drifts = self.inner_step.model(leaves, grads)
        step_sizes = dict(zip(params, sizes))
        drifts = {name: d for name, d in zip(params, drifts) if d is not None}

        def log_prob_fn(theta: dict[str, torch.Tensor]) -> torch.Tensor:
            return self._policy_terms(tensordict, theta, entropy=False)[0]

        if self.variant == "released_code":
            return meta_loss_released_code(
                log_prob_fn, params, inner_grads, step_sizes, drifts, self.inner_step.learning_rate,
                old_log_prob, ex_adv, proxy_return, w,
            )

        def outer_objective(theta: dict[str, torch.Tensor]) -> torch.Tensor:
            """J_ex(θ') (eq. 8), plus β·mean H(π_θ') with ``meta_entropy_coeff``."""
            if not self.meta_entropy_coeff:
                return importance_sampled_objective(log_prob_fn(theta), old_log_prob, ex_adv, w)
            terms = PolicyTerms(self.actor_network, self.tensor_keys.action, estimate_entropy=False)
            lp, entropy = terms.at(theta, tensordict, entropy=True)
            objective = importance_sampled_objective(lp, old_log_prob, ex_adv, w)
            return objective + self.meta_entropy_coeff * masked_mean(entropy, w)

        if self.meta_gradient == "fast":
            return meta_loss_fast(log_prob_fn, params, inner_grads, step_sizes, drifts, outer_objective,
                                  proxy_adv, w)

        def inner_loss(theta: dict[str, torch.Tensor]) -> torch.Tensor:
            lp, entropy = self._policy_terms(tensordict, theta, entropy=bool(self.entropy_coeff))
            loss = -masked_mean(lp * proxy_adv, w)
            return loss - self.entropy_coeff * masked_mean(entropy, w) if self.entropy_coeff else loss

        return meta_loss_reference(params, inner_loss, step_sizes, drifts, outer_objective)


def _masked_std(x: torch.Tensor, weights: torch.Tensor, outer: torch.Tensor | None = None) -> torch.Tensor:
    """The population std of ``x`` over its last dim's entries with ``weights`` 1, averaged over the other
    positions that have at least two such entries (and ``outer`` 1, where given); 0 when none has."""
    count = weights.sum(-1)
    mean = (weights * x).sum(-1, keepdim=True) / count.clamp_min(1).unsqueeze(-1)
    std = ((weights * (x - mean).pow(2)).sum(-1) / count.clamp_min(1)).sqrt()
    counted = (count >= 2).to(x.dtype)
    return masked_mean(std, counted if outer is None else counted * outer)
