"""SMAX behind SMAC's Python API, so :class:`SMACEnv`'s whole code path runs without StarCraft II."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from torchrl_liir.envs.smax import SMAXEnv


class SMAXSmacAPI:
    """One SMAX battle speaking ``smac.env.StarCraft2Env``'s API.

    ``step(actions) -> (reward, terminated, info)`` with SMAC's conventions: the
    episode limit ends the episode as ``terminated=True`` with
    ``info["episode_limit"] = True``; ``info`` also holds ``battle_won``,
    ``dead_allies`` and ``dead_enemies`` on the last step. An unavailable action
    fails an assertion, as in SMAC. ``get_unit_by_id(i)`` gives ``health`` and
    ``health_max`` (health as a fraction, maximum 1).

    Args:
        map_name: a SMAX scenario (see :class:`~torchrl_liir.envs.SMAXEnv`).
        episode_limit: steps before the episode ends; default SMAC's limit for the map.
        seed: PRNG seed of the battle.
        walls_cause_death: SMAX kills units that touch the map's edge, StarCraft II does not: False gives SMAC's rule.
    """

    def __init__(self, map_name: str = "3m", *, episode_limit: int | None = None, seed: int = 0,
                 walls_cause_death: bool = True) -> None:
        self.map_name, self._seed, self.walls_cause_death = map_name, seed, walls_cause_death
        self._episode_limit = episode_limit
        self._battle: SMAXEnv | None = None
        self._launch()

    def _launch(self) -> None:
        self._battle = SMAXEnv(self.map_name, num_envs=1, episode_limit=self._episode_limit, seed=self._seed,
                               check_action_mask=False, walls_cause_death=self.walls_cause_death)
        self.n_agents, self.n_enemies = self._battle.n_agents, self._battle.n_enemies
        self.n_actions, self.episode_limit = self._battle.n_actions, self._battle.episode_limit
        self._td = None

    def _view(self, name):
        return self._td.get(name)[0].numpy()

    def reset(self) -> tuple[list[np.ndarray], np.ndarray]:
        if self._battle is None:
            self._launch()
        self._td = self._battle.reset()
        return self.get_obs(), self.get_state()

    def step(self, actions) -> tuple[float, bool, dict]:
        actions = np.asarray(actions, dtype=np.int64).reshape(self.n_agents)
        avail = self._view(("agents", "action_mask"))
        for agent, action in enumerate(actions):
            assert avail[agent, action], f"Agent {agent} cannot perform action {action}"
        self._td.set(("agents", "action"), torch.as_tensor(actions).unsqueeze(0))
        nxt = self._battle.step(self._td).get("next")
        self._td = nxt
        info = {}
        if nxt.get("done").item():
            info = {key: nxt.get(("info", key)).item() for key in ("battle_won", "dead_allies", "dead_enemies")}
            info["episode_limit"] = nxt.get("truncated").item()
        return float(nxt.get("reward").item()), bool(nxt.get("done").item()), info

    def get_obs(self) -> list[np.ndarray]:
        return list(self._view(("agents", "observation")))

    def get_obs_agent(self, agent_id: int) -> np.ndarray:
        return self.get_obs()[agent_id]

    def get_state(self) -> np.ndarray:
        return self._view("state")

    def get_avail_actions(self) -> list[list[int]]:
        return self._view(("agents", "action_mask")).astype(np.int64).tolist()

    def get_avail_agent_actions(self, agent_id: int) -> list[int]:
        return self.get_avail_actions()[agent_id]

    def get_unit_by_id(self, agent_id: int) -> SimpleNamespace:
        return SimpleNamespace(health=float(self._view(("agents", "health"))[agent_id, 0]), health_max=1.0)

    def get_obs_size(self) -> int:
        return self._battle.obs_dim

    def get_state_size(self) -> int:
        return self._battle.state_dim

    def get_total_actions(self) -> int:
        return self.n_actions

    def get_env_info(self) -> dict:
        return {"state_shape": self.get_state_size(), "obs_shape": self.get_obs_size(),
                "n_actions": self.n_actions, "n_agents": self.n_agents, "episode_limit": self.episode_limit}

    def full_restart(self) -> None:
        """Relaunches the battle (what SMAC does after a StarCraft II crash)."""
        self.close()
        self._launch()

    def close(self) -> None:
        self._battle = None
