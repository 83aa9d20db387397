"""Multi-agent Q-learning on TorchRL's losses: IQL (``DQNLoss``) and QMIX (``QMixerLoss``).

Both train on replayed single transitions and return their TD loss as
``loss_value`` (the trainer sums the ``loss_*`` entries). Both keep a target
network (``delay_value=True``) for an updater such as ``torchrl.objectives.HardUpdate``.
"""
from __future__ import annotations

from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torchrl.objectives import DQNLoss, ValueEstimators
from torchrl.objectives.multiagent import QMixerLoss

from torchrl_liir.finite_inputs import InputChecks
from torchrl_liir.modules.q_networks import ACTION_VALUE_KEY, CHOSEN_ACTION_VALUE_KEY


class IQLLoss(InputChecks, DQNLoss):
    """Independent Q-learning (Tan 1993): every agent's Q(τ_i, u_i) regresses on the team reward.

    ``DQNLoss`` with per-agent keys: the team ``"reward"``, ``"done"`` and
    ``"terminated"`` under ``"next"`` are expanded over the agents to the
    loss's ``reward``/``done``/``terminated`` keys (default ``("agents", "reward")``
    etc.) before the 1-step TD target r + γ max_u Q_target(τ'_i, u)
    (unavailable actions excluded).

    Args:
        value_network: per-agent Q-network ending in a ``QValueModule``
            (:func:`~torchrl_liir.modules.make_mlp_q_network` or
            :func:`~torchrl_liir.modules.make_gru_q_network`).
        gamma: discount.

    Calling the loss on a batch of transitions returns its TD loss, ``loss_value``.

    Examples:
        >>> import torch
        >>> from torchrl.objectives import HardUpdate
        >>> from torchrl_liir import EpisodeCollector, IQLLoss, PursuitEnv
        >>> from torchrl_liir.modules import make_egreedy_actor, make_mlp_q_network
        >>> env = PursuitEnv(num_envs=4, seed=0)  # 2 agents, 3 actions, observations of 2 values
        >>> q_network = make_mlp_q_network(env.n_agents, 2, env.n_actions)
        >>> actor = make_egreedy_actor(q_network, env.n_agents, env.n_actions)
        >>> loss = IQLLoss(q_network, gamma=0.99)
        >>> target_updater = HardUpdate(loss, value_network_update_interval=200)
        >>> batch = EpisodeCollector(env, actor).rollout()
        >>> transitions = batch[batch.get(("collector", "mask"))]  # what a replay buffer would store
        >>> out = loss(transitions)
        >>> list(out.keys()), out["loss_value"].shape, bool(torch.isfinite(out["loss_value"]))
        (['loss_value'], torch.Size([]), True)
        >>> out["loss_value"].backward()
        >>> target_updater.step()
    """

    team_keys = ("reward", "done", "terminated")
    def __init__(self, value_network: TensorDictModuleBase, *, gamma: float = 0.99) -> None:
        super().__init__(value_network, action_space="categorical", delay_value=True)
        self.set_keys(action=("agents", "action"), action_value=ACTION_VALUE_KEY, value=CHOSEN_ACTION_VALUE_KEY,
                      **{name: ("agents", name) for name in self.team_keys})
        self.make_value_estimator(ValueEstimators.TD0, gamma=gamma)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        self.refuse_bad_batch(tensordict)
        tensordict = tensordict.clone(False)
        nxt = tensordict.get("next")
        n_agents = tensordict.get(self.tensor_keys.action).shape[-1]
        for name in self.team_keys:
            team = nxt.get(name)
            per_agent = team.unsqueeze(-2).expand(*team.shape[:-1], n_agents, team.shape[-1])
            nxt.set(getattr(self.tensor_keys, name), per_agent)
        return TensorDict({"loss_value": super().forward(tensordict).get("loss")}, batch_size=[])


class QMIXLoss(InputChecks, QMixerLoss):
    """QMIX (Rashid et al., ICML 2018): per-agent Q-values mixed monotonically on the state.

    ``QMixerLoss`` with a 1-step TD target on the mixed value:
    r + γ Q_tot_target(s', argmax_u Q_target(τ'_i, u)), unavailable actions excluded.

    Args:
        local_value_network: per-agent Q-network ending in a ``QValueModule``.
        mixer_network: ``torchrl.modules.QMixer`` reading ``("agents", "chosen_action_value")``
            and ``"state"``, writing ``"chosen_action_value"``.
        gamma: discount.

    Calling the loss on a batch of transitions returns its TD loss, ``loss_value``.

    Examples:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> from torchrl.modules import QMixer
        >>> from torchrl.objectives import HardUpdate
        >>> from torchrl_liir import EpisodeCollector, PursuitEnv, QMIXLoss
        >>> from torchrl_liir.modules import make_egreedy_actor, make_mlp_q_network
        >>> env = PursuitEnv(num_envs=4, seed=0)  # 2 agents, 3 actions, observations and state of 2 values
        >>> q_network = make_mlp_q_network(env.n_agents, 2, env.n_actions)
        >>> mixer = TensorDictModule(QMixer(state_shape=(2,), mixing_embed_dim=8, n_agents=env.n_agents, device="cpu"),
        ...                          in_keys=[("agents", "chosen_action_value"), "state"],
        ...                          out_keys=["chosen_action_value"])
        >>> loss = QMIXLoss(q_network, mixer, gamma=0.99)
        >>> target_updater = HardUpdate(loss, value_network_update_interval=200)
        >>> actor = make_egreedy_actor(q_network, env.n_agents, env.n_actions)
        >>> batch = EpisodeCollector(env, actor).rollout()
        >>> out = loss(batch[batch.get(("collector", "mask"))])  # the valid transitions
        >>> list(out.keys()), out["loss_value"].shape, bool(torch.isfinite(out["loss_value"]))
        (['loss_value'], torch.Size([]), True)
        >>> out["loss_value"].backward()
        >>> target_updater.step()
    """

    def __init__(self, local_value_network: TensorDictModuleBase, mixer_network: TensorDictModule, *,
                 gamma: float = 0.99) -> None:
        super().__init__(local_value_network, mixer_network, action_space="categorical", delay_value=True)
        self.make_value_estimator(ValueEstimators.TD0, gamma=gamma)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        self.refuse_bad_batch(tensordict)
        return TensorDict({"loss_value": super().forward(tensordict).get("loss")}, batch_size=[])
