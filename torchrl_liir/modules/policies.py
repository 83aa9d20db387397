"""Parameter-shared multi-agent policies, MLP and GRU (paper §5.2.1): categorical (masked or not) or Gaussian."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from tensordict.utils import NestedKey
from torch import nn
from torch.distributions import Categorical
from torchrl.envs import TensorDictPrimer
from torchrl.modules import IndependentNormal, MaskedCategorical, NormalParamExtractor, ProbabilisticActor, TanhNormal
from torchrl.modules.utils import get_primers_from_module

from torchrl_liir.modules.agent_networks import gru_agent_network, mlp_agent_network
from torchrl_liir.modules.exploration_floor import ExplorationFloor

LOGITS_KEY = ("agents", "logits")
LOG_PROB_KEY = ("agents", "action_log_prob")
PARAMS_KEY = ("agents", "action_params")


def _categorical_actor(
    logits_module: TensorDictModuleBase, action_mask_key: NestedKey | None, action_key: NestedKey,
    exploration_floor: ExplorationFloor | None = None,
) -> ProbabilisticActor:
    if exploration_floor is not None:
        floor_in = [LOGITS_KEY] if action_mask_key is None else [LOGITS_KEY, action_mask_key]
        logits_module = TensorDictSequential(logits_module, TensorDictModule(exploration_floor, floor_in, [LOGITS_KEY]))
    if action_mask_key is None:
        in_keys, distribution = {"logits": LOGITS_KEY}, Categorical
    else:
        in_keys, distribution = {"logits": LOGITS_KEY, "mask": action_mask_key}, MaskedCategorical
    return ProbabilisticActor(
        logits_module,
        in_keys=in_keys,
        out_keys=[action_key],
        distribution_class=distribution,
        return_log_prob=True,
        log_prob_key=LOG_PROB_KEY,
    )


def _gaussian_actor(
    params_module: TensorDictModuleBase, action_low: torch.Tensor | float, action_high: torch.Tensor | float,
    tanh: bool, action_key: NestedKey,
) -> ProbabilisticActor:
    split = TensorDictModule(NormalParamExtractor(), [PARAMS_KEY], [("agents", "loc"), ("agents", "scale")])
    if tanh:
        distribution, kwargs = TanhNormal, {"low": action_low, "high": action_high}
    else:
        distribution, kwargs = IndependentNormal, {}
    return ProbabilisticActor(
        TensorDictSequential(params_module, split),
        in_keys=[("agents", "loc"), ("agents", "scale")],
        out_keys=[action_key],
        distribution_class=distribution,
        distribution_kwargs=kwargs,
        return_log_prob=True,
        log_prob_key=LOG_PROB_KEY,
    )


def make_mlp_policy(
    n_agents: int,
    obs_dim: int,
    n_actions: int,
    *,
    num_cells: Sequence[int] = (64, 64),
    observation_key: NestedKey = ("agents", "observation"),
    action_mask_key: NestedKey | None = None,
    action_key: NestedKey = ("agents", "action"),
    exploration_floor: ExplorationFloor | None = None,
    device: torch.device | str | None = None,
) -> ProbabilisticActor:
    """π_θ(u_i | o_i): one MLP shared by all agents, categorical over actions.

    ``action_mask_key`` (e.g. SMAC's and SMAX's ``("agents", "action_mask")``) masks
    unavailable actions; ``None`` (VMAS, MPE) samples from all of them.
    A plain ``MLP`` over the last dim is shared across the agent dim by construction;
    TorchRL's ``MultiAgentMLP`` works too (:class:`~torchrl_liir.objectives.LIIRLoss`
    evaluates it at other parameters through tensordict's ``to_module``).
    ``exploration_floor`` mixes π with a uniform distribution (the authors' released code; see
    :class:`~torchrl_liir.modules.exploration_floor.ExplorationFloor`).
    ``n_agents`` is unused; it keeps the signature of :func:`make_gru_policy`.

    Returns a ``ProbabilisticActor`` reading ``observation_key`` ``[*B, n_agents, obs_dim]`` (and the mask) and
    writing the logits, the sampled action ``[*B, n_agents]`` to ``action_key`` and its log-probability to
    ``("agents", "action_log_prob")``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_liir import make_mlp_policy
        >>> policy = make_mlp_policy(n_agents=3, obs_dim=4, n_actions=5, action_mask_key=("agents", "action_mask"))
        >>> mask = torch.tensor([True, True, False, False, False]).expand(8, 3, 5)
        >>> agents = TensorDict({"observation": torch.randn(8, 3, 4), "action_mask": mask}, [8, 3])
        >>> out = policy(TensorDict({"agents": agents}, [8]))
        >>> action = out.get(("agents", "action"))
        >>> action.shape, action.dtype, bool((action < 2).all())  # only available actions are sampled
        (torch.Size([8, 3]), torch.int64, True)
        >>> out.get(("agents", "action_log_prob")).shape
        torch.Size([8, 3])
    """
    logits = mlp_agent_network(obs_dim, n_actions, num_cells, observation_key, LOGITS_KEY, device)
    return _categorical_actor(logits, action_mask_key, action_key, exploration_floor)


def make_gru_policy(
    n_agents: int,
    obs_dim: int,
    n_actions: int,
    *,
    hidden_size: int = 64,
    observation_key: NestedKey = ("agents", "observation"),
    action_mask_key: NestedKey | None = None,
    action_key: NestedKey = ("agents", "action"),
    exploration_floor: ExplorationFloor | None = None,
    device: torch.device | str | None = None,
) -> ProbabilisticActor:
    """π_θ(u_i | τ_i): the paper's shared agent network, FC → GRU-64 → FC, categorical (masked if a key is given;
    mixed with a uniform distribution if ``exploration_floor`` is given).

    Needs ``"is_init"`` (``torchrl.envs.InitTracker``) and the hidden-state
    primer (:func:`policy_primer`) on the environment. Takes and writes what :func:`make_mlp_policy`'s actor
    does, and the GRU's hidden state ``("agents", "rnn_hidden")`` ``[*B, n_agents, hidden_size]``.

    Examples:
        >>> from torchrl.envs import Compose, InitTracker, TransformedEnv
        >>> from torchrl_liir import PursuitEnv, make_gru_policy, policy_primer
        >>> policy = make_gru_policy(n_agents=2, obs_dim=2, n_actions=3, hidden_size=8,
        ...                          action_mask_key=("agents", "action_mask"))
        >>> env = TransformedEnv(PursuitEnv(num_envs=4, seed=0), Compose(InitTracker(), policy_primer(policy)))
        >>> rollout = env.rollout(3, policy)
        >>> rollout.get(("agents", "action")).shape, rollout.get(("next", "agents", "rnn_hidden")).shape
        (torch.Size([4, 3, 2]), torch.Size([4, 3, 2, 8]))
    """
    parts = gru_agent_network(n_agents, obs_dim, n_actions, hidden_size, observation_key, LOGITS_KEY, device)
    return _categorical_actor(TensorDictSequential(*parts), action_mask_key, action_key, exploration_floor)


def make_gaussian_policy(
    n_agents: int,
    obs_dim: int,
    action_dim: int,
    *,
    action_low: torch.Tensor | float = -1.0,
    action_high: torch.Tensor | float = 1.0,
    tanh: bool = True,
    num_cells: Sequence[int] = (64, 64),
    hidden_size: int | None = None,
    observation_key: NestedKey = ("agents", "observation"),
    action_key: NestedKey = ("agents", "action"),
    device: torch.device | str | None = None,
) -> ProbabilisticActor:
    """π_θ(u_i | o_i) for continuous actions u_i ∈ R^d: a shared network giving a mean and a scale per dim.

    ``tanh=True``: ``TanhNormal`` squashed into ``[action_low, action_high]`` (no closed-form entropy:
    use ``entropy_coeff=0``); ``tanh=False``: ``IndependentNormal``, unbounded. ``hidden_size``: the
    GRU agent network (FC → GRU → FC) instead of the MLP of ``num_cells``. Returns a ``ProbabilisticActor``
    reading ``observation_key`` ``[*B, n_agents, obs_dim]`` and writing the action ``[*B, n_agents, action_dim]``
    and its log-probability ``("agents", "action_log_prob")``.
    """
    if hidden_size is None:
        net = mlp_agent_network(obs_dim, 2 * action_dim, num_cells, observation_key, PARAMS_KEY, device)
    else:
        net = TensorDictSequential(
            *gru_agent_network(n_agents, obs_dim, 2 * action_dim, hidden_size, observation_key, PARAMS_KEY, device)
        )
    return _gaussian_actor(net, action_low, action_high, tanh, action_key)


def policy_primer(policy: nn.Module) -> TensorDictPrimer | None:
    """The environment primer of a policy's recurrent state, ``None`` for a feed-forward policy.

    Examples:
        >>> from torchrl_liir import make_gru_policy, make_mlp_policy, policy_primer
        >>> primer = policy_primer(make_gru_policy(n_agents=2, obs_dim=2, n_actions=3, hidden_size=8))
        >>> type(primer).__name__, primer.primers.get(("agents", "rnn_hidden")).shape[-2:]
        ('TensorDictPrimer', torch.Size([2, 8]))
        >>> policy_primer(make_mlp_policy(n_agents=2, obs_dim=2, n_actions=3)) is None
        True
    """
    return get_primers_from_module(policy, warn=False)
