"""Parameter-shared per-agent Q-networks with masked greedy and ε-greedy actions (IQL, QMIX)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from tensordict.utils import NestedKey
from torchrl.data import Categorical
from torchrl.modules import EGreedyModule, QValueModule, set_recurrent_mode

from torchrl_liir.modules.agent_networks import gru_agent_network, mlp_agent_network

ACTION_VALUE_KEY = ("agents", "action_value")
CHOSEN_ACTION_VALUE_KEY = ("agents", "chosen_action_value")


class StepMode(TensorDictModuleBase):
    """Runs a recurrent module one step at a time, whatever the global recurrent mode.

    TorchRL losses switch recurrent mode on around their forward; replayed
    transitions have no time dim, so the Q-network's GRU must stay in step mode.
    """

    def __init__(self, module: TensorDictModuleBase) -> None:
        super().__init__()
        self.module = module
        self.in_keys, self.out_keys = module.in_keys, module.out_keys

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        with set_recurrent_mode(False):
            return self.module(tensordict)


def _greedy(
    q_module: TensorDictModuleBase, action_mask_key: NestedKey | None, action_key: NestedKey
) -> TensorDictSequential:
    """Q-values followed by the masked argmax: unavailable actions are never chosen."""
    greedy = QValueModule(
        action_value_key=ACTION_VALUE_KEY,
        action_mask_key=action_mask_key,
        out_keys=[action_key, ACTION_VALUE_KEY, CHOSEN_ACTION_VALUE_KEY],
        action_space="categorical",
    )
    return TensorDictSequential(q_module, greedy)


def make_mlp_q_network(
    n_agents: int,
    obs_dim: int,
    n_actions: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    observation_key: NestedKey = ("agents", "observation"),
    action_mask_key: NestedKey | None = ("agents", "action_mask"),
    action_key: NestedKey = ("agents", "action"),
    device: torch.device | str | None = None,
) -> TensorDictSequential:
    """Q(o_i, ·): one MLP shared by all agents, then the masked greedy action.

    Writes ``("agents", "action_value")`` (unavailable actions at the dtype's
    minimum), ``("agents", "chosen_action_value")`` and the greedy action.
    ``n_agents`` is unused; it keeps the signature of :func:`make_gru_q_network`. Returns a
    ``TensorDictSequential`` reading ``observation_key`` ``[*B, n_agents, obs_dim]`` (and the mask).
    """
    q_values = mlp_agent_network(obs_dim, n_actions, num_cells, observation_key, ACTION_VALUE_KEY, device)
    return _greedy(q_values, action_mask_key, action_key)


def make_gru_q_network(
    n_agents: int,
    obs_dim: int,
    n_actions: int,
    *,
    hidden_size: int = 64,
    observation_key: NestedKey = ("agents", "observation"),
    action_mask_key: NestedKey | None = ("agents", "action_mask"),
    action_key: NestedKey = ("agents", "action"),
    device: torch.device | str | None = None,
) -> TensorDictSequential:
    """Q(τ_i, ·): pymarl's agent network FC → GRU-64 → FC, shared by all agents, then the masked greedy action.

    Needs ``"is_init"`` and the hidden-state primer (:func:`~torchrl_liir.modules.policy_primer`)
    on the environment. The GRU always runs in step mode, from the hidden state
    in the input: a loss on replayed transitions uses the hidden states stored at
    collection (no backpropagation through time). The next hidden state it
    writes is detached, so a Q loss that evaluates the target network on
    ``"next"`` after the online network cannot back-propagate through the target. Returns a
    ``TensorDictSequential`` writing what :func:`make_mlp_q_network`'s does and the next hidden state.
    """
    embed, gru, head = gru_agent_network(n_agents, obs_dim, n_actions, hidden_size, observation_key,
                                         ACTION_VALUE_KEY, device)
    next_hidden = gru.out_keys[1]
    detach = TensorDictModule(torch.Tensor.detach, [next_hidden], [next_hidden])
    return _greedy(TensorDictSequential(embed, StepMode(gru), detach, head), action_mask_key, action_key)


def make_egreedy_actor(
    q_network: TensorDictSequential,
    n_agents: int,
    n_actions: int,
    *,
    eps_init: float = 1.0,
    eps_end: float = 0.05,
    annealing_num_steps: int = 50_000,
    action_mask_key: NestedKey | None = ("agents", "action_mask"),
    action_key: NestedKey = ("agents", "action"),
    device: torch.device | str | None = None,
) -> TensorDictSequential:
    """The Q-network's greedy action, replaced per agent with probability ε by a random available one.

    ε anneals linearly from ``eps_init`` to ``eps_end`` over ``annealing_num_steps``
    calls of ``actor[-1].step()`` (frames). Under ``ExplorationType.DETERMINISTIC``
    the actor is greedy. ``q_network`` is one of :func:`make_mlp_q_network` / :func:`make_gru_q_network`;
    returns ``TensorDictSequential(q_network, EGreedyModule)``.
    """
    explore = EGreedyModule(
        Categorical(n_actions, shape=(n_agents,), device=device), eps_init=float(eps_init), eps_end=float(eps_end),
        annealing_num_steps=annealing_num_steps, action_key=action_key, action_mask_key=action_mask_key,
        device=device,
    )
    return TensorDictSequential(q_network, explore)
