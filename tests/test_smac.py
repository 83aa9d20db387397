"""SMACEnv through SMAC's API (on SMAX battles): specs, SMAC's conventions, crashes survived, real SC2."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torchrl.envs import SerialEnv
from torchrl.envs.utils import check_env_specs

pytest.importorskip("jaxmarl", reason="the SMAC-API adapter runs on SMAX, which needs the [smax] extra (jaxmarl)")

from torchrl_liir.collectors import EpisodeCollector, one_episode_per_env  # noqa: E402
from torchrl_liir.envs import SMACEnv, SMAXSmacAPI  # noqa: E402
from torchrl_liir.envs.smac_layout import masked_rand_action  # noqa: E402
from torchrl_liir.trainers.hooks import drop_crashed_episodes  # noqa: E402


class CrashingSmac(SMAXSmacAPI):
    """Raises ``ConnectionError`` (a dead StarCraft II socket) on the given global step numbers."""

    def __init__(self, crash_at: set[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.crash_at, self.steps, self.restarts = crash_at, 0, 0

    def step(self, actions):
        self.steps += 1
        if self.steps in self.crash_at:
            raise ConnectionError("Connection already closed. SC2 probably crashed.")
        return super().step(actions)

    def full_restart(self) -> None:
        self.restarts += 1
        super().full_restart()


def stop_policy(td):
    return td.set(("agents", "action"), torch.full(td.get(("agents", "action_mask")).shape[:-1], 4))


def test_specs_through_the_adapter():
    env = SMACEnv(SMAXSmacAPI("3m", seed=0))
    check_env_specs(env)
    assert (env.n_agents, env.n_actions, env.episode_limit) == (3, 8, 60)
    td = env.reset()
    assert td.get(("agents", "observation")).shape == (3, env.observation_spec["agents", "observation"].shape[-1])
    assert not td.get(("info", "crashed"))


def test_adapter_speaks_smacs_conventions():
    smac = SMAXSmacAPI("3m", episode_limit=3, seed=0)
    obs, state = smac.reset()
    info = smac.get_env_info()
    assert len(obs) == info["n_agents"] == 3 and obs[0].shape == (info["obs_shape"],)
    assert state.shape == (info["state_shape"],)
    assert len(smac.get_avail_actions()) == 3 and len(smac.get_avail_agent_actions(0)) == info["n_actions"]
    with pytest.raises(AssertionError, match="Agent 0 cannot perform action 5"):
        smac.step([5, 4, 4])
    results = [smac.step([4, 4, 4]) for _ in range(3)]
    assert [r[1] for r in results] == [False, False, True]
    # SMAC ends an episode at the limit with terminated=True and info["episode_limit"]=True.
    assert results[-1][2]["episode_limit"] is True and results[-1][2]["battle_won"] is False


def test_episode_limit_becomes_truncation():
    env = SMACEnv(SMAXSmacAPI("3m", episode_limit=3, seed=0))
    rollout = env.rollout(3, stop_policy)
    nxt = rollout.get("next")
    assert nxt.get("truncated")[:, 0].tolist() == [False, False, True]
    assert not nxt.get("terminated").any() and nxt.get(("info", "episode_limit"))[-1]


def test_action_outside_the_mask_is_rejected_before_reaching_the_game():
    env = SMACEnv(SMAXSmacAPI("3m", seed=0))
    td = env.reset().set(("agents", "action"), torch.tensor([5, 4, 4]))
    with pytest.raises(ValueError, match="outside the action mask"):
        env.step(td)


def test_battle_outcome_is_read_from_info():
    env = SMACEnv(SMAXSmacAPI("3m", seed=1))
    outcomes = []
    td = env.reset()
    for _ in range(400):
        td = masked_rand_action(env.full_action_spec, td)
        step, td = env.step_and_maybe_reset(td)
        nxt = step.get("next")
        if nxt.get("done"):
            outcomes.append((nxt.get(("info", "battle_won")).item(), nxt.get(("info", "dead_allies")).item(),
                             nxt.get(("info", "dead_enemies")).item(), nxt.get("terminated").item()))
    assert outcomes
    for won, dead_allies, dead_enemies, terminated in outcomes:
        assert terminated == (dead_allies == 3 or dead_enemies == 3)
        assert won == (dead_enemies == 3 and dead_allies < 3)


def test_crash_relaunches_the_game_and_marks_the_episode():
    smac = CrashingSmac({3}, map_name="3m", seed=0)
    env = SMACEnv(smac)
    with pytest.warns(UserWarning, match="StarCraft II crashed"):
        rollout = env.rollout(10, stop_policy, break_when_any_done=False)
    nxt = rollout.get("next")
    crashed = nxt.get(("info", "crashed"))
    assert crashed.tolist() == [False, False, True] + [False] * 7
    assert nxt.get("done")[2] and nxt.get("truncated")[2] and not nxt.get("terminated")[2]
    assert env.crashes == 1 and smac.restarts == 1
    # After the relaunch the next episode starts fresh and plays on.
    assert rollout.get(("agents", "health"))[3].eq(1).all() and not nxt.get("done")[3:].any()


class WithoutFullRestart:
    """A SMAC-API object that cannot relaunch itself (``full_restart`` missing)."""

    def __init__(self, inner: SMAXSmacAPI) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        if name == "full_restart":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_crash_without_full_restart_uses_the_factory():
    made = []

    def factory():
        made.append(WithoutFullRestart(CrashingSmac({2} if not made else set(), map_name="3m", seed=len(made))))
        return made[-1]

    env = SMACEnv(factory)
    with pytest.warns(UserWarning, match="StarCraft II crashed"):
        rollout = env.rollout(4, stop_policy, break_when_any_done=False)
    assert len(made) == 2 and env.crashes == 1
    assert rollout.get(("next", "info", "crashed")).tolist() == [False, True, False, False]


def test_collector_batches_lose_only_the_crashed_episode():
    envs = SerialEnv(3, [lambda: SMACEnv(CrashingSmac({5}, map_name="3m", episode_limit=8, seed=0)),
                         lambda: SMACEnv(SMAXSmacAPI("3m", episode_limit=8, seed=1)),
                         lambda: SMACEnv(SMAXSmacAPI("3m", episode_limit=8, seed=2))])
    collector = EpisodeCollector(envs, stop_policy, episode_limit=8)
    with pytest.warns(UserWarning, match="StarCraft II crashed"):
        batch = one_episode_per_env(next(iter(collector)))
    collector.shutdown()
    kept, dropped = drop_crashed_episodes(batch)
    assert batch.shape[0] == 3 and dropped == 1 and kept.shape[0] == 2
    assert not kept.get(("next", "info", "crashed")).any()
    assert (kept.get(("collector", "mask")).sum(-1) == 8).all()  # the kept battles ran to their limit


@pytest.mark.skipif(not os.environ.get("SC2PATH"), reason="StarCraft II is not installed (SC2PATH is unset)")
def test_real_starcraft_ii_battle():
    pytest.importorskip("smac.env", reason="oxwhirl's SMAC is not installed (PyPI's 'smac' is SMAC3)")
    env = SMACEnv.from_map("3m")
    try:
        check_env_specs(env)
        rollout = env.rollout(20, lambda td: masked_rand_action(env.full_action_spec, td))
        assert np.isfinite(rollout.get(("next", "reward")).numpy()).all()
    finally:
        env.close()
