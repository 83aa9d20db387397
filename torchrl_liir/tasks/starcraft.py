"""StarCraft-style battles as trainer tasks: SMAX (JaxMARL), SMAC v1 (StarCraft II or SMAX behind SMAC's API)
and SMACv2 (TorchRL's ``SMACv2Env``). All read ``task.map``."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from torchrl_liir.config_checks import (
    COUNT,
    POSITIVE,
    Added,
    Boolean,
    Check,
    Choice,
    Integer,
    Text,
    fail,
    with_added_defaults,
)
from torchrl_liir.envs.smac_maps import default_episode_limit
from torchrl_liir.tasks.base import Task

if TYPE_CHECKING:
    import torch
    from torchrl.envs import EnvBase

SMACV2_INSTALL = ("task=smacv2 needs StarCraft II and the smacv2 package: "
                  "pip install 'smacv2 @ git+https://github.com/oxwhirl/smacv2.git' (see docs/install.md)")
DIFFICULTIES = (1, 2, 3, 4, 5, 6, 7, 8, 9, "A")
# SMAX's rule that units touching the map's edge die (JaxMARL's default): runs saved before the key played by it.
WALLS_CAUSE_DEATH = Added(Boolean(), True)


def smax_maps() -> tuple[str, ...]:
    """The maps SMAX knows (JaxMARL's scenario table). Until SMAX is imported (which starts JAX) the table's names
    are read from JaxMARL's source, so that checking a config imports no JAX."""
    module = sys.modules.get("jaxmarl.environments.smax.smax_env")
    if module is not None:
        return tuple(module.MAP_NAME_TO_SCENARIO)
    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("jaxmarl") is None:
        raise ImportError("task=smax needs JaxMARL: pip install 'torchrl_liir[smax]'")
    names = _scenario_names(importlib.util.find_spec("jaxmarl"))
    if names:
        return names
    from torchrl_liir.envs.jaxmarl_import import import_smax

    try:
        import_smax()
    except ImportError as err:
        raise ImportError("task=smax needs JaxMARL: pip install 'torchrl_liir[smax]'") from err
    return tuple(sys.modules["jaxmarl.environments.smax.smax_env"].MAP_NAME_TO_SCENARIO)


def _scenario_names(jaxmarl: importlib.machinery.ModuleSpec) -> tuple[str, ...]:
    """The string keys of ``MAP_NAME_TO_SCENARIO = {...}`` in JaxMARL's ``smax_env.py`` (empty if not found)."""
    import ast

    try:
        path = Path(jaxmarl.submodule_search_locations[0]) / "environments" / "smax" / "smax_env.py"
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, TypeError, IndexError):
        return ()
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "MAP_NAME_TO_SCENARIO" for t in node.targets)):
            return tuple(k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    return ()


def smac_maps() -> tuple[str, ...]:
    """The maps oxwhirl's SMAC knows (needs SMAC installed)."""
    from torchrl_liir.envs.smac import import_starcraft2_env

    import_starcraft2_env()
    from smac.env.starcraft2.maps.smac_maps import get_smac_map_registry

    return tuple(get_smac_map_registry())


def check_map(cfg: DictConfig, maps: tuple[str, ...]) -> None:
    value = cfg.task.get("map")
    if not isinstance(value, str) or value not in maps:
        fail("task.map", value, f"must be one of {', '.join(maps)}")


class StarCraftTask(Task):
    """A StarCraft-style task: a ``map``, an episode limit (SMAC's per map by default), battles batched."""

    def config_checks(self) -> dict[str, Check]:
        return {"name": Text(), "map": Text("a map name such as 3m"), "run_name": Text(), "num_envs": COUNT,
                "episode_limit": Integer(1, nullable=True)}

    def episode_limit(self, cfg: DictConfig) -> int:
        if cfg.task.episode_limit is not None:
            return int(cfg.task.episode_limit)
        return default_episode_limit(cfg.task.map)


class SMAXTask(StarCraftTask):
    name = "smax"

    def config_checks(self) -> dict[str, Check]:
        return {**super().config_checks(), "reward_scale": POSITIVE, "walls_cause_death": WALLS_CAUSE_DEATH}

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        check_map(cfg, smax_maps())

    def make_env(self, cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
        from torchrl_liir.envs.smax import SMAXEnv

        return SMAXEnv(cfg.task.map, num_envs, episode_limit=self.episode_limit(cfg), device=device, seed=seed,
                       reward_scale=cfg.task.reward_scale,
                       walls_cause_death=with_added_defaults(cfg.task, self.config_checks()).walls_cause_death)


class SMACTask(StarCraftTask):
    """SMAC v1: StarCraft II processes in a ``ParallelEnv`` (``backend=sc2``), or SMAX battles behind SMAC's
    API in a ``SerialEnv`` (``backend=smax``)."""

    name = "smac"

    def config_checks(self) -> dict[str, Check]:
        return {**super().config_checks(), "backend": Choice(("sc2", "smax")), "difficulty": Choice(DIFFICULTIES),
                "walls_cause_death": WALLS_CAUSE_DEATH}

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        check_map(cfg, smax_maps() if cfg.task.backend == "smax" else smac_maps())

    def test_envs(self, cfg: DictConfig) -> int:
        # StarCraft II: no more game processes than test episodes.
        return min(int(cfg.experiment.evaluation_episodes), int(cfg.task.num_envs))

    def make_env(self, cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
        from torchrl.envs import ParallelEnv, SerialEnv

        from torchrl_liir.envs.smac import SMACEnv
        from torchrl_liir.envs.smax_smac_api import SMAXSmacAPI

        limit = self.episode_limit(cfg)
        if cfg.task.backend == "smax":
            walls = with_added_defaults(cfg.task, self.config_checks()).walls_cause_death

            def factory(i: int):
                return lambda: SMACEnv(SMAXSmacAPI(cfg.task.map, episode_limit=limit, seed=seed + i,
                                                   walls_cause_death=walls), device=device)
            return SerialEnv(num_envs, [factory(i) for i in range(num_envs)], device=device)
        return ParallelEnv(num_envs, lambda: SMACEnv.from_map(cfg.task.map, device=device, seed=seed,
                                                              difficulty=str(cfg.task.difficulty)), device=device)


class SMACv2Task(StarCraftTask):
    """SMACv2 through TorchRL's ``SMACv2Env`` (its episode limit is reported as a termination)."""

    name = "smacv2"

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        if importlib.util.find_spec("smacv2") is None:
            raise ImportError(SMACV2_INSTALL)
        if not isinstance(cfg.task.get("map"), str):
            fail("task.map", cfg.task.get("map"), "must be a SMACv2 map name such as 10gen_protoss")

    def make_env(self, cfg: DictConfig, device: torch.device, num_envs: int, seed: int) -> EnvBase:
        from torchrl.envs import ParallelEnv, SMACv2Env

        return ParallelEnv(num_envs, lambda: SMACv2Env(cfg.task.map, categorical_actions=True, seed=seed),
                           device=device)
