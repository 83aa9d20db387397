"""VMAS (vectorised multi-agent simulator) scenarios as a trainer task, through TorchRL's ``VmasEnv``."""
from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.config_checks import COUNT, Boolean, Check, ConfigError, Integer, Text, fail
from torchrl_liir.tasks.base import Task

if TYPE_CHECKING:
    import torch
    from torchrl.envs import EnvBase


def import_vmas() -> ModuleType:
    """The ``vmas`` package, or a one-line error saying how to install it."""
    try:
        return importlib.import_module("vmas")
    except ImportError:
        raise ConfigError('task=vmas needs the vmas package: pip install -e ".[vmas]"') from None


class VmasTask(Task):
    """A VMAS scenario whose agents all look and act alike, in one ``"agents"`` group.

    The env is vectorised in torch (``device`` cpu or cuda). ``task.episode_limit`` ends every episode (VMAS reports
    it as a termination). Each agent's reward stays at ``("agents", "reward")``; ``"reward"`` is the team's.
    """

    name = "vmas"

    @staticmethod
    def _vmas_stream() -> list | None:
        # VMAS runs every env call with one class-level stream (torch, NumPy and Python states swapped in around
        # each call), shared by all its envs in the process; nothing public exposes it, hence the attribute.
        module = sys.modules.get("vmas.simulator.environment.environment")
        return None if module is None else module.Environment.vmas_random_state

    def shared_random_state(self) -> dict | None:
        """VMAS's process-wide stream, as TorchRL's ``GlobalRNGState`` writes the global ones (checkpointable)."""
        import numpy as np
        import torch  # here: the config checks import no torch

        stream = self._vmas_stream()
        if stream is None:
            return None
        numpy_state = stream[1]
        return {"torch_cpu": stream[0].clone(), "python": stream[2],
                "numpy": (*numpy_state[:1], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:])}

    def set_shared_random_state(self, state: dict) -> None:
        import numpy as np

        stream = self._vmas_stream()
        if stream is None:
            return
        numpy_state = state["numpy"]
        # In place: VMAS's decorators hold this very list.
        stream[:] = [state["torch_cpu"].clone(), (*numpy_state[:1], numpy_state[1].numpy().astype(np.uint32),
                                                 *numpy_state[2:]), state["python"]]

    def config_checks(self) -> dict[str, Check]:
        return {"name": Text(), "run_name": Text(), "scenario": Text("a VMAS scenario name such as balance"),
                "num_envs": COUNT, "episode_limit": COUNT, "n_agents": Integer(1, nullable=True),
                "continuous_actions": Boolean()}

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        vmas = import_vmas()
        known = (*vmas.scenarios, *vmas.mpe_scenarios, *vmas.debug_scenarios)
        if cfg.task.scenario not in known:
            fail("task.scenario", cfg.task.scenario,
                 f"must be a VMAS scenario such as {', '.join(vmas.scenarios)} (or one of VMAS's MPE and "
                 "debug scenarios)")

    def continuous_actions(self, cfg: DictConfig) -> bool:
        return bool(cfg.task.continuous_actions)

    def episode_limit(self, cfg: DictConfig) -> int:
        return int(cfg.task.episode_limit)

    def make_env(self, cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
        import_vmas()
        from torchrl.envs import Compose, ExcludeTransform, RemoveEmptySpecs, TransformedEnv, VmasEnv
        from torchrl.envs.utils import MarlGroupMapType

        from torchrl_liir.transforms.team_reward import TeamReward

        scenario, n_agents = cfg.task.scenario, cfg.task.n_agents
        env = VmasEnv(scenario, num_envs=num_envs, device=device, continuous_actions=cfg.task.continuous_actions,
                      categorical_actions=True, max_steps=self.episode_limit(cfg), seed=seed,
                      group_map=MarlGroupMapType.ALL_IN_ONE_GROUP,
                      **({} if n_agents is None else {"n_agents": n_agents}))
        if env.het_specs:
            env.close()
            fail("task.scenario", scenario, "its agents differ in observation or action size; only scenarios "
                 "whose agents are alike can share one agents group")
        if n_agents is not None and env.n_agents != n_agents:
            env.close()
            fail("task.n_agents", n_agents, f"scenario {scenario} has {env.n_agents} agents and does not take "
                 "n_agents; use null")
        # ("agents", "info") holds per-scenario reward terms that no algorithm reads: dropped so that every
        # scenario gives the same keys.
        info = [key for key in env.observation_spec.keys(True, True) if key[:2] == ("agents", "info")]
        drop = [ExcludeTransform(*info), RemoveEmptySpecs()] if info else []
        return TransformedEnv(env, Compose(*drop, TeamReward()))
