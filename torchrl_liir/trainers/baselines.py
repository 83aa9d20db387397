"""Builds the baselines COMA, IQL, QMIX and MAPPO for the trainer: actor, loss, optimisers and data hooks.

How each loss gets its data from a collected batch of padded ``[episodes, T]`` episodes:

* COMA sees the whole padded batch once (on-policy, like LIIR); its target
  critic is copied every ``target_update_interval`` updates.
* IQL and QMIX push the batch's valid steps into a replay buffer of
  ``buffer_episodes`` episodes' worth of transitions and take
  ``updates_per_batch`` steps on samples of ``batch_episodes`` episodes' worth.
* MAPPO computes GAE on the padded batch, then takes ``ppo_epochs`` passes of
  ``minibatches`` shuffled minibatches over its valid steps.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from omegaconf import DictConfig
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from tensordict.utils import NestedKey, unravel_key
from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
from torchrl.modules import EGreedyModule, QMixer
from torchrl.objectives import HardUpdate, LossModule

from torchrl_liir.modules import (
    make_agent_value_critic,
    make_coma_critic,
    make_egreedy_actor,
    make_gru_policy,
    make_gru_q_network,
    make_mlp_policy,
    make_mlp_q_network,
)
from torchrl_liir.modules.q_networks import CHOSEN_ACTION_VALUE_KEY
from torchrl_liir.objectives import COMALoss, EpisodeMAPPOLoss, IQLLoss, QMIXLoss

# A module import: builders imports this module to dispatch to it.
from torchrl_liir.trainers import builders
from torchrl_liir.trainers.config import BASELINES

PADDING_MASK: NestedKey = ("collector", "mask")
AGENT_MASK: NestedKey = ("agents", "alive")


def make_target_updater(loss: LossModule, interval: int) -> HardUpdate:
    """Copies the online parameters into the target ones on every ``interval``-th ``step()``."""
    # HardUpdate copies on the call after its counter reaches value_network_update_interval.
    return HardUpdate(loss, value_network_update_interval=interval - 1)


def _policy(cfg: DictConfig, dims: builders.EnvDims, device: torch.device) -> TensorDictModuleBase:
    algo = cfg.algo
    if algo.policy == "gru":
        return make_gru_policy(dims.n_agents, dims.obs_dim, dims.n_actions, hidden_size=algo.rnn_hidden, device=device)
    return make_mlp_policy(dims.n_agents, dims.obs_dim, dims.n_actions, num_cells=list(algo.num_cells), device=device)


def _coma(cfg: DictConfig, dims: builders.EnvDims, device: torch.device) -> builders.Components:
    algo = cfg.algo
    actor = _policy(cfg, dims, device)
    critic = make_coma_critic(dims.state_dim, dims.n_agents, dims.n_actions, num_cells=list(algo.num_cells),
                              device=device)
    loss = COMALoss(actor, critic, dims.n_agents, entropy_coeff=algo.entropy_coeff, critic_coeff=algo.critic_coeff,
                    gamma=algo.gamma, lmbda=algo.lmbda)
    loss.set_keys(agent_mask=AGENT_MASK)  # an absent key (pursuit) counts every agent as alive
    target = make_target_updater(loss, algo.target_update_interval)
    optimizers = {"policy": builders.make_optimizer(algo, actor.parameters(), algo.lr_policy),
                  "critic": builders.make_optimizer(algo, critic.parameters(), algo.lr_critic)}
    return builders.Components(actor, loss, optimizers, None, algo.max_grad_norm or None,
                               after_update=lambda frames: target.step())


def _transition_keys(q_network: TensorDictModuleBase) -> list[NestedKey]:
    """What a replayed transition needs: the Q-network's inputs now and next, the action, state and outcome."""
    step = [*q_network.in_keys, ("agents", "action"), "state"]
    outcome = [("next", key) for key in ("reward", "done", "terminated")]
    return [*step, *(unravel_key(("next", key)) for key in step), *outcome]


class ReplayInputs:
    """``loss_inputs`` of IQL and QMIX: a batch's valid steps go into ``buffer``, ``updates`` samples come out."""

    def __init__(self, buffer: TensorDictReplayBuffer, keys: list[NestedKey], updates: int) -> None:
        self.buffer, self.keys, self.updates = buffer, keys, updates

    def __call__(self, batch: TensorDictBase) -> Iterator[TensorDictBase]:
        self.buffer.extend(batch[batch.get(PADDING_MASK)].select(*self.keys, strict=False))
        for _ in range(self.updates):
            yield self.buffer.sample()


class QSchedule:
    """``after_update`` of IQL and QMIX: anneals ε by the frames collected since the last call and counts the
    batch's ``updates`` towards the target copy (a copy due within a batch lands at its end)."""

    def __init__(self, explore: EGreedyModule, target: HardUpdate, updates: int) -> None:
        self.explore, self.target, self.updates = explore, target, updates
        self.frames = 0

    def __call__(self, frames: int) -> None:
        self.explore.step(frames - self.frames)
        self.frames = frames
        for _ in range(self.updates):
            self.target.step()


def _q_learning(cfg: DictConfig, dims: builders.EnvDims, device: torch.device) -> builders.Components:
    algo = cfg.algo
    n_agents, n_actions = dims.n_agents, dims.n_actions
    if algo.policy == "gru":
        q_network = make_gru_q_network(n_agents, dims.obs_dim, n_actions, hidden_size=algo.rnn_hidden, device=device)
    else:
        q_network = make_mlp_q_network(n_agents, dims.obs_dim, n_actions, num_cells=list(algo.num_cells),
                                       device=device)
    actor = make_egreedy_actor(q_network, n_agents, n_actions, eps_init=algo.eps_start, eps_end=algo.eps_end,
                               annealing_num_steps=algo.eps_anneal_frames, device=device)
    if algo.name == "qmix":
        mixer = TensorDictModule(
            QMixer(state_shape=(dims.state_dim,), mixing_embed_dim=algo.mixing_embed_dim, n_agents=n_agents,
                   device=device),
            in_keys=[CHOSEN_ACTION_VALUE_KEY, "state"], out_keys=["chosen_action_value"],
        )
        loss = QMIXLoss(q_network, mixer, gamma=algo.gamma)
        params = [*q_network.parameters(), *mixer.parameters()]
    else:
        loss = IQLLoss(q_network, gamma=algo.gamma)
        params = list(q_network.parameters())
    target = make_target_updater(loss, algo.target_update_interval)
    limit = builders.episode_limit(cfg)
    buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(algo.buffer_episodes * limit, device=device),
                                    batch_size=algo.batch_episodes * limit)
    optimizers = {"policy": builders.make_optimizer(algo, params, algo.lr_policy)}
    return builders.Components(
        actor, loss, optimizers, None, algo.max_grad_norm or None,
        loss_inputs=ReplayInputs(buffer, _transition_keys(q_network), algo.updates_per_batch),
        after_update=QSchedule(actor[-1], target, algo.updates_per_batch),
    )


def _mappo(cfg: DictConfig, dims: builders.EnvDims, device: torch.device) -> builders.Components:
    algo = cfg.algo
    actor = _policy(cfg, dims, device)
    critic = make_agent_value_critic(dims.state_dim, dims.n_agents, num_cells=list(algo.num_cells), device=device)
    loss = EpisodeMAPPOLoss(actor, critic, clip_epsilon=algo.clip_epsilon, entropy_coeff=algo.entropy_coeff,
                            critic_coeff=algo.critic_coeff, gamma=algo.gamma, lmbda=algo.lmbda)

    def loss_inputs(batch: TensorDictBase) -> Iterator[TensorDictBase]:
        steps = loss.add_advantage(batch)[batch.get(PADDING_MASK)]
        for _ in range(algo.ppo_epochs):
            for minibatch in torch.randperm(steps.shape[0], device=steps.device).chunk(algo.minibatches):
                yield steps[minibatch]

    optimizers = {"policy": builders.make_optimizer(algo, actor.parameters(), algo.lr_policy),
                  "critic": builders.make_optimizer(algo, critic.parameters(), algo.lr_critic)}
    return builders.Components(actor, loss, optimizers, None, algo.max_grad_norm or None, loss_inputs=loss_inputs)


def make_baseline_components(cfg: DictConfig, dims: builders.EnvDims, device: torch.device) -> builders.Components:
    """Actor, loss, optimisers and data hooks of ``cfg.algo.name`` in :data:`BASELINES`."""
    factories = {"coma": _coma, "iql": _q_learning, "qmix": _q_learning, "mappo": _mappo}
    if cfg.algo.name not in factories:
        raise ValueError(f"algo.name={cfg.algo.name!r} is not a baseline ({', '.join(BASELINES)})")
    return factories[cfg.algo.name](cfg, dims, device)
