"""MAPPO (Yu et al. 2022) on TorchRL's ``MAPPOLoss``, for padded episode batches."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase, TensorDictParams
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ValueEstimators
from torchrl.objectives.multiagent import MAPPOLoss

from torchrl_liir.finite_inputs import InputChecks


class EpisodeMAPPOLoss(InputChecks, MAPPOLoss):
    """Clipped PPO with a centralised critic; advantages from GAE over whole padded episodes.

    :meth:`add_advantage` runs ``MultiAgentGAE`` on a padded ``[*B, T]`` batch
    of complete episodes (padding never leaks into valid steps: each episode's
    last valid step is ``done``); the loss itself then runs on minibatches of
    the valid steps, flattened. A recurrent policy runs in step mode on the
    hidden states stored at collection: there is no backpropagation through
    time. Only scalar entries are returned (the trainer logs each).

    Args:
        actor_network: probabilistic actor (masked categorical), log-prob stored at collection.
        critic_network: centralised critic writing ``[*B, n_agents, 1]``
            (:func:`~torchrl_liir.modules.make_agent_value_critic`).
        clip_epsilon, entropy_coeff, critic_coeff: PPO clip and loss weights.
        gamma, lmbda: discount and GAE λ.

    Calling the loss on a minibatch of steps returns ``loss_objective``, ``loss_entropy`` and ``loss_critic`` and
    the detached ``entropy``, ``clip_fraction`` and ``kl_approx``.

    Examples:
        >>> import torch
        >>> from torchrl_liir import EpisodeCollector, EpisodeMAPPOLoss, PursuitEnv, make_mlp_policy
        >>> from torchrl_liir.modules import make_agent_value_critic
        >>> env = PursuitEnv(num_envs=4, seed=0)  # 2 agents, 3 actions, observations and state of 2 values
        >>> actor = make_mlp_policy(env.n_agents, 2, env.n_actions, action_mask_key=("agents", "action_mask"))
        >>> loss = EpisodeMAPPOLoss(actor, make_agent_value_critic(2, env.n_agents))
        >>> batch = loss.add_advantage(EpisodeCollector(env, actor).rollout())  # GAE over the padded episodes
        >>> steps = batch[batch.get(("collector", "mask"))]  # the valid steps, flattened
        >>> steps.batch_dims, steps.get("advantage").shape[1:]
        (1, torch.Size([2, 1]))
        >>> out = loss(steps[torch.randperm(steps.shape[0])[:16]])  # one shuffled minibatch
        >>> list(out.keys())
        ['loss_objective', 'loss_entropy', 'loss_critic', 'entropy', 'clip_fraction', 'kl_approx']
        >>> all(bool(torch.isfinite(value)) for value in out.values())
        True
    """

    returned = ("loss_objective", "loss_entropy", "loss_critic", "entropy", "clip_fraction", "kl_approx")

    def __init__(
        self,
        actor_network: TensorDictModuleBase,
        critic_network: TensorDictModule,
        *,
        clip_epsilon: float = 0.2,
        entropy_coeff: float = 0.01,
        critic_coeff: float = 1.0,
        gamma: float = 0.99,
        lmbda: float = 0.95,
    ) -> None:
        super().__init__(actor_network, critic_network, clip_epsilon=clip_epsilon, entropy_coeff=entropy_coeff,
                         critic_coeff=critic_coeff, log_explained_variance=False)
        self.set_keys(value=critic_network.out_keys[0])
        self.make_value_estimator(ValueEstimators.MAGAE, gamma=gamma, lmbda=lmbda)

    def _get_cur_log_prob(self, tensordict: TensorDictBase, params: TensorDictParams | None = None):
        # TorchRL losses run in recurrent mode; flattened steps have no time dim.
        with set_recurrent_mode(False):
            return super()._get_cur_log_prob(tensordict, params)

    @torch.no_grad()
    def add_advantage(self, batch: TensorDictBase) -> TensorDictBase:
        """Writes the advantage and value target of every step of a ``[*B, T]`` batch (time last)."""
        self.value_estimator(batch, params=self._cached_critic_network_params_detached,
                             target_params=self.target_critic_network_params)
        return batch

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        self.refuse_bad_batch(tensordict)
        return super().forward(tensordict).select(*self.returned)
