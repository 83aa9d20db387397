"""StarCraft II battles through SMAC v1's Python API, with StarCraft II crashes survived."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical
from torchrl.envs import EnvBase

from torchrl_liir.envs.actions import check_actions, read_actions
from torchrl_liir.envs.smac_layout import masked_rand_action, smac_specs

SMAC_INSTALL = (
    "SMACEnv.from_map needs StarCraft II and oxwhirl's SMAC (not PyPI's 'smac', which is SMAC3): "
    "pip install 'torchrl_liir[smac]' 'smac @ git+https://github.com/oxwhirl/smac.git', "
    "then install StarCraft II and the SMAC maps and set SC2PATH (see docs/install.md)."
)


def import_starcraft2_env() -> type:
    """oxwhirl SMAC's ``StarCraft2Env``, or an ``ImportError`` saying how to install it."""
    try:
        from smac.env import StarCraft2Env
    except ImportError as err:
        raise ImportError(SMAC_INSTALL) from err
    return StarCraft2Env


def default_crash_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean StarCraft II died: socket errors and pysc2's protocol errors."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from pysc2.lib import protocol
    except ImportError:
        return tuple(errors)
    return (*errors, protocol.ProtocolError, protocol.ConnectionError)


class SMACEnv(EnvBase):
    """One battle of any object speaking SMAC v1's API (``smac.env.StarCraft2Env`` or :class:`SMAXSmacAPI`).

    Keys as TorchRL's ``SMACv2Env``, except that SMAC's episode limit is reported
    as ``truncated`` (not ``terminated``), plus ``("agents", "health")`` and
    ``("agents", "alive")`` from ``get_unit_by_id``. When StarCraft II crashes
    mid-episode (an exception in ``crash_errors``), the game is relaunched, the
    step returns ``done=truncated=True`` with ``("info", "crashed")=True``, and
    ``crashes`` counts it; the trainer drops such episodes. Use ``SerialEnv`` or
    ``ParallelEnv`` for several battles.

    Args:
        smac_env: the SMAC-API object, or a zero-argument factory (called again after a crash that
            leaves no ``full_restart`` method).
        device: torch device of the outputs.
        crash_errors: exception types treated as a crash; default :func:`default_crash_errors`.
    """

    def __init__(
        self,
        smac_env: Any | Callable[[], Any],
        *,
        device: torch.device | str = "cpu",
        crash_errors: tuple[type[BaseException], ...] | None = None,
    ) -> None:
        super().__init__(device=device, batch_size=())
        self._factory = smac_env if callable(smac_env) and not hasattr(smac_env, "get_env_info") else None
        self._env = self._factory() if self._factory is not None else smac_env
        self.crash_errors = crash_errors if crash_errors is not None else default_crash_errors()
        self.crashes = 0
        info = self._env.get_env_info()
        self.n_agents, self.n_actions = info["n_agents"], info["n_actions"]
        self.n_enemies = getattr(self._env, "n_enemies", self.n_agents)
        self.episode_limit = info["episode_limit"]
        for name, spec in smac_specs((), self.n_agents, self.n_enemies, self.n_actions, info["obs_shape"],
                                     info["state_shape"], self.device).items():
            setattr(self, name, spec)
        self.observation_spec["info", "crashed"] = Categorical(2, (), dtype=torch.bool, device=self.device)
        self._last: TensorDict | None = None

    @classmethod
    def from_map(cls, map_name: str, *, device: torch.device | str = "cpu", **smac_kwargs) -> SMACEnv:
        """A StarCraft II battle on a SMAC map (needs StarCraft II and oxwhirl's SMAC)."""
        starcraft2_env = import_starcraft2_env()
        return cls(lambda: starcraft2_env(map_name=map_name, **smac_kwargs), device=device)

    def _tensor(self, value, dtype=torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value), dtype=dtype, device=self.device)

    def _observe(self) -> TensorDict:
        health = [self._env.get_unit_by_id(i) for i in range(self.n_agents)]
        health = self._tensor([u.health / u.health_max if u.health_max else 0.0 for u in health]).unsqueeze(-1)
        return TensorDict(
            {
                "agents": TensorDict(
                    {
                        "observation": self._tensor(np.stack(self._env.get_obs())),
                        "action_mask": self._tensor(self._env.get_avail_actions(), torch.bool),
                        "health": health,
                        "alive": health > 0,
                    },
                    (self.n_agents,),
                ),
                "state": self._tensor(self._env.get_state()),
            },
            (), device=self.device,
        )

    def _info(self, info: dict, crashed: bool = False) -> TensorDict:
        return TensorDict(
            {
                "battle_won": torch.tensor(bool(info.get("battle_won", False))),
                "episode_limit": torch.tensor(bool(info.get("episode_limit", False))),
                "dead_allies": torch.tensor(int(info.get("dead_allies", 0))),
                "dead_enemies": torch.tensor(int(info.get("dead_enemies", 0))),
                "crashed": torch.tensor(crashed),
            },
            (), device=self.device,
        )

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        try:
            self._env.reset()
        except self.crash_errors as err:
            self._record_crash(err)
            self._env.reset()
        out = self._observe()
        out["info"] = self._info({})
        flag = torch.zeros(1, dtype=torch.bool, device=self.device)
        out.update({"done": flag, "terminated": flag.clone(), "truncated": flag.clone()})
        self._last = out
        return out

    def _record_crash(self, err: BaseException) -> None:
        self.crashes += 1
        warnings.warn(f"StarCraft II crashed ({type(err).__name__}: {err}); relaunching, episode dropped "
                      f"({self.crashes} so far)", stacklevel=3)
        if hasattr(self._env, "full_restart"):
            self._env.full_restart()
        else:
            self._env.close()
            if self._factory is None:
                raise RuntimeError("StarCraft II crashed and the SMAC env has no full_restart; "
                                   "pass a factory to SMACEnv to relaunch it") from err
            self._env = self._factory()

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = read_actions(tensordict)
        check_actions(action, self._last.get(("agents", "action_mask")))
        try:
            reward, ended, info = self._env.step(action.cpu().numpy())
        except self.crash_errors as err:
            self._record_crash(err)
            out = self._last.clone()
            out["info"] = self._info({}, crashed=True)
            out["reward"] = torch.zeros(1, device=self.device)
            truth = torch.ones(1, dtype=torch.bool, device=self.device)
            out.update({"done": truth, "terminated": ~truth, "truncated": truth.clone()})
            return out
        truncated = bool(ended and info.get("episode_limit", False))
        out = self._observe()
        out["info"] = self._info(info)
        out["reward"] = self._tensor([reward])
        out.update({
            "done": self._tensor([ended], torch.bool),
            "terminated": self._tensor([ended and not truncated], torch.bool),
            "truncated": self._tensor([truncated], torch.bool),
        })
        self._last = out
        return out

    def rand_action(self, tensordict: TensorDictBase | None = None) -> TensorDictBase:
        """Uniform random actions among those the current action mask allows."""
        if tensordict is None:
            tensordict = self._last.clone()
        return masked_rand_action(self.full_action_spec, tensordict)

    def _set_seed(self, seed: int | None) -> None:
        """SMAC seeds its game when built (``StarCraft2Env(seed=...)``); there is nothing to reseed here."""

    def close(self, *, raise_if_closed: bool = True) -> None:
        self._env.close()
        super().close(raise_if_closed=raise_if_closed)
