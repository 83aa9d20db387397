"""Builds environments, networks, losses and optimisers from a trainer configuration."""
from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torchrl.envs import Compose, EnvBase, InitTracker, ParallelEnv, SerialEnv, TransformedEnv
from torchrl.objectives import LossModule

from torchrl_liir.envs import PursuitEnv, SMACEnv, SMAXEnv, SMAXSmacAPI
from torchrl_liir.envs.smac import import_starcraft2_env
from torchrl_liir.envs.smac_layout import default_episode_limit
from torchrl_liir.modules import make_gru_policy, make_mlp_policy, policy_primer
from torchrl_liir.modules.critics import make_extrinsic_critic, make_proxy_critic
from torchrl_liir.modules.intrinsic_reward import make_intrinsic_reward
from torchrl_liir.objectives import InnerStep, LIIRLoss, MultiAgentActorCriticLoss
from torchrl_liir.trainers.baselines import BASELINES, make_baseline_components


def whole_batch(batch: TensorDictBase) -> Iterable[TensorDictBase]:
    """On-policy losses see each collected batch of padded episodes once, whole."""
    return (batch,)


def no_hook(frames: int) -> None:
    """Nothing to do between updates."""


@dataclass
class Components:
    """Everything a training run updates or saves.

    ``actor`` acts in the collector (exploration included) and, under
    ``ExplorationType.DETERMINISTIC``, greedily at test time. ``loss_inputs``
    turns one collected batch of padded episodes into the inputs of successive
    optimiser steps (a replay-buffer sample, PPO minibatches, ...);
    ``after_update(frames)`` runs once per collected batch (target copies,
    exploration schedules).
    """

    actor: TensorDictModuleBase
    loss: LossModule
    optimizers: dict[str, torch.optim.Optimizer]
    intrinsic_reward: TensorDictModule | None
    max_grad_norm: float | None
    loss_inputs: Callable[[TensorDictBase], Iterable[TensorDictBase]] = field(default=whole_batch)
    after_update: Callable[[int], None] = field(default=no_hook)


@dataclass(frozen=True)
class EnvDims:
    """Sizes read from an environment's specs."""

    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int

    @classmethod
    def from_env(cls, env: EnvBase) -> EnvDims:
        action = env.full_action_spec["agents", "action"]
        return cls(
            n_agents=action.shape[-1], n_actions=action.n,
            obs_dim=env.observation_spec["agents", "observation"].shape[-1],
            state_dim=env.observation_spec["state"].shape[-1],
        )


def make_optimizer(algo: DictConfig, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """``algo.policy_optimizer`` (sgd | rmsprop | adam); RMSprop as the authors' and pymarl's code (alpha 0.99,
    eps 1e-5)."""
    if algo.policy_optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if algo.policy_optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-5)


def episode_limit(cfg: DictConfig) -> int:
    """The longest episode of the configured env (pursuit's game length or the map's episode limit)."""
    if cfg.env.name == "pursuit":
        return int(cfg.env.max_steps)
    if cfg.env.get("episode_limit") is not None:
        return int(cfg.env.episode_limit)
    return default_episode_limit(cfg.map)


def make_base_env(cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
    """``num_envs`` battles (or games) of the configured env, batched."""
    name = cfg.env.name
    if name == "pursuit":
        return PursuitEnv(num_envs=num_envs, max_steps=cfg.env.max_steps, max_value=cfg.env.max_value,
                          device=device, seed=seed)
    if name == "smax":
        return SMAXEnv(cfg.map, num_envs, episode_limit=episode_limit(cfg), device=device, seed=seed,
                       reward_scale=cfg.env.reward_scale)
    if name == "smac":
        if cfg.env.backend == "smax":
            def factory(i: int):
                return lambda: SMACEnv(SMAXSmacAPI(cfg.map, episode_limit=episode_limit(cfg), seed=seed + i),
                                       device=device)
            return SerialEnv(num_envs, [factory(i) for i in range(num_envs)], device=device)
        import_starcraft2_env()  # fail here, in one line, rather than in the workers
        return ParallelEnv(num_envs, lambda: SMACEnv.from_map(cfg.map, device=device, seed=seed,
                                                              difficulty=str(cfg.env.difficulty)), device=device)
    if name == "smacv2":
        from torchrl.envs import SMACv2Env

        if importlib.util.find_spec("smacv2") is None:
            raise ImportError("env=smacv2 needs StarCraft II and the smacv2 package: "
                              "pip install 'smacv2 @ git+https://github.com/oxwhirl/smacv2.git' (see README)")
        return ParallelEnv(num_envs, lambda: SMACv2Env(cfg.map, categorical_actions=True, seed=seed), device=device)
    raise ValueError(f"env.name={name!r} is not supported")


def make_env(
    cfg: DictConfig, device: torch.device, num_envs: int, seed: int, actor: TensorDictModuleBase | None = None
) -> EnvBase:
    """The configured environment with an episode-start marker (and the policy's RNN primer)."""
    transforms = [InitTracker()]
    primer = policy_primer(actor) if actor is not None else None
    if primer is not None:
        transforms.append(primer)
    return TransformedEnv(make_base_env(cfg, device, num_envs, seed), Compose(*transforms))


def make_components(cfg: DictConfig, env: EnvBase, device: torch.device) -> Components:
    """Actor, loss and one optimiser per parameter set (θ, η, critics)."""
    algo = cfg.algo
    dims = EnvDims.from_env(env)
    if cfg.algo.name in BASELINES:
        return make_baseline_components(cfg, dims, device)
    n_agents, n_actions, obs_dim, state_dim = dims.n_agents, dims.n_actions, dims.obs_dim, dims.state_dim
    hidden = list(algo.num_cells)
    if algo.policy == "gru":
        actor = make_gru_policy(n_agents, obs_dim, n_actions, hidden_size=algo.rnn_hidden, device=device)
    else:
        actor = make_mlp_policy(n_agents, obs_dim, n_actions, num_cells=hidden, device=device)
    optimizers = {"policy": make_optimizer(algo, actor.parameters(), algo.lr_policy)}
    max_grad_norm = algo.max_grad_norm or None

    if algo.name == "liir":
        intrinsic = make_intrinsic_reward(obs_dim, n_actions, n_agents, num_cells=hidden,
                                          bound=algo.intrinsic_bound, agent_id=algo.agent_id, device=device)
        proxy_critic = make_proxy_critic(obs_dim, n_agents, num_cells=hidden, device=device,
                                         state_dim=state_dim if algo.proxy_critic == "state" else None)
        extrinsic_critic = make_extrinsic_critic(state_dim, num_cells=hidden, device=device)
        loss = LIIRLoss(
            actor, intrinsic, proxy_critic, extrinsic_critic,
            inner_step=InnerStep(optimizers["policy"], max_grad_norm),
            lambda_in=algo.lambda_in, entropy_coeff=algo.entropy_coeff, critic_coeff=algo.critic_coeff,
            normalize_advantage=algo.normalize_advantage, meta_gradient=algo.meta_gradient, variant=algo.variant,
            gamma=algo.gamma, lmbda=algo.lmbda,
        )
        optimizers["intrinsic"] = torch.optim.Adam(intrinsic.parameters(), lr=algo.lr_intrinsic)
        critics = [*proxy_critic.parameters(), *extrinsic_critic.parameters()]
    else:
        if algo.name == "iac":
            critic = make_proxy_critic(obs_dim, n_agents, num_cells=hidden, out_key=("agents", "state_value"),
                                       device=device)
        else:
            critic = make_extrinsic_critic(state_dim, num_cells=hidden, device=device)
        loss = MultiAgentActorCriticLoss(actor, critic, n_agents, entropy_coeff=algo.entropy_coeff,
                                         critic_coeff=algo.critic_coeff, normalize_advantage=algo.normalize_advantage,
                                         gamma=algo.gamma, lmbda=algo.lmbda)
        intrinsic = None
        critics = list(critic.parameters())
    if ("agents", "alive") in env.observation_spec.keys(True):
        loss.set_keys(agent_mask=("agents", "alive"))
    optimizers["critic"] = torch.optim.Adam(critics, lr=algo.lr_critic)
    return Components(actor, loss, optimizers, intrinsic, max_grad_norm)
