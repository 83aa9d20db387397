"""SMAX batches collected by one compiled JAX program: the battles and the policy stepped together.

:class:`FusedSMAXCollector` yields the batches :class:`~torchrl_liir.collectors.EpisodeCollector` yields on a
:class:`~torchrl_liir.envs.SMAXEnv` (same keys, shapes, dtypes, device and padding; one episode per battle, each
from its start with the current policy), but runs the whole batch as one jitted ``lax.while_loop`` over time,
vmapped over battles, with a JAX translation (:class:`JaxPolicy`) of the library's MLP and GRU
categorical policies, or of its ε-greedy Q-networks (IQL, QMIX), whose parameters are read from the torch actor at
every batch. Actions are sampled
with a JAX key stream owned by the collector (checkpointed in its ``state_dict``), so the batches differ
from ``EpisodeCollector``'s by the sampling noise only: the battles are the ones the env would play (its
reset and step key streams are used and advanced exactly as ``EpisodeCollector`` advances them), and a
greedy (``DETERMINISTIC``) batch is the same batch.
:func:`fused_rollout_applies` says whether an env and a policy can be served this way.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from torch import nn
from torchrl.envs import Compose, EnvBase, InitTracker, TensorDictPrimer, TransformedEnv
from torchrl.envs.utils import ExplorationType
from torchrl.modules import EGreedyModule, MaskedCategorical, ProbabilisticActor, QValueModule

from torchrl_liir.collectors.episode_collector import PADDING_MASK, EpisodeCollector, first_episode_mask
from torchrl_liir.envs.smax import SMAXEnv, jax_device_for, smax_kernels
from torchrl_liir.modules.exploration_floor import ExplorationFloor
from torchrl_liir.modules.multi_agent_gru import MultiAgentGRU
from torchrl_liir.modules.policies import LOG_PROB_KEY, LOGITS_KEY
from torchrl_liir.modules.q_networks import ACTION_VALUE_KEY, CHOSEN_ACTION_VALUE_KEY, StepMode

OBSERVATION_KEY = ("agents", "observation")
ACTION_MASK_KEY = ("agents", "action_mask")
ACTION_KEY = ("agents", "action")
EMBEDDING_KEY = ("agents", "embedding")
FEATURES_KEY = ("agents", "features")
HIDDEN_KEY = ("agents", "rnn_hidden")
IS_INIT_KEY = "is_init"
GREEDY = (ExplorationType.DETERMINISTIC, ExplorationType.MODE)


def _jax():
    # Imported on first use, as SMAXEnv imports it: asking fused_rollout_applies about another task starts no JAX.
    import jax
    import jax.numpy as jnp

    return jax, jnp


class UnsupportedPolicy(ValueError):
    """The actor is not one the JAX translation reproduces (the message says why, in one line)."""


def _layer_ops(module: nn.Module, what: str) -> tuple[tuple[str, ...], list[nn.Linear]]:
    """``("linear" | "relu", ...)`` and the ``Linear`` layers of a Linear/ReLU stack (torchrl's ``MLP``)."""
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    ops, linears = [], []
    for layer in layers:
        if type(layer) is nn.Linear and layer.bias is not None:
            ops.append("linear")
            linears.append(layer)
        elif type(layer) is nn.ReLU:
            ops.append("relu")
        else:
            raise UnsupportedPolicy(f"the policy's {what} holds {type(layer).__name__}, not Linear (with bias) / ReLU")
    return tuple(ops), linears


def _td_module(module: Any, in_keys: list, out_keys: list, what: str) -> nn.Module:
    """The wrapped module of a ``TensorDictModule`` reading ``in_keys`` and writing ``out_keys``."""
    if type(module) is not TensorDictModule or module.in_keys != in_keys or module.out_keys != out_keys:
        raise UnsupportedPolicy(f"the policy's {what} is not a TensorDictModule {in_keys} -> {out_keys}")
    return module.module


class PolicyStep(NamedTuple):
    """One step of the JAX policy: what the torch actor writes (``embedding`` and ``hidden`` for a GRU). For a
    Q-network, ``logits`` holds the masked action values and ``log_prob`` the greedy action's value."""

    logits: Any
    action: Any
    log_prob: Any
    embedding: Any
    hidden: Any


@dataclasses.dataclass(frozen=True)
class PolicyStructure:
    """The static shape of a translated policy (hashable: compiled programs are cached on it).

    ``encoder``: the MLP's, or the GRU policy's embedding's, ops; then the GRU (``hidden_size`` > 0) and the
    ``head`` ops; ``exploration_floor``: mixed with uniform over the available actions; ``q_values``: the head
    gives action values, acted on ε-greedily (IQL's and QMIX's actor) instead of a categorical's logits.
    """

    encoder: tuple[str, ...]
    hidden_size: int
    head: tuple[str, ...]
    exploration_floor: bool
    q_values: bool = False

    @property
    def recurrent(self) -> bool:
        return self.hidden_size > 0

    def step(self, params: dict, obs, mask, hidden, is_init, key, deterministic) -> PolicyStep:
        """The actor's step on ``obs`` ``[*B, n, obs_dim]``, ``mask`` ``[*B, n, A]`` (bool), ``hidden``
        ``[*B, n, H]`` (a GRU's, reset to zero where ``is_init`` ``[*B, 1]``); ``key`` samples, or
        ``deterministic`` (a bool, or a traced one: one compiled program then serves both) takes the most
        probable available action."""
        jax, jnp = _jax()
        x = _apply(self.encoder, params["encoder"], obs)
        embedding = None
        if self.recurrent:
            embedding = x
            # MultiAgentGRU.cell: torch.nn.GRUCell's gates r, z and candidate n.
            w_x, b_x, w_h, b_h = params["gru"]
            h = jnp.where(is_init[..., None], 0.0, hidden)
            x_rz, x_n = jnp.split(_linear(x, w_x, b_x), [2 * self.hidden_size], axis=-1)
            h_rz, h_n = jnp.split(_linear(h, w_h, b_h), [2 * self.hidden_size], axis=-1)
            r, z = jnp.split(jax.nn.sigmoid(x_rz + h_rz), 2, axis=-1)
            n = jnp.tanh(x_n + r * h_n)
            hidden = x = n + z * (h - n)
        logits = _apply(self.head, params["head"], x)
        if self.q_values:
            return self._epsilon_greedy(params, logits, mask, embedding, hidden, key, deterministic)
        if self.exploration_floor:
            # ExplorationFloor.forward: log((1 - ε)·softmax(masked logits) + ε·uniform(available)).
            eps = params["epsilon"]
            probs = jax.nn.softmax(jnp.where(mask, logits, -jnp.inf), axis=-1)
            uniform = mask / jnp.maximum(mask.sum(-1, keepdims=True), 1)
            logits = jnp.log(jnp.maximum((1 - eps) * probs + eps * uniform, jnp.finfo(logits.dtype).tiny))
        # MaskedCategorical: unavailable actions at -inf; log-probability = log_softmax (its cross-entropy).
        masked = jnp.where(mask, logits, -jnp.inf)
        greedy = jnp.argmax(masked, axis=-1).astype(jnp.int32)
        if isinstance(deterministic, bool):
            action = greedy if deterministic else jax.random.categorical(key, masked, axis=-1).astype(jnp.int32)
        else:
            action = jnp.where(deterministic, greedy, jax.random.categorical(key, masked, axis=-1).astype(jnp.int32))
        log_probs = jax.nn.log_softmax(masked, axis=-1)
        log_prob = jnp.take_along_axis(log_probs, action[..., None], axis=-1)[..., 0]
        return PolicyStep(logits, action, log_prob, embedding, hidden)

    @staticmethod
    def _epsilon_greedy(params: dict, values, mask, embedding, hidden, key, deterministic) -> PolicyStep:
        """``QValueModule`` (unavailable actions at the dtype's minimum, the masked argmax and its value), then
        ``EGreedyModule``: with probability ε an agent's action is a uniform draw among its available ones."""
        jax, jnp = _jax()
        values = jnp.where(mask, values, jnp.finfo(values.dtype).min)
        greedy = jnp.argmax(values, axis=-1).astype(jnp.int32)
        chosen = jnp.take_along_axis(values, greedy[..., None], axis=-1)[..., 0]
        explore_key, draw_key = jax.random.split(key)
        explored = jax.random.uniform(explore_key, greedy.shape) < params["epsilon"]
        uniform = jax.random.categorical(draw_key, jnp.where(mask, 0.0, -jnp.inf), axis=-1).astype(jnp.int32)
        sampled = jnp.where(explored, uniform, greedy)
        if isinstance(deterministic, bool):
            action = greedy if deterministic else sampled
        else:
            action = jnp.where(deterministic, greedy, sampled)
        return PolicyStep(values, action, chosen, embedding, hidden)


def _apply(ops: tuple[str, ...], linears: list, x):
    jax = _jax()[0]
    layers = iter(linears)
    for op in ops:
        if op == "relu":
            x = jax.nn.relu(x)
        else:
            w, b = next(layers)
            x = _linear(x, w, b)
    return x


def _linear(x, w, b):
    """``x @ w.T + b`` in full float32, as torch's ``Linear``: JAX's default precision on recent GPUs is TF32
    (10 mantissa bits), which would move the log-probabilities by about 1e-4 from the torch actor's."""
    jax, jnp = _jax()
    return jnp.matmul(x, w.T, precision=jax.lax.Precision.HIGHEST) + b


class JaxPolicy:
    """A JAX translation of the library's masked categorical MLP or GRU policy (``make_mlp_policy`` /
    ``make_gru_policy`` with ``action_mask_key=("agents", "action_mask")``, with or without the exploration
    floor), or of its ε-greedy MLP or GRU Q-network (``make_egreedy_actor`` over ``make_mlp_q_network`` /
    ``make_gru_q_network``: IQL's and QMIX's actor); raises :class:`UnsupportedPolicy` for any other actor.

    The torch actor stays the owner of the parameters: :meth:`params` reads them (and the floor's or the
    exploration's ε) as JAX arrays at every call, so a collector acting with it always acts with the trained
    weights. Written by hand (JAX cannot run torch modules inside a compiled program): :meth:`PolicyStructure.step`
    follows ``MultiAgentGRU``, ``ExplorationFloor``, ``MaskedCategorical``, ``QValueModule`` and ``EGreedyModule``
    operation by operation, so that its log-probabilities and action values are the torch actor's to float32
    rounding (the tests hold them to 1e-5).
    """

    def __init__(self, actor: TensorDictModuleBase) -> None:
        self.explore: EGreedyModule | None = None
        if type(actor) is TensorDictSequential and len(actor.module) == 2 and type(actor.module[1]) is EGreedyModule:
            network, out_key = self._q_network(actor), ACTION_VALUE_KEY
        else:
            network, out_key = self._categorical_network(actor), LOGITS_KEY
        self.floor: ExplorationFloor | None = None
        parts = list(network.module) if type(network) is TensorDictSequential else [network]
        if isinstance(getattr(parts[-1], "module", None), ExplorationFloor):
            self.floor = _td_module(parts.pop(), [LOGITS_KEY, ACTION_MASK_KEY], [LOGITS_KEY], "exploration floor")
            if len(parts) == 1 and type(parts[0]) is TensorDictSequential:
                parts = list(parts[0].module)
        if len(parts) == 4 and type(parts[1]) is StepMode and getattr(parts[2], "module", None) is torch.Tensor.detach:
            parts = [parts[0], parts[1].module, parts[3]]  # the Q-network's GRU, stepped, its next state detached
        self.gru: MultiAgentGRU | None = None
        if len(parts) == 1:
            encoder = _td_module(parts[0], [OBSERVATION_KEY], [out_key], "MLP")
            ops, self.encoder = _layer_ops(encoder, "MLP")
            head_ops, self.head = (), []
        elif len(parts) == 3 and type(parts[1]) is MultiAgentGRU:
            embed, self.gru, head = parts
            ops, self.encoder = _layer_ops(_td_module(embed, [OBSERVATION_KEY], [EMBEDDING_KEY], "embedding"),
                                           "embedding")
            if (self.gru.in_keys != [EMBEDDING_KEY, IS_INIT_KEY, HIDDEN_KEY]
                    or self.gru.out_keys != [FEATURES_KEY, ("next", *HIDDEN_KEY)]):
                raise UnsupportedPolicy("the policy's MultiAgentGRU does not use the library's default keys")
            head_ops, self.head = _layer_ops(_td_module(head, [FEATURES_KEY], [out_key], "head"), "head")
        else:
            raise UnsupportedPolicy("the policy's network is neither the library's MLP nor its "
                                    "FC -> MultiAgentGRU -> FC")
        tensors = list(self._tensors())
        if any(t.dtype != torch.float32 for t in tensors):
            raise UnsupportedPolicy("the policy's parameters are not float32 (SMAX's observations are)")
        if len({t.device for t in tensors}) != 1:
            raise UnsupportedPolicy("the policy's parameters are on several devices")
        hidden = self.gru.hidden_size if self.gru is not None else 0
        self.structure = PolicyStructure(ops, hidden, head_ops, self.floor is not None, self.explore is not None)

    def _q_network(self, actor: TensorDictSequential) -> TensorDictModuleBase:
        """The Q-values' network of an ε-greedy Q actor (checked: the masked greedy and ε-greedy modules)."""
        q_network, self.explore = actor.module
        if self.explore.action_key != ACTION_KEY or self.explore.action_mask_key != ACTION_MASK_KEY:
            raise UnsupportedPolicy("the policy's EGreedyModule does not act on ('agents', 'action') masked by "
                                    "('agents', 'action_mask')")
        parts = list(q_network.module) if type(q_network) is TensorDictSequential else []
        greedy = parts[-1] if parts else None
        if (len(parts) != 2 or type(greedy) is not QValueModule or greedy.action_space != "categorical"
                or greedy.in_keys != [ACTION_VALUE_KEY, ACTION_MASK_KEY]
                or greedy.out_keys != [ACTION_KEY, ACTION_VALUE_KEY, CHOSEN_ACTION_VALUE_KEY]):
            raise UnsupportedPolicy("the policy's Q-network does not end in the library's masked QValueModule")
        return parts[0]

    @staticmethod
    def _categorical_network(actor: TensorDictModuleBase) -> TensorDictModuleBase:
        """The logits' network of a masked categorical actor (checked: its distribution)."""
        if type(actor) is not ProbabilisticActor:
            raise UnsupportedPolicy(f"the policy is a {type(actor).__name__}, not a ProbabilisticActor")
        network, distribution = actor.module
        if distribution.distribution_class is not MaskedCategorical or distribution.distribution_kwargs:
            raise UnsupportedPolicy(f"the policy samples a {distribution.distribution_class.__name__}, not a "
                                    "MaskedCategorical")
        if (distribution.in_keys != [LOGITS_KEY, ACTION_MASK_KEY] or distribution.out_keys != [ACTION_KEY, LOG_PROB_KEY]
                or not distribution.return_log_prob):
            raise UnsupportedPolicy("the policy's distribution does not read the logits and ('agents', 'action_mask') "
                                    "and write ('agents', 'action') and its log-probability")
        return network

    def _tensors(self):
        for linear in (*self.encoder, *self.head):
            yield from (linear.weight, linear.bias)
        if self.gru is not None:
            gru = self.gru
            yield from (gru.input_map.weight, gru.input_map.bias, gru.hidden_map.weight, gru.hidden_map.bias)
        if self.floor is not None:
            yield self.floor.epsilon
        if self.explore is not None:
            yield self.explore.eps

    @property
    def device(self) -> torch.device:
        return self.encoder[0].weight.device

    @property
    def head_out_features(self) -> int:
        """The number of logits (actions)."""
        return (self.head or self.encoder)[-1].out_features

    def params(self, jax_device=None) -> dict:
        """The actor's current parameters as a pytree for :meth:`PolicyStructure.step`.

        CPU tensors are passed as NumPy views (jit takes them without DLPack's overhead); CUDA ones through
        DLPack, on their device. Read at every batch: nothing is cached, so optimiser steps are always seen.
        """
        jax = _jax()[0]

        def arr(tensor: torch.Tensor):
            tensor = tensor.detach()
            if tensor.device.type == "cpu":
                return tensor.numpy()
            return jax.device_put(jax.dlpack.from_dlpack(tensor.contiguous()), jax_device)

        def linears(layers: list[nn.Linear]) -> list:
            return [(arr(layer.weight), arr(layer.bias)) for layer in layers]

        params = {"encoder": linears(self.encoder), "head": linears(self.head)}
        if self.gru is not None:
            params["gru"] = tuple(arr(t) for t in (self.gru.input_map.weight, self.gru.input_map.bias,
                                                   self.gru.hidden_map.weight, self.gru.hidden_map.bias))
        if self.floor is not None:
            params["epsilon"] = arr(self.floor.epsilon)
        if self.explore is not None:
            params["epsilon"] = arr(self.explore.eps)
        return params


def _transforms(env: EnvBase) -> tuple[EnvBase, list]:
    """The base env under ``env`` and the transforms applied to it, innermost first."""
    transforms = []
    while isinstance(env, TransformedEnv):
        t = env.transform
        transforms[:0] = list(t) if isinstance(t, Compose) else [t]
        env = env.base_env
    return env, transforms


def fused_rollout_applies(env: EnvBase, policy: TensorDictModuleBase) -> str | None:
    """``None`` when :class:`FusedSMAXCollector` can serve ``env`` and ``policy``, else why not (one line).

    Served: a :class:`~torchrl_liir.envs.SMAXEnv`, bare or under an ``InitTracker`` and the GRU policy's
    hidden-state primer (the trainer's env), with a policy of ``make_mlp_policy`` / ``make_gru_policy``
    masked by ``("agents", "action_mask")`` (exploration floor or not) on the env's device.
    """
    base, transforms = _transforms(env)
    if type(base) is not SMAXEnv:
        return f"the env is a {type(base).__name__}, not a SMAXEnv"
    try:
        translated = JaxPolicy(policy)
    except UnsupportedPolicy as err:
        return str(err)
    if (translated.device.type, translated.device.index or 0) != (base.device.type, base.device.index or 0):
        return f"the policy is on {translated.device}, the env on {base.device}"
    sizes = translated.encoder[0].in_features, translated.head_out_features
    if sizes != (base.obs_dim, base.n_actions):
        return (f"the policy maps {sizes[0]} observation features to {sizes[1]} actions, the env has "
                f"{base.obs_dim} and {base.n_actions}")
    recurrent = translated.structure.recurrent
    has_tracker = has_primer = False
    for t in transforms:
        if type(t) is InitTracker and t.init_keys == [IS_INIT_KEY] and not has_tracker:
            has_tracker = True
        elif type(t) is TensorDictPrimer and recurrent and not has_primer and _is_hidden_primer(t, translated):
            has_primer = True
        else:
            return f"the env's transform {type(t).__name__} is not one the fused rollout reproduces"
    if recurrent and not (has_tracker and has_primer):
        return "the GRU policy needs the env's InitTracker and its hidden-state primer"
    return None


def _is_hidden_primer(primer: TensorDictPrimer, policy: JaxPolicy) -> bool:
    """Whether ``primer`` is the GRU's hidden state at zero (:func:`~torchrl_liir.modules.policy_primer`)."""
    keys = list(primer.primers.keys(True, True))
    default = primer.default_value
    default = default.get(HIDDEN_KEY) if isinstance(default, dict) else default
    spec = primer.primers[HIDDEN_KEY] if keys == [HIDDEN_KEY] else None
    return (spec is not None and spec.shape[-1] == policy.gru.hidden_size and spec.dtype == torch.float32
            and default == 0.0 and not primer.random)


@dataclasses.dataclass(frozen=True)
class PackedLayout:
    """Where each entry lies in one battle's row of the program's buffer: SMAX's packed output
    (``env_sizes``: :attr:`SMAXEnv.packed_sizes <torchrl_liir.envs.SMAXEnv.packed_sizes>`, which
    :meth:`SMAXEnv.unpack <torchrl_liir.envs.SMAXEnv.unpack>` reads), then the policy's output of the step
    (action, log-probability, logits, embedding, hidden)."""

    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int
    hidden_size: int
    env_sizes: tuple[int, ...]

    @property
    def policy_sizes(self) -> list[int]:
        n = self.n_agents
        return [n, n, n * self.n_actions, n * self.hidden_size, n * self.hidden_size]

    @property
    def env_width(self) -> int:
        return sum(self.env_sizes)

    @property
    def width(self) -> int:
        return self.env_width + sum(self.policy_sizes)

    @property
    def flags(self) -> int:
        """Offset of the flags (reward, terminated, truncated, ...): SMAX's last entry."""
        return self.env_width - self.env_sizes[-1]


@functools.lru_cache(maxsize=None)
def fused_program(map_name: str, walls_cause_death: bool, num_envs: int, env_limit: int, steps: int,
                  structure: PolicyStructure, layout: PackedLayout) -> Callable:
    """The jitted ``program(params, policy_keys, reset_keys, step_keys, greedy) -> (buffers, steps, keys...)`` of
    one batch of each of ``M`` members (every argument but ``greedy`` and every output has a leading member axis;
    a solo run is ``M = 1``). ``greedy`` (a bool, traced: training and test batches share the program) takes the
    most probable actions instead of sampling.

    Resets each member's battles with the env's reset kernel (:func:`~torchrl_liir.envs.smax.smax_kernels` of
    ``map_name`` and ``walls_cause_death``) and its reset key, then steps each member's policy
    (its own parameters and sampling keys) and the env's step kernel (its own step key; the env's truncation at
    ``env_limit``) until every battle has ended once or ``steps`` steps have passed. A member whose battles have
    all ended keeps its step key and step count from then on, so its batch and keys are those it would get
    alone. ``buffers`` ``[M, num_envs, steps + 1, layout.width]``: at row ``t`` the packed observation before
    step ``t`` and the policy's output at step ``t``; row ``t + 1`` holds that step's result. Cached: compiled
    once per map, wall rule, battle count, limits, policy structure and member count.
    """
    jax, jnp = _jax()
    kernels = smax_kernels(map_name, walls_cause_death)
    n, a, width, env_width = layout.n_agents, layout.n_actions, layout.width, layout.env_width
    obs_end, mask_start = n * layout.obs_dim, n * layout.obs_dim + layout.state_dim
    policy_step = jax.vmap(structure.step, in_axes=(0, 0, 0, 0, 0, 0, None))
    env_step = jax.vmap(kernels.step, in_axes=(0, 0, 0, None))
    env_reset = jax.vmap(kernels.reset_all, in_axes=(0, None))

    def decode(packed):
        lead = packed.shape[:-1]
        obs = packed[..., :obs_end].reshape(*lead, n, layout.obs_dim)
        mask = packed[..., mask_start:mask_start + n * a].reshape(*lead, n, a) > 0.5
        return obs, mask

    def ended(packed):
        return (packed[..., layout.flags + 1] + packed[..., layout.flags + 2]) > 0.5

    def pack_policy(out: PolicyStep):
        parts = [out.action.astype(jnp.float32), out.log_prob, out.logits]
        if structure.recurrent:
            parts += [out.embedding, out.hidden]
        return jnp.concatenate([p.reshape(*p.shape[:2], -1) for p in parts], axis=-1)

    def program(params, policy_keys, reset_keys, step_keys, greedy):
        members = policy_keys.shape[0]
        reset_keys, states, packed = env_reset(reset_keys, jnp.ones(num_envs, dtype=bool))
        split = jax.vmap(jax.random.split)(policy_keys)
        policy_keys, batch_keys = split[:, 0], split[:, 1]
        buffer = jnp.zeros((members, num_envs, steps + 1, width), jnp.float32).at[:, :, 0, :env_width].set(packed)
        hidden = jnp.zeros((members, num_envs, n, structure.hidden_size), jnp.float32)

        def body(carry):
            t, states, packed, hidden, finished, taken, step_keys, buffer = carry
            playing = ~finished.all(-1)
            obs, mask = decode(packed)
            is_init = jnp.full((members, num_envs, 1), t == 0)
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(batch_keys, t)
            out = policy_step(params, obs, mask, hidden, is_init, keys, greedy)
            new_keys, states, packed = env_step(step_keys, states, out.action, env_limit)
            step_keys = jnp.where(playing[:, None], new_keys, step_keys)
            buffer = buffer.at[:, :, t, env_width:].set(pack_policy(out)).at[:, :, t + 1, :env_width].set(packed)
            return (t + 1, states, packed, out.hidden, finished | ended(packed), taken + playing, step_keys,
                    buffer)

        def cond(carry):
            return (carry[0] < steps) & ~carry[4].all()

        carry = (jnp.int32(0), states, packed, hidden, jnp.zeros((members, num_envs), dtype=bool),
                 jnp.zeros(members, dtype=jnp.int32), step_keys, buffer)
        _, _, _, _, _, taken, step_keys, buffer = jax.lax.while_loop(cond, body, carry)
        return buffer, taken, policy_keys, reset_keys, step_keys

    return jax.jit(program)


def run_members(program: Callable, members: list[FusedSMAXCollector]) -> tuple[torch.Tensor, list[int]]:
    """One call of ``program`` (:func:`fused_program`) for ``members``' next batches: their inputs stacked on a
    member axis, their keys advanced; the buffers ``[M, envs, steps + 1, width]`` and each member's step count."""
    jax, jnp = _jax()
    inputs = [member.program_inputs() for member in members]
    params, policy_keys, reset_keys, step_keys = (
        jax.tree.map(lambda *xs: jnp.stack(xs), *column) for column in zip(*inputs))
    greedy = members[0].exploration_type in GREEDY
    buffers, steps, policy_keys, reset_keys, step_keys = program(params, policy_keys, reset_keys, step_keys, greedy)
    for i, member in enumerate(members):
        member.advance_keys(policy_keys[i], reset_keys[i], step_keys[i])
    return torch.from_dlpack(buffers), [int(s) for s in steps.tolist()]


class FusedSMAXCollector(EpisodeCollector):
    """:class:`EpisodeCollector`'s batches on a SMAXEnv, each collected by one compiled JAX program.

    Each batch resets every battle (with the env's reset key stream), runs SMAX and a JAX translation of
    ``policy`` (:class:`JaxPolicy`, parameters read from the torch actor at every batch) in a
    jitted ``lax.while_loop`` until every battle has ended once (or ``episode_limit`` steps), and returns the
    ``[episodes, T]`` batch ``EpisodeCollector`` returns: the same keys, shapes, dtypes and device, trimmed to
    the longest episode, unfinished rows dropped, ``("collector", "mask")`` over each row's steps.

    Written by hand because the per-step path (TorchRL's ``EnvBase.step``, the torch actor, ``step_mdp``)
    costs about three times SMAX's own kernel per step; here the host is left once per batch.
    Sampling uses a JAX key stream owned by the collector (``seed``; by default derived from the env's
    step key, so the env's seed seeds it); :meth:`state_dict` holds it and the env's keys. The env's battle
    state is not advanced (each batch starts with a reset anyway); its key streams are, as
    ``EpisodeCollector`` advances them. Actions are sampled inside the action mask by construction, so the
    env's mask check has nothing to check.

    Args:
        env: a :class:`~torchrl_liir.envs.SMAXEnv`, bare or as the trainer transforms it
            (see :func:`fused_rollout_applies`; ``ValueError`` with its reason otherwise).
        policy: the trainer's actor (``make_mlp_policy`` / ``make_gru_policy``).
        episode_limit: the most steps of one episode; default the env's.
        total_frames: stop after this many collected steps (``-1``: never).
        exploration_type: ``RANDOM`` samples; ``DETERMINISTIC`` (or ``MODE``) takes the most probable action.
        postproc: applied to each batch before it is handed out.
        seed: the policy's sampling key stream; default derived from the env's step key (so from the env's seed).
    """

    def __init__(
        self,
        env: EnvBase,
        policy: TensorDictModuleBase,
        episode_limit: int | None = None,
        *,
        total_frames: int = -1,
        exploration_type: ExplorationType = ExplorationType.RANDOM,
        postproc: Callable[[TensorDictBase], TensorDictBase] | None = None,
        seed: int | None = None,
    ) -> None:
        reason = fused_rollout_applies(env, policy)
        if reason is not None:
            raise ValueError(f"FusedSMAXCollector cannot serve this env and policy: {reason}")
        if exploration_type not in (ExplorationType.RANDOM, *GREEDY):
            raise ValueError(f"exploration_type={exploration_type}: RANDOM, DETERMINISTIC or MODE")
        super().__init__(env, policy, episode_limit, total_frames=total_frames, exploration_type=exploration_type,
                         postproc=postproc)
        jax = _jax()[0]
        self._base, transforms = _transforms(env)
        self._init_tracker = any(type(t) is InitTracker for t in transforms)
        self._jax, self._jax_device = jax, jax_device_for(self._base.device)
        self._policy = JaxPolicy(policy)
        base = self._base
        self.layout = PackedLayout(base.n_agents, base.obs_dim, base.state_dim, base.n_actions,
                                    self._policy.structure.hidden_size, tuple(base.packed_sizes))
        self._program = fused_program(base.map_name, base.walls_cause_death, base.batch_size.numel(),
                                      base.episode_limit, self.episode_limit, self._policy.structure, self.layout)
        self._key = self._policy_key(seed)
        self._handed: TensorDictBase | None = None

    def _policy_key(self, seed: int | None):
        """The sampling key of ``seed``; for ``None``, one derived from the env's step key, so that seeding the
        env seeds the sampling too (without drawing from torch's generator, which the run's other draws use)."""
        jax = self._jax
        if seed is None:
            key = self._base.jax_keys[1]
        else:
            key = jax.device_put(jax.random.PRNGKey(seed), self._jax_device)
        # Folded with a constant: the env's own keys come from PRNGKey(seed) and its step key.
        return jax.random.fold_in(key, 0x5A3C)

    def _device_key(self, tensor: torch.Tensor):
        return self._jax.device_put(tensor.cpu().numpy().astype(np.uint32), self._jax_device)

    @staticmethod
    def _key_tensor(key) -> torch.Tensor:
        return torch.as_tensor(np.asarray(key).astype(np.int64))

    @torch.no_grad()
    def rollout(self) -> TensorDictBase:
        """One batch: ``[episodes, T]`` with ``("collector", "mask")`` (the one a
        :class:`~torchrl_liir.collectors.FusedSMAXPopulation` handed over, if any)."""
        handed, self._handed = self._handed, None
        return handed if handed is not None else self._batch(*self.run_program())

    def hand_over(self, batch: TensorDictBase) -> None:
        """Makes ``batch``, collected for this collector with its keys and policy, its next :meth:`rollout`."""
        self._handed = batch

    def run_program(self) -> tuple[torch.Tensor, int]:
        """One batch's compiled program alone: its buffer (``[envs, episode_limit + 1, layout.width]``, see
        :func:`fused_program`) and its step count; the key streams advance as in :meth:`rollout`."""
        buffers, steps = run_members(self._program, [self])
        return buffers[0], steps[0]

    def program_inputs(self) -> tuple[dict, Any, Any, Any]:
        """This member's arguments of :func:`fused_program`: its policy's parameters, its sampling key and its
        env's reset and step keys (without the member axis)."""
        return (self._policy.params(self._jax_device), self._key, *self._base.jax_keys)

    def advance_keys(self, policy_key, reset_key, step_key) -> None:
        """Takes this member's keys after a batch (:func:`fused_program`'s outputs, without the member axis)."""
        self._key = policy_key
        self._base.jax_keys = reset_key, step_key

    def _batch(self, buffer: torch.Tensor, steps: int) -> TensorDictBase:
        """The padded batch of the program's ``buffer`` after ``steps`` steps (EpisodeCollector's trimming)."""
        layout, device = self.layout, self._base.device
        flags = buffer[:, 1:steps + 1, layout.flags:layout.flags + 3]
        done = ((flags[..., 1] + flags[..., 2]) > 0.5).unsqueeze(-1)
        mask = first_episode_mask(done)
        ended = done[..., 0].any(-1)
        longest = int((mask & ended.unsqueeze(-1)).sum(-1).max())
        rows, mask = buffer[:, :longest + 1], mask[:, :longest]
        if not bool(ended.all()):
            rows, mask = rows[ended], mask[ended]
        batch = torch.Size((rows.shape[0], longest))
        current, following = rows[:, :longest], rows[:, 1:]
        new = TensorDict._new_unsafe  # every entry below is built with its final shape, dtype and device
        env_width = layout.env_width
        root = self._base.unpack(current[..., :env_width], batch, reward=False, copy=True)
        nxt = self._base.unpack(following[..., :env_width], batch, reward=True, copy=True)
        agents, next_agents = root.get("agents"), nxt.get("agents")
        n, a, h = layout.n_agents, layout.n_actions, layout.hidden_size
        action, log_prob, logits, embedding, hidden = current[..., layout.env_width:].split(layout.policy_sizes, -1)
        agents.set(ACTION_KEY[1], action.long().reshape(*batch, n))
        if self._policy.structure.q_values:  # the masked action values and the greedy action's value
            agents.set(CHOSEN_ACTION_VALUE_KEY[1], log_prob.contiguous().reshape(*batch, n, 1))
            agents.set(ACTION_VALUE_KEY[1], logits.contiguous().reshape(*batch, n, a))
        else:
            agents.set(LOG_PROB_KEY[1], log_prob.contiguous().reshape(*batch, n))
            agents.set(LOGITS_KEY[1], logits.contiguous().reshape(*batch, n, a))
        if self._policy.structure.recurrent:
            hidden = hidden.contiguous().reshape(*batch, n, h)
            agents.set(EMBEDDING_KEY[1], embedding.contiguous().reshape(*batch, n, h))
            agents.set(FEATURES_KEY[1], hidden)
            agents.set(HIDDEN_KEY[1], torch.cat([hidden.new_zeros(batch[0], min(1, longest), n, h),
                                                  hidden[:, :-1]], dim=1))
            next_agents.set(HIDDEN_KEY[1], hidden.clone())
        if self._init_tracker:
            is_init = torch.zeros(*batch, 1, dtype=torch.bool, device=device)
            nxt.set(IS_INIT_KEY, is_init.clone())
            is_init[:, :1] = True
            root.set(IS_INIT_KEY, is_init)
        root.set("next", nxt)
        root.set(PADDING_MASK[0], new({PADDING_MASK[1]: mask.contiguous()}, batch, device=device))
        return root

    def set_seed(self, seed: int, static_seed: bool = False) -> int:
        """Seeds the env's battles and, from the env's new step key, the collector's sampling key stream."""
        out = self.env.set_seed(seed, static_seed=static_seed)
        self._key = self._policy_key(None)
        return out

    def state_dict(self) -> dict:
        """Frames, the sampling key and the env's reset / step keys (``int64`` tensors)."""
        return {"frames": self.frames, "policy_key": self._key_tensor(self._key),
                "env_random_state": self._base.random_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.frames = state_dict["frames"]
        # An EpisodeCollector's state (a run saved before the fused path) holds the frames only: its
        # sampling was torch's, and the trainer restores the env's keys itself.
        if "policy_key" in state_dict:
            self._key = self._device_key(state_dict["policy_key"])
            self._base.set_random_state(state_dict["env_random_state"])

    def update_policy_weights_(self, *args, **kwargs) -> None:
        """Nothing to copy: the policy's parameters are read from the torch actor at every batch."""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(envs={self.env.batch_size.numel()}, episode_limit={self.episode_limit}, "
                f"policy={'gru' if self._policy.structure.recurrent else 'mlp'}, frames={self.frames})")
