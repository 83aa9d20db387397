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
    def _vmas_stream():
        """VMAS's own context that swaps its class-level stream in (torch, NumPy and Python states, shared by all
        its envs in the process) and saves it back on exit; ``None`` before VMAS is imported. Nothing public
        exposes the stream, hence the module's names."""
        module = sys.modules.get("vmas.simulator.environment.environment")
        return None if module is None else module.local_seed(module.Environment.vmas_random_state)

    def shared_random_state(self) -> dict | None:
        """VMAS's process-wide stream, in the form of TorchRL's ``GlobalRNGState`` (checkpointable)."""
        from torchrl.checkpoint import GlobalRNGState  # here: the config checks import no torch

        stream = self._vmas_stream()
        if stream is None:
            return None
        with stream:
            state = GlobalRNGState().state_dict()
        state.pop("torch_cuda", None)  # VMAS's stream has no CUDA part
        return state

    def set_shared_random_state(self, state: dict) -> None:
        from torchrl.checkpoint import GlobalRNGState

        stream = self._vmas_stream()
        if stream is not None:
            with stream:  # on exit, VMAS keeps the loaded states as its stream
                GlobalRNGState().load_state_dict(state)

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
