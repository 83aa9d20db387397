"""IQL and QMIX (Rashid et al. 2018): per-agent Q-networks, ε-greedy with the action mask, replayed
transitions, target copies; QMIX mixes the agents' values monotonically on the state."""
from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.algorithms.algorithm import Algorithm, network_checks
from torchrl_liir.config_checks import COUNT, UNIT, Added, Check, Choice, fail

if TYPE_CHECKING:
    import torch
    from tensordict.nn import TensorDictModuleBase
    from tensordict.utils import NestedKey

    from torchrl_liir.algorithms.recipe import EnvDims, Recipe


def transition_keys(q_network: TensorDictModuleBase, state_key: NestedKey | None) -> list[NestedKey]:
    """What a replayed transition needs: the Q-network's inputs now and next, the action, state and outcome."""
    from tensordict.utils import unravel_key

    step = [*q_network.in_keys, ("agents", "action"), *([state_key] if state_key is not None else [])]
    outcome = [("next", key) for key in ("reward", "done", "terminated")]
    return [*step, *(unravel_key(("next", key)) for key in step), *outcome]


class IQL(Algorithm):
    """Independent Q-learning: one optimiser over the Q-networks; ``steps_per_batch`` optimiser steps per
    collected batch, each on a replayed sample: the valid steps of ``batch_episodes`` stored episodes
    (``algo.replay=episodes``, pymarl's) or ``batch_episodes × episode_limit`` stored steps (``transitions``, the
    runs before it existed)."""

    name = "iql"
    supports_continuous_actions = False

    def config_checks(self) -> dict[str, Check]:
        return {**network_checks(), "eps_start": UNIT, "eps_end": UNIT, "eps_anneal_frames": COUNT,
                "buffer_episodes": COUNT, "batch_episodes": COUNT, "steps_per_batch": COUNT,
                "target_update_interval": COUNT,
                "replay": Added(Choice(("transitions", "episodes")), "transitions")}

    def check(self, algo: DictConfig) -> None:
        super().check(algo)
        if algo.eps_end > algo.eps_start:
            fail("algo.eps_end", algo.eps_end, f"must be <= algo.eps_start={algo.eps_start}")
        if algo.buffer_episodes < algo.batch_episodes:
            fail("algo.buffer_episodes", algo.buffer_episodes,
                 f"must be >= algo.batch_episodes={algo.batch_episodes}: each replayed sample draws that many "
                 "stored episodes")

    def make_loss(self, algo: DictConfig, dims: EnvDims, q_network: TensorDictModuleBase, device: torch.device):
        from torchrl_liir.objectives import IQLLoss

        return IQLLoss(q_network, gamma=algo.gamma), list(q_network.parameters())

    def build(self, algo: DictConfig, model: DictConfig, dims: EnvDims, episode_limit: int,
              device: torch.device) -> Recipe:
        from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer

        from torchrl_liir.algorithms.base import optimizer_group
        from torchrl_liir.algorithms.feeds import EpisodeReplayFeed, EpsilonSchedule, ReplayFeed, TargetCopies
        from torchrl_liir.algorithms.recipe import Recipe
        from torchrl_liir.modules import make_egreedy_actor, make_gru_q_network, make_mlp_q_network

        if model.policy == "gru":
            q_network = make_gru_q_network(dims.n_agents, dims.obs_dim, dims.n_actions, hidden_size=model.rnn_hidden,
                                           action_mask_key=dims.action_mask_key, device=device)
        else:
            q_network = make_mlp_q_network(dims.n_agents, dims.obs_dim, dims.n_actions,
                                           num_cells=list(model.num_cells), action_mask_key=dims.action_mask_key,
                                           device=device)
        actor = make_egreedy_actor(q_network, dims.n_agents, dims.n_actions, action_mask_key=dims.action_mask_key,
                                   eps_init=algo.eps_start, eps_end=algo.eps_end,
                                   annealing_num_steps=algo.eps_anneal_frames, device=device)
        loss, params = self.make_loss(algo, dims, q_network, device)
        keys = transition_keys(q_network, dims.state_key)
        if algo.replay == "episodes":
            buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(algo.buffer_episodes, device=device),
                                            batch_size=algo.batch_episodes)
            feed = EpisodeReplayFeed(buffer, keys, algo.steps_per_batch, episode_limit)
        else:
            buffer = TensorDictReplayBuffer(
                storage=LazyTensorStorage(algo.buffer_episodes * episode_limit, device=device),
                batch_size=algo.batch_episodes * episode_limit)
            feed = ReplayFeed(buffer, keys, algo.steps_per_batch)
        hooks = {"target_copies": TargetCopies(loss, algo.target_update_interval, per="optim_step"),
                 "epsilon_schedule": EpsilonSchedule(actor[-1])}
        optimizers = {"policy": optimizer_group(algo, params, algo.lr_policy)}
        return Recipe(actor, loss, optimizers, feed=feed, hooks=hooks)


class QMIX(IQL):
    """IQL's Q-networks and replay, their chosen values mixed by a state-conditioned monotonic network."""

    name = "qmix"

    def config_checks(self) -> dict[str, Check]:
        return {**super().config_checks(), "mixing_embed_dim": COUNT}

    def make_loss(self, algo: DictConfig, dims: EnvDims, q_network: TensorDictModuleBase, device: torch.device):
        from tensordict.nn import TensorDictModule
        from torchrl.modules import QMixer

        from torchrl_liir.modules.q_networks import CHOSEN_ACTION_VALUE_KEY
        from torchrl_liir.objectives import QMIXLoss

        # Without a global state the mixer reads the agents' observations; QMixer flattens its state input.
        state_key = dims.state_key or ("agents", "observation")
        state_shape = (dims.state_dim,) if dims.state_key else (dims.n_agents, dims.obs_dim)
        mixer = TensorDictModule(
            QMixer(state_shape=state_shape, mixing_embed_dim=algo.mixing_embed_dim, n_agents=dims.n_agents,
                   device=device),
            in_keys=[CHOSEN_ACTION_VALUE_KEY, state_key], out_keys=["chosen_action_value"],
        )
        return QMIXLoss(q_network, mixer, gamma=algo.gamma), [*q_network.parameters(), *mixer.parameters()]
