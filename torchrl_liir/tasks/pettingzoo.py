"""Cooperative MPE tasks (the ``mpe2`` package) as a trainer task, through TorchRL's ``PettingZooWrapper``."""
from __future__ import annotations

import importlib
import importlib.util
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.config_checks import COUNT, Boolean, Check, Choice, ConfigError, Integer, Text, fail
from torchrl_liir.tasks.base import Task

if TYPE_CHECKING:
    import torch
    from torchrl.envs import EnvBase

# The cooperative MPE tasks whose agents all look and act alike (one "agents" group), and whether each takes
# a number of agents (MPE's ``N``).
MPE_TASKS: dict[str, bool] = {"simple_spread_v3": True, "simple_reference_v3": False, "simple_formation_v1": True,
                              "simple_line_v1": True}
AGENT_DONE_KEYS = (("agents", "done"), ("agents", "terminated"), ("agents", "truncated"))


def import_mpe_task(task: str) -> ModuleType:
    """The ``mpe2`` module of ``task``, or a one-line error saying how to install PettingZoo and MPE."""
    if importlib.util.find_spec("pettingzoo") is None or importlib.util.find_spec("mpe2") is None:
        raise ConfigError('task=pettingzoo needs the pettingzoo and mpe2 packages: pip install -e ".[pettingzoo]"')
    return importlib.import_module(f"mpe2.{task}")


def make_mpe_env(cfg: DictConfig, seed: int) -> EnvBase:
    """One MPE game of ``cfg.task`` in TorchRL's ``PettingZooWrapper``, its agents in one ``"agents"`` group."""
    from torchrl.envs import PettingZooWrapper

    n_agents = {} if cfg.task.n_agents is None else {"N": cfg.task.n_agents}
    game = import_mpe_task(cfg.task.scenario).parallel_env(max_cycles=cfg.task.episode_limit,
                                                      continuous_actions=cfg.task.continuous_actions, **n_agents)
    with warnings.catch_warnings():
        # TorchRL warns that it was tested on an older PettingZoo; this package's tests cover the one installed.
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested")
        return PettingZooWrapper(game, group_map={"agents": list(game.possible_agents)}, categorical_actions=True,
                                 seed=seed)


class PettingZooTask(Task):
    """MPE games (numpy, on the CPU) stepped one after another in a ``SerialEnv``, their outputs moved to ``device``.

    MPE ends every game after ``task.episode_limit`` (``max_cycles``) steps as a truncation. Each agent's reward stays
    at ``("agents", "reward")``; ``"reward"`` is the team's. MPE's global state is the agents' observations
    concatenated, so it is not requested.
    """

    name = "pettingzoo"

    def config_checks(self) -> dict[str, Check]:
        return {"name": Text(), "run_name": Text(), "scenario": Choice(tuple(MPE_TASKS)), "num_envs": COUNT,
                "episode_limit": COUNT, "n_agents": Integer(1, nullable=True), "continuous_actions": Boolean()}

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        if cfg.task.n_agents is not None and not MPE_TASKS[cfg.task.scenario]:
            fail("task.n_agents", cfg.task.n_agents, f"must be null: {cfg.task.scenario} has a fixed number of agents")
        import_mpe_task(cfg.task.scenario)

    def continuous_actions(self, cfg: DictConfig) -> bool:
        return bool(cfg.task.continuous_actions)

    def episode_limit(self, cfg: DictConfig) -> int:
        return int(cfg.task.episode_limit)

    def make_env(self, cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
        from torchrl.envs import Compose, ExcludeTransform, SerialEnv, TransformedEnv

        from torchrl_liir.transforms.team_reward import TeamReward

        import_mpe_task(cfg.task.scenario)  # the install hint before SerialEnv builds a game to read its specs
        # One maker with per-game seeds: SerialEnv then builds a single game for the specs, not one per game.
        seeds = [{"cfg": cfg, "seed": seed + i} for i in range(num_envs)]
        env = SerialEnv(num_envs, make_mpe_env, create_env_kwargs=seeds, device=device)
        # Where env_episode_limit looks for it; a SerialEnv would ask its (unstarted) workers for a missing attribute.
        env.episode_limit = self.episode_limit(cfg)
        # The agents of an MPE game end together, so the root flags say it all; the per-agent copies are dropped
        # so that every multi-agent task gives the same keys.
        return TransformedEnv(env, Compose(ExcludeTransform(*AGENT_DONE_KEYS), TeamReward()))
